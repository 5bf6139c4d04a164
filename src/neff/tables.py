"""Long tables of a model grid: one row per (model, z, estimator) with the value, its interval
and the model's metrics, and rank correlations of each measure with a target. The headline
N_eff (:func:`headline`) is never a truncated sum: a top-k sum carries its estimated tail.

Rows are selected by value (:func:`select`, z compared with a relative tolerance), never by a
formatted column name.
"""
from __future__ import annotations

import itertools
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .effdim import as_z, certified_bounds, effective_dimension, paper_effective_dimension, slq_bounds
from .eigen import EigenResult
from .errors import NeffError
from .measures import MEASURES
from .quadrature import Quadrature

MODEL_KEYS = ("model", "width", "depth", "seed")
METRICS = ("num_params", "train_loss", "test_loss", "train_acc", "test_acc", "running_train_loss")
HEADLINE = ("slq", "exact")
TARGETS = ("test_loss", "test_error", "gen_gap")


def neff_rows(final: dict, eigen: EigenResult, z, quadrature: Quadrature | None = None,
              paper_steps: int = 100, confidence: float = 0.95) -> list[dict]:
    """The rows of one model: its grid point and metrics (from its ``final.json`` record, with
    the generalization measures of :mod:`neff.measures` where it has them), the
    spectrum's size, converged and negative counts, and for each z one row per estimator,
    labelled in ``estimator`` and ``interval``:

    * ``exact`` (a dense spectrum: every eigenvalue), the headline there;
    * ``slq`` (with ``quadrature``), the headline otherwise: the converged top eigenvalues plus
      the deflated SLQ estimate of the rest, with its ``confidence`` interval widened by the
      quadrature error (:func:`neff.effdim.slq_bounds`);
    * ``certified``: the top-k sum (a rigorous lower bound) and the upper bound on the rest;
    * ``paper``: the original's estimator on the first ``paper_steps`` Ritz values of the same
      Lanczos run (negatives and 1.0 dropped), where the run is that long; no interval.

    Negative eigenvalues add 0 (:func:`neff.effdim.positive_part`).

    >>> import numpy as np
    >>> eigen = EigenResult(np.array([3.0, 1.0]), np.zeros(2), np.ones(2, bool), 1e-3, 3.0, 0, 0.0,
    ...                     "dense", "largest", 2)
    >>> [(row["estimator"], round(row["value"], 6)) for row in neff_rows({"model": "mlp"}, eigen, [1.0, 3.0])]
    [('exact', 1.25), ('exact', 0.75)]
    """
    zs = as_z(z)
    estimates = []
    if eigen.method == "dense":
        value = effective_dimension(eigen.eigenvalues, zs)
        estimates.append(("exact", "exact", value, value, value))
    else:
        if quadrature is not None:
            *bounds, _ = slq_bounds(eigen, quadrature, zs, confidence)
            estimates.append(("slq", f"{confidence:.0%} confidence + quadrature error", *bounds))
        estimates.append(("certified", "bound", *certified_bounds(eigen, zs)))
        if eigen.tridiagonal.shape[1] >= paper_steps:
            value = paper_effective_dimension(eigen.ritz(paper_steps), zs)
            estimates.append(("paper", "none", value, np.full_like(value, np.nan), np.full_like(value, np.nan)))
    model = {key: final[key] for key in (*MODEL_KEYS, *METRICS, *MEASURES) if key in final}
    counts = {"k": eigen.k, "num_converged": int(np.sum(eigen.converged)),
              "num_negative": int(np.sum(eigen.eigenvalues < 0))}
    return [{**model, **counts, "z": float(zi), "estimator": name, "interval": interval, "value": float(v),
             "lower": float(lo), "upper": float(hi)}
            for name, interval, *columns in estimates for zi, v, lo, hi in zip(zs, *columns)]


def headline(table: pd.DataFrame, z: float) -> pd.DataFrame:
    """The headline N_eff rows at ``z``, one per model: ``slq`` (a top-k sum plus its estimated
    tail, with an interval) or, for a dense spectrum, ``exact``."""
    present = [name for name in HEADLINE if name in set(table["estimator"])]
    rows = pd.concat([select(table, z, name) for name in present]) if present else table.iloc[:0]
    keys = [key for key in ("experiment", *MODEL_KEYS) if key in table]
    if len(rows.drop_duplicates(keys)) < len(table.drop_duplicates(keys)):
        raise NeffError(f"some models of the table have no headline rows ({' or '.join(HEADLINE)}); rebuild "
                        "it from spectra with SLQ probes (spectrum.probes > 0) or dense spectra")
    return rows


def labels(rows: pd.DataFrame, column: str = "estimator") -> str:
    """The distinct values of a column of rows, for a legend: e.g. 'slq' or 'exact/slq'."""
    return "/".join(sorted(set(rows[column])))


def select(table: pd.DataFrame, z: float, estimator: str) -> pd.DataFrame:
    """The rows of one estimator at one z (relative tolerance 1e-9); one per model."""
    rows = table[(table["estimator"] == estimator) & np.isclose(table["z"], z, rtol=1e-9, atol=0)]
    if rows.empty:
        raise NeffError(f"the table has no {estimator!r} rows at z = {z:g}; choose one of its z, "
                        f"{sorted(table['z'].unique())}")
    return rows


def with_targets(table: pd.DataFrame) -> pd.DataFrame:
    """The table with the generalization targets derived from its metrics: ``test_error``
    (1 - test accuracy) and ``gen_gap`` (test loss - train loss)."""
    return table.assign(test_error=1 - table["test_acc"] if "test_acc" in table else np.nan,
                        gen_gap=table["test_loss"] - table["train_loss"])


def rank_correlations(table: pd.DataFrame, targets: Sequence[str] = TARGETS,
                      interpolation_threshold: float = 0.1) -> pd.DataFrame:
    """Kendall tau and Spearman rho of each measure with each target (:data:`TARGETS`), over
    all models and over those with train loss below the threshold: N_eff (each estimator and
    z), the parameter count, and the generalization measures of :mod:`neff.measures` where the
    table has them. Models where a measure or target is undefined (NaN) are left out."""
    table = with_targets(table)
    measures = [("neff", estimator, z, part) for (estimator, z), part in table.groupby(["estimator", "z"])]
    models = table.drop_duplicates([key for key in ("experiment", *MODEL_KEYS) if key in table])
    measures += [(name, "", np.nan, models.assign(value=models[name]))
                 for name in ("num_params", *MEASURES) if name in models]
    rows = []
    for subset, target, (measure, estimator, z, part) in itertools.product(
            ("all", "interpolating"), targets, measures):
        if subset == "interpolating":
            part = part[part["train_loss"] < interpolation_threshold]
        part = part.dropna(subset=["value", target])
        enough = len(part) >= 3
        with warnings.catch_warnings():  # a constant column has no rank correlation: NaN
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            tau = stats.kendalltau(part["value"], part[target]).statistic if enough else np.nan
            rho = stats.spearmanr(part["value"], part[target]).statistic if enough else np.nan
        rows.append({"models": subset, "n": len(part), "measure": measure, "estimator": estimator,
                     "z": z, "target": target, "kendall_tau": tau, "spearman": rho})
    return pd.DataFrame(rows)
