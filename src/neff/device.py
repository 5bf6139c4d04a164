"""Where tensors live and how much room they take: the device, module modes and memory."""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch


def default_device() -> torch.device:
    """The first CUDA device when there is one, else the CPU.

    >>> default_device().type in ("cuda", "cpu")
    True
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def module_mode(model: torch.nn.Module, training: bool):
    """Put every submodule in train or eval mode for the block, then restore each flag.

    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout()).eval()
    >>> model[1].train()  # doctest: +ELLIPSIS
    Dropout(...)
    >>> with module_mode(model, True):
    ...     all(m.training for m in model.modules())
    True
    >>> [m.training for m in model.modules()]
    [False, False, True]
    """
    flags = [(module, module.training) for module in model.modules()]
    model.train(training)
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def free_memory_bytes(device: torch.device) -> int:
    """Free memory on ``device`` (CUDA: the driver's count; CPU: free physical pages, or an
    eighth of physical memory where the system does not report free pages)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    page = os.sysconf("SC_PAGE_SIZE")
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * page
    except (ValueError, OSError):
        return os.sysconf("SC_PHYS_PAGES") * page // 8


@contextmanager
def saved_storages():
    """Record the storages autograd saves for backward inside the block: {data_ptr: bytes}.

    >>> x = torch.ones(4, requires_grad=True)
    >>> with saved_storages() as saved:
    ...     y = (x * x).sum()
    >>> list(saved.values())
    [16]
    """
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield seen
