"""Double descent of minimum-norm least squares on random features (Maddox et al. 2020,
Section 6, Figure 8 of the first version), as the original notebook builds it (g-benton/
hessian-eff-dim, branch anonymous, notebooks/random_features_nb.ipynb).

For each fit, a fresh train and a fresh test set of n points: y ~ N(0, 1) and features
x_j = y + N(0, 1) for the first ``informative`` columns (pure N(0, 1) beyond), no extra target
noise. Minimum-norm least squares on d features; errors are relative, ||X w - y|| / ||y||.
The test error peaks at d = n, and so does min(n, d) - N_eff(s^2, z = ridge * n), s the
singular values of X_train: the number of fitted directions the data barely determine.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .effdim import effective_dimension
from .errors import NeffError


def weakly_informative_features(n: int, d: int, rng: np.random.Generator,
                                informative: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(X (n, d), y (n,)): y ~ N(0, 1), x_j = y + N(0, 1) for j < informative, N(0, 1) after."""
    y = rng.standard_normal(n)
    x = rng.standard_normal((n, d))
    x[:, :informative] += y[:, None]
    return x, y


def fit_random_features(n: int, d: int, rng: np.random.Generator, ridge: float = 0.001,
                        informative: int = 1000) -> dict:
    """One minimum-norm fit on fresh data: relative train and test error, ``neff`` =
    N_eff(s^2, ridge * n) and ``effective_dimensionality`` = min(n, d) - neff."""
    if n < 1 or d < 1:
        raise NeffError(f"n = {n} and d = {d} must both be positive")
    x_train, y_train = weakly_informative_features(n, d, rng, informative)
    x_test, y_test = weakly_informative_features(n, d, rng, informative)
    weights, _, _, singular = np.linalg.lstsq(x_train, y_train, rcond=None)  # the minimum-norm solution
    neff = effective_dimension(singular ** 2, ridge * n)
    return {"d": d, "n": n, "train_error": np.linalg.norm(x_train @ weights - y_train) / np.linalg.norm(y_train),
            "test_error": np.linalg.norm(x_test @ weights - y_test) / np.linalg.norm(y_test),
            "neff": neff, "effective_dimensionality": min(n, d) - neff}


def random_features_table(d_values, n_values, ridge: float = 0.001, informative: int = 1000, trials: int = 1,
                          seed: int = 0) -> pd.DataFrame:
    """One row per (trial, d, n) of :func:`fit_random_features`, every fit on fresh data."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"trial": trial, **fit_random_features(int(n), int(d), rng, ridge, informative)}
                         for trial in range(trials) for n in n_values for d in d_values])
