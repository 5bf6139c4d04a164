"""N_eff during training: a record every few epochs, each Lanczos run warm-started from the last.

For a plain PyTorch loop::

    tracker = EffDimTracker(loss_fn, train_batches, z=[0.01, 0.1], every=5, csv="neff.csv")
    for epoch in range(1, epochs + 1):
        ...                               # one epoch of training
        tracker.step(model, epoch)        # measures on epochs 5, 10, ...

(``neff.train.train(..., on_epoch=lambda row: tracker.step(model, row["epoch"]))`` in neff's
own loop; ``neff.lightning.EffDimCallback`` in PyTorch Lightning.) Each measurement builds the
Hessian of the current weights in eval mode (the model itself is not changed), computes its
certified top ``k`` eigenpairs starting from the previous measurement's eigenvectors
(``warm_start``: the Hessian moves little between epochs, so far fewer products are needed,
BENCHMARKS.md) and estimates N_eff with its interval.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from .effdim import EffDimEstimate, as_z, estimate_effective_dimension
from .eigen import EigenResult, top_eigenpairs
from .errors import NeffError
from .files import atomic_path
from .hessian import HessianOperator

SCALARS = {"neff": "neff", "lower": "neff_lower", "upper": "neff_upper"}  # TensorBoard and Lightning names
COLUMNS = ["epoch", "z", "neff", "lower", "upper", "method", "products", "eigen_products", "converged", "k"]


class EffDimTracker:
    """N_eff of a model's training loss on ``data`` at ``z`` every ``every`` epochs.

    ``csv``: a file of rows (``COLUMNS``, one per epoch and z), rewritten after each
    measurement; rows of later epochs than a new measurement's (left by a run that was killed
    and resumed from an earlier checkpoint) are dropped. ``tensorboard``: a log directory for
    ``torch.utils.tensorboard`` (where installed), with scalars ``neff/z=0.01``,
    ``neff_lower/z=0.01``, ``neff_upper/z=0.01`` and so on. ``k``, ``tol``, ``method``, ``rtol``,
    ``max_hvp``: as in :func:`neff.estimate_effective_dimension`; ``params``, ``reduction``,
    ``dtype``, ``device``: as in :class:`neff.HessianOperator`. ``warm_start=False`` starts every run
    afresh (for comparison).
    """

    def __init__(self, loss_fn: Callable, data: Iterable, z, *, every: int = 1, csv: str | Path | None = None,
                 tensorboard: str | Path | None = None, k: int = 10, tol: float = 1e-4, method: str = "slq",
                 rtol: float | None = None, max_hvp: int = 1000, params: str | Sequence[str] = "all",
                 reduction: str = "mean", dtype: torch.dtype | None = torch.float64, device=None,
                 warm_start: bool = True, seed: int = 0):
        if not isinstance(every, int) or every < 1:
            raise NeffError(f"every={every!r} must be a positive number of epochs")
        self.loss_fn, self.data, self.z, self.every = loss_fn, data, as_z(z), every
        self.csv = Path(csv) if csv is not None else None
        self.options = dict(method=method, k=k, tol=tol, rtol=rtol, max_hvp=max_hvp, seed=seed)
        self.operator_options = dict(params=params, reduction=reduction, dtype=dtype, device=device)
        self.warm_start = warm_start
        self.previous: EigenResult | None = None
        self.rows: list[dict] = self._read() if self.csv is not None and self.csv.exists() else []
        self.writer = _summary_writer(tensorboard) if tensorboard is not None else None

    def step(self, model: torch.nn.Module, epoch: int) -> EffDimEstimate | None:
        """Measure after ``epoch`` (counted from 1) when it is a multiple of ``every``."""
        if epoch % self.every:
            return None
        return self.measure(model, epoch)

    def measure(self, model: torch.nn.Module, epoch: int) -> EffDimEstimate:
        """N_eff of ``model`` now, recorded as ``epoch``'s."""
        operator = HessianOperator(model, self.loss_fn, self.data, **self.operator_options)
        options = dict(self.options)
        eigen = top_eigenpairs(operator, options.pop("k"), tol=options["tol"], seed=options["seed"],
                               warm_start=self.previous if self.warm_start else None)
        options["max_hvp"] = max(1, options["max_hvp"] - eigen.n_hvp)  # the budget includes the top k
        estimate = estimate_effective_dimension(operator, self.z, eigen=eigen, **options)
        self.previous = eigen if eigen.converged.any() else None
        self._record(epoch, estimate, eigen)
        return estimate

    def _record(self, epoch: int, estimate: EffDimEstimate, eigen: EigenResult) -> None:
        new = [{"epoch": epoch, "z": float(z), "neff": float(value), "lower": float(low), "upper": float(high),
                "method": estimate.method, "products": estimate.n_hvp + eigen.n_hvp, "eigen_products": eigen.n_hvp,
                "converged": int(eigen.converged.sum()), "k": len(eigen.converged)}
               for z, value, low, high in zip(estimate.z, estimate.value, estimate.lower, estimate.upper)]
        self.rows = [row for row in self.rows if int(row["epoch"]) < epoch] + new
        if self.csv is not None:
            with atomic_path(self.csv) as tmp, open(tmp, "w", newline="") as file:
                writer = csv.DictWriter(file, COLUMNS)
                writer.writeheader()
                writer.writerows(self.rows)
        if self.writer is not None:
            for row in new:
                for key in ("neff", "lower", "upper"):
                    self.writer.add_scalar(f"{SCALARS[key]}/z={row['z']:g}", row[key], epoch)
            self.writer.flush()

    def _read(self) -> list[dict]:
        with open(self.csv, newline="") as file:
            rows = list(csv.DictReader(file))
        if rows and list(rows[0]) != COLUMNS:
            raise NeffError(f"{self.csv} is not an N_eff record (its columns are {list(rows[0])}); give another "
                            "csv path")
        return rows


def _summary_writer(log_dir):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise NeffError("tensorboard= needs the tensorboard package; pip install tensorboard, or leave "
                        "tensorboard unset and read the csv") from None
    return SummaryWriter(str(log_dir))
