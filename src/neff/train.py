"""Training as in the paper: SGD (or Adam) with the double-descent learning-rate schedule,
per-epoch metrics, and checkpoints from which an interrupted run resumes exactly."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterable

import torch

from .data import Dataset, predicted_labels, tensor_batches
from .device import default_device, module_mode
from .errors import NeffError
from .files import atomic_path

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("paper", "constant")
PRECISIONS = ("fp32", "bf16")


@dataclass
class TrainConfig:
    """Paper defaults: SGD lr 0.01, momentum 0.9, weight decay 1e-4, batch 128, 200 epochs,
    constant learning rate for half the run, then linear decay to 1% of it at 90%.

    How the steps run (the arithmetic is the same; the rounding may differ): ``channels_last``
    puts the model and image batches in channels-last memory format on a CUDA device (faster
    convolutions; the CPU keeps the default layout: no faster there, and torch 2.14's CPU
    backward of a strided 1x1 convolution crashes on channels-last inputs of few channels);
    ``precision`` ``"bf16"`` runs the training steps under bfloat16 autocast (evaluation stays
    fp32); ``compile`` trains a ``torch.compile`` of the model."""

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
    channels_last: bool = False
    precision: str = "fp32"
    compile: bool = False

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise NeffError(f"optimizer={self.optimizer!r} is unknown; use 'sgd' or 'adam'")
        if self.schedule not in SCHEDULES:
            raise NeffError(f"schedule={self.schedule!r} is unknown; use 'paper' or 'constant'")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_every < 1 or not self.lr > 0:
            raise NeffError("epochs, batch_size, eval_every and lr must be positive")
        if self.precision not in PRECISIONS:
            raise NeffError(f"precision={self.precision!r} is unknown; use 'fp32' or 'bf16'")
        for flag in ("augment", "channels_last", "compile"):
            if not isinstance(getattr(self, flag), bool):
                raise NeffError(f"{flag}={getattr(self, flag)!r} is not a flag; use True or False")


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """The rate for ``epoch`` (0-based): constant to 50% of the run, linear to 1% of it at 90%."""
    if config.schedule == "constant":
        return config.lr
    t = epoch / config.epochs
    factor = 1.0 if t <= 0.5 else 0.01 if t >= 0.9 else 1.0 - 0.99 * (t - 0.5) / 0.4
    return config.lr * factor


def augment_images(inputs: torch.Tensor, generator: torch.Generator, fill=None) -> torch.Tensor:
    """Random crops (padding of 1/8 of the side, filled per channel with ``fill``, default 0; a
    tensor already on the device saves a copy per call) and horizontal flips of an image batch
    (N, C, H, W), as one gather on the inputs' device. The shifts (N, 2) in [0, 2 pad] and then
    the flips (p = 0.5) are drawn from ``generator``, a CPU generator, so every device crops
    alike; on a GPU they are copied from pinned memory, so the host does not wait for the GPU."""
    count, channels, size = len(inputs), inputs.shape[1], inputs.shape[-1]
    pad = max(1, size // 8)
    padded = inputs.new_zeros((count, channels, size + 2 * pad, size + 2 * pad))
    if fill is not None:
        padded += torch.as_tensor(fill, dtype=inputs.dtype, device=inputs.device).view(-1, 1, 1)
    padded[..., pad:pad + size, pad:pad + size] = inputs
    draws = torch.cat([torch.randint(0, 2 * pad + 1, (count, 2), generator=generator),
                       (torch.rand(count, generator=generator) < 0.5).long()[:, None]], 1)
    if inputs.is_cuda:
        draws = draws.pin_memory()
    dy, dx, flips = draws.to(inputs.device, non_blocking=True).T
    offsets = torch.arange(size, device=inputs.device)
    rows = dy[:, None] + offsets  # (N, size): the rows of each crop in the padded image
    cols = dx[:, None] + torch.where(flips[:, None] == 1, offsets.flip(0), offsets)  # flipped: right to left
    index = torch.arange(count, device=inputs.device)[:, None, None, None]
    return padded[index, torch.arange(channels, device=inputs.device)[:, None, None], rows[:, None, :, None],
                  cols[:, None, None, :]]


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Iterable, loss_fn: Callable, device) -> tuple[float, float]:
    """Mean loss and accuracy (NaN for regression) over batches (a loader, say), in eval mode;
    summed on ``device`` in float64, read back once."""
    total = torch.zeros((), dtype=torch.float64, device=device)
    correct, count = torch.zeros((), dtype=torch.long, device=device), 0
    with module_mode(model, False):
        for inputs, targets in batches:
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            total += loss_fn(outputs, targets).double() * len(inputs)
            if targets.dtype == torch.long:
                correct += (predicted_labels(outputs) == targets).sum()
            count += len(inputs)
    return float(total) / count, (int(correct) / count if targets.dtype == torch.long else math.nan)


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
    an uninterrupted run.

    Both splits are moved to ``device`` once and every batch is indexed out of them
    (:func:`neff.data.tensor_batches`), on the CPU too: there they are the tensors
    ``data.loader("train", batch_size, shuffle=True, seed=...)`` gives, so a CPU run trains as
    it did through that DataLoader, and on a GPU no batch is copied to it. Divergence is checked
    once an epoch (a non-finite minibatch loss makes the epoch's sum non-finite), so no step
    waits for the GPU."""
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    channels_last = config.channels_last and device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if config.compile else model
    optimizer = _optimizer(model, config)
    loss_fn = data.loss_fn()
    history: list[dict] = []
    done = 0
    path = Path(checkpoint) if checkpoint else None
    if path is not None and path.exists():
        state = torch.load(path, map_location=device, weights_only=True)
        # a key added after the checkpoint was written (eval_every, channels_last, precision,
        # compile) takes its default: what that run trained with
        if {**{f.name: f.default for f in fields(TrainConfig)}, **state["config"]} != asdict(config):
            raise NeffError(f"checkpoint {path} was written with other training settings; delete it "
                            "or use the settings it was trained with")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
        done = state.get("epochs_done", len(history))  # before eval_every, a row per epoch

    def laid_out(tensor):
        images = channels_last and tensor.dim() == 4
        return tensor.contiguous(memory_format=torch.channels_last) if images else tensor

    splits = {split: [laid_out(t.to(device)) for t in getattr(data, split).tensors] for split in ("train", "test")}
    black = None if data.black is None else torch.tensor(data.black, dtype=splits["train"][0].dtype, device=device)
    evaluation = max(512, config.batch_size)  # full-batch training evaluates in one pass too

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
        for inputs, targets in tensor_batches(splits["train"], config.batch_size, seed):
            if config.augment:
                inputs = laid_out(augment_images(inputs, generator, black))
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, torch.bfloat16, enabled=config.precision == "bf16"):
                loss = loss_fn(step_model(inputs), targets)
            loss.backward()
            optimizer.step()
            running += loss.detach() * len(inputs)
            seen += len(inputs)
        if not torch.isfinite(running):
            raise NeffError(f"training diverged at epoch {epoch + 1} (the mean loss is {float(running) / seen:g}); "
                            "lower the learning rate")
        last = epoch + 1 == config.epochs
        evaluated = (epoch + 1) % config.eval_every == 0 or last
        if evaluated:
            train_loss, train_acc = evaluate(model, tensor_batches(splits["train"], evaluation), loss_fn, device)
            test_loss, test_acc = evaluate(model, tensor_batches(splits["test"], evaluation), loss_fn, device)
            history.append({"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "train_acc": train_acc,
                            "test_loss": test_loss, "test_acc": test_acc,
                            "running_train_loss": float(running) / seen})
        if (epoch + 1) % config.checkpoint_every == 0 or last:
            save(epoch + 1)
        if evaluated and on_epoch is not None:
            on_epoch(history[-1])
    return history
