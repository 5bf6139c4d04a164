"""Stochastic Lanczos quadrature (SLQ): the spectral measure of an operator seen from random
probes, for traces of matrix functions and for the spectral density.

For a probe w, m Lanczos steps started at w give a Gauss quadrature rule (nodes theta_j,
weights tau_j) with w^T f(H) w ~ sum_j tau_j f(theta_j). With Rademacher probes,
E[w^T f(H) w] = tr f(H), so the mean over probes estimates the trace and their spread gives
a confidence interval. Each probe's rule is kept as its Lanczos tridiagonal, so the rule of
the first half of its steps (the ``coarse`` rule) is at hand: how far the two differ measures
how far the quadrature is from converged (:func:`neff.effdim.slq_bounds`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from .eigen import ExtendableLanczos
from .errors import NeffError
from .linear import as_operator
from .hessian import CurvatureOperator
from .productlog import load_checkpoint, save_checkpoint
from .trace import rademacher

FORMAT = "neff-slq-probes/2"


@dataclass
class Quadrature:
    """One Gauss rule per probe, as its Lanczos tridiagonal: ``alpha`` and ``beta`` of shape
    (probes, m) (``beta[i, j]`` couples steps j and j + 1), the squared probe ``norms`` and the
    ``steps`` each probe ran (<= m; the rest of its row is padding)."""

    alpha: np.ndarray
    beta: np.ndarray
    norms: np.ndarray
    steps: np.ndarray

    def rules(self, coarse: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(nodes, weights), each (probes, m), of every probe's rule, or with ``coarse`` of the
        rule of its first half of steps (of all its steps where its run found an invariant
        subspace: that rule is exact); padding nodes get weight 0."""
        width = self.alpha.shape[1]
        nodes, weights = np.zeros((len(self.steps), width)), np.zeros((len(self.steps), width))
        for i, m in enumerate(self.steps):
            if coarse and not self.exact(i):
                m = max(1, int(m) // 2)
            theta, weight = self._gauss(i, m)
            nodes[i] = np.pad(theta, (0, width - m), mode="edge")
            weights[i, :m] = weight
        return nodes, weights

    def exact(self, i: int) -> bool:
        """Whether probe i's run ended on an invariant subspace (then its rule is exact)."""
        m = int(self.steps[i])
        return bool(self.beta[i, m - 1] <= 1e-10 * np.abs(self.alpha[i, :m]).max(initial=0))

    def _gauss(self, i: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        """Nodes and weights of the rule of probe i's first m steps."""
        theta, s = eigh_tridiagonal(self.alpha[i, :m], self.beta[i, :m - 1])
        return theta, self.norms[i] * s[0] ** 2

    def mass_below(self, x: float) -> tuple[np.ndarray, np.ndarray]:
        """Per probe, bounds on its spectral mass below ``x`` (for a probe w, the sum of
        (w . v_i)^2 over eigenvalues lambda_i < x). The Gauss-Radau rule with a node prescribed
        at x (one more step whose diagonal entry puts x among the nodes) satisfies the
        Chebyshev-Markov-Stieltjes inequalities there: the mass lies between the weight of its
        nodes below x and that plus the weight of its node at x. An exact rule gives it exactly."""
        low, high = np.zeros(len(self.steps)), np.zeros(len(self.steps))
        for i, m in enumerate(self.steps):
            m = int(m)
            if self.exact(i):
                theta, weight = self._gauss(i, m)
                low[i] = high[i] = weight[theta < x].sum()
                continue
            alpha, beta = self.alpha[i, :m], self.beta[i, :m]
            shifted = np.diag(alpha - x) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1)
            delta = np.linalg.solve(shifted, np.eye(m)[-1] * beta[-1] ** 2)  # Golub's Radau entry
            theta, s = eigh_tridiagonal(np.append(alpha, x + delta[-1]), beta)
            weight = self.norms[i] * s[0] ** 2
            at = np.argmin(np.abs(theta - x))
            low[i] = weight[theta < x].sum() - (weight[at] if theta[at] < x else 0.0)
            high[i] = low[i] + weight[at]
        return low, high

    @cached_property
    def _rules(self) -> tuple[np.ndarray, np.ndarray]:
        return self.rules()

    @cached_property
    def _coarse_rules(self) -> tuple[np.ndarray, np.ndarray]:
        return self.rules(coarse=True)

    @property
    def nodes(self) -> np.ndarray:
        return self._rules[0]

    @property
    def weights(self) -> np.ndarray:
        return self._rules[1]

    def samples(self, f: Callable[[np.ndarray], np.ndarray], coarse: bool = False) -> np.ndarray:
        """Per-probe estimates of tr f(H) (``coarse``: from the half-length rules)."""
        nodes, weights = self._coarse_rules if coarse else self._rules
        return (weights * f(nodes)).sum(axis=-1)

    def density(self, grid: np.ndarray, bandwidth: float | None = None) -> np.ndarray:
        """The spectral density on ``grid``, smoothed with a Gaussian kernel; it integrates to
        the dimension (the number of eigenvalues). Default bandwidth: 1% of the node range."""
        grid = np.asarray(grid, dtype=np.float64)
        if bandwidth is None:
            bandwidth = 0.01 * max(np.ptp(self.nodes), 1e-12)
        diff = (grid[:, None] - self.nodes.ravel()[None, :]) / bandwidth
        kernel = np.exp(-0.5 * diff**2) / (bandwidth * np.sqrt(2 * np.pi))
        return kernel @ self.weights.ravel() / self.nodes.shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that make this rule (for saving; :meth:`from_arrays` reads them)."""
        return {"alpha": self.alpha, "beta": self.beta, "norms": self.norms, "steps": self.steps}

    @classmethod
    def from_arrays(cls, arrays: dict) -> Quadrature:
        return cls(*(np.asarray(arrays[key]) for key in ("alpha", "beta", "norms", "steps")))


def deflated(operator: CurvatureOperator, basis: torch.Tensor | None) -> Callable:
    """X -> P C P X with P = I - B B^T projecting out the orthonormal columns of ``basis``."""
    if basis is None or basis.shape[1] == 0:
        return operator.matmat

    def closure(block: torch.Tensor) -> torch.Tensor:
        block = block - basis @ (basis.T @ block)
        product = operator.matmat(block)
        return product - basis @ (basis.T @ product)
    return closure


def projected_probes(operator: CurvatureOperator, count: int, seed: int, basis: torch.Tensor | None) -> torch.Tensor:
    """The first ``count`` Rademacher probes of ``seed`` (the same first columns for any count),
    with the columns of ``basis`` projected out."""
    probes = rademacher(operator.num_params, count, seed, operator.device)
    if basis is not None and basis.shape[1]:
        probes = probes - basis @ (basis.T @ probes)
    return probes


def stacked(runs: list[tuple[list, list, float]]) -> Quadrature:
    """One rule from single-probe Lanczos runs (alpha, beta, squared probe norm) of any lengths
    (a run stops early on a small invariant subspace): shorter ones are padded."""
    width = max(len(alpha) for alpha, _, _ in runs)
    alpha = np.array([np.pad(a, (0, width - len(a)), mode="edge") for a, _, _ in runs])
    beta = np.array([np.pad(b[:width], (0, width - len(b[:width]))) for _, b, _ in runs])
    return Quadrature(alpha, beta, np.array([norm for _, _, norm in runs]),
                      np.array([len(a) for a, _, _ in runs]))


class ProbeRuns:
    """Lanczos runs from Rademacher probes of ``operator`` deflated by the orthonormal columns
    of ``basis``, one run per probe, that can be given more probes and more steps at any time;
    each product is one step of one probe (the adaptive estimate of
    :func:`neff.effdim.estimate_effective_dimension` spends them where its error is)."""

    def __init__(self, operator: CurvatureOperator, basis: torch.Tensor | None = None, seed: int = 0):
        self.operator, self.basis, self.seed = as_operator(operator), basis, seed
        self.closure = deflated(self.operator, basis)
        self.runs: list[tuple[ExtendableLanczos, float]] = []

    def run(self, probes: int, steps: int) -> Quadrature:
        """The rules of ``probes`` probes of ``steps`` steps each (earlier runs are extended,
        never repeated; a run on an invariant subspace stops early)."""
        if probes > len(self.runs):
            block = projected_probes(self.operator, probes, self.seed, self.basis)[:, len(self.runs):]
            self.runs += [(ExtendableLanczos(self.closure, column[:, None], self.operator.num_params),
                           float(column @ column)) for column in block.T]
        for run, _ in self.runs[:probes]:
            run.extend(steps)
        return stacked([(run.alpha, run.beta, norm) for run, norm in self.runs[:probes]])


def slq(operator: CurvatureOperator, num_samples: int = 10, steps: int = 30, *, seed: int = 0,
        basis: torch.Tensor | None = None, checkpoint: str | Path | None = None) -> Quadrature:
    """SLQ rules from Rademacher probes, optionally on the part of the operator orthogonal to
    the orthonormal columns of ``basis`` (deflation by known eigenvectors).

    Probes run one at a time. With ``checkpoint``, each finished probe's rule is saved to that
    file; a rerun with the same file resumes after the last saved probe (a file from another
    operator, seed, basis or size is refused)."""
    operator = as_operator(operator)
    if num_samples < 1 or steps < 1:
        raise NeffError(f"num_samples={num_samples} and steps={steps} must both be positive")
    path = Path(checkpoint) if checkpoint is not None else None
    # the header hashes the parameters and a pass over the data: only a checkpoint needs it
    header = None if path is None else {"format": FORMAT, "operator": operator.fingerprint(), "seed": seed,
                                        "steps": steps, "num_samples": num_samples, "basis": _checksum(basis)}
    done = load_checkpoint(path, header, "SLQ checkpoint", "operator, seed, steps, probes or deflation basis "
                           "differ")["runs"] if path is not None and path.exists() else []
    probes, closure = projected_probes(operator, num_samples, seed, basis), deflated(operator, basis)
    for column in range(len(done), num_samples):
        run = ExtendableLanczos(closure, probes[:, column:column + 1], steps)
        run.extend(steps)
        done.append((run.alpha, run.beta, float(probes[:, column] @ probes[:, column])))
        if path is not None:
            save_checkpoint(path, header, runs=done)
    return stacked(done)


def _checksum(basis: torch.Tensor | None) -> list:
    if basis is None:
        return []
    return [list(basis.shape), float(basis.double().sum()), float(basis.double().abs().sum())]


def spectral_density(operator: CurvatureOperator, num_samples: int = 10, steps: int = 80, *,
                     seed: int = 0) -> Quadrature:
    """SLQ estimate of the whole spectrum; call ``.density(grid)`` to draw it (the kink that
    separates the few large eigenvalues from the bulk is where the paper places z)."""
    return slq(operator, num_samples, steps, seed=seed)
