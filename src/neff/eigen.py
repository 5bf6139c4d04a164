"""Extreme eigenpairs of a curvature operator, each with a certificate.

Two solvers: Lanczos with full reorthogonalisation (the paper's method; Ritz values are taken
from the tridiagonal with ``torch.linalg.eigh``, so negative curvature keeps its sign), extended
step by step until the wanted Ritz pairs have converged; and ARPACK's implicitly restarted
Lanczos (``scipy.sparse.linalg.eigsh``).

Whichever solver ran, every returned pair is checked with a fresh product: the residual
r_i = ||H v_i - lambda_i v_i|| (v_i of unit norm) certifies that H has an eigenvalue in
[lambda_i - r_i, lambda_i + r_i]. A pair is ``converged`` when r_i <= tol * ||H||, with ||H||
estimated by the largest Ritz value in magnitude.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.linalg import eigvalsh_tridiagonal
from scipy.sparse.linalg import ArpackNoConvergence, eigsh

from .errors import NeffError
from .linear import as_operator, per_group
from .hessian import CurvatureOperator
from .productlog import ProductLog

METHODS = ("lanczos", "eigsh")
WHICH = ("largest", "smallest")


@dataclass
class EigenResult:
    """Eigenpairs with their certificates. Values are ordered from the ``which`` end inwards."""

    eigenvalues: np.ndarray
    residuals: np.ndarray
    converged: np.ndarray
    tol: float
    norm_estimate: float
    n_hvp: int
    wall_time: float
    method: str
    which: str
    num_params: int
    steps: int = 0
    ritz_values: np.ndarray = field(default_factory=lambda: np.empty(0))
    eigenvectors: torch.Tensor | None = None
    tridiagonal: np.ndarray = field(default_factory=lambda: np.empty((2, 0)))

    def ritz(self, m: int) -> np.ndarray:
        """The Ritz values (ascending) of the first ``m`` steps of the Lanczos run behind this
        result: the values a plain m-step Lanczos run from the same start would give."""
        if not 1 <= m <= self.tridiagonal.shape[1]:
            raise NeffError(f"this result holds {self.tridiagonal.shape[1]} Lanczos steps, not {m}; "
                            f"compute it with top_eigenpairs(..., min_steps={m}) (workflow: spectrum.paper_steps)")
        alpha, beta = self.tridiagonal[:, :m]
        return eigvalsh_tridiagonal(alpha, beta[:-1])

    @property
    def k(self) -> int:
        return len(self.eigenvalues)

    @property
    def all_converged(self) -> bool:
        return bool(self.converged.all())

    def record(self) -> dict:
        """Everything but the eigenvectors, as JSON-ready values."""
        return {"eigenvalues": self.eigenvalues.tolist(), "residuals": self.residuals.tolist(),
                "converged": self.converged.tolist(), "tol": self.tol,
                "norm_estimate": self.norm_estimate, "n_hvp": self.n_hvp,
                "wall_time": self.wall_time, "method": self.method, "which": self.which,
                "num_params": self.num_params, "steps": self.steps,
                "ritz_values": self.ritz_values.tolist(), "tridiagonal": self.tridiagonal.tolist()}

    def __str__(self) -> str:
        lines = [f"{self.method}: {self.converged.sum()}/{self.k} {self.which} eigenpairs converged "
                 f"(residual <= {self.tol:g} x |H| = {self.tol * self.norm_estimate:.3g}), "
                 f"{self.n_hvp} products, {self.wall_time:.2f} s",
                 f"{'i':>4} {'eigenvalue':>14} {'residual':>11}  converged"]
        for i, (value, res, ok) in enumerate(zip(self.eigenvalues, self.residuals, self.converged)):
            lines.append(f"{i:>4} {value:>14.6g} {res:>11.3g}  {'yes' if ok else 'NO'}")
        return "\n".join(lines)


def start_vector(n: int, seed: int, device, columns: int = 1) -> torch.Tensor:
    """The seeded Gaussian start block (drawn on the CPU so every device gets the same one)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, columns, generator=generator, dtype=torch.float64).to(device)


