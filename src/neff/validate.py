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
    def certified_contains_dense(self) -> bool:
        est = self.estimates["certified"]
        slack = 1e-9 * np.maximum(1.0, self.effdim_dense)
        return bool(np.all((est.lower <= self.effdim_dense + slack) & (self.effdim_dense <= est.upper + slack)))

    @property
    def ok(self) -> bool:
        """Certificates hold, all requested pairs came back, converged ones match the dense
        eigenvalues in order to 10 x tol, and the certified N_eff bound holds."""
        return (self.certificates_hold and self.eigen.k == self.requested
                and self.max_relative_error <= 10 * self.eigen.tol and self.certified_contains_dense)

    def __str__(self) -> str:
        lines = [f"dense check of {len(self.dense)} parameters: {'OK' if self.ok else 'FAILED'}; certificates "
                 f"{'hold' if self.certificates_hold else 'VIOLATED'}; {self.eigen.k} of {self.requested} pairs; "
                 f"converged eigenvalues within {self.max_relative_error:.2e} (relative) of the dense ones",
                 f"{'z':>10} {'dense':>10} " + " ".join(f"{m:>24}" for m in self.estimates)]
        for i, z in enumerate(self.z):
            cells = []
            for est in self.estimates.values():
                lo, hi = est.lower[i], est.upper[i]
                inside = "" if np.isnan(lo) else (" in" if lo <= self.effdim_dense[i] <= hi else " OUT")
                cells.append(f"{est.value[i]:>12.4g} [{lo:.3g}, {hi:.3g}]{inside}"[-24:].rjust(24))
            lines.append(f"{z:>10.4g} {self.effdim_dense[i]:>10.4g} " + " ".join(cells))
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
