"""neff.bayes and neff.random_features against closed forms and direct dense computations."""
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from scipy import stats
from torch import nn

from neff import NeffError, effective_dimension
from neff.bayes import (blr_contraction, blr_posterior, bnn_effective_dimensions, fourier_features,
                        likelihood_hessian_eigenvalues, log_posterior, sample_eigenvalues, sample_posterior)
from neff.data import bnn_regression_points
from neff.models import build_model
from neff.random_features import fit_random_features, random_features_table, weakly_informative_features


def paper_design(points=300, features=200):
    return fourier_features(np.linspace(0, 50, points), features)


def test_contraction_identity_of_bayesian_linear_regression():
    phi, alpha2, noise_var = paper_design(120, 60), 3.0, 0.1
    _, posterior = blr_posterior(phi, noise_var, alpha2)
    hessian_eigenvalues = np.linalg.eigvalsh(phi.T @ phi / noise_var)
    contraction = alpha2 * phi.shape[1] - np.trace(posterior)
    assert contraction == pytest.approx(alpha2 * effective_dimension(hessian_eigenvalues, 1 / alpha2), abs=1e-8)


def test_sequential_contraction_matches_dense_posterior_at_every_step():
    phi, noise_var, prior, z = paper_design(80, 40), 0.1, 3.0, 5.0
    path = blr_contraction(phi, noise_var, prior, z, seed=3)
    assert sorted(path["point"][1:]) == list(range(80))
    for n in range(len(path)):
        seen = phi[path["point"][1:n + 1].to_numpy()]
        cov = np.linalg.inv(np.eye(40) / prior + seen.T @ seen / noise_var)
        assert path["param_neff"][n] == pytest.approx(effective_dimension(np.linalg.eigvalsh(cov), z), abs=1e-8)
        function = effective_dimension(np.linalg.eigvalsh(seen @ cov @ seen.T), z) if n else 0.0
        assert path["function_neff"][n] == pytest.approx(function, abs=1e-8)
        assert path["trace"][n] == pytest.approx(np.trace(cov), abs=1e-8)
    assert np.all(np.diff(path["param_neff"]) <= 1e-12) and np.all(np.diff(path["function_neff"]) >= -1e-12)


def test_paper_settings_give_the_published_values():
    # PAPER.md: parameter N_eff 74.6 -> 37.5 (n = 100) -> 3.8 (n = 200) -> ~0; function 0 -> 3.9
    paths = [blr_contraction(paper_design(), 0.1, 3.0, 5.0, seed=seed) for seed in range(5)]
    first = paths[0]
    assert first["param_neff"][1] == pytest.approx(74.6, abs=0.05)
    assert first["param_neff"][100] == pytest.approx(37.5, abs=0.1)
    assert first["param_neff"].iloc[-1] < 0.05 and first["function_neff"].iloc[-1] == pytest.approx(3.9, abs=0.05)
    # at n = 200 the value depends on which 200 points came first: the published 3.8 is one order
    assert np.median([path["param_neff"][200] for path in paths]) == pytest.approx(3.8, abs=0.5)


def test_bad_design_is_refused():
    with pytest.raises(NeffError, match="even"):
        fourier_features(np.zeros(3), 5)
    with pytest.raises(NeffError, match="prior_cov"):
        blr_posterior(np.ones((3, 2)), 0.1, [1.0, 2.0, 3.0])
    with pytest.raises(NeffError, match="symmetric"):
        blr_posterior(np.ones((3, 2)), 0.1, [[1.0, 5.0], [0.0, 1.0]])
    with pytest.raises(NeffError, match="noise_var"):
        blr_posterior(np.ones((3, 2)), 0.0, 1.0)


def test_sample_eigenvalues_are_those_of_the_dense_moment_matrices():
    draws = torch.randn(30, 8, dtype=torch.float64) + 2
    second = draws.T @ draws / 30
    assert np.allclose(np.sort(sample_eigenvalues(draws, center=False))[-8:], np.linalg.eigvalsh(second.numpy()))
    cov = np.cov(draws.numpy().T)
    assert np.allclose(np.sort(sample_eigenvalues(draws, center=True))[-8:], np.linalg.eigvalsh(cov))