class ExtendableLanczos:
    """Single-vector Lanczos in float64 with full reorthogonalisation (classical Gram-Schmidt,
    twice), which can be extended by more steps at any time (the eigensolver and every SLQ
    probe). Written here rather than taken from ``linear_operator``, whose ``lanczos_tridiag``
    must start over to run longer, repeating every reorthogonalisation, and stops at an
    absolute breakdown threshold, which cuts short the runs of a Hessian with tiny eigenvalues;
    this one stops where the new vector is below 1e-10 of its product (an invariant subspace)."""

    def __init__(self, matvec, init: torch.Tensor, max_steps: int):
        self.matvec = matvec
        self.capacity = min(max_steps, init.shape[0]) + 1  # the basis never holds more rows
        self.basis = (init[:, 0] / init[:, 0].norm()).unsqueeze(0)  # rows q_0, q_1, ...; grows by doubling
        self.alpha: list[float] = []
        self.beta: list[float] = []
        self.exhausted = False

    @property
    def steps(self) -> int:
        return len(self.alpha)

    def extend(self, steps: int) -> None:
        """Run until ``steps`` steps are done or the Krylov space is exhausted (invariant)."""
        while self.steps < steps and not self.exhausted:
            j = self.steps
            if self.basis.shape[0] == j + 1:  # room for q_{j+1}
                grown = min(2 * (j + 1), self.capacity) - (j + 1)
                self.basis = torch.cat([self.basis, self.basis.new_zeros(max(grown, 1), self.basis.shape[1])])
            q, basis = self.basis[j], self.basis[:j + 1]
            w = self.matvec(q.unsqueeze(1))[:, 0]
            scale = float(w.norm())
            self.alpha.append(float(q @ w))
            for _ in range(2):
                w = w - basis.T @ (basis @ w)
            self.beta.append(float(w.norm()))
            self.exhausted = self.beta[-1] <= 1e-10 * scale or j + 1 == self.basis.shape[1]
            if not self.exhausted:
                self.basis[j + 1] = w / self.beta[-1]

    def tridiagonal(self, m: int) -> torch.Tensor:
        """T of the first m steps."""
        diagonal = torch.tensor(self.alpha[:m], dtype=torch.float64)
        off = torch.tensor(self.beta[:m - 1], dtype=torch.float64)
        return torch.diag(diagonal) + torch.diag(off, 1) + torch.diag(off, -1)


def _check_request(operator: CurvatureOperator, k: int, method: str, which: str, tol: float) -> None:
    n = operator.num_params
    if method not in METHODS:
        raise NeffError(f"method={method!r} is unknown; use 'lanczos' or 'eigsh'")
    if which not in WHICH:
        raise NeffError(f"which={which!r} is unknown; use 'largest' or 'smallest'")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise NeffError(f"k={k!r} must be a positive integer")
    if k >= n:
        raise NeffError(f"k={k} must be smaller than the number of parameters ({n}); for the whole "
                        "spectrum of a model this small use neff.dense_spectrum")
    if not tol > 0:
        raise NeffError(f"tol={tol!r} must be positive")


def _wanted(theta: torch.Tensor, k: int, which: str) -> torch.Tensor:
    order = torch.argsort(theta, descending=(which == "largest"))
    return order[:k]


def warm_start_vector(previous: EigenResult, seed: int, device, noise: float = 0.1) -> torch.Tensor:
    """A start vector for a nearby operator (the Hessian a few training steps later): the sum of
    ``previous``'s converged eigenvectors plus seeded Gaussian noise of ``noise`` times its norm,
    so the Krylov space still reaches directions the previous top k did not hold."""
    if previous.eigenvectors is None or not previous.converged.any():
        raise NeffError("warm_start needs converged eigenvectors; compute the previous result with "
                        "top_eigenpairs(..., return_eigenvectors=True)")
    vectors = previous.eigenvectors[:, np.flatnonzero(previous.converged)].to(device, torch.float64)
    if vectors.shape[0] != previous.num_params:
        raise NeffError("warm_start comes from an operator of another size")
    combined = vectors.sum(dim=1, keepdim=True)
    random = start_vector(vectors.shape[0], seed, device)
    return combined + noise * float(combined.norm()) * random / random.norm()


