"""Small datasets that need no download: scikit-learn's digits (real 8x8 images shipped with
scikit-learn), two spirals and a 1-D regression problem, each with a fixed train/test split."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .errors import NeffError


@dataclass
class Dataset:
    """A train/test split with what a model needs to know about it."""

    name: str
    train: TensorDataset
    test: TensorDataset
    num_classes: int  # 1 output for regression
    input_shape: tuple[int, ...]
    task: str  # "classification" or "regression"

    def loader(self, split: str = "train", batch_size: int = 128, shuffle: bool = False,
               seed: int = 0) -> DataLoader:
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(getattr(self, split), batch_size=batch_size, shuffle=shuffle, generator=generator)

    def loss_fn(self):
        """Cross-entropy for classification, mean squared error for regression."""
        return torch.nn.CrossEntropyLoss() if self.task == "classification" else torch.nn.MSELoss()


def _split(x: np.ndarray, y: np.ndarray, test_size: int, seed: int) -> tuple[TensorDataset, TensorDataset]:
    order = np.random.default_rng(seed).permutation(len(x))
    test, train = order[:test_size], order[test_size:]
    as_set = lambda idx: TensorDataset(torch.as_tensor(x[idx]), torch.as_tensor(y[idx]))  # noqa: E731
    return as_set(train), as_set(test)


def digits(seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 handwritten digits, 8x8 grey levels scaled to [0, 1]; 500 for test."""
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    train, test = _split(x, y.astype(np.int64), 500, seed)
    return Dataset("digits", train, test, 10, (1, 8, 8), "classification")


def spirals(seed: int = 0, points_per_class: int = 500, noise: float = 1.3) -> Dataset:
    """Two interleaved spirals (up to 780 degrees), uniform noise of width ``noise``, scaled
    by 1/10; half of the points are held out for test."""
    rng = np.random.default_rng(seed)
    turn = np.sqrt(rng.random(2 * points_per_class)) * 780 * 2 * math.pi / 360
    arm = np.stack([-np.cos(turn) * turn, np.sin(turn) * turn], axis=1)
    arm += rng.random(arm.shape) * noise
    labels = np.repeat([0, 1], points_per_class)
    arm[labels == 1] *= -1
    train, test = _split((arm / 10).astype(np.float32), labels.astype(np.int64), points_per_class, seed)
    return Dataset("spirals", train, test, 2, (2,), "classification")


def regression(seed: int = 0, size: int = 400, noise: float = 0.1) -> Dataset:
    """y = sin(3x) + x/2 + Gaussian noise on x ~ U(-2, 2); a quarter held out for test."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (size, 1))
    y = np.sin(3 * x) + x / 2 + noise * rng.standard_normal((size, 1))
    train, test = _split(x.astype(np.float32), y.astype(np.float32), size // 4, seed)
    return Dataset("regression", train, test, 1, (1,), "regression")


DATASETS = {"digits": digits, "spirals": spirals, "regression": regression}


def load_dataset(name: str, seed: int = 0, subset: int | None = None) -> Dataset:
    """A dataset by name; ``subset`` keeps the first examples of the training split."""
    if name not in DATASETS:
        raise NeffError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    data = DATASETS[name](seed=seed)
    if subset is not None:
        if subset < 1:
            raise NeffError(f"subset={subset} must be a positive number of examples")
        data.train = TensorDataset(*(t[:subset] for t in data.train.tensors))
    return data
