"""Files, the bottom layer: atomic writes, provenance records and job logs (no neff imports)."""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
import time
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path


def version() -> str:
    """neff's installed version."""
    try:
        return importlib.metadata.version("neff")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


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


def read_json(path: str | Path) -> dict:
    """The record of a JSON file (as :func:`write_json` writes them)."""
    return json.loads(Path(path).read_text())


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
    import numpy
    import scipy
    import torch
    record = {"neff": version(), "torch": torch.__version__, "numpy": numpy.__version__,
              "scipy": scipy.__version__, "python": platform.python_version(),
              "git_commit": _git_commit(), "host": socket.gethostname(),
              "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
              "time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(sys.argv)}
    record.update(extra)
    return record


@contextmanager
def log_to(path: str | Path, mode: str = "w"):
    """Send the block's standard output and error (so its messages, progress and warnings) to
    the log file ``path``, between a line saying when it started and one saying how long it
    took; an exception's traceback is written there too before it propagates."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(path, mode, buffering=1) as log, warnings.catch_warnings():
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: log.write(
            warnings.formatwarning(message, category, filename, lineno, line))
        streams = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = log
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        print(f"# started {now} (neff {version()}, {' '.join(sys.argv)})")
        try:
            yield log
        except BaseException:
            traceback.print_exc(file=log)
            print(f"# failed after {time.perf_counter() - start:.1f} s")
            raise
        finally:
            sys.stdout, sys.stderr = streams
        print(f"# finished in {time.perf_counter() - start:.1f} s", file=log)
