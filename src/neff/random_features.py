"""Double descent of minimum-norm least squares on random features (Maddox et al. 2020,
Section 6, Figure 8 of the first version).

n points x in R^D with independent N(0, 1) entries; y = x . beta + noise with beta ~ N(0, I / D),
so each feature is weakly informative (it carries 1/D of the signal). A model fits the first
d features by minimum-norm least squares. Its test error peaks at d = n, and so does
min(n, d) - N_eff(X_d^T X_d, z): the number of fitted directions the data barely determine.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .effdim import effective_dimension
from .errors import NeffError


def random_features_curve(d_values, n: int = 200, total_features: int = 400, noise: float = 0.5,
                          z: float = 0.2, trials: int = 5, n_test: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (trial, d): train and test mean squared error of the minimum-norm fit on
    the first d features, ``neff`` = N_eff(X_d^T X_d, z) and ``effective_dimensionality`` =
    min(n, d) - neff, the quantity the paper plots. Every d of a trial sees the same data."""
    d_values = sorted(int(d) for d in d_values)
    if not d_values or d_values[0] < 1 or d_values[-1] > total_features:
        raise NeffError(f"feature counts must lie in 1..total_features={total_features} (got "
                        f"{d_values[:1] + d_values[-1:]}); raise total_features or drop the larger ones")
    rng = np.random.default_rng(seed)
    rows = []
    for trial in range(trials):
        beta = rng.standard_normal(total_features) / np.sqrt(total_features)
        x_train, x_test = rng.standard_normal((n, total_features)), rng.standard_normal((n_test, total_features))
        y_train = x_train @ beta + noise * rng.standard_normal(n)
        y_test = x_test @ beta + noise * rng.standard_normal(n_test)
        for d in d_values:
            weights = np.linalg.lstsq(x_train[:, :d], y_train, rcond=None)[0]  # the minimum-norm solution
            neff = effective_dimension(np.linalg.svd(x_train[:, :d], compute_uv=False) ** 2, z)
            rows.append({"trial": trial, "d": d, "n": n,
                         "train_mse": np.mean((x_train[:, :d] @ weights - y_train) ** 2),
                         "test_mse": np.mean((x_test[:, :d] @ weights - y_test) ** 2),
                         "neff": neff, "effective_dimensionality": min(n, d) - neff})
    return pd.DataFrame(rows)
