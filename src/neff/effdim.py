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
  complement of the top-k eigenvectors; its interval adds the sampling error, the quadrature
  error and the eigenvalues' residuals (:func:`slq_bounds`), and :func:`adaptive_slq` spends
  products until the quadrature has converged (and, with ``rtol``, the interval is narrow).
* ``"paper"``: the seed's estimator, for comparison only: m Ritz values of one Lanczos run,
  negative values and values equal to 1.0 dropped (gpytorch's lanczos_tridiag_to_diag turns
  negative Ritz values into 1.0). It ignores everything Lanczos did not resolve.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .eigen import EigenResult, ExtendableLanczos, start_vector, top_eigenpairs
from .errors import NeffError
from .linear import as_operator, per_group
from .hessian import CurvatureOperator
from .productlog import ProductLog
from .quadrature import ProbeRuns, Quadrature, slq
from .trace import sampling_half_width

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
    (``paper``). ``num_negative``: ``slq``'s estimate of the eigenvalues below ``-negative_tol``
    with its interval (``details``), the negative Ritz values ``paper`` drops, None for
    ``certified`` (its top k say nothing about the rest)."""

    z: np.ndarray
    value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    method: str
    n_hvp: int
    num_negative: float | None
    num_params: int
    details: dict = field(default_factory=dict)

    def record(self) -> dict:
        return {"z": self.z.tolist(), "value": self.value.tolist(), "lower": self.lower.tolist(),
                "upper": self.upper.tolist(), "method": self.method, "n_hvp": self.n_hvp,
                "num_negative": self.num_negative, "num_params": self.num_params, **self.details}

    def __str__(self) -> str:
        negative = ""
        if self.method == "slq":
            low, high = self.details["num_negative_interval"]
            negative = (f", eigenvalues below -{self.details['negative_tol']:.2g}: {self.num_negative:.1f} "
                        f"[{low:.1f}, {high:.1f}]")
        elif self.method == "paper":
            negative = f", negative Ritz values dropped: {self.num_negative:g}"
        interval = {"slq": f"{self.details.get('confidence', 0.95):.0%} interval: sampling + quadrature error",
                    "certified": "bounds", "paper": "no interval"}[self.method]
        lines = [f"N_eff by {self.method} ({self.n_hvp} products, {self.num_params} parameters{negative}; {interval})",
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
               negative: str = "clip") -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(value, lower, upper, parts) of N_eff: the converged top eigenvalues of ``eigen``
    exactly, plus the SLQ ``rule`` of the operator deflated by their eigenvectors.

    The half-width adds the two errors of the rule. Sampling: the wider of a Student-t
    ``confidence`` interval over the probes (their spread, noisy for a few probes) and a normal
    one from a variance bound (a Rademacher probe's w^T G w has variance at most 2 tr(G^2),
    which the same rules estimate stably from f^2). Quadrature: the mean change of the probes'
    estimates from the rule of their first half of steps to the whole rule (Gauss quadrature
    converges at least as fast as 1/m, so that change bounds the error left at m steps; it is
    zero for a probe whose run found an invariant subspace). Eigenvalues: each converged one is
    known to +-its residual, and f's change over that range is added.
    ``parts``: the ``sampling`` half-width and the ``quadrature_error`` per z, and the number
    of eigenvalues below ``-negative_tol`` (``eigen.tol`` times its norm estimate) as
    (estimate, lower, upper): the Gauss rules' count, its interval from the Gauss-Radau
    bounds of :meth:`~neff.quadrature.Quadrature.mass_below` plus the sampling half-width.
    """
    num_samples = rule.alpha.shape[0]
    if num_samples < 2:
        raise NeffError(f"{num_samples} SLQ probe gives no confidence interval; use at least 2")
    zs = as_z(z)
    keep = np.flatnonzero(eigen.converged)
    def spread(functions):
        """Per-probe estimates (probes, functions) and the sampling half-width of their mean."""
        samples = np.stack([rule.samples(f) for f in functions], axis=1)
        squares = np.stack([rule.samples(lambda x, f=f: f(x) ** 2) for f in functions], axis=1)
        root = np.sqrt(num_samples)
        return samples, sampling_half_width(samples.std(axis=0, ddof=1) / root,
                                            np.sqrt(2 * squares.mean(axis=0)) / root, num_samples, confidence)

    def saturation(zi):
        return lambda x: (lam := positive_part(x.ravel(), negative).reshape(x.shape)) / (lam + zi)

    def at(values):
        return _saturation(positive_part(values, negative), zs)

    functions = [saturation(zi) for zi in zs]
    samples, sampling = spread(functions)
    coarse = np.stack([rule.samples(f, coarse=True) for f in functions], axis=1)
    error = np.abs((samples - coarse).mean(axis=0))
    theta, r = eigen.eigenvalues[keep], eigen.residuals[keep]
    value = at(theta).sum(axis=1) + samples.mean(axis=0)
    # each converged eigenvalue is only known to +-its residual: f moves by at most this
    moved = np.maximum(np.abs(at(theta - r) - at(theta)), np.abs(at(theta + r) - at(theta))).sum(axis=1)
    threshold = eigen.tol * eigen.norm_estimate
    counts, count_sampling = spread([lambda x: (x < -threshold) * 1.0])
    low, high = rule.mass_below(-threshold)
    known = np.sum(theta < -threshold)
    num_negative = (float(known + counts.mean()), max(0.0, float(known + low.mean() - count_sampling[0])),
                    float(known + high.mean() + count_sampling[0]))
    return value, value - sampling - error - moved, value + sampling + error + moved, {
        "sampling": sampling, "quadrature_error": error, "negative_tol": threshold, "num_negative": num_negative}


