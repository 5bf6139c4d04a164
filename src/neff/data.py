"""Datasets with fixed train/test splits: scikit-learn's digits (real 8x8 images shipped with
scikit-learn), two spirals, a 1-D regression problem (none needs a download), and CIFAR-10/100
through torchvision's download code. Optional label noise corrupts a seeded, recorded subset
of the training labels, so every model of a grid sees the same data."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from .errors import NeffError
from .files import atomic_path


@dataclass
class Dataset:
    """A train/test split with what a model needs to know about it."""

    name: str
    train: TensorDataset
    test: TensorDataset
    num_classes: int  # 1 output for regression
    input_shape: tuple[int, ...]
    task: str  # "classification" or "regression"
    corrupted: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def loader(self, split: str = "train", batch_size: int = 128, shuffle: bool = False,
               seed: int = 0) -> DataLoader:
        """Batches as ``DataLoader(batch_size, shuffle)`` makes them (same order, same tensors),
        indexed a whole batch at a time instead of example by example (several times faster)."""
        data, generator = getattr(self, split), torch.Generator().manual_seed(seed)
        order = RandomSampler(data, generator=generator) if shuffle else SequentialSampler(data)
        return DataLoader(data, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None,
                          generator=generator)

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
    by 1/10: 2 x ``points_per_class`` training points (the paper's 500 per class, noise 1.3),
    drawn with as many again that are held out for test."""
    rng = np.random.default_rng(seed)
    drawn = 2 * points_per_class  # per class: training and test
    turn = np.sqrt(rng.random(2 * drawn)) * 780 * 2 * math.pi / 360
    arm = np.stack([-np.cos(turn) * turn, np.sin(turn) * turn], axis=1)
    arm += rng.random(arm.shape) * noise
    labels = np.repeat([0, 1], drawn)
    arm[labels == 1] *= -1
    train, test = _split((arm / 10).astype(np.float32), labels.astype(np.int64), drawn, seed)
    return Dataset("spirals", train, test, 2, (2,), "classification")


def regression_points(size: int, seed: int = 0, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``size`` points (x, y) of y = sin(3x) + x/2 + Gaussian noise, x ~ U(-2, 2), each (size, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (size, 1))
    y = np.sin(3 * x) + x / 2 + noise * rng.standard_normal((size, 1))
    return x.astype(np.float32), y.astype(np.float32)


def regression(seed: int = 0, size: int = 400, noise: float = 0.1) -> Dataset:
    """:func:`regression_points`, a quarter held out for test."""
    train, test = _split(*regression_points(size, seed, noise), size // 4, seed)
    return Dataset("regression", train, test, 1, (1,), "regression")


CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def cifar(num_classes: int = 10, root: str | Path = "resources/data", download: bool = True, seed: int = 0) -> Dataset:
    """CIFAR-10 or CIFAR-100 via torchvision (downloaded into ``root`` when missing), scaled
    to [0, 1] and normalised per channel. Offline, one error says where to put the archive;
    a failed download leaves no partial archive behind."""
    import torchvision
    cls = torchvision.datasets.CIFAR10 if num_classes == 10 else torchvision.datasets.CIFAR100
    root = Path(root)
    archive = root / cls.filename
    existed = archive.exists()
    try:
        splits = [cls(str(root), train=train, download=download) for train in (True, False)]
    except (OSError, RuntimeError) as err:  # URLError is an OSError
        if not existed:
            archive.unlink(missing_ok=True)
        state = "is corrupt or incomplete" if existed else "is missing"
        raise NeffError(f"CIFAR-{num_classes} {state} in {root} and could not be "
                        f"{'downloaded' if download else 'loaded'} ({type(err).__name__}); place "
                        f"{cls.filename} from {cls.url} (md5 {cls.tgz_md5}) in {root} and rerun") from None
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)

    def tensors(split):
        x = torch.from_numpy(split.data).permute(0, 3, 1, 2).float() / 255
        return TensorDataset((x - mean) / std, torch.tensor(split.targets, dtype=torch.int64))
    return Dataset(f"cifar{num_classes}", tensors(splits[0]), tensors(splits[1]), num_classes, (3, 32, 32),
                   "classification")


def corrupt_labels(labels: torch.Tensor, num_classes: int, fraction: float, seed: int):
    """Give a seeded ``fraction`` of the labels another class, chosen uniformly; returns the
    new labels and the sorted indices that were changed."""
    if not 0 <= fraction <= 1:
        raise NeffError(f"label_noise={fraction} must be a fraction between 0 and 1")
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(labels), int(round(fraction * len(labels))), replace=False))
    shift = torch.from_numpy(rng.integers(1, num_classes, len(index)))
    noisy = labels.clone()
    noisy[index] = (labels[index] + shift) % num_classes
    return noisy, index


SYNTHETIC = {"digits": digits, "spirals": spirals, "regression": regression}
DATASETS = (*SYNTHETIC, "cifar10", "cifar100")


def load_dataset(name: str, seed: int = 0, subset: int | None = None, label_noise: float = 0.0,
                 root: str | Path = "resources/data", download: bool = True) -> Dataset:
    """A dataset by name; ``subset`` keeps the first training examples; ``label_noise``
    corrupts that fraction of the training labels (seeded, recorded in ``.corrupted``);
    ``root``/``download``: where CIFAR lives and whether torchvision may fetch it."""
    if name not in DATASETS:
        raise NeffError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name in SYNTHETIC:
        data = SYNTHETIC[name](seed=seed)
    else:
        data = cifar(int(name.removeprefix("cifar")), root=root, download=download, seed=seed)
    if subset is not None:
        if subset < 1:
            raise NeffError(f"subset={subset} must be a positive number of examples")
        data.train = TensorDataset(*(t[:subset] for t in data.train.tensors))
    if label_noise:
        if data.task != "classification":
            raise NeffError(f"label_noise applies to classification; {name} is a regression dataset")
        inputs, labels = data.train.tensors
        noisy, data.corrupted = corrupt_labels(labels, data.num_classes, label_noise, seed)
        data.train = TensorDataset(inputs, noisy)
    return data


def save_dataset(data: Dataset, path: str | Path) -> None:
    """Write a prepared dataset (both splits, its metadata, the corrupted-label index)."""
    with atomic_path(path) as tmp:
        torch.save({"name": data.name, "train": list(data.train.tensors), "test": list(data.test.tensors),
                    "num_classes": data.num_classes, "input_shape": list(data.input_shape), "task": data.task,
                    "corrupted": torch.as_tensor(data.corrupted)}, tmp)


def read_dataset(path: str | Path) -> Dataset:
    """Read a dataset written by ``save_dataset``."""
    if not Path(path).exists():
        raise NeffError(f"prepared dataset {path} does not exist; prepare it first")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return Dataset(state["name"], TensorDataset(*state["train"]), TensorDataset(*state["test"]),
                   state["num_classes"], tuple(state["input_shape"]), state["task"], state["corrupted"].numpy())
