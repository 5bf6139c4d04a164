"""Training speed: a torchvision DataLoader epoch against neff's device-resident training.

    python -m bench.train_speed                  # a GPU: ResNet18 k = 16 and the 5-layer CNN, 50,000 images
    python -m bench.train_speed --bf16 --compile # ... and rows with those options
    python -m bench.train_speed --quick          # tiny models and 128 images on the CPU (a smoke run)
    python -m bench.train_speed --accuracy 10 --root resources/data   # GPU work: final accuracy, both paths

Both paths train the same neff model (``neff.models``) with the same SGD settings (lr 0.01,
momentum 0.9, weight decay 1e-4, batch 128) on the same CIFAR-shaped uint8 images (synthetic,
no download):

* **DataLoader**: as a torchvision training script does it: every image a PIL image through
  RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor and Normalize in ``--workers``
  worker processes, pinned batches copied to the device, fp32 steps in NCHW.
* **neff**: ``neff.train.train`` on the same images (``neff.data.image_dataset``): the split held
  on the device, crops and flips of a whole batch in one gather there, with the layout and
  precision of the row.

A path's time per epoch is (T(1 + n epochs) - T(1 epoch)) / n, so what happens once a run
(worker start, cuDNN autotuning, compilation, copying the split to the device, neff's final
evaluation) cancels. ``--accuracy E`` trains both paths for E epochs on the real CIFAR (from
``--root``; no download) with ``--seeds`` seeds each and prints their final test accuracy.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image

from neff.data import CIFAR_NORMALIZATION, image_dataset
from neff.device import default_device
from neff.models import build_model
from neff.train import TrainConfig, evaluate, learning_rate, train

MODELS = {"ResNet18 k=16": ("preact_resnet18", {"k": 16}), "5-layer CNN": ("convnet_depth", {"width": 64, "depth": 3})}
QUICK_MODELS = {"ResNet18 k=2": ("preact_resnet18", {"k": 2}),
                "5-layer CNN w=8": ("convnet_depth", {"width": 8, "depth": 3})}
VARIANTS = {"fp32": {}, "fp32 channels_last": {"channels_last": True}}
OPTIONAL = {"bf16": ("bf16 channels_last", {"channels_last": True, "precision": "bf16"}),
            "compile": ("fp32 channels_last compile", {"channels_last": True, "compile": True})}


class PILImages(torch.utils.data.Dataset):
    """uint8 images (N, H, W, C) served one at a time as torchvision's CIFAR10 serves them: a
    PIL image through ``transform``, and its label."""

    def __init__(self, images: np.ndarray, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def dataloader_train(model, images, labels, config: TrainConfig, device, workers: int) -> None:
    """Train ``model`` through a torchvision-style DataLoader with neff's learning-rate schedule."""
    side = images.shape[1]
    transform = T.Compose([T.RandomCrop(side, padding=max(1, side // 8)), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(CIFAR_NORMALIZATION["mean"], CIFAR_NORMALIZATION["std"])])
    loader = torch.utils.data.DataLoader(PILImages(images, labels, transform), batch_size=config.batch_size,
                                         shuffle=True, num_workers=workers, pin_memory=device.type == "cuda",
                                         generator=torch.Generator().manual_seed(config.seed))
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    model.to(device).train()
    for epoch in range(config.epochs):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, epoch)
        for inputs, targets in loader:
            inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(inputs), targets).backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fresh_model(family: str, options: dict, data, seed: int, device) -> torch.nn.Module:
    """The model for ``data``, initialised from ``seed``, on ``device``."""
    torch.manual_seed(seed)
    return build_model(family, data.num_classes, data.input_shape, **options).to(device)


def seconds_per_epoch(run, epochs: int) -> float:
    """(T(1 + epochs) - T(1)) / epochs of ``run(total_epochs)``."""
    times = []
    for total in (1, 1 + epochs):
        start = time.perf_counter()
        run(total)
        times.append(time.perf_counter() - start)
    return (times[1] - times[0]) / epochs


def synthetic(count: int) -> tuple[tuple, tuple]:
    """``count`` random uint8 CIFAR-shaped images with 10 random labels, and the first 512 of
    them as a test split: ((images, labels), (images, labels))."""
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, count)
    return (images, labels), (images[:512], labels[:512])


def cifar_splits(dataset: str, root: str) -> tuple[tuple, tuple]:
    """CIFAR-10 or CIFAR-100's train and test (uint8 images, labels) from ``root`` (no download)."""
    import torchvision
    cls = torchvision.datasets.CIFAR10 if dataset == "cifar10" else torchvision.datasets.CIFAR100
    return tuple((split.data, np.asarray(split.targets)) for split in (cls(root, train=train, download=False)
                                                                        for train in (True, False)))


def speed(models: dict, variants: dict, splits: tuple, epochs: int, device, workers: int) -> list[dict]:
    """Rows (model, path, seconds per epoch, epochs per second, x DataLoader) for each model,
    trained on the train split of ``splits`` (``synthetic``'s)."""
    data = image_dataset("synthetic", *splits, 10)

    def config(total, **variant):
        return TrainConfig(epochs=total, eval_every=total, augment=True, schedule="constant", **variant)

    rows = []
    for name, (family, options) in models.items():
        runs = {f"DataLoader ({workers} workers)": lambda total: dataloader_train(
            fresh_model(family, options, data, 0, device), *splits[0], config(total), device, workers)}
        runs.update({f"neff {label}": lambda total, variant=variant: train(
            fresh_model(family, options, data, 0, device), data, config(total, **variant), device=device)
            for label, variant in variants.items()})
        times = {path: seconds_per_epoch(run, epochs) for path, run in runs.items()}
        baseline = next(iter(times.values()))
        rows += [{"model": name, "path": path, "s_per_epoch": t, "epochs_per_s": 1 / t, "speedup": baseline / t}
                 for path, t in times.items()]
    return rows


def accuracy(models: dict, splits: tuple, num_classes: int, epochs: int, seeds: int, device,
             workers: int) -> list[dict]:
    """Final test accuracy of both paths (neff with channels_last, fp32), the paper's schedule
    over ``epochs``, for each model and seed (the spread over seeds is the noise)."""
    data = image_dataset("cifar", *splits, num_classes)
    rows = []
    for name, (family, options) in models.items():
        for seed in range(seeds):
            config = TrainConfig(epochs=epochs, eval_every=epochs, augment=True, seed=seed, channels_last=True)
            model = fresh_model(family, options, data, seed, device)
            dataloader_train(model, *splits[0], config, device, workers)
            loader_acc = evaluate(model, data.loader("test", 512), data.loss_fn(), device)[1]
            model = fresh_model(family, options, data, seed, device)
            neff_acc = train(model, data, config, device=device)[-1]["test_acc"]
            rows.append({"model": name, "seed": seed, "dataloader": loader_acc, "neff": neff_acc})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny models, 128 images, the CPU")
    parser.add_argument("--epochs", type=int, default=3, help="n: timed epochs beyond the first")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    for option in OPTIONAL:
        parser.add_argument(f"--{option}", action="store_true", help=f"add a row of neff with {option}")
    parser.add_argument("--accuracy", type=int, metavar="EPOCHS", help="GPU work: final accuracy after EPOCHS")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--root", default="resources/data")
    parser.add_argument("--dataset", choices=["cifar10", "cifar100"], default="cifar100")
    args = parser.parse_args(argv)
    device = torch.device("cpu") if args.quick else default_device()
    models = QUICK_MODELS if args.quick else MODELS
    if args.accuracy:
        num_classes = int(args.dataset.removeprefix("cifar"))
        rows = accuracy(models, cifar_splits(args.dataset, args.root), num_classes, args.accuracy, args.seeds,
                        device, args.workers)
        print(f"final test accuracy after {args.accuracy} epochs ({args.dataset}, {device})")
        print(f"{'model':>16} {'seed':>5} {'DataLoader':>11} {'neff':>7}")
        for row in rows:
            print(f"{row['model']:>16} {row['seed']:>5} {row['dataloader']:>11.4f} {row['neff']:>7.4f}")
        return rows
    variants = {**VARIANTS, **dict(OPTIONAL[option] for option in OPTIONAL if getattr(args, option))}
    count, epochs, workers = (128, 1, 0) if args.quick else (50_000, args.epochs, args.workers)
    rows = speed(models, variants, synthetic(count), epochs, device, workers)
    print(f"training epochs of {count:,} CIFAR-shaped images, batch 128, crops and flips ({device})")
    print(f"{'model':>16} {'path':>34} {'s/epoch':>8} {'epochs/s':>9} {'x DataLoader':>13}")
    for row in rows:
        print(f"{row['model']:>16} {row['path']:>34} {row['s_per_epoch']:>8.3f} {row['epochs_per_s']:>9.3f} "
              f"{row['speedup']:>13.2f}")
    return rows


if __name__ == "__main__":
    main()