def deflated_slq(operator: CurvatureOperator, eigen: EigenResult, num_samples: int = 10, steps: int = 20,
                 seed: int = 0, checkpoint: str | Path | None = None) -> Quadrature:
    """SLQ rules of ``operator`` deflated by the converged eigenvectors of ``eigen`` (the part
    :func:`slq_bounds` estimates); ``checkpoint`` as in :func:`neff.quadrature.slq`."""
    return slq(operator, num_samples, steps, seed=seed, basis=_deflation_basis(eigen), checkpoint=checkpoint)


def adaptive_slq(operator: CurvatureOperator, eigen: EigenResult, z, *, num_samples: int = 10,
                 steps: int = 20, rtol: float | None = None, max_hvp: int = 1000, confidence: float = 0.95,
                 negative: str = "clip", seed: int = 0, spent: int = 0) -> tuple[Quadrature, tuple]:
    """SLQ of ``operator`` deflated by the converged eigenvectors of ``eigen`` that spends
    products where the error is: while the quadrature error (:func:`slq_bounds`) exceeds half
    the sampling half-width at some z (and, with ``rtol``, a quarter of rtol x N_eff), every
    probe's run is doubled in length; then, while an interval is wider than +-``rtol`` x N_eff,
    the number of probes is doubled. At most ``max_hvp`` products (``spent`` of them already,
    on the top eigenpairs): past that it warns, naming what is left, and returns what it has.
    Returns the rule and :func:`slq_bounds` of it."""
    operator, zs = as_operator(operator), as_z(z)
    runs = ProbeRuns(operator, _deflation_basis(eigen), seed)
    probes, length, before = num_samples, steps, operator.n_hvp - spent
    room = max_hvp - spent
    if probes * length > room:  # a budget below the first plan: shorter runs, then fewer probes (2 x 2 at least)
        length = max(2, room // probes)
        probes = max(2, min(probes, room // length))
    while True:
        rule = runs.run(probes, length)
        bounds = slq_bounds(eigen, rule, zs, confidence, negative)
        value, lower, upper, parts = bounds
        allowed = 0.5 * parts["sampling"]
        if rtol is not None:
            allowed = np.maximum(allowed, 0.25 * rtol * np.abs(value))
        converged = bool(np.all(parts["quadrature_error"] <= allowed))
        accurate = rtol is None or bool(np.all(upper - lower <= 2 * rtol * np.abs(value)))
        if converged and accurate:
            return rule, bounds
        if operator.n_hvp - before + probes * length > max_hvp:
            left = ("the quadrature has not converged (its error is in the interval)" if not converged else
                    f"the widest interval is +-{np.max((upper - lower) / 2 / np.abs(value)):.1%}, not +-{rtol:.1%}")
            warnings.warn(f"the SLQ estimate stopped at max_hvp={max_hvp} products: {left}; raise max_hvp "
                          "to spend more", stacklevel=4)
            return rule, bounds
        probes, length = (probes, 2 * length) if not converged else (2 * probes, length)


def _deflation_basis(eigen: EigenResult) -> torch.Tensor:
    if eigen.eigenvectors is None:
        raise NeffError("the slq estimate deflates the top eigenvectors; compute them with "
                        "top_eigenpairs(..., return_eigenvectors=True)")
    return eigen.eigenvectors[:, np.flatnonzero(eigen.converged)]


@per_group
def estimate_effective_dimension(operator: CurvatureOperator, z, method: str = "slq", *,
                                 k: int | None = None, eigen: EigenResult | None = None,
                                 num_samples: int = 10, steps: int = 20, rtol: float | None = None,
                                 max_hvp: int = 1000, paper_steps: int = 100, confidence: float = 0.95,
                                 negative: str = "clip", tol: float = 1e-4, seed: int = 0) -> EffDimEstimate:
    """N_eff of ``operator`` at ``z`` (a number or a sweep) with an interval (for a dict of
    operators, ``CurvatureOperator.groups``, a dict of estimates).

    ``k``/``tol``: the top eigenpairs computed first (default k: 20, fewer for a model with
    fewer parameters; or pass ``eigen`` from ``top_eigenpairs``). ``slq``: ``num_samples``
    probes of ``steps`` Lanczos steps to start with, then more where the error is
    (:func:`adaptive_slq`): until the quadrature has converged and, with ``rtol``, every
    interval is within +-rtol x N_eff, or ``max_hvp`` products are spent (the top eigenpairs
    included). ``paper_steps``: Lanczos steps of the paper's estimator.
    """
    operator = as_operator(operator)
    if method not in ESTIMATORS:
        raise NeffError(f"method={method!r} is unknown; use one of {', '.join(ESTIMATORS)}")
    if rtol is not None and (method != "slq" or not 0 < rtol < 1):
        raise NeffError(f"rtol={rtol!r} applies to method='slq' and must lie in (0, 1), e.g. rtol=0.01")
    if not max_hvp >= 1:
        raise NeffError(f"max_hvp={max_hvp!r} must be a positive number of products, e.g. max_hvp=1000")
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
        k = min(20, operator.num_params - 1) if k is None else k
        eigen = top_eigenpairs(operator, k, tol=tol, seed=seed)
    spent = operator.n_hvp - before
    if method == "certified":
        value, lower, upper = certified_bounds(eigen, zs, negative)
        return EffDimEstimate(zs, value, lower, upper, method, spent, None, operator.num_params,
                              {"eigen": eigen.record()})
    if num_samples < 2:
        raise NeffError(f"num_samples={num_samples} must be at least 2 for a confidence interval")
    rule, (value, lower, upper, parts) = adaptive_slq(
        operator, eigen, zs, num_samples=num_samples, steps=steps, rtol=rtol, max_hvp=max_hvp,
        confidence=confidence, negative=negative, seed=seed + 1, spent=spent)
    below, *interval = parts["num_negative"]
    return EffDimEstimate(zs, value, lower, upper, method, operator.n_hvp - before, below, operator.num_params,
                          {"confidence": confidence, "deflated": int(eigen.converged.sum()),
                           "num_samples": len(rule.steps), "steps": int(rule.steps.max()),
                           "sampling": parts["sampling"].tolist(), "quadrature_error": parts["quadrature_error"].tolist(),
                           "negative_tol": parts["negative_tol"], "num_negative_interval": interval,
                           "eigen": eigen.record()})
