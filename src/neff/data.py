"""Datasets with fixed train/test splits: scikit-learn's digits (real 8x8 images shipped with
scikit-learn), two spirals, a 1-D regression problem (none needs a download), and CIFAR-10/100
through torchvision's download code. Optional label noise corrupts a seeded, recorded subset
of the training labels, so every model of a grid sees the same data."""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

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
    num_classes: int  # the model's outputs: 1 for regression and for binary (one logit)
    input_shape: tuple[int, ...]
    task: str  # "classification", "binary" or "regression"
    corrupted: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    black: tuple[float, ...] | None = None  # a black pixel after normalisation: what random crops pad with

    def loader(self, split: str = "train", batch_size: int = 128, shuffle: bool = False,
               seed: int = 0, examples: int | None = None) -> DataLoader:
        """Batches as ``DataLoader(batch_size, shuffle)`` makes them (same order, same tensors),
        indexed a whole batch at a time instead of example by example (several times faster);
        ``examples``: only a random subset of that many (in their original order; seeded)."""
        data, generator = getattr(self, split), torch.Generator().manual_seed(seed)
        if examples is not None and examples < len(data):
            chosen = torch.randperm(len(data), generator=generator)[:examples].sort().values
            data = TensorDataset(*(tensor[chosen] for tensor in data.tensors))
        order = RandomSampler(data, generator=generator) if shuffle else SequentialSampler(data)
        return DataLoader(data, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None,
                          generator=generator)

    def loss_fn(self):
        """Cross-entropy for classification, binary cross-entropy on one logit for binary, mean
        squared error for regression."""
        return {"classification": torch.nn.CrossEntropyLoss, "binary": BinaryCrossEntropy}.get(
            self.task, torch.nn.MSELoss)()


def tensor_batches(tensors: Sequence[torch.Tensor], batch_size: int,
                   seed: int | None = None) -> Iterator[tuple[torch.Tensor, ...]]:
    """The batches of ``Dataset.loader(split, batch_size)``, or with ``seed`` of
    ``loader(split, batch_size, shuffle=True, seed=seed)`` (same order, same tensors), indexed
    straight out of the split's ``tensors`` wherever they live (a GPU, say): no DataLoader and
    no copy to the device per batch. The shuffled order is the DataLoader's: its iterator draws
    a base seed from the seeded generator, then its sampler one permutation."""
    count = len(tensors[0])
    order = None
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
        torch.empty((), dtype=torch.int64).random_(generator=generator)  # the DataLoader iterator's base seed
        order = torch.randperm(count, generator=generator).to(tensors[0].device)
    for start in range(0, count, batch_size):
        index = slice(start, start + batch_size) if order is None else order[start:start + batch_size]
        yield tuple(tensor[index] for tensor in tensors)


