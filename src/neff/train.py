"""Training as in the paper: SGD (or Adam) with the double-descent learning-rate schedule,
per-epoch metrics, and checkpoints from which an interrupted run resumes exactly."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader

from .data import Dataset, predicted_labels
from .device import default_device, module_mode
from .errors import NeffError
from .files import atomic_path

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("paper", "constant")


@dataclass
class TrainConfig:
    """Paper defaults: SGD lr 0.01, momentum 0.9, weight decay 1e-4, batch 128, 200 epochs,
    constant learning rate for half the run, then linear decay to 1% of it at 90%."""

    epochs: int = 200
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "paper"
    augment: bool = False
    seed: int = 0
    checkpoint_every: int = 5
    eval_every: int = 1

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise NeffError(f"optimizer={self.optimizer!r} is unknown; use 'sgd' or 'adam'")
        if self.schedule not in SCHEDULES:
            raise NeffError(f"schedule={self.schedule!r} is unknown; use 'paper' or 'constant'")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_every < 1 or not self.lr > 0:
            raise NeffError("epochs, batch_size, eval_every and lr must be positive")


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """The rate for ``epoch`` (0-based): constant to 50% of the run, linear to 1% of it at 90%."""
    if config.schedule == "constant":
        return config.lr
    t = epoch / config.epochs
    factor = 1.0 if t <= 0.5 else 0.01 if t >= 0.9 else 1.0 - 0.99 * (t - 0.5) / 0.4
    return config.lr * factor


def augment_images(inputs: torch.Tensor, generator: torch.Generator, fill=None) -> torch.Tensor:
    """Random crops (padding of 1/8 of the side, filled per channel with ``fill``, default 0) and
    horizontal flips of an image batch."""
    size = inputs.shape[-1]
    pad = max(1, size // 8)
    padded = inputs.new_zeros((*inputs.shape[:-2], size + 2 * pad, size + 2 * pad))
    if fill is not None:
        padded += torch.as_tensor(fill, dtype=inputs.dtype).view(-1, 1, 1)
    padded[..., pad:pad + size, pad:pad + size] = inputs
    shifts = torch.randint(0, 2 * pad + 1, (len(inputs), 2), generator=generator)
    flips = torch.rand(len(inputs), generator=generator) < 0.5
    out = torch.stack([padded[i, :, dy:dy + size, dx:dx + size] for i, (dy, dx) in enumerate(shifts.tolist())])
    out[flips] = out[flips].flip(-1)
    return out


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DataLoader, loss_fn: Callable, device) -> tuple[float, float]:
    """Mean loss and accuracy (NaN for regression) over a loader, in eval mode."""
    total, correct, count = 0.0, 0, 0
    with module_mode(model, False):
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            total += float(loss_fn(outputs, targets)) * len(inputs)
            if targets.dtype == torch.long:
                correct += int((predicted_labels(outputs) == targets).sum())
            count += len(inputs)
    return total / count, (correct / count if targets.dtype == torch.long else math.nan)


def _optimizer(model, config: TrainConfig):
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def train(model: torch.nn.Module, data: Dataset, config: TrainConfig, *,
          checkpoint: str | Path | None = None, device=None,
          on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``model`` on ``data.train``; returns a metrics row every ``eval_every`` epochs and
    at the last (lr, train/test loss and accuracy in eval mode on clean inputs, and
    ``running_train_loss``: the mean over the epoch's augmented minibatches in train mode, the
    train loss the original logged). With ``checkpoint``, state is saved every
    ``checkpoint_every`` epochs and at the end, and a rerun resumes from it; the result equals
    an uninterrupted run."""
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    optimizer = _optimizer(model, config)
    loss_fn = data.loss_fn()
    history: list[dict] = []
    done = 0
    path = Path(checkpoint) if checkpoint else None
    if path is not None and path.exists():
        state = torch.load(path, map_location=device, weights_only=True)
        if {"eval_every": 1, **state["config"]} != asdict(config):  # checkpoints before eval_every: 1
            raise NeffError(f"checkpoint {path} was written with other training settings; delete it "
                            "or use the settings it was trained with")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
        done = state.get("epochs_done", len(history))  # before eval_every, a row per epoch
    evaluation = max(512, config.batch_size)  # full-batch training evaluates in one pass too
    train_eval = data.loader("train", evaluation)
    test_eval = data.loader("test", evaluation)

    def save(epochs_done: int):
        if path is not None:
            with atomic_path(path) as tmp:
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "history": history, "epochs_done": epochs_done, "config": asdict(config)}, tmp)

    for epoch in range(done, config.epochs):
        seed = config.seed * 100_003 + epoch  # per epoch, so a resumed run draws the same
        generator = torch.Generator().manual_seed(seed)
        lr = learning_rate(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        running, seen = torch.zeros((), device=device), 0
        for inputs, targets in data.loader("train", config.batch_size, shuffle=True, seed=seed):
            if config.augment:
                inputs = augment_images(inputs, generator, data.black)
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs), targets)
            if not torch.isfinite(loss.detach()):
                raise NeffError(f"training diverged at epoch {epoch + 1} (the loss is {loss.item():g}); "
                                "lower the learning rate")
            loss.backward()
            optimizer.step()
            running += loss.detach() * len(inputs)
            seen += len(inputs)
        last = epoch + 1 == config.epochs
        evaluated = (epoch + 1) % config.eval_every == 0 or last
        if evaluated:
            train_loss, train_acc = evaluate(model, train_eval, loss_fn, device)
            test_loss, test_acc = evaluate(model, test_eval, loss_fn, device)
            history.append({"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "train_acc": train_acc,
                            "test_loss": test_loss, "test_acc": test_acc,
                            "running_train_loss": float(running) / seen})
        if (epoch + 1) % config.checkpoint_every == 0 or last:
            save(epoch + 1)
        if evaluated and on_epoch is not None:
            on_epoch(history[-1])
    return history
