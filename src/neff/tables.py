"""Tables of a model grid: N_eff per model for a sweep of z beside its size and metrics, and
rank correlations of N_eff and of parameter count with test loss."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .effdim import as_z, effective_dimension


def neff_column(z: float) -> str:
    return f"neff@{z:g}"


def model_row(params: dict, metrics: dict, eigenvalues: np.ndarray, converged: np.ndarray, z) -> dict:
    """One table row: the grid parameters, final metrics, and N_eff of the top-k at each z
    (negative eigenvalues counted, added as 0)."""
    zs = as_z(z)
    row = {**params, **metrics, "k": len(eigenvalues), "num_converged": int(np.sum(converged)),
           "num_negative": int(np.sum(eigenvalues < 0))}
    row.update({neff_column(zi): value for zi, value in zip(zs, effective_dimension(eigenvalues, zs))})
    return row


def rank_correlations(table: pd.DataFrame, z, target: str = "test_loss",
                      interpolation_threshold: float = 0.1) -> pd.DataFrame:
    """Kendall tau and Spearman rho of each measure (N_eff at each z, parameter count) with
    ``target``, over all models and over those with train loss below the threshold."""
    subsets = {"all": table, "interpolating": table[table["train_loss"] < interpolation_threshold]}
    measures = [neff_column(zi) for zi in as_z(z)] + ["num_params"]
    rows = []
    for subset, part in subsets.items():
        for measure in measures:
            enough = len(part) >= 3
            tau = stats.kendalltau(part[measure], part[target]).statistic if enough else np.nan
            rho = stats.spearmanr(part[measure], part[target]).statistic if enough else np.nan
            rows.append({"models": subset, "n": len(part), "measure": measure, "target": target,
                         "kendall_tau": tau, "spearman": rho})
    return pd.DataFrame(rows)
