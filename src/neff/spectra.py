"""Spectra as files: an .npz with the original tool's ``pos_evals`` plus neff's full record."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .eigen import EigenResult
from .errors import NeffError
from .files import atomic_path


def save_spectrum(path: str | Path, eigen: EigenResult, record: dict, *, eigenvectors: bool = False) -> None:
    """Write ``path`` (.npz): ``pos_evals`` (the original tool's key: the positive eigenvalues),
    all eigenvalues with signs, residuals, converged flags, Ritz values, ``record`` with
    ``eigen.record()`` embedded as JSON, and with ``eigenvectors`` the (n, k) eigenvectors."""
    arrays = {}
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
    """Eigenvalues (and residuals, converged flags, record; with ``eigenvectors`` the
    eigenvectors as a float64 tensor) from a neff .npz, or from the original tool's
    (``pos_evals`` only)."""
    path = Path(path)
    if not path.exists():
        raise NeffError(f"{path} does not exist; compute it with `neff spectrum ... --out {path}`")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as err:
        raise NeffError(f"{path} is not a readable .npz file ({err})") from None
    if "eigenvalues" in arrays:
        spectrum = {"eigenvalues": arrays["eigenvalues"], "residuals": arrays["residuals"],
                    "converged": arrays["converged"], "num_params": int(arrays["num_params"]),
                    "record": json.loads(str(arrays["record"]))}
    elif "pos_evals" in arrays:
        spectrum = {"eigenvalues": np.sort(arrays["pos_evals"].ravel())[::-1], "residuals": None,
                    "converged": None, "num_params": None, "record": {}}
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
                       eigenvectors=spectrum.get("eigenvectors"))
