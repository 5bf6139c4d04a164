"""Effective dimensionality N_eff(H, z) = sum_i lambda_i / (lambda_i + z), and its estimators.

Negative eigenvalues (saddle directions, common away from a minimum) have a stated policy:
``"clip"`` (default) counts them in the report and adds 0 for each; ``"abs"`` uses |lambda|;
``"raise"`` refuses. They are never dropped silently.

Estimators (``estimate_effective_dimension``), side by side:

* ``"certified"``: the top-k eigenvalues plus a bound on the rest. The Ritz values are
  Rayleigh-Ritz values, so by interlacing theta_i <= lambda_i (the i-th largest eigenvalue):
  the sum over the top k is a rigorous lower bound. Each residual r_i puts an eigenvalue in
  [theta_i - r_i, theta_i + r_i]; provided the solver missed no eigenvalue above theta_k
  (single-vector Lanczos finds one copy of a repeated eigenvalue, so a multiplicity can be
  missed), the n - k others are at most theta_k + r_k and add at most (n - k) f(theta_k + r_k).
  Tight when z is far above the bulk, honest (and wide) when it is not.
* ``"slq"``: the top-k part exactly, plus stochastic Lanczos quadrature of tr f(PHP) on the
  complement of the top-k eigenvectors, with a Student-t confidence interval over probes.
* ``"paper"``: the seed's estimator, for comparison only: m Ritz values of one Lanczos run,
  negative values and values equal to 1.0 dropped (gpytorch's lanczos_tridiag_to_diag turns
  negative Ritz values into 1.0). It ignores everything Lanczos did not resolve.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from .eigen import EigenResult, ExtendableLanczos, start_vector, top_eigenpairs
from .errors import NeffError
from .linear import as_operator
from .hessian import CurvatureOperator
from .productlog import ProductLog
from .quadrature import Quadrature, slq

NEGATIVE = ("clip", "abs", "raise")
ESTIMATORS = ("slq", "certified", "paper")


def as_z(z) -> np.ndarray:
    """``z`` as a 1-D float array, checked positive and finite."""
    values = np.atleast_1d(np.asarray(z, dtype=np.float64))
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise NeffError(f"z must be a positive number or a list of them (got {z!r}); N_eff is "
                        "defined for z > 0, e.g. z=1")
    return values


def positive_part(eigenvalues, negative: str = "clip") -> np.ndarray:
    """Eigenvalues as they enter N_eff under the negative-eigenvalue policy."""
    if negative not in NEGATIVE:
        raise NeffError(f"negative={negative!r} is unknown; use 'clip', 'abs' or 'raise'")
    lam = np.asarray(eigenvalues, dtype=np.float64).ravel()
    if not np.all(np.isfinite(lam)):
        raise NeffError("eigenvalues contain NaN or inf; recompute them from a finite loss")
    if negative == "raise" and np.any(lam < 0):
        raise NeffError(f"{int(np.sum(lam < 0))} eigenvalues are negative; pass negative='clip' "
                        "(count them, add 0) or 'abs' to accept them")
    return np.abs(lam) if negative == "abs" else np.clip(lam, 0, None)


def _saturation(lam: np.ndarray, z: np.ndarray) -> np.ndarray:
    """f(lambda) = lambda / (lambda + z) for every z (rows) and lambda >= 0 (columns)."""
    return lam[None, :] / (lam[None, :] + z[:, None])


def effective_dimension(eigenvalues, z, negative: str = "clip"):
    """N_eff = sum_i lambda_i / (lambda_i + z) for one z (a float) or many (an array).

    >>> effective_dimension([3, 1, 0], 1.0)
    1.25
    >>> effective_dimension([3, 1, -2], [1.0, 3.0]).tolist()   # a negative eigenvalue adds 0
    [1.25, 0.75]
    """
    zs = as_z(z)
    value = _saturation(positive_part(eigenvalues, negative), zs).sum(axis=1)
    return float(value[0]) if np.ndim(z) == 0 else value


def paper_effective_dimension(ritz_values, z):
    """The seed's estimator: Ritz values <= 0 or exactly 1.0 are dropped before summing."""
    ritz = np.asarray(ritz_values, dtype=np.float64)
    return effective_dimension(ritz[(ritz > 0) & (ritz != 1.0)], z)


