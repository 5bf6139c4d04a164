"""What a batch holds: the model's inputs, the loss's targets and how many examples.

Out of the box a batch is

* an ``(inputs, targets)`` pair, as a DataLoader over a TensorDataset yields; or
* a dict with a ``labels`` entry (the Hugging Face convention): ``labels`` are the targets, the
  other entries (``input_ids``, ``attention_mask``, ...) the model's keyword inputs.

Inputs are one tensor, a tuple or list of them (positional arguments) or a dict (keyword
arguments); targets a tensor or any nest of them. A model's output is a tensor, or a dict with
``logits`` (such as Hugging Face's ``ModelOutput``). Anything else takes two adapters:
``batch_fn(batch) -> (inputs, targets)`` and ``output_fn(output) -> tensor``.

>>> inputs, targets = split_batch({"input_ids": torch.ones(4, 7), "labels": torch.zeros(4)})
>>> sorted(inputs), tuple(targets.shape), count(inputs, targets)
(['input_ids'], (4,), 4)
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

import torch

from .errors import NeffError


def split_batch(batch) -> tuple[Any, Any]:
    """(inputs, targets) of one batch in a default format (module docstring)."""
    if isinstance(batch, Mapping) and "labels" in batch:
        return {key: value for key, value in batch.items() if key != "labels"}, batch["labels"]
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise NeffError(f"a batch is {describe(batch)}, not an (inputs, targets) pair or a dict with 'labels'; "
                    "pass batch_fn=lambda batch: (inputs, targets) to say which is which")


def tensors(nest) -> list[torch.Tensor]:
    """The tensors in a tensor, tuple, list or dict nest, in order."""
    if isinstance(nest, torch.Tensor):
        return [nest]
    if isinstance(nest, Mapping):
        nest = list(nest.values())
    if isinstance(nest, (tuple, list)):
        return [t for item in nest for t in tensors(item)]
    return []


def apply(fn: Callable, nest):
    """``nest`` with ``fn`` applied to each of its tensors (other leaves kept)."""
    if isinstance(nest, torch.Tensor):
        return fn(nest)
    if isinstance(nest, Mapping):
        return {key: apply(fn, value) for key, value in nest.items()}
    if isinstance(nest, (tuple, list)):
        return type(nest)(apply(fn, item) for item in nest)
    return nest


def count(inputs, targets) -> int:
    """The number of examples in a batch: the leading size of its first target tensor (or of
    its first input tensor, for targets without one)."""
    found = tensors(targets) or tensors(inputs)
    if not found or found[0].dim() == 0:
        raise NeffError(f"a batch holds no tensor with a batch dimension (targets {describe(targets)}); "
                        "targets must be tensors with one row per example")
    return found[0].shape[0]


def call(forward: Callable, inputs):
    """``forward`` on inputs given as one tensor, positional arguments or keyword arguments."""
    if isinstance(inputs, Mapping):
        return forward(**inputs)
    if isinstance(inputs, (tuple, list)):
        return forward(*inputs)
    return forward(inputs)


def logits(output) -> torch.Tensor:
    """The tensor a loss takes from a model's output: the output itself, or its ``logits``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and isinstance(output.get("logits"), torch.Tensor):
        return output["logits"]
    raise NeffError(f"the model returns {describe(output)}, not a tensor; pass output_fn=lambda out: out[0] "
                    "(or whichever entry holds the outputs the loss takes), or have its forward return that tensor")


def describe(nest) -> str:
    """A short description of a nest of tensors, for error sentences."""
    if isinstance(nest, torch.Tensor):
        return f"a tensor of shape {tuple(nest.shape)} ({nest.dtype})"
    if isinstance(nest, Mapping):
        return f"a dict with keys {sorted(map(str, nest))}"
    if isinstance(nest, (tuple, list)):
        return f"a {type(nest).__name__} of {len(nest)} ({', '.join(type(item).__name__ for item in nest)})"
    return f"a {type(nest).__name__}"