class BinaryCrossEntropy(torch.nn.Module):
    """Binary cross-entropy with logits on one output per example and integer 0/1 labels (the
    original's BCEWithLogitsLoss on (N, 1) outputs), mean over the batch."""

    def forward(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(outputs[..., 0], labels.to(outputs.dtype))


def predicted_labels(outputs: torch.Tensor) -> torch.Tensor:
    """Class predictions of outputs (..., C): argmax, or logit > 0 for one output (binary)."""
    return outputs.argmax(-1) if outputs.shape[-1] > 1 else (outputs[..., 0] > 0).long()


def positive_probability(outputs: torch.Tensor) -> torch.Tensor:
    """The probability of class 1 of a two-class model: softmax of two logits or sigmoid of one."""
    return outputs.softmax(-1)[..., 1] if outputs.shape[-1] > 1 else outputs[..., 0].sigmoid()


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


def spiral_arms(points_per_class: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The original's two spirals (hess ``twospirals``, e.g. g-benton/hessian-eff-dim, branch
    anonymous, notebooks/two_spirals.ipynb): angle t = sqrt(U(0, 1)) x 600 degrees (in radians),
    arm (-1.5 t cos t, 1.5 t sin t) + N(0, noise^2) per coordinate (drawn after every angle, x
    then y), the second class its mirror image -arm; raw scale. Points (2 p, 2), labels (2 p,)."""
    turn = np.sqrt(rng.random((points_per_class, 1))) * 600 * 2 * math.pi / 360
    dx = -1.5 * np.cos(turn) * turn + rng.standard_normal((points_per_class, 1)) * noise
    dy = 1.5 * np.sin(turn) * turn + rng.standard_normal((points_per_class, 1)) * noise
    arm = np.hstack([dx, dy])
    return np.vstack([arm, -arm]), np.repeat([0, 1], points_per_class)


def spirals(seed: int = 0, points_per_class: int = 1000, noise: float = 1.3, train: int = 1000) -> Dataset:
    """:func:`spiral_arms` (the original's ``twospirals(points_per_class, noise)``), shuffled:
    ``train`` points for training, the rest held out for test; one logit per point and binary
    cross-entropy, as the original (task ``binary``). The defaults give Section 5's 1,000
    training points (about 500 per class, noise 1.3) and as many again for test; the original's
    width and depth sweeps used ``points_per_class=1500, train=1000`` and noise 1.0 and 1.5."""
    if not 0 < train < 2 * points_per_class:
        raise NeffError(f"train={train} must leave test points of the {2 * points_per_class} drawn; "
                        "lower it or raise points_per_class")
    points, labels = spiral_arms(points_per_class, noise, np.random.default_rng(seed))
    train_set, test_set = _split(points.astype(np.float32), labels.astype(np.int64), 2 * points_per_class - train,
                                 seed)
    return Dataset("spirals", train_set, test_set, 1, (2,), "binary")


def regression_points(size: int, seed: int = 0, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``size`` points (x, y) of y = sin(3x) + x/2 + Gaussian noise, x ~ U(-2, 2), each (size, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (size, 1))
    y = np.sin(3 * x) + x / 2 + noise * rng.standard_normal((size, 1))
    return x.astype(np.float32), y.astype(np.float32)


def bnn_regression_points(size: int, noise: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The original's BNN data (g-benton/hessian-eff-dim, branch anonymous,
    notebooks/bnn_regression_varying_dimensionality.ipynb, ``get_data``): x = linspace(-1, 1, N),
    inputs X = (1, x, x^2), y = X W + 0.5 (0.5 + x)^2 sin(4x) + N(0, noise^2) with W ~ 0.5 N(0, I_3),
    drawn in that order from numpy's legacy generator seeded ``seed`` (the original's draws for
    seed 0); y centred and divided by its standard deviation. X (N, 3), y (N, 1), float32."""
    rng = np.random.RandomState(seed)
    x = np.linspace(-1, 1, size)
    inputs = x[:, None] ** np.arange(3)
    weights = 0.5 * rng.randn(3)
    y = inputs @ weights + 0.5 * (0.5 + x) ** 2 * np.sin(4 * x) + noise * rng.randn(size)
    y = (y - y.mean()) / y.std()
    return inputs.astype(np.float32), y[:, None].astype(np.float32)


def regression(seed: int = 0, size: int = 400, noise: float = 0.1) -> Dataset:
    """:func:`regression_points`, a quarter held out for test."""
    train, test = _split(*regression_points(size, seed, noise), size // 4, seed)
    return Dataset("regression", train, test, 1, (1,), "regression")


# CIFAR-10's channel means and standard deviations; the original's Figure 1-2 code used the
# same means with (0.2023, 0.1994, 0.2010), its appendix 0.5 and 0.5 (set per experiment)
CIFAR_NORMALIZATION = {"mean": (0.4914, 0.4822, 0.4465), "std": (0.2470, 0.2435, 0.2616)}


def cifar(num_classes: int = 10, root: str | Path = "resources/data", download: bool = True, seed: int = 0,
          normalization: dict | None = None) -> Dataset:
    """CIFAR-10 or CIFAR-100 via torchvision (downloaded into ``root`` when missing), scaled
    to [0, 1] and normalised per channel by ``normalization`` {"mean": 3 values, "std": 3
    values} (default: CIFAR_NORMALIZATION). Offline, one error says where to put the archive;
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
    return image_dataset(f"cifar{num_classes}", *((split.data, split.targets) for split in splits), num_classes,
                         normalization)


def image_dataset(name: str, train: tuple, test: tuple, num_classes: int,
                  normalization: dict | None = None) -> Dataset:
    """A classification set from ``train`` and ``test`` (uint8 images (N, H, W, C), labels), as
    torchvision's CIFAR holds them: scaled to [0, 1] and normalised per channel by
    ``normalization`` (default: CIFAR_NORMALIZATION)."""
    normalization = normalization or CIFAR_NORMALIZATION
    mean = torch.tensor(normalization["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(normalization["std"]).view(1, -1, 1, 1)

    def tensors(images, labels):
        x = torch.from_numpy(np.asarray(images)).permute(0, 3, 1, 2).float() / 255
        return TensorDataset((x - mean) / std, torch.as_tensor(labels, dtype=torch.int64))
    black = tuple((-mean / std).flatten().tolist())  # torchvision's RandomCrop pads the raw image with 0
    train_set = tensors(*train)
    return Dataset(name, train_set, tensors(*test), num_classes, tuple(train_set.tensors[0].shape[1:]),
                   "classification", black=black)


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
                 root: str | Path = "resources/data", download: bool = True,
                 normalization: dict | None = None, options: dict | None = None) -> Dataset:
    """A dataset by name; ``subset`` keeps the first training examples; ``label_noise``
    corrupts that fraction of the training labels (seeded, recorded in ``.corrupted``);
    ``root``/``download``/``normalization``: where CIFAR lives, whether torchvision may fetch
    it, and its channel normalisation (see :func:`cifar`); ``options``: keyword arguments of a
    synthetic set's generator (e.g. :func:`spirals`)."""
    if name not in DATASETS:
        raise NeffError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if normalization and name in SYNTHETIC:
        raise NeffError(f"normalization applies to CIFAR, not to {name}; remove it")
    if name in SYNTHETIC:
        generator = SYNTHETIC[name]
        accepted = set(inspect.signature(generator).parameters) - {"seed"}
        if set(options or {}) - accepted:
            raise NeffError(f"options {sorted(set(options) - accepted)} do not apply to {name}; it takes "
                            f"{', '.join(sorted(accepted)) or 'none'}")
        data = generator(seed=seed, **(options or {}))
    elif options:
        raise NeffError(f"options apply to the synthetic sets ({', '.join(SYNTHETIC)}), not to {name}; remove them")
    else:
        data = cifar(int(name.removeprefix("cifar")), root=root, download=download, seed=seed,
                     normalization=normalization)
    if subset is not None:
        if subset < 1:
            raise NeffError(f"subset={subset} must be a positive number of examples")
        data.train = TensorDataset(*(t[:subset] for t in data.train.tensors))
    if label_noise:
        if data.task == "regression":
            raise NeffError(f"label_noise applies to classification; {name} is a regression dataset")
        inputs, labels = data.train.tensors
        noisy, data.corrupted = corrupt_labels(labels, max(data.num_classes, 2), label_noise, seed)
        data.train = TensorDataset(inputs, noisy)
    return data


def batches_of(data, batch_size: int) -> Iterable:
    """Training batches from what a user's data function returns: ``(inputs, targets)``
    tensors or a map-style torch Dataset (in batches of ``batch_size``), or any iterable of
    batches that can be read more than once, such as a DataLoader (as it is)."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        data = TensorDataset(*data)
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
        return DataLoader(data, batch_size=batch_size)
    if not isinstance(data, Iterable) or iter(data) is data:
        raise NeffError(f"the data is a {type(data).__name__}; return (inputs, targets) tensors, a torch Dataset "
                        "or a DataLoader (something that can be read more than once)")
    return data


def task_of(batches: Iterable) -> tuple[tuple[int, ...] | None, int, torch.nn.Module]:
    """(input shape, outputs a model needs, loss) for batches of a default format
    (``neff.batches``): integer targets are class labels (cross-entropy, as many outputs as
    the largest label + 1), floating ones regression targets (mean squared error)."""
    from .batches import split_batch
    first = next(iter(batches), None)
    if first is None:
        raise NeffError("the data is empty; return at least one example")
    inputs, targets = split_batch(first)
    shape = tuple(inputs.shape[1:]) if isinstance(inputs, torch.Tensor) else None
    if not isinstance(targets, torch.Tensor):
        raise NeffError("the targets are not one tensor, so neff cannot choose a loss for them; give the data as "
                        "(inputs, targets) tensors")
    if targets.is_floating_point():
        return shape, targets.shape[-1] if targets.dim() > 1 else 1, torch.nn.MSELoss()
    return shape, max(int(split_batch(batch)[1].max()) for batch in batches) + 1, torch.nn.CrossEntropyLoss()


def save_dataset(data: Dataset, path: str | Path) -> None:
    """Write a prepared dataset (both splits, its metadata, the corrupted-label index)."""
    with atomic_path(path) as tmp:
        torch.save({"name": data.name, "train": list(data.train.tensors), "test": list(data.test.tensors),
                    "num_classes": data.num_classes, "input_shape": list(data.input_shape), "task": data.task,
                    "corrupted": torch.as_tensor(data.corrupted), "black": data.black}, tmp)


def read_dataset(path: str | Path) -> Dataset:
    """Read a dataset written by ``save_dataset``."""
    if not Path(path).exists():
        raise NeffError(f"prepared dataset {path} does not exist; prepare it first")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["name"].startswith("cifar") and "black" not in state:
        raise NeffError(f"prepared dataset {path} predates crop padding with black; delete it and prepare it again")
    return Dataset(state["name"], TensorDataset(*state["train"]), TensorDataset(*state["test"]),
                   state["num_classes"], tuple(state["input_shape"]), state["task"], state["corrupted"].numpy(),
                   state.get("black"))
