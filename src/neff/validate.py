"""Check neff against a dense eigendecomposition, for models small enough to form H.

Use it on a shrunken copy of your own model (fewer channels, a data subset) to see that the
spectrum and N_eff neff reports are what a dense eigensolver finds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .effdim import ESTIMATORS, as_z, effective_dimension, estimate_effective_dimension
from .eigen import EigenResult, dense_spectrum, top_eigenpairs
from .linear import as_operator
from .hessian import CurvatureOperator


@dataclass
class ValidationReport:
    dense: np.ndarray
    eigen: EigenResult
    certificates_hold: bool
    max_relative_error: float
    z: np.ndarray
    effdim_dense: np.ndarray
    estimates: dict

    requested: int = 0

    @property
    def misses(self) -> list[tuple[str, float]]:
        """(estimator, z) of every stated interval that does not hold the dense N_eff."""
        slack = 1e-9 * np.maximum(1.0, self.effdim_dense)
        return [(name, float(z)) for name, est in self.estimates.items()
                for z, lo, hi, dense, eps in zip(self.z, est.lower, est.upper, self.effdim_dense, slack)
                if not np.isnan(lo) and not lo - eps <= dense <= hi + eps]

    @property
    def ok(self) -> bool:
        """Certificates hold, all requested pairs came back, converged ones match the dense
        eigenvalues in order to 10 x tol, and every interval (the certified bound, the slq
        confidence interval) holds the dense N_eff."""
        return (self.certificates_hold and self.eigen.k == self.requested
                and self.max_relative_error <= 10 * self.eigen.tol and not self.misses)

    def __str__(self) -> str:
        misses = self.misses
        missed = "; ".join(f"{name} interval misses the dense N_eff at z = {z:g}" for name, z in misses)
        lines = [f"dense check of {len(self.dense)} parameters: {'OK' if self.ok else 'FAILED'}; certificates "
                 f"{'hold' if self.certificates_hold else 'VIOLATED'}; {self.eigen.k} of {self.requested} pairs; "
                 f"converged eigenvalues within {self.max_relative_error:.2e} (relative) of the dense ones"
                 + (f"; {missed}" if missed else "")]
        rows = [["z", "dense", *self.estimates]]
        for i, z in enumerate(self.z):
            cells = [f"{z:.4g}", f"{self.effdim_dense[i]:.4g}"]
            for name, est in self.estimates.items():
                lo, hi = est.lower[i], est.upper[i]
                inside = " OUT" if (name, float(z)) in misses else " in"
                cells.append(f"{est.value[i]:.4g}" + ("" if np.isnan(lo) else f" [{lo:.4g}, {hi:.4g}]{inside}"))
            rows.append(cells)
        widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
        lines += [" ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
        return "\n".join(lines)


def dense_check(operator: CurvatureOperator, eigen: EigenResult | None = None, *, k: int = 10,
             z=(0.1, 1.0), tol: float = 1e-4, max_params: int = 5000, seed: int = 0) -> ValidationReport:
    """Compare certified eigenpairs and every N_eff estimator with the dense answer."""
    operator = as_operator(operator)
    dense = dense_spectrum(operator, max_params)
    requested = eigen.k if eigen is not None else k
    eigen = eigen or top_eigenpairs(operator, k, tol=tol, seed=seed)
    order = dense[::-1] if eigen.which == "largest" else dense
    nearest = np.abs(eigen.eigenvalues[:, None] - dense[None, :]).min(axis=1)
    scale = max(np.abs(dense).max(), np.finfo(float).tiny)
    certificates_hold = bool(np.all(nearest <= eigen.residuals + 1e-7 * scale))
    ok = eigen.converged
    error = np.abs(eigen.eigenvalues[ok] - order[:eigen.k][ok]) / scale
    estimates = {m: estimate_effective_dimension(operator, z, m, eigen=eigen if m != "paper" else None,
                                                 seed=seed) for m in ESTIMATORS}
    zs = as_z(z)
    return ValidationReport(dense, eigen, certificates_hold, float(error.max(initial=0.0)), zs,
                            effective_dimension(dense, zs), estimates, requested)