def test_log_posterior_is_the_stated_density():
    torch.manual_seed(0)
    net = nn.Linear(3, 1, bias=False).double()
    x, y = torch.randn(7, 3, dtype=torch.float64), torch.randn(7, dtype=torch.float64)
    log_density, _ = log_posterior(net, x, y, prior_scale=2.0, precision=(3.0, 1.0))
    w, log_tau = torch.randn(3, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64)
    tau = np.exp(0.3)
    expected = (stats.norm.logpdf(y.numpy(), (x @ w).numpy(), tau ** -0.5).sum() + stats.norm.logpdf(w, 0, 2).sum()
                + stats.gamma.logpdf(tau, 3.0, scale=1.0) + 0.3)  # + log |d tau / d log tau|
    assert float(log_density({"w": w, "log_tau": log_tau})) == pytest.approx(expected, rel=1e-12)


def test_nuts_recovers_the_conjugate_posterior():
    torch.manual_seed(0)
    x = torch.randn(30, 3, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.5 * torch.randn(30, dtype=torch.float64)
    net = nn.Linear(3, 1, bias=False).double()
    draws = sample_posterior(net, x, y, num_samples=1000, warmup=300, seed=0, precision=4.0).params.numpy()
    mean, cov = blr_posterior(x.numpy(), 0.25, 1.0, y.numpy())
    standard_error = np.sqrt(np.diag(cov) / len(draws))
    assert np.all(np.abs(draws.mean(0) - mean) < 4 * standard_error)
    whitened = np.linalg.solve(np.linalg.cholesky(cov), (draws - mean).T)  # N(0, I) if the draws are right
    assert np.abs(np.cov(whitened) - np.eye(3)).max() < 0.15


def test_likelihood_hessian_is_the_dense_one():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 4, bias=False), nn.ELU(), nn.Linear(4, 1, bias=False)).double()
    x, y = torch.randn(9, 1, dtype=torch.float64), torch.randn(9, dtype=torch.float64)
    flat = torch.cat([p.detach().ravel() for p in net.parameters()])

    def nll(theta):
        first, second = theta[:4].reshape(4, 1), theta[4:].reshape(1, 4)
        return 2.5 / 2 * ((nn.functional.elu(x @ first.T) @ second.T).ravel() - y).pow(2).sum()

    dense = torch.autograd.functional.hessian(nll, flat)
    assert np.allclose(likelihood_hessian_eigenvalues(net, x, y, precision=2.5), torch.linalg.eigvalsh(dense),
                       atol=1e-10)


def test_bnn_effective_dimensions_of_a_linear_model_are_its_closed_forms():
    # a linear "network" with a fixed noise precision is Bayesian linear regression
    torch.manual_seed(0)
    x = torch.randn(20, 3, dtype=torch.float64)
    y = x @ torch.tensor([0.5, -1.0, 0.2], dtype=torch.float64) + 0.5 * torch.randn(20, dtype=torch.float64)
    net = nn.Linear(3, 1, bias=False).double()
    result = bnn_effective_dimensions(net, x, y, num_samples=1000, warmup=300, prior_scale=2.0, precision=4.0,
                                      z_param=0.01, map_steps=100)
    mean, cov = blr_posterior(x.numpy(), 0.25, 4.0, y.numpy())
    assert result["param_neff"] == pytest.approx(effective_dimension(np.linalg.eigvalsh(cov + np.outer(mean, mean)),
                                                                     0.01), rel=0.05)
    exact = effective_dimension(np.linalg.eigvalsh(4.0 * x.T.numpy() @ x.numpy()), 1 / 2.0 ** 2)
    assert result["hessian_neff"] == pytest.approx(exact, rel=1e-10) and result["hessian_negative"] == 0
    assert result["function_neff"] == pytest.approx(3, abs=1e-3)  # predictions vary in 3 directions only
    # at z = 0.25, about the eigenvalues of the predictions' covariance X Sigma X^T, N_eff is not the rank
    moderate = bnn_effective_dimensions(net, x, y, num_samples=1000, warmup=300, prior_scale=2.0, precision=4.0,
                                        z_function=0.25, map_steps=100)
    function = effective_dimension(np.linalg.eigvalsh(x.numpy() @ cov @ x.numpy().T), 0.25)
    assert 1 < function < 2 and moderate["function_neff"] == pytest.approx(function, rel=0.1)
    assert np.allclose(net.weight.detach().numpy().ravel(), mean, atol=1e-6)  # the MAP is the posterior mean


def test_too_few_draws_are_flagged():
    net = nn.Linear(4, 1, bias=False)
    x = torch.randn(10, 4)
    with pytest.warns(UserWarning, match="draw more samples than parameters"):
        bnn_effective_dimensions(net, x, x.sum(1), num_samples=3, warmup=5, max_tree_depth=3, map_steps=5)