@dataclass
class EffDimEstimate:
    """N_eff at each z with an interval: [lower, upper] is a bound (``certified``, see the
    module docstring) or a confidence interval (``slq``); NaN where the method states none
    (``paper``). ``num_negative`` is a count (``certified``, ``paper``) or an SLQ estimate."""

    z: np.ndarray
    value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    method: str
    n_hvp: int
    num_negative: float
    num_params: int
    details: dict = field(default_factory=dict)

    def record(self) -> dict:
        return {"z": self.z.tolist(), "value": self.value.tolist(), "lower": self.lower.tolist(),
                "upper": self.upper.tolist(), "method": self.method, "n_hvp": self.n_hvp,
                "num_negative": self.num_negative, "num_params": self.num_params, **self.details}

    def __str__(self) -> str:
        lines = [f"N_eff by {self.method} ({self.n_hvp} products, {self.num_params} parameters, "
                 f"negative eigenvalues: {self.num_negative:g})",
                 f"{'z':>10} {'N_eff':>12} {'lower':>12} {'upper':>12}"]
        for row in zip(self.z, self.value, self.lower, self.upper):
            lines.append(f"{row[0]:>10.4g} {row[1]:>12.5g} {row[2]:>12.5g} {row[3]:>12.5g}")
        return "\n".join(lines)


def certified_bounds(eigen: EigenResult, z, negative: str = "clip") -> tuple[np.ndarray, ...]:
    """(value, lower, upper) of N_eff from certified top eigenpairs (module docstring)."""
    if eigen.which != "largest":
        raise NeffError("the certified estimate needs the largest eigenpairs; use which='largest'")
    if negative == "abs":
        raise NeffError("the certified tail bound holds for negative='clip' only; the unresolved "
                        "negative eigenvalues have no bound here")
    zs = as_z(z)
    theta, r = eigen.eigenvalues, eigen.residuals
    value = _saturation(positive_part(theta, negative), zs).sum(axis=1)
    top = positive_part(theta + r, "clip")
    tail = (eigen.num_params - eigen.k) * _saturation(top[-1:], zs)[:, 0]
    return value, value.copy(), _saturation(top, zs).sum(axis=1) + tail


def paper_ritz_values(operator: CurvatureOperator, steps: int = 100, seed: int = 0) -> np.ndarray:
    """The m Ritz values of one plain Lanczos run from a seeded random start, as the seed used
    (the same run as ``top_eigenpairs(..., seed=seed)``: equal to its ``ritz(steps)``)."""
    operator = as_operator(operator)
    n = operator.num_params
    log = ProductLog(operator, seed, total=steps)
    try:
        run = ExtendableLanczos(log, start_vector(n, seed, operator.device), steps)
        run.extend(steps)
    finally:
        log.close()
    return np.linalg.eigvalsh(run.tridiagonal(run.steps).numpy())


def slq_bounds(eigen: EigenResult, rule: Quadrature, z, confidence: float = 0.95,
               negative: str = "clip") -> tuple[np.ndarray, ...]:
    """(value, lower, upper, num_negative) of N_eff: the converged top eigenvalues of ``eigen``
    exactly, plus the SLQ ``rule`` of the operator deflated by their eigenvectors (one Gauss rule
    per probe), with a Student-t ``confidence`` interval over the probes; ``num_negative``
    counts the negative top eigenvalues and estimates the deflated part's."""
    num_samples = rule.nodes.shape[0]
    if num_samples < 2:
        raise NeffError(f"{num_samples} SLQ probe gives no confidence interval; use at least 2")
    zs = as_z(z)
    keep = np.flatnonzero(eigen.converged)
    exact = positive_part(eigen.eigenvalues[keep], negative)
    nodes = _saturation(positive_part(rule.nodes, negative), zs).reshape(len(zs), *rule.nodes.shape)
    samples = (rule.weights[None] * nodes).sum(axis=-1)  # (z, probes)
    half = stats.t.ppf(0.5 + confidence / 2, num_samples - 1) * samples.std(axis=1, ddof=1) / np.sqrt(num_samples)
    value = _saturation(exact, zs).sum(axis=1) + samples.mean(axis=1)
    num_negative = float(np.sum(eigen.eigenvalues[keep] < 0) + rule.samples(lambda x: (x < 0) * 1.0).mean())
    return value, value - half, value + half, num_negative


