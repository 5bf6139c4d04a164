"""A model's spectrum: what the N_eff estimators need from one Hessian (:func:`compute_spectrum`),
and its file, an .npz with the original tool's ``pos_evals`` plus neff's full record."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .effdim import adaptive_slq, deflated_slq
from .eigen import EigenResult, exact_eigenpairs, top_eigenpairs
from .errors import NeffError
from .files import atomic_path
from .hessian import CurvatureOperator
from .quadrature import Quadrature


def compute_spectrum(operator: CurvatureOperator, method: str = "lanczos", k: int = 100, *, tol: float = 1e-3,
                     max_steps: int | None = None, seed: int = 0, probes: int = 10, probe_steps: int = 30,
                     paper_steps: int = 100, rtol: float | None = None, max_hvp: int = 1000, z=None,
                     checkpoint: str | Path | None = None,
                     progress: bool | None = None) -> tuple[EigenResult, Quadrature | None]:
    """Everything the estimators of :func:`neff.tables.neff_rows` need from one operator.

    ``method="dense"``: every eigenpair (small models; N_eff is then exact). Otherwise one
    solver run for the certified top ``k`` (Lanczos runs at least ``paper_steps`` steps, so the
    paper's Ritz values come from the same run), then ``probes`` SLQ probes of ``probe_steps``
    steps on the operator deflated by the converged top eigenvectors (none when ``probes`` is
    0). With ``rtol`` the probes are :func:`neff.effdim.adaptive_slq`'s instead: more steps and
    probes until N_eff at every ``z`` is known to +-rtol, or ``max_hvp`` products for them.
    ``checkpoint``: a path prefix; the Lanczos products go to ``<prefix>.products.pt`` and the
    finished probes to ``<prefix>.slq.pt`` (fixed probes only), so a killed run resumes where
    it stopped.
    """
    if method == "dense":
        return exact_eigenpairs(operator), None
    files = checkpoint_files(checkpoint) if checkpoint is not None else {"products": None, "slq": None}
    eigen = top_eigenpairs(operator, min(k, operator.num_params - 1), method, tol=tol, max_steps=max_steps,
                           seed=seed, min_steps=paper_steps if method == "lanczos" else 0,
                           checkpoint=files["products"], progress=progress)
    if probes == 0:
        return eigen, None
    if rtol is not None:
        return eigen, adaptive_slq(operator, eigen, z, num_samples=probes, steps=probe_steps, rtol=rtol,
                                   max_hvp=max_hvp, seed=seed + 1)[0]
    return eigen, deflated_slq(operator, eigen, probes, probe_steps, seed=seed + 1, checkpoint=files["slq"])


def checkpoint_files(prefix: str | Path) -> dict[str, Path]:
    """The files of :func:`compute_spectrum`'s ``checkpoint`` prefix: Lanczos products, SLQ probes."""
    return {name: Path(f"{prefix}.{name}.pt") for name in ("products", "slq")}


def save_spectrum(path: str | Path, eigen: EigenResult, record: dict, *, eigenvectors: bool = False,
                  quadrature: Quadrature | None = None) -> None:
    """Write ``path`` (.npz): ``pos_evals`` (the original tool's key: the positive eigenvalues),
    all eigenvalues with signs, residuals, converged flags, Ritz values, ``record`` with
    ``eigen.record()`` embedded as JSON, the SLQ ``quadrature`` (each probe's tridiagonal)
    when given, and with ``eigenvectors`` the (n, k) eigenvectors."""
    arrays = {}
    if quadrature is not None:
        arrays.update({f"slq_{key}": value for key, value in quadrature.arrays().items()})
    if eigenvectors:
        if eigen.eigenvectors is None:
            raise NeffError("the eigenpairs were computed without eigenvectors; compute them with "
                            "return_eigenvectors=True to save them")
        arrays["eigenvectors"] = eigen.eigenvectors.detach().cpu().double().numpy()
    full = {**record, "eigen": eigen.record()}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, pos_evals=eigen.eigenvalues[eigen.eigenvalues > 0], eigenvalues=eigen.eigenvalues,
                 residuals=eigen.residuals, converged=eigen.converged, ritz_values=eigen.ritz_values,
                 num_params=eigen.num_params, record=json.dumps(full, default=str), **arrays)


def load_spectrum(path: str | Path, *, eigenvectors: bool = False) -> dict:
    """Eigenvalues (and residuals, converged flags, record, the SLQ ``quadrature`` or None; with
    ``eigenvectors`` the eigenvectors as a float64 tensor) from a neff .npz, or from the
    original tool's (``pos_evals`` only)."""
    path = Path(path)
    if not path.exists():
        raise NeffError(f"{path} does not exist; compute it with `neff spectrum ... --out {path}`")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as err:
        raise NeffError(f"{path} is not a readable .npz file ({err})") from None
    if "slq_nodes" in arrays:
        raise NeffError(f"{path} holds SLQ rules without their Lanczos tridiagonals (saved by an earlier neff), "
                        "which the quadrature error needs; compute the spectrum again")
    if "eigenvalues" in arrays:
        spectrum = {"eigenvalues": arrays["eigenvalues"], "residuals": arrays["residuals"],
                    "converged": arrays["converged"], "num_params": int(arrays["num_params"]),
                    "record": json.loads(str(arrays["record"])),
                    "quadrature": Quadrature.from_arrays({key[4:]: value for key, value in arrays.items()
                                                          if key.startswith("slq_")}) if "slq_alpha" in arrays
                    else None}
    elif "pos_evals" in arrays:
        spectrum = {"eigenvalues": np.sort(arrays["pos_evals"].ravel())[::-1], "residuals": None,
                    "converged": None, "num_params": None, "record": {}, "quadrature": None}
    else:
        raise NeffError(f"{path} holds neither 'eigenvalues' nor 'pos_evals'; it is not a spectrum file")
    if eigenvectors:
        if "eigenvectors" not in arrays:
            raise NeffError(f"{path} was saved without eigenvectors; compute the spectrum again with "
                            "its eigenvectors kept")
        spectrum["eigenvectors"] = torch.from_numpy(arrays["eigenvectors"])
    return spectrum


def eigen_result(spectrum: dict) -> EigenResult:
    """The :class:`EigenResult` of a spectrum loaded from a neff .npz."""
    if spectrum["residuals"] is None:
        raise NeffError("this spectrum holds eigenvalues only (the original tool's format); its "
                        "certificates are unknown")
    stored = spectrum["record"]["eigen"]
    return EigenResult(spectrum["eigenvalues"], spectrum["residuals"], spectrum["converged"], stored["tol"],
                       stored["norm_estimate"], stored["n_hvp"], stored["wall_time"], stored["method"],
                       stored["which"], spectrum["num_params"], steps=stored.get("steps", 0),
                       ritz_values=np.asarray(stored.get("ritz_values", []), dtype=np.float64),
                       eigenvectors=spectrum.get("eigenvectors"),
                       tridiagonal=np.asarray(stored.get("tridiagonal", [[], []]), dtype=np.float64))