def _lanczos_pairs(operator, k, which, tol, max_steps, min_steps, seed, checkpoint, progress, warm_start):
    n = operator.num_params
    max_steps = min(n, max(max_steps or max(10 * k, 100), min_steps))
    # from a warm start the wanted pairs are nearly in the first k steps' Krylov space
    first = k + 2 if warm_start is not None else max(2 * k + 10, 20)
    steps = min(max_steps, max(first, min_steps))
    init = (start_vector(n, seed, operator.device) if warm_start is None else
            warm_start_vector(warm_start, seed, operator.device))
    log = ProductLog(operator, seed, checkpoint, progress=progress, total=steps)
    run = ExtendableLanczos(log, init, max_steps)
    try:
        while True:
            log.expect(steps)
            run.extend(steps)
            use = run.steps
            theta, s = torch.linalg.eigh(run.tridiagonal(use).to(init.device))
            beta = 0.0 if run.exhausted else run.beta[use - 1]
            estimates = abs(beta) * s[use - 1].abs()
            idx = _wanted(theta, k, which)
            norm = float(theta.abs().max())
            if run.exhausted or steps >= max_steps or bool((estimates[idx] <= tol * norm).all()):
                break
            # grow in small steps: each check is cheap, overshooting costs real products
            steps = min(max_steps, steps + max(2 if warm_start is not None else 5, steps // 16))
    finally:
        log.close()
    vectors = run.basis[:use].T @ s[:, idx]
    tridiagonal = np.array([run.alpha[:use], run.beta[:use]])
    return theta[idx].cpu().numpy(), vectors, theta.cpu().numpy(), tridiagonal, norm


def _eigsh_pairs(operator, k, which, tol, max_steps, seed):
    n = operator.num_params
    v0 = np.random.default_rng(seed).standard_normal(n)
    try:
        values, vectors = eigsh(operator.to_scipy(), k=k, which="LA" if which == "largest" else "SA",
                                tol=tol, v0=v0, maxiter=max_steps)
    except ArpackNoConvergence as err:
        values, vectors = err.eigenvalues, err.eigenvectors
    order = np.argsort(-values if which == "largest" else values)
    values, vectors = values[order], vectors[:, order]
    vectors = torch.from_numpy(np.ascontiguousarray(vectors)).to(operator.device)
    return values, vectors


def certify(operator: CurvatureOperator, values: np.ndarray, vectors: torch.Tensor) -> np.ndarray:
    """True residuals ||H v - lambda v|| of unit vectors v (columns), from fresh products."""
    if vectors.shape[1] == 0:
        return np.empty(0)
    vectors = vectors / vectors.norm(dim=0, keepdim=True)
    products = operator.matmat(vectors).to(torch.float64)
    lam = torch.as_tensor(values, dtype=torch.float64, device=vectors.device)
    return (products - vectors * lam).norm(dim=0).cpu().numpy()


@per_group
def top_eigenpairs(operator: CurvatureOperator, k: int, method: str = "lanczos", *,
                   which: str = "largest", tol: float = 1e-4, max_steps: int | None = None,
                   seed: int = 0, return_eigenvectors: bool = True, min_steps: int = 0,
                   checkpoint: str | Path | None = None, progress: bool | None = None,
                   warm_start: EigenResult | None = None) -> EigenResult:
    """The k largest (or most negative) eigenpairs of ``operator``, certified (for a dict of
    operators, ``CurvatureOperator.groups``, a dict of results).

    >>> import torch
    >>> top = top_eigenpairs(torch.diag(torch.arange(1.0, 11.0, dtype=torch.float64)), k=2, tol=1e-8)
    >>> top.eigenvalues.round(8).tolist(), bool(top.all_converged)
    ([10.0, 9.0], True)

    ``tol``: a pair is converged when its true residual is at most ``tol`` times the estimated
    spectral norm. ``max_steps``: Lanczos steps at most (default max(10 k, 100)) or ARPACK
    restarts. ``min_steps``: Lanczos runs at least this many steps (for :meth:`EigenResult.ritz`,
    e.g. the paper's 100 Ritz values from the same run). ``checkpoint``: a file where Lanczos keeps its products; a rerun with the same
    file resumes (or extends) the run and gives the same result as an uninterrupted one.
    ``progress``: a tqdm bar (default: shown on a terminal only). ``warm_start``: the result of
    an earlier run on a nearby operator (such as the previous epoch's Hessian), whose
    eigenvectors start this one (:func:`warm_start_vector`; ``lanczos`` only).
    """
    operator = as_operator(operator)
    _check_request(operator, k, method, which, tol)
    if warm_start is not None and method != "lanczos":
        raise NeffError(f"warm_start applies to method='lanczos', not {method!r}")
    start, hvp_before = time.perf_counter(), operator.n_hvp
    ritz, tridiagonal = np.empty(0), np.empty((2, 0))
    if method == "lanczos":
        values, vectors, ritz, tridiagonal, norm = _lanczos_pairs(operator, k, which, tol, max_steps, min_steps,
                                                                 seed, checkpoint, progress, warm_start)
    else:
        values, vectors = _eigsh_pairs(operator, k, which, tol, max_steps, seed)
        norm = float(np.abs(values).max()) if len(values) else 0.0
    if len(values) < k:
        warnings.warn(f"only {len(values)} of the {k} requested eigenpairs exist in the Krylov space "
                      "(the operator has fewer distinct eigenvalues visible from the start vector, e.g. "
                      "repeated ones); the result holds the pairs found", stacklevel=3)
    residuals = certify(operator, values, vectors)
    converged = residuals <= tol * norm
    return EigenResult(eigenvalues=np.asarray(values, dtype=np.float64), residuals=residuals,
                       converged=converged, tol=tol, norm_estimate=norm,
                       n_hvp=operator.n_hvp - hvp_before, wall_time=time.perf_counter() - start,
                       method=method, which=which, num_params=operator.num_params,
                       steps=tridiagonal.shape[1], ritz_values=np.asarray(ritz, dtype=np.float64),
                       eigenvectors=vectors if return_eigenvectors else None, tridiagonal=tridiagonal)


def dense_matrix(operator: CurvatureOperator, max_params: int) -> torch.Tensor:
    """The operator's (n, n) matrix in float64, symmetrised, formed without the product code
    (classic double backward, batch by batch); refused above ``max_params`` parameters."""
    operator = as_operator(operator)
    if operator.num_params > max_params:
        raise NeffError(f"the operator has {operator.num_params} parameters, too many for a dense "
                        f"eigendecomposition (max_params={max_params}); shrink the model, raise "
                        "max_params or use top_eigenpairs")
    dense = operator.dense().double()
    return (dense + dense.T) / 2


def dense_spectrum(operator: CurvatureOperator, max_params: int = 5000) -> np.ndarray:
    """All eigenvalues (ascending) of the operator's dense matrix."""
    return torch.linalg.eigvalsh(dense_matrix(operator, max_params)).cpu().numpy()


def exact_eigenpairs(operator: CurvatureOperator, max_params: int = 10000) -> EigenResult:
    """Every eigenpair of the operator's dense matrix (largest first), for small models; the
    residuals ||H v - lambda v|| are measured on the same dense matrix."""
    operator = as_operator(operator)
    start, hvp_before = time.perf_counter(), operator.n_hvp
    dense = dense_matrix(operator, max_params)
    values, vectors = torch.linalg.eigh(dense)
    values, vectors = values.flip(0), vectors.flip(1)
    residuals = (dense @ vectors - vectors * values).norm(dim=0).cpu().numpy()
    norm = float(values.abs().max())
    return EigenResult(eigenvalues=values.cpu().numpy(), residuals=residuals,
                       converged=residuals <= 1e-8 * max(norm, 1e-300), tol=1e-8, norm_estimate=norm,
                       n_hvp=operator.n_hvp - hvp_before, wall_time=time.perf_counter() - start,
                       method="dense", which="largest", num_params=operator.num_params,
                       steps=operator.num_params, ritz_values=values.cpu().numpy(), eigenvectors=vectors)