def deflated_slq(operator: CurvatureOperator, eigen: EigenResult, num_samples: int = 10, steps: int = 20,
                 seed: int = 0, checkpoint: str | Path | None = None) -> Quadrature:
    """SLQ rules of ``operator`` deflated by the converged eigenvectors of ``eigen`` (the part
    :func:`slq_bounds` estimates); ``checkpoint`` as in :func:`neff.quadrature.slq`."""
    if eigen.eigenvectors is None:
        raise NeffError("the slq estimate deflates the top eigenvectors; compute them with "
                        "top_eigenpairs(..., return_eigenvectors=True)")
    basis = eigen.eigenvectors[:, np.flatnonzero(eigen.converged)]
    return slq(operator, num_samples, steps, seed=seed, basis=basis, checkpoint=checkpoint)


def estimate_effective_dimension(operator: CurvatureOperator, z, method: str = "slq", *,
                                 k: int = 20, eigen: EigenResult | None = None,
                                 num_samples: int = 10, steps: int = 20, paper_steps: int = 100,
                                 confidence: float = 0.95, negative: str = "clip",
                                 tol: float = 1e-4, seed: int = 0) -> EffDimEstimate:
    """N_eff of ``operator`` at ``z`` (a number or a sweep) with an interval.

    ``k``/``tol``: the top eigenpairs computed first (or pass ``eigen`` from
    ``top_eigenpairs``); ``num_samples``/``steps``: SLQ probes and Lanczos steps per probe;
    ``paper_steps``: Lanczos steps of the paper's estimator.
    """
    operator = as_operator(operator)
    if method not in ESTIMATORS:
        raise NeffError(f"method={method!r} is unknown; use one of {', '.join(ESTIMATORS)}")
    zs = as_z(z)
    positive_part(np.empty(0), negative)
    before = operator.n_hvp
    if method == "paper":
        ritz = paper_ritz_values(operator, paper_steps, seed)
        value = paper_effective_dimension(ritz, zs)
        nan = np.full_like(value, np.nan)
        return EffDimEstimate(zs, value, nan, nan, method, operator.n_hvp - before,
                              float(np.sum(ritz < 0)), operator.num_params,
                              {"ritz_values": ritz.tolist()})
    if eigen is None:
        eigen = top_eigenpairs(operator, k, tol=tol, seed=seed)
        spent = eigen.n_hvp
    else:
        spent = 0
    if method == "certified":
        value, lower, upper = certified_bounds(eigen, zs, negative)
        return EffDimEstimate(zs, value, lower, upper, method, spent, float(np.sum(eigen.eigenvalues < 0)),
                              operator.num_params, {"eigen": eigen.record()})
    if num_samples < 2:
        raise NeffError(f"num_samples={num_samples} must be at least 2 for a confidence interval")
    rule = deflated_slq(operator, eigen, num_samples, steps, seed=seed + 1)
    value, lower, upper, num_negative = slq_bounds(eigen, rule, zs, confidence, negative)
    return EffDimEstimate(zs, value, lower, upper, method, spent + operator.n_hvp - before,
                          num_negative, operator.num_params,
                          {"confidence": confidence, "deflated": int(eigen.converged.sum()),
                           "num_samples": num_samples, "steps": steps, "eigen": eigen.record()})
