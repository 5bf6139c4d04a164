import numpy as np
import pytest

import neff

from neff.bayes import blr_posterior
from neff.effdim import paper_effective_dimension


def test_closed_form_and_sweep():
    assert neff.effective_dimension([1.0, 3.0], 1.0) == pytest.approx(0.5 + 0.75)
    sweep = neff.effective_dimension([1.0, 3.0], [1.0, 3.0])
    np.testing.assert_allclose(sweep, [1.25, 0.25 + 0.5])
    assert isinstance(neff.effective_dimension([2.0], 2.0), float)


def test_negative_policy():
    lam = [4.0, -1.0, 0.5]
    assert neff.effective_dimension(lam, 1.0) == pytest.approx(0.8 + 0 + 1 / 3)
    assert neff.effective_dimension(lam, 1.0, negative="abs") == pytest.approx(0.8 + 0.5 + 1 / 3)
    with pytest.raises(neff.NeffError, match="1 eigenvalues are negative"):
        neff.effective_dimension(lam, 1.0, negative="raise")
    # the paper's estimator drops negative Ritz values and exact 1.0s
    assert paper_effective_dimension([4.0, -1.0, 1.0], 1.0) == pytest.approx(0.8)


def test_bayesian_linear_regression_posterior_contraction():
    """neff.bayes's posterior is the closed form, and its contraction is N_eff:
    tr Sigma_prior - tr Sigma_post = alpha^2 N_eff(Phi^T Phi / sigma^2, 1 / alpha^2)."""
    rng = np.random.default_rng(0)
    phi = rng.standard_normal((30, 12))
    sigma2, alpha2 = 0.3, 2.5
    precision = phi.T @ phi / sigma2
    y = rng.standard_normal(30)
    mean, posterior = blr_posterior(phi, sigma2, alpha2 * np.eye(12), y)
    assert np.allclose(posterior, np.linalg.inv(precision + np.eye(12) / alpha2), rtol=1e-10, atol=1e-14)
    assert np.allclose(mean, np.linalg.solve(precision + np.eye(12) / alpha2, phi.T @ y / sigma2), rtol=1e-10)
    contraction = 12 * alpha2 - np.trace(posterior)
    n_eff = neff.effective_dimension(np.linalg.eigvalsh(precision), 1 / alpha2)
    assert contraction == pytest.approx(alpha2 * n_eff, rel=1e-12)


def test_estimators_contain_the_dense_value(trained_hessian):
    dense = np.linalg.eigvalsh(trained_hessian.dense().numpy())
    z = np.array([1e-3, 1e-2, 0.1])
    truth = neff.effective_dimension(dense, z)
    eigen = neff.top_eigenpairs(trained_hessian, 20, tol=1e-6)
    certified = neff.estimate_effective_dimension(trained_hessian, z, "certified", eigen=eigen)
    assert np.all(certified.lower <= truth + 1e-9) and np.all(truth <= certified.upper)
    slq = neff.estimate_effective_dimension(trained_hessian, z, "slq", eigen=eigen, num_samples=30, steps=25)
    assert np.all(slq.lower <= truth) and np.all(truth <= slq.upper), (slq, truth)
    assert np.all(np.abs(slq.value - truth) <= 0.05 * truth)
    paper = neff.estimate_effective_dimension(trained_hessian, z, "paper", paper_steps=30)
    assert paper.n_hvp == 30 and np.all(np.isnan(paper.lower))
    assert paper.num_negative == np.sum(np.array(paper.details["ritz_values"]) < 0)


def test_certified_bound_is_tight_when_z_is_above_the_bulk(trained_hessian):
    dense = np.linalg.eigvalsh(trained_hessian.dense().numpy())
    z = 100 * dense.max()
    k = 30
    eigen = neff.top_eigenpairs(trained_hessian, k, tol=1e-8)
    est = neff.estimate_effective_dimension(trained_hessian, z, "certified", eigen=eigen)
    truth = neff.effective_dimension(dense, z)
    assert est.lower[0] <= truth <= est.upper[0]
    assert est.value[0] == pytest.approx(neff.effective_dimension(dense[::-1][:k], z), rel=1e-8)


def test_trace_estimators(trained_hessian):
    truth = float(np.trace(trained_hessian.dense().numpy()))
    for estimate in (neff.hutchinson(trained_hessian, 60), neff.hutchpp(trained_hessian, 60)):
        assert abs(estimate.value - truth) <= 4 * estimate.stderr + 1e-12, estimate
        assert estimate.n_hvp == 60


