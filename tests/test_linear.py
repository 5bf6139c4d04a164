"""Estimators on plain matrices with spectra chosen by hand."""
import numpy as np
import pytest
import torch

import neff
from neff.effdim import certified_bounds, effective_dimension
from neff.errors import NeffError


@pytest.fixture
def matrix():
    """Q diag(lambda) Q^T with lambda = 20, 10, 5, 1, and 36 values in [0, 0.5]."""
    gen = torch.Generator().manual_seed(0)
    values = torch.cat([torch.tensor([20.0, 10.0, 5.0, 1.0]), 0.5 * torch.rand(36, generator=gen)]).double()
    q = torch.linalg.qr(torch.randn(40, 40, generator=gen, dtype=torch.float64)).Q
    return q @ torch.diag(values) @ q.T, values.numpy()


def test_top_eigenpairs_and_certified_bounds_of_a_matrix(matrix):
    a, values = matrix
    top = neff.top_eigenpairs(a, k=4, tol=1e-10)
    assert top.eigenvalues == pytest.approx(values[:4], rel=1e-10)
    value, lower, upper = certified_bounds(top, [1.0])
    theta, r = top.eigenvalues, top.residuals
    assert value[0] == pytest.approx(effective_dimension(values[:4], 1.0), rel=1e-9)
    assert neff.exact_eigenpairs(a).eigenvalues == pytest.approx(np.sort(values)[::-1], rel=1e-10, abs=1e-12)
    assert upper[0] == pytest.approx(((theta + r) / (theta + r + 1)).sum() + 36 * (theta[-1] + r[-1]) / (theta[-1] + r[-1] + 1))


def test_trace_estimators_and_slq_on_a_matrix(matrix):
    a, values = matrix
    diagonal = torch.diag(torch.tensor(values))
    assert neff.hutchinson(diagonal, 5).value == pytest.approx(values.sum(), rel=1e-12)
    assert neff.hutchpp(a, 60).value == pytest.approx(values.sum(), rel=0.05)
    estimate = neff.estimate_effective_dimension(a.numpy(), [0.1], "slq", k=4, num_samples=20, steps=20)
    truth = effective_dimension(values, 0.1)
    assert estimate.lower[0] <= truth <= estimate.upper[0]


def test_matrices_that_are_no_hessian_are_refused():
    with pytest.raises(NeffError, match="must be square"):
        neff.hutchinson(np.ones((3, 2)))
    with pytest.raises(NeffError, match="not symmetric"):
        neff.hutchinson(np.triu(np.ones((3, 3))))
    with pytest.raises(NeffError, match="is not an operator"):
        neff.hutchinson([[1.0]])


def trace_runs(matrix, estimator, budget):
    a, values = matrix
    runs = [estimator(a, budget, seed=seed) for seed in range(0, 600, 2)]
    return np.array([r.value for r in runs]), np.array([r.stderr for r in runs]), values.sum()


@pytest.mark.parametrize("estimator, budget", [(neff.hutchinson, 100), (neff.hutchpp, 12)])
def test_trace_estimators_are_unbiased(matrix, estimator, budget):
    """Over 300 seeds the mean estimate is within 3 standard errors of the true trace, and
    those are below 2% of it: a bias of 2% fails."""
    estimates, _, truth = trace_runs(matrix, estimator, budget)
    spread = estimates.std(ddof=1) / np.sqrt(len(estimates))
    assert abs(estimates.mean() - truth) < 3 * spread < 0.02 * truth


@pytest.mark.parametrize("estimator, budget", [(neff.hutchinson, 100), (neff.hutchpp, 12)])
def test_trace_standard_errors_match_the_spread_and_intervals_hold(matrix, estimator, budget):
    """Over 300 seeds the root mean square of the reported standard error equals the spread of
    the estimates (Hutch++'s is the one given its sketch: a sketch's own randomness left out
    would make it 30% too small), and the 95% intervals hold the trace 91-99% of the time."""
    a, values = matrix
    runs = [estimator(a, budget, seed=seed) for seed in range(0, 600, 2)]
    estimates, stderrs = np.array([r.value for r in runs]), np.array([r.stderr for r in runs])
    assert np.sqrt((stderrs**2).mean()) == pytest.approx(estimates.std(ddof=1), rel=0.2)
    covered = np.mean([lo <= values.sum() <= hi for lo, hi in (r.interval(0.95) for r in runs)])
    assert 0.91 <= covered <= 0.99


def test_slq_rules_reproduce_each_probes_moments_and_the_density_their_mean(matrix):
    """m Lanczos steps give a Gauss rule exact for polynomials up to degree 2m - 1: each probe's
    sum_j tau_j theta_j^p equals w^T A^p w for p <= 7 at m = 4; the density's moments are the
    mean of the probes' (so its first moment estimates the trace)."""
    from neff.quadrature import slq
    from neff.trace import rademacher
    a, values = matrix
    rule = slq(a, num_samples=6, steps=4, seed=3)
    probes = rademacher(40, 6, 3, a.device)
    for p in range(8):
        exact = (probes * (torch.linalg.matrix_power(a, p) @ probes)).sum(0).numpy()
        assert rule.samples(lambda x: x**p) == pytest.approx(exact, rel=1e-8, abs=1e-8), p
    grid = np.linspace(rule.nodes.min() - 2, rule.nodes.max() + 2, 20001)
    density = rule.density(grid, bandwidth=0.05)
    for p in (0, 1):
        moment = np.trapezoid(grid**p * density, grid)
        assert moment == pytest.approx(rule.samples(lambda x: x**p).mean(), rel=1e-3), p


def test_trace_estimates_state_their_defaults_names_and_products(matrix):
    """Defaults as documented (100 probes, seed 0; 99 products for Hutch++; a 95% interval),
    the method named in the result, products counted from the call (not from the operator's
    birth), and two probes the smallest sample with a standard error."""
    matrix = matrix[0]
    op = neff.linear.as_operator(matrix)
    op.matmat(torch.ones(op.num_params, 3, dtype=torch.float64))  # products before the call
    plain = neff.hutchinson(op)
    assert (plain.method, plain.num_samples, plain.n_hvp) == ("hutchinson", 100, 100)
    assert plain.value == neff.hutchinson(matrix, 100, seed=0).value != neff.hutchinson(matrix, 100, seed=1).value
    assert plain.interval() == plain.interval(0.95) != plain.interval(0.9)
    plus = neff.hutchpp(op)
    assert plus.method == "hutch++" and plus.n_hvp == 99 and plus.value == neff.hutchpp(matrix, 99, seed=0).value
    assert neff.hutchinson(matrix, 2).num_samples == 2 and neff.hutchpp(matrix, 6).n_hvp == 6  # sketch of 2
    with pytest.raises(neff.NeffError, match="at least 2"):
        neff.hutchinson(matrix, 1)
    from neff.trace import sampling_half_width
    assert sampling_half_width(1.0, 0.0, 10) == sampling_half_width(1.0, 0.0, 10, 0.95)
