"""The model families of the paper, each built for any number of classes and input shape.

* ``preact_resnet18``: PreAct ResNet18 with width k (stages k, 2k, 4k, 8k; k = 64 is the
  standard net), as in the deep double descent experiments (Figure 1).
* ``convnet_depth``: the width x depth CNN of Figure 2: depth + 1 conv-BN-ReLU blocks; the
  depth extra blocks are spread over three stages, the last block of each stage doubling the
  channels and max-pooling; a global max-pool (or the original's window, ``head_pool``) and
  a linear head. Depth 3 is the standard 5-layer CNN.
* ``mlp``: fully connected net (width, depth hidden layers, activation, bias on/off).
* ``lenet``: the LeNet-style CIFAR-10 CNN of Appendix A (62,006 parameters at 32x32x3).

Global pooling is adaptive, so the same family runs on 8x8 digits and 32x32 CIFAR.
"""
from __future__ import annotations

import inspect
import math
import pickle
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .errors import NeffError

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "gelu": nn.GELU, "softplus": nn.Softplus}


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice, identity (or 1x1 conv) shortcut taken after the first BN-ReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(in_channels, channels, 1, stride, bias=False)
                         if stride != 1 or in_channels != channels else None)

    def forward(self, x):
        out = torch.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    """PreAct ResNet18 of width k: 2 blocks in each of 4 stages of k, 2k, 4k, 8k channels,
    global average pool, linear head (2724 k^2 + 933 k + 100 parameters on CIFAR-100)."""

    def __init__(self, num_classes: int, input_shape: Sequence[int], k: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(input_shape[0], k, 3, 1, 1, bias=False)
        blocks, channels = [], k
        for stage, width in enumerate((k, 2 * k, 4 * k, 8 * k)):
            for block in range(2):
                stride = 2 if stage > 0 and block == 0 else 1
                blocks.append(PreActBlock(channels, width, stride))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = self.blocks(self.conv1(x))
        return self.linear(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


def _conv_bn_relu(in_channels: int, channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, channels, 3, 1, 1, bias=True), nn.BatchNorm2d(channels), nn.ReLU()]


class ConvNetDepth(nn.Module):
    """Width x depth CNN (Figure 2); see the module docstring for the layout.

    ``head_pool``: ``"global"`` max-pools the whole last feature map; ``"original"`` is the
    original's MaxPool2d(4 x (2 (3 - depth) if depth < 3 else 1)) (hess/nets/convnet.py), the
    same on 32 x 32 inputs except at depth 0, where its 24 x 24 window sees only the top-left of
    the 32 x 32 map (the formula meant 2^(3 - depth)); kept to reproduce the published grid."""

    def __init__(self, num_classes: int, input_shape: Sequence[int], width: int = 64, depth: int = 3,
                 head_pool: str = "global"):
        super().__init__()
        if depth < 0:
            raise NeffError(f"depth={depth} must be 0 or more")
        if head_pool not in ("global", "original"):
            raise NeffError(f"head_pool={head_pool!r} is unknown; use 'global' or 'original'")
        layers = _conv_bn_relu(input_shape[0], width)
        channels, side = width, input_shape[-1]
        for stage in range(3):
            blocks = depth // 3 + (depth % 3 > stage)
            for block in range(blocks):
                last = block == blocks - 1
                layers += _conv_bn_relu(channels, 2 * channels if last else channels)
                if last:
                    channels, side = 2 * channels, -(-side // 2)
                    # ceil_mode lets a 1x1 map through, so deep nets run on tiny inputs
                    layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.window = None
        if head_pool == "original":
            self.window = 4 * (2 * (3 - depth) if depth < 3 else 1)
            if not self.window <= side < 2 * self.window:
                raise NeffError(f"head_pool='original' pools a {self.window} x {self.window} window, which does not "
                                f"reduce this net's {side} x {side} feature map to one value; it needs 32 x 32 "
                                "inputs (CIFAR); use head_pool='global'")
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x):
        features = self.features(x)
        out = (nn.functional.adaptive_max_pool2d(features, 1) if self.window is None
               else nn.functional.max_pool2d(features, self.window))
        return self.linear(torch.flatten(out, 1))


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units; inputs of any shape are flattened."""

    def __init__(self, num_classes: int, input_shape: Sequence[int], width: int = 64, depth: int = 2,
                 activation: str = "relu", bias: bool = True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise NeffError(f"activation={activation!r} is unknown; choose one of {', '.join(ACTIVATIONS)}")
        sizes = [math.prod(input_shape)] + [width] * depth
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out, bias=bias), ACTIVATIONS[activation]()]
        layers.append(nn.Linear(sizes[-1], num_classes, bias=bias))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class LeNet(nn.Module):
    """LeNet-style CNN: conv5-pool-conv5-pool-fc120-fc84-fc. Inputs smaller than 32x32 get
    padded convolutions and an adaptive pool to the 5x5 map of the original."""

    def __init__(self, num_classes: int, input_shape: Sequence[int]):
        super().__init__()
        padding = 0 if min(input_shape[1:]) >= 32 else 2
        self.conv1 = nn.Conv2d(input_shape[0], 6, 5, padding=padding)
        self.conv2 = nn.Conv2d(6, 16, 5, padding=padding)
        self.fc1, self.fc2 = nn.Linear(16 * 5 * 5, 120), nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        out = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        out = nn.functional.max_pool2d(torch.relu(self.conv2(out)), 2)
        out = torch.flatten(nn.functional.adaptive_avg_pool2d(out, 5), 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(out)))))


MODELS = {"preact_resnet18": PreActResNet18, "convnet_depth": ConvNetDepth, "mlp": MLP, "lenet": LeNet}


def build_model(name: str, num_classes: int, input_shape: Sequence[int], **kwargs) -> nn.Module:
    """A model of the registry by name, e.g. ``build_model("mlp", 10, (1, 8, 8), width=32)``."""
    if name not in MODELS:
        raise NeffError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    cls = MODELS[name]
    if cls is not MLP and len(input_shape) != 3:
        raise NeffError(f"model {name!r} takes images (channels, height, width), but the data's inputs have "
                        f"shape {tuple(input_shape)}; use model 'mlp' for this data")
    accepted = [p for p in inspect.signature(cls).parameters if p not in ("num_classes", "input_shape")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise NeffError(f"model {name!r} takes {', '.join(accepted) or 'no options'}; "
                        f"got unknown option(s) {', '.join(unknown)}")
    return cls(num_classes, tuple(input_shape), **kwargs)


def build_grid_model(name: str, num_classes: int, input_shape: Sequence[int], width: int, depth: int,
                     **kwargs) -> nn.Module:
    """A model at a point of a figure's width x depth grid: ResNet18's width is k (its depth is
    fixed, the grid's depth is ignored); ConvNetDepth and MLP take both; LeNet neither."""
    axes = {"preact_resnet18": {"k": width}, "convnet_depth": {"width": width, "depth": depth},
            "mlp": {"width": width, "depth": depth}, "lenet": {}}
    if name not in axes:
        raise NeffError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return build_model(name, num_classes, input_shape, **axes[name], **kwargs)


def load_grid_model(name: str, data, width, depth, checkpoint=None, **kwargs) -> nn.Module:
    """:func:`build_grid_model` for a :class:`neff.data.Dataset`, with the weights of
    ``checkpoint`` (a state-dict file) when one is given."""
    model = build_grid_model(name, data.num_classes, data.input_shape, int(width), int(depth), **kwargs)
    return model if checkpoint is None else load_checkpoint(model, checkpoint)


def load_checkpoint(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load weights into ``model`` from a state dict file (also one under a 'model' or
    'state_dict' key), safely (``weights_only=True``), with one clear error if they do not fit."""
    path = Path(path)
    if not path.exists():
        raise NeffError(f"checkpoint {path} does not exist; check the path")
    if _is_text(path):
        raise NeffError(f"checkpoint {path} is a text file, not a PyTorch checkpoint; give the file written "
                        "by torch.save(model.state_dict(), path)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise NeffError(f"checkpoint {path} holds objects other than tensors and plain containers, so "
                        "it cannot be loaded safely (weights_only=True); save it with "
                        "torch.save(model.state_dict(), path)") from None
    except Exception:
        raise NeffError(f"checkpoint {path} is not a readable torch file; check the path or save it "
                        "again with torch.save(model.state_dict(), path)") from None
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise NeffError(f"checkpoint {path} holds no state dict; save it with torch.save(model.state_dict(), path)")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshapen = sorted(k for k in set(expected) & set(state)
                       if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or misshapen:
        problems = [f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                    for label, keys in (("missing", missing), ("unexpected", unexpected),
                                        ("wrong shape", misshapen)) if keys]
        raise NeffError(f"checkpoint {path} does not fit the model ({'; '.join(problems)}); "
                        "build the model with the options it was trained with")
    model.load_state_dict(state)
    return model


def _is_text(path: Path) -> bool:
    """Whether a file's first KiB is text (UTF-8 without NUL bytes); torch files are zip or pickle."""
    with open(path, "rb") as file:
        head = file.read(1024)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(head) and b"\0" not in head


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
