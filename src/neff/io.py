"""Files: atomic writes, provenance records, spectra as .npz, model checkpoints."""
from __future__ import annotations

import datetime
import json
import os
import pickle
import platform
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from typing import TYPE_CHECKING

from .errors import NeffError

if TYPE_CHECKING:  # io sits below eigen: productlog saves through atomic_path
    from .eigen import EigenResult


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, record: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")


def write_csv(path: str | Path, table) -> None:
    """Write a pandas DataFrame as CSV, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(**extra) -> dict:
    """Who computed a result, where and with what: versions, commit, device, time, command."""
    import neff
    import scipy
    record = {"neff": neff.__version__, "torch": torch.__version__, "numpy": np.__version__,
              "scipy": scipy.__version__, "python": platform.python_version(),
              "git_commit": _git_commit(), "host": socket.gethostname(),
              "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
              "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(sys.argv)}
    record.update(extra)
    return record


def save_spectrum(path: str | Path, eigen: "EigenResult", record: dict) -> None:
    """An .npz with ``pos_evals`` (the original tool's key: the positive eigenvalues) and the
    full result (all eigenvalues with signs, residuals, converged flags, Ritz values), the
    record embedded as JSON, and the same record beside it as ``<path>.json``."""
    path = Path(path)
    full = {**record, "eigen": eigen.record()}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, pos_evals=eigen.eigenvalues[eigen.eigenvalues > 0],
                     eigenvalues=eigen.eigenvalues, residuals=eigen.residuals,
                     converged=eigen.converged, ritz_values=eigen.ritz_values,
                     num_params=eigen.num_params, record=json.dumps(full, default=str))
    write_json(path.with_suffix(".json"), full)


def load_spectrum(path: str | Path) -> dict:
    """Eigenvalues from a neff .npz, or from the original tool's (``pos_evals`` only)."""
    path = Path(path)
    if not path.exists():
        raise NeffError(f"{path} does not exist; compute it with `neff spectrum ... --out {path}`")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as err:
        raise NeffError(f"{path} is not a readable .npz file ({err})") from None
    if "eigenvalues" in arrays:
        return {"eigenvalues": arrays["eigenvalues"], "residuals": arrays["residuals"],
                "converged": arrays["converged"], "num_params": int(arrays["num_params"]),
                "record": json.loads(str(arrays["record"]))}
    if "pos_evals" in arrays:
        return {"eigenvalues": np.sort(arrays["pos_evals"].ravel())[::-1], "residuals": None,
                "converged": None, "num_params": None, "record": {}}
    raise NeffError(f"{path} holds neither 'eigenvalues' nor 'pos_evals'; it is not a spectrum file")


def load_checkpoint(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load weights into ``model`` from a state dict file (also one under a 'model' or
    'state_dict' key), safely (``weights_only=True``), with one clear error if they do not fit."""
    path = Path(path)
    if not path.exists():
        raise NeffError(f"checkpoint {path} does not exist; check the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise NeffError(f"checkpoint {path} holds objects other than tensors and plain containers, so "
                        "it cannot be loaded safely (weights_only=True); save it with "
                        "torch.save(model.state_dict(), path)") from None
    except (OSError, RuntimeError, EOFError):
        raise NeffError(f"checkpoint {path} is not a readable torch file; check the path or save it "
                        "again with torch.save(model.state_dict(), path)") from None
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise NeffError(f"checkpoint {path} holds no state dict; save it with torch.save(model.state_dict(), path)")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshapen = sorted(k for k in set(expected) & set(state)
                       if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or misshapen:
        problems = [f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                    for label, keys in (("missing", missing), ("unexpected", unexpected),
                                        ("wrong shape", misshapen)) if keys]
        raise NeffError(f"checkpoint {path} does not fit the model ({'; '.join(problems)}); "
                        "build the model with the options it was trained with")
    model.load_state_dict(state)
    return model