def test_spectral_density_integrates_to_dimension(trained_hessian):
    rule = neff.spectral_density(trained_hessian, num_samples=4, steps=30, seed=2)
    assert rule.alpha.shape == (4, 30) and trained_hessian.n_hvp == 120  # 4 probes of 30 steps
    np.testing.assert_array_equal(rule.nodes, neff.quadrature.slq(trained_hessian, 4, 30, seed=2).nodes)
    grid = np.linspace(rule.nodes.min() - 1, rule.nodes.max() + 1, 4001)
    integral = np.trapezoid(rule.density(grid, bandwidth=0.01), grid)
    assert integral == pytest.approx(trained_hessian.num_params, rel=0.05)


def test_reports_print_what_they_hold():
    """The printed reports, letter by letter: users read them, scripts parse them (the README
    test, the workflow logs)."""
    from neff.effdim import EffDimEstimate
    from neff.eigen import EigenResult
    z, value, low, high = np.array([0.1, 1.0]), np.array([12.5, 3.25]), np.array([11.0, 3.0]), np.array([14.0, 3.5])
    slq = EffDimEstimate(z, value, low, high, "slq", 120, 4.5, 300,
                         {"num_negative_interval": (2.0, 7.25), "negative_tol": 1e-4})
    assert str(slq) == (
        "N_eff by slq (120 products, 300 parameters, eigenvalues below -0.0001: 4.5 [2.0, 7.2]; 95% interval: "
        "sampling + quadrature error)\n"
        "         z        N_eff        lower        upper\n"
        "       0.1         12.5           11           14\n"
        "         1         3.25            3          3.5")
    slq.details["confidence"] = 0.9
    assert "; 90% interval: sampling + quadrature error)" in str(slq)
    certified = EffDimEstimate(z, value, low, high, "certified", 20, None, 300)
    assert str(certified).splitlines()[0] == "N_eff by certified (20 products, 300 parameters; bounds)"
    paper = EffDimEstimate(z, value, value * np.nan, value * np.nan, "paper", 100, 3.0, 300)
    assert str(paper).splitlines()[0] == ("N_eff by paper (100 products, 300 parameters, negative Ritz values "
                                          "dropped: 3; no interval)")
    eigen = EigenResult(np.array([2.0, 1.0]), np.array([1e-6, 0.5]), np.array([True, False]), 1e-4, 2.0, 30, 0.25,
                        "lanczos", "largest", 300, steps=20)
    assert str(eigen) == (
        "lanczos: 1/2 largest eigenpairs converged (residual <= 0.0001 x |H| = 0.0002), 30 products, 0.25 s\n"
        "   i     eigenvalue    residual  converged\n"
        "   0              2       1e-06  yes\n"
        "   1              1         0.5  NO")
    record = eigen.record()
    assert record == {"eigenvalues": [2.0, 1.0], "residuals": [1e-6, 0.5], "converged": [True, False], "tol": 1e-4,
                      "norm_estimate": 2.0, "n_hvp": 30, "wall_time": 0.25, "method": "lanczos", "which": "largest",
                      "num_params": 300, "steps": 20, "ritz_values": [], "tridiagonal": [[], []]}


def test_inputs_at_their_boundaries():
    """z must be a positive finite number or a 1-D sweep; exact zeros pass negative='raise'
    and negatives do not; the paper's estimator drops negatives and exact 1.0s but keeps values
    in (0, 1); a Ritz value count starts at one step; the density's default bandwidth is 1% of
    the node range."""
    from neff.effdim import as_z, paper_effective_dimension, positive_part
    assert as_z(2).dtype == np.float64 and as_z([1, 2]).tolist() == [1.0, 2.0]
    for bad in (0, -1.0, [], [[1.0]], np.inf, np.nan):
        with pytest.raises(neff.NeffError):
            as_z(bad)
    assert positive_part([0.0, 0.0, 2.0], "raise").tolist() == [0.0, 0.0, 2.0]
    assert positive_part([0.5], "raise").tolist() == [0.5]
    with pytest.raises(neff.NeffError, match="1 eigenvalues are negative"):
        positive_part([1.0, -1e-9], "raise")
    assert paper_effective_dimension([0.5, 1.0, 2.0, -1.0, 0.0], 1.0) == pytest.approx(0.5 / 1.5 + 2.0 / 3.0)
    result = neff.top_eigenpairs(np.diag(np.arange(1.0, 31.0)), 2, tol=1e-8)
    assert result.ritz(1).shape == (1,)
    with pytest.raises(neff.NeffError, match="not 0"):
        result.ritz(0)
    rule = neff.spectral_density(np.diag(np.arange(1.0, 31.0)), num_samples=3, steps=8)
    grid = np.linspace(0, 31, 50)
    assert np.allclose(rule.density(grid), rule.density(grid, 0.01 * np.ptp(rule.nodes)))
