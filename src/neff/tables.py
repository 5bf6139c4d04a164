"""Long tables of a model grid: one row per (model, z, estimator) with the value, its interval
and the model's metrics, and rank correlations of each measure with a target.

Rows are selected by value (:func:`select`, z compared with a relative tolerance), never by a
formatted column name.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .effdim import as_z, certified_bounds
from .eigen import EigenResult
from .errors import NeffError

MODEL_KEYS = ("model", "width", "depth", "seed")
METRICS = ("num_params", "train_loss", "test_loss", "train_acc", "test_acc")


def neff_rows(final: dict, eigen: EigenResult, z) -> list[dict]:
    """The rows of one model: its grid point and metrics (from its ``final.json`` record), the
    spectrum's size, converged and negative counts, and for each z the ``certified`` estimate:
    the sum over the top-k eigenvalues (negative ones add 0) with its rigorous lower bound and
    the upper bound on the rest (:func:`neff.effdim.certified_bounds`).

    >>> import numpy as np
    >>> eigen = EigenResult(np.array([3.0, 1.0]), np.zeros(2), np.ones(2, bool), 1e-3, 3.0, 0, 0.0,
    ...                     "dense", "largest", 2)
    >>> [round(row["value"], 6) for row in neff_rows({"model": "mlp"}, eigen, [1.0, 3.0])]
    [1.25, 0.75]
    """
    zs = as_z(z)
    value, lower, upper = certified_bounds(eigen, zs)
    model = {key: final[key] for key in (*MODEL_KEYS, *METRICS) if key in final}
    counts = {"k": eigen.k, "num_converged": int(np.sum(eigen.converged)),
              "num_negative": int(np.sum(eigen.eigenvalues < 0))}
    return [{**model, **counts, "z": float(zi), "estimator": "certified", "value": float(v),
             "lower": float(lo), "upper": float(hi)}
            for zi, v, lo, hi in zip(zs, value, lower, upper)]


def select(table: pd.DataFrame, z: float, estimator: str = "certified") -> pd.DataFrame:
    """The rows of one estimator at one z (relative tolerance 1e-9); one per model."""
    rows = table[(table["estimator"] == estimator) & np.isclose(table["z"], z, rtol=1e-9, atol=0)]
    if rows.empty:
        raise NeffError(f"the table has no {estimator!r} rows at z = {z:g}; choose one of its z, "
                        f"{sorted(table['z'].unique())}")
    return rows


def rank_correlations(table: pd.DataFrame, target: str = "test_loss",
                      interpolation_threshold: float = 0.1) -> pd.DataFrame:
    """Kendall tau and Spearman rho with ``target`` of N_eff (each estimator and z) and of the
    parameter count, over all models and over those with train loss below the threshold."""
    measures = [("neff", estimator, z, part) for (estimator, z), part in table.groupby(["estimator", "z"])]
    models = table.drop_duplicates(list(MODEL_KEYS))
    measures.append(("num_params", "", np.nan, models.assign(value=models["num_params"])))
    rows = []
    for subset in ("all", "interpolating"):
        for measure, estimator, z, part in measures:
            if subset == "interpolating":
                part = part[part["train_loss"] < interpolation_threshold]
            enough = len(part) >= 3
            tau = stats.kendalltau(part["value"], part[target]).statistic if enough else np.nan
            rho = stats.spearmanr(part["value"], part[target]).statistic if enough else np.nan
            rows.append({"models": subset, "n": len(part), "measure": measure, "estimator": estimator,
                         "z": z, "target": target, "kendall_tau": tau, "spearman": rho})
    return pd.DataFrame(rows)