def test_random_features_are_the_originals_weakly_informative_ones():
    """x_j = y + N(0, 1) for the informative columns, pure noise beyond; y ~ N(0, 1)."""
    x, y = weakly_informative_features(20000, 6, np.random.default_rng(0), informative=4)
    assert abs(y.mean()) < 0.03 and y.std() == pytest.approx(1, abs=0.02)
    noise = x[:, :4] - y[:, None]
    assert np.abs(noise.mean(0)).max() < 0.03 and np.allclose(noise.std(0), 1, atol=0.02)
    assert np.abs(np.corrcoef(noise.T, y)[-1, :-1]).max() < 0.03  # noise independent of y
    assert np.abs(np.corrcoef(x[:, 4:].T, y)[-1, :-1]).max() < 0.03  # columns past `informative`: pure noise


def test_random_features_errors_are_relative_norms():
    # one feature x = y + e: least squares keeps R^2 = corr(x, y)^2 = 1/2 of ||y||^2, so the
    # relative error is sqrt(1 - 1/2) (a mean squared error would be 1/2)
    rng = np.random.default_rng(1)
    assert fit_random_features(50000, 1, rng)["train_error"] == pytest.approx(np.sqrt(0.5), abs=0.01)
    fit = fit_random_features(40, 60, rng)
    assert fit["train_error"] < 1e-12 and fit["effective_dimensionality"] == pytest.approx(40 - fit["neff"])


def test_random_features_neff_is_that_of_the_fits_own_training_features():
    """N_eff(s^2, ridge n) from the singular values of the very features the fit drew."""
    fit = fit_random_features(30, 50, np.random.default_rng(5), ridge=0.01)
    x, _ = weakly_informative_features(30, 50, np.random.default_rng(5), 1000)
    s2 = np.linalg.svd(x, compute_uv=False) ** 2
    assert fit["neff"] == pytest.approx(np.sum(s2 / (s2 + 0.01 * 30)), rel=1e-10)
    assert fit["effective_dimensionality"] == pytest.approx(30 - fit["neff"], rel=1e-12)


def test_random_features_peak_at_the_interpolation_threshold():
    table = random_features_table([20, 40, 60, 80, 100, 120, 140], [80], trials=4)
    mean = table.groupby("d").mean()
    assert mean["test_error"].idxmax() == 80 and mean["effective_dimensionality"].idxmax() == 80
    assert (mean.loc[[100, 120, 140], "train_error"] < 1e-12).all() and (mean.loc[[20, 40], "train_error"] > 0.05).all()
    assert len(table) == 7 * 4
    with pytest.raises(NeffError, match="must both be positive"):
        random_features_table([0], [10])


def test_bnn_data_is_the_originals():
    """inputs (1, x, x^2) on linspace(-1, 1); y standardised; without noise, the original's
    curve X W + 0.5 (0.5 + x)^2 sin(4x) with W = 0.5 x numpy's first three seed-0 normals."""
    x, y = bnn_regression_points(400)
    grid = np.linspace(-1, 1, 400)
    np.testing.assert_allclose(x, np.stack([np.ones(400), grid, grid ** 2], 1), atol=1e-6)
    assert y.shape == (400, 1) and abs(y.mean()) < 1e-6 and y.std() == pytest.approx(1, abs=1e-5)
    clean = x.astype(np.float64) @ (0.5 * np.array([1.76405235, 0.40015721, 0.97873798])) \
        + 0.5 * (0.5 + grid) ** 2 * np.sin(4 * grid)
    _, smooth = bnn_regression_points(400, noise=0.0)
    np.testing.assert_allclose(smooth[:, 0], (clean - clean.mean()) / clean.std(), atol=1e-5)
    assert np.std(y[:, 0] - smooth[:, 0]) * clean.std() == pytest.approx(0.05, rel=0.15)  # the noise sd


def test_paper_bnn_has_481_parameters():
    spec = yaml.safe_load((Path(__file__).parents[1] / "config" / "paper.yaml").read_text())["bayes"]["bnn"]
    net = build_model("mlp", 1, (3,), width=spec["width"], depth=spec["depth"], activation=spec["activation"],
                      bias=spec["bias"])
    assert sum(p.numel() for p in net.parameters()) == 3 * 20 + 20 * 20 + 20 == 480  # + the noise precision
    assert spec["sizes"][:3] == [20, 100, 200] and spec["samples"] == spec["warmup"] == 2000 and spec["trials"] == 5
