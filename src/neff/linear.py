"""Any symmetric matrix as an operator for neff's eigensolvers and estimators.

Every estimator (``top_eigenpairs``, ``estimate_effective_dimension``, ``hutchinson``,
``hutchpp``, ``slq``, ``dense_check``) takes an operator with ``num_params``, ``dtype``,
``device``, a product ``matmat`` and a product counter ``n_hvp`` (a :class:`neff.HessianOperator`
is one), or a dense symmetric tensor or array, which :func:`as_operator` wraps.

>>> import torch
>>> op = as_operator(torch.diag(torch.tensor([3.0, 1.0, 0.0], dtype=torch.float64)))
>>> op.shape, op.matvec(torch.ones(3, dtype=torch.float64)).tolist(), op.n_hvp
((3, 3), [3.0, 1.0, 0.0], 1)
"""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from .errors import NeffError


def per_group(estimator):
    """Let ``estimator(operator, ...)`` also take a dict of operators (one per parameter group,
    ``CurvatureOperator.groups``) and return a dict of results. A keyword argument given as a
    dict with the same keys is passed group by group; a ``checkpoint`` path gets the group's
    name before its suffix (``run.pt`` -> ``run.attention.pt``)."""
    @functools.wraps(estimator)
    def estimate(operator, *args, **kwargs):
        if not isinstance(operator, Mapping):
            return estimator(operator, *args, **kwargs)
        results = {}
        for name, one in operator.items():
            own = {key: value[name] if isinstance(value, Mapping) and value.keys() == operator.keys() else value
                   for key, value in kwargs.items()}
            if own.get("checkpoint") is not None:
                path = Path(own["checkpoint"])
                own["checkpoint"] = path.with_name(f"{path.stem}.{name}{path.suffix}")
            results[name] = estimator(one, *args, **own)
        return results
    return estimate


class Products:
    """``matmat``, ``matvec``, ``@`` and a scipy view for an operator that defines
    ``_products(block)``: its products with the columns of an (n, b) tensor, on its device."""

    def matmat(self, V):
        """A V for V of shape (n, b); numpy in, numpy (float64) out; torch keeps dtype and device."""
        as_numpy = isinstance(V, np.ndarray)
        block = torch.as_tensor(V)
        if block.dim() != 2 or block.shape[0] != self.num_params:
            raise NeffError(f"expected a block of shape ({self.num_params}, b), got {tuple(block.shape)}")
        out = self._products(block)
        return out.detach().cpu().double().numpy() if as_numpy else out.to(block.device, block.dtype)

    def matvec(self, v):
        """A v for v of shape (n,)."""
        return self.matmat(v.reshape(-1, 1))[:, 0]

    def __matmul__(self, other):
        return self.matvec(other) if other.ndim == 1 else self.matmat(other)

    def to_scipy(self) -> LinearOperator:
        """A float64 ``scipy.sparse.linalg.LinearOperator`` view (for eigsh, cg, ...)."""
        return LinearOperator(self.shape, matvec=self.matvec, rmatvec=self.matvec,
                              matmat=self.matmat, rmatmat=self.matmat, dtype=np.float64)


class DenseOperator(Products):
    """A symmetric (n, n) matrix with the product interface of neff's curvature operators."""

    kind = "dense"

    def __init__(self, matrix: torch.Tensor):
        if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
            raise NeffError(f"a matrix operator must be square, got shape {tuple(matrix.shape)}; pass an (n, n) matrix")
        if not torch.allclose(matrix, matrix.T, rtol=1e-10, atol=1e-12 * float(matrix.abs().max())):
            raise NeffError("the matrix is not symmetric, so it is no Hessian; symmetrise it as (A + A.T) / 2")
        self.matrix = matrix
        self.dtype, self.device = matrix.dtype, matrix.device
        self.n_hvp = 0

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.matrix.shape)

    @property
    def num_params(self) -> int:
        return self.matrix.shape[0]

    def fingerprint(self) -> str:
        """A hash of the matrix (checkpoints of Krylov runs name their operator by it)."""
        data = self.matrix.detach().cpu().contiguous().numpy().tobytes()
        return hashlib.sha256(data).hexdigest()[:16]

    def _products(self, block: torch.Tensor) -> torch.Tensor:
        self.n_hvp += block.shape[1]
        return self.matrix @ block.to(self.device, self.dtype)

    def dense(self) -> torch.Tensor:
        return self.matrix


def as_operator(operator):
    """``operator`` itself when it has neff's product interface, else a dense symmetric
    tensor or array as a :class:`DenseOperator`."""
    if hasattr(operator, "matmat") and hasattr(operator, "num_params"):
        return operator
    if isinstance(operator, (np.ndarray, torch.Tensor)):
        return DenseOperator(torch.as_tensor(operator))
    raise NeffError(f"{type(operator).__name__} is not an operator; pass a neff operator (e.g. "
                    "HessianOperator) or a symmetric matrix")
