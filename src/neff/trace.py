"""Stochastic trace estimators of a curvature operator: Hutchinson and Hutch++.

Both return the estimate with its standard error, computed from the spread of the
per-probe values (Hutch++: of its stochastic part; the low-rank part is exact).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import NeffError
from .linear import as_operator
from .hessian import CurvatureOperator


@dataclass
class TraceEstimate:
    value: float
    stderr: float
    n_hvp: int
    method: str


def rademacher(n: int, columns: int, seed: int, device) -> torch.Tensor:
    """A seeded (n, columns) block of random signs, float64, the same on every device."""
    generator = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (n, columns), generator=generator, dtype=torch.float64) * 2 - 1
    return signs.to(device)


def _mean_and_stderr(samples: torch.Tensor) -> tuple[float, float]:
    samples = samples.double().cpu()
    return float(samples.mean()), float(samples.std() / np.sqrt(len(samples)))


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
    samples = (probes * operator.matmat(probes)).sum(0)
    value, stderr = _mean_and_stderr(samples)
    return TraceEstimate(value, stderr, operator.n_hvp - before, "hutchinson")


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
    samples = (probes * operator.matmat(probes)).sum(0)
    value, stderr = _mean_and_stderr(samples)
    return TraceEstimate(low_rank + value, stderr, operator.n_hvp - before, "hutch++")
