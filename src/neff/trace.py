"""Stochastic trace estimators of a curvature operator: Hutchinson and Hutch++.

Both return the estimate with its standard error, computed from the spread of the
per-probe values. Hutch++'s is the standard error given its sketch: the trace of the sketched
part is exact for any sketch, so the estimate is unbiased given the sketch, and the mean
square of that standard error over sketches is the estimate's variance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from .errors import NeffError
from .linear import as_operator
from .hessian import CurvatureOperator


@dataclass
class TraceEstimate:
    value: float
    stderr: float
    n_hvp: int
    method: str
    num_samples: int
    stderr_bound: float

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """:func:`sampling_half_width` around the value (the variance bound of a Rademacher
        probe's g^T B g, 2 ||B||_F^2, estimated by ||B g||^2)."""
        half = sampling_half_width(self.stderr, self.stderr_bound, self.num_samples, confidence)
        return self.value - half, self.value + half


def sampling_half_width(stderr, stderr_bound, num_samples: int, confidence: float = 0.95):
    """The wider of the Student-t ``confidence`` interval from the probes' spread (``stderr``,
    num_samples - 1 degrees of freedom; noisy for a few probes) and the normal one from a
    variance bound (``stderr_bound``, estimated stably from every probe)."""
    return np.maximum(stats.t.ppf(0.5 + confidence / 2, num_samples - 1) * stderr,
                      stats.norm.ppf(0.5 + confidence / 2) * stderr_bound)


def rademacher(n: int, columns: int, seed: int, device) -> torch.Tensor:
    """A seeded (n, columns) block of random signs, float64, the same on every device; its first
    columns are the same for any number of columns."""
    generator = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (columns, n), generator=generator, dtype=torch.float64) * 2 - 1
    return signs.T.contiguous().to(device)


def _estimate(probes: torch.Tensor, products: torch.Tensor, method: str, n_hvp: int,
              exact: float = 0.0) -> TraceEstimate:
    """``exact`` plus the mean of g^T (B g) over the probe columns, with both standard errors."""
    samples = (probes * products).sum(0).double().cpu()
    bound = np.sqrt(2 * float((products**2).sum(0).double().mean()) / len(samples))
    return TraceEstimate(exact + float(samples.mean()), float(samples.std() / np.sqrt(len(samples))),
                         n_hvp, method, len(samples), bound)


def hutchinson(operator: CurvatureOperator, num_samples: int = 100, *, seed: int = 0) -> TraceEstimate:
    """tr(C) ~ mean of g^T C g over Rademacher probes g (exact for a diagonal C, g_i^2 = 1).

    >>> import torch
    >>> hutchinson(torch.diag(torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64)), 10).value
    4.5
    """
    operator = as_operator(operator)
    if num_samples < 2:
        raise NeffError(f"num_samples={num_samples} must be at least 2 to give a standard error")
    before = operator.n_hvp
    probes = rademacher(operator.num_params, num_samples, seed, operator.device)
    products = operator.matmat(probes)
    return _estimate(probes, products, "hutchinson", operator.n_hvp - before)


def hutchpp(operator: CurvatureOperator, num_matvecs: int = 99, *, seed: int = 0) -> TraceEstimate:
    """Hutch++ (Meyer, Musco, Musco & Woodruff 2021): the trace of a randomised low-rank
    approximation exactly, plus Hutchinson on the deflated rest; a third of the products each
    for the sketch, the low-rank part and the probes."""
    operator = as_operator(operator)
    third = num_matvecs // 3
    if third < 2:
        raise NeffError(f"num_matvecs={num_matvecs} must be at least 6")
    before, n = operator.n_hvp, operator.num_params
    sketch = operator.matmat(rademacher(n, third, seed, operator.device))
    basis = torch.linalg.qr(sketch).Q
    low_rank = float((basis * operator.matmat(basis)).sum())
    probes = rademacher(n, third, seed + 1, operator.device)
    probes = probes - basis @ (basis.T @ probes)
    products = operator.matmat(probes)
    return _estimate(probes, products - basis @ (basis.T @ products), "hutch++", operator.n_hvp - before, low_rank)
