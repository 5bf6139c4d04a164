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
