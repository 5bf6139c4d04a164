"""Stochastic Lanczos quadrature (SLQ): the spectral measure of an operator seen from random
probes, for traces of matrix functions and for the spectral density.

For a probe w, m Lanczos steps started at w give a Gauss quadrature rule (nodes theta_j,
weights tau_j) with w^T f(H) w ~ sum_j tau_j f(theta_j). With Rademacher probes,
E[w^T f(H) w] = tr f(H), so the mean over probes estimates the trace and their spread gives
a confidence interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .eigen import lanczos
from .errors import NeffError
from .linear import as_operator
from .hessian import CurvatureOperator
from .productlog import load_checkpoint, save_checkpoint
from .trace import rademacher

FORMAT = "neff-slq-probes/1"


@dataclass
class Quadrature:
    """One Gauss rule per probe: ``nodes`` and ``weights`` of shape (num_probes, steps)."""

    nodes: np.ndarray
    weights: np.ndarray

    def samples(self, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Per-probe estimates of tr f(H)."""
        return (self.weights * f(self.nodes)).sum(axis=1)

    def density(self, grid: np.ndarray, bandwidth: float | None = None) -> np.ndarray:
        """The spectral density on ``grid``, smoothed with a Gaussian kernel; it integrates to
        the dimension (the number of eigenvalues). Default bandwidth: 1% of the node range."""
        grid = np.asarray(grid, dtype=np.float64)
        if bandwidth is None:
            bandwidth = 0.01 * max(np.ptp(self.nodes), 1e-12)
        diff = (grid[:, None] - self.nodes.ravel()[None, :]) / bandwidth
        kernel = np.exp(-0.5 * diff**2) / (bandwidth * np.sqrt(2 * np.pi))
        return kernel @ self.weights.ravel() / self.nodes.shape[0]


def lanczos_quadrature(closure: Callable, probes: torch.Tensor, steps: int) -> Quadrature:
    """Gauss rules from ``steps`` Lanczos steps of ``closure`` (float64 (n, s) -> (n, s)) from
    each column of ``probes``, all columns in one block."""
    n, _ = probes.shape
    _, t = lanczos(closure, n, steps, probes)
    theta, s = torch.linalg.eigh(t)
    weights = s[:, 0, :] ** 2 * (probes**2).sum(0)[:, None]
    return Quadrature(theta.cpu().numpy(), weights.cpu().numpy())


def deflated(operator: CurvatureOperator, basis: torch.Tensor | None) -> Callable:
    """X -> P C P X with P = I - B B^T projecting out the orthonormal columns of ``basis``."""
    if basis is None or basis.shape[1] == 0:
        return operator.matmat

    def closure(block: torch.Tensor) -> torch.Tensor:
        block = block - basis @ (basis.T @ block)
        product = operator.matmat(block)
        return product - basis @ (basis.T @ product)
    return closure


def slq(operator: CurvatureOperator, num_samples: int = 10, steps: int = 30, *, seed: int = 0,
        basis: torch.Tensor | None = None, checkpoint: str | Path | None = None) -> Quadrature:
    """SLQ rules from Rademacher probes, optionally on the part of the operator orthogonal to
    the orthonormal columns of ``basis`` (deflation by known eigenvectors).

    Without ``checkpoint`` all probes run as one block. With it, probes run one at a time and
    each finished probe's rule is saved to that file; a rerun with the same file resumes after
    the last saved probe (a file from another operator, seed, basis or size is refused)."""
    operator = as_operator(operator)
    if num_samples < 1 or steps < 1:
        raise NeffError(f"num_samples={num_samples} and steps={steps} must both be positive")
    probes = rademacher(operator.num_params, num_samples, seed, operator.device)
    if basis is not None and basis.shape[1]:
        probes = probes - basis @ (basis.T @ probes)
    closure = deflated(operator, basis)
    if checkpoint is None:
        return lanczos_quadrature(closure, probes, steps)
    header = {"format": FORMAT, "operator": operator.fingerprint(), "seed": seed, "steps": steps,
              "num_samples": num_samples, "basis": _checksum(basis)}
    path = Path(checkpoint)
    state = load_checkpoint(path, header, "SLQ checkpoint", "operator, seed, steps, probes or deflation basis "
                            "differ") if path.exists() else {"nodes": [], "weights": []}
    rules = [Quadrature(n.numpy(), w.numpy()) for n, w in zip(state["nodes"], state["weights"])]
    for column in range(len(rules), num_samples):
        rules.append(lanczos_quadrature(closure, probes[:, column:column + 1], steps))
        save_checkpoint(path, header, nodes=[torch.from_numpy(r.nodes) for r in rules],
                        weights=[torch.from_numpy(r.weights) for r in rules])
    return stacked(rules)


def stacked(rules: list[Quadrature]) -> Quadrature:
    """Rules of single probes as one: Lanczos stops early on a small invariant subspace, so a
    shorter rule is padded with zero-weight copies of its last node."""
    width = max(rule.nodes.shape[1] for rule in rules)

    def pad(array, mode):
        return np.pad(array, ((0, 0), (0, width - array.shape[1])), mode=mode)
    return Quadrature(np.concatenate([pad(rule.nodes, "edge") for rule in rules]),
                      np.concatenate([pad(rule.weights, "constant") for rule in rules]))


def _checksum(basis: torch.Tensor | None) -> list:
    if basis is None:
        return []
    return [list(basis.shape), float(basis.double().sum()), float(basis.double().abs().sum())]


def spectral_density(operator: CurvatureOperator, num_samples: int = 10, steps: int = 80, *,
                     seed: int = 0) -> Quadrature:
    """SLQ estimate of the whole spectrum; call ``.density(grid)`` to draw it (the kink that
    separates the few large eigenvalues from the bulk is where the paper places z)."""
    return slq(operator, num_samples, steps, seed=seed)
