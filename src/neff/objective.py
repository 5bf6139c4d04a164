"""The training loss over a whole dataset: the loop over data that every curvature rests on.

An ``Objective`` holds a model, a loss, data and a selection of parameters, and evaluates the
dataset loss with exact batch weighting (its value, its gradient, any per-batch quantity),
keeping each batch's linearisation for later passes when all of them fit in memory.

Semantics:

* ``loss_fn(outputs, targets)`` returns the mean loss of a batch (PyTorch's default
  ``reduction="mean"``) or per-example losses (``reduction="none"``, which neff averages).
* ``reduction="mean"``: (1/N) sum_i loss_i over all N examples; each batch is weighted by its
  size, so a short last batch counts exactly as much as its examples. ``reduction="sum"``:
  sum_i loss_i, i.e. N times the mean. The published curves of Maddox et al. summed
  batch-mean HVPs over B batches, i.e. B times the mean scale: their z corresponds to z / B on
  the mean scale (z = 1 with 391 batches of 128 is z = 2.6e-3 here).
* ``mode="eval"`` (default) evaluates BatchNorm with its running statistics and disables
  Dropout; ``mode="train"`` uses batch statistics. Either way the model's buffers and its
  train/eval flags are the same after every evaluation as before.

The cache (``linearised``): each batch's linearisation is built once per pass, and those of the
first batches that fit in ``cache_gb`` are kept, so later passes skip their forward and backward
passes and rebuild only the rest. The rest's batches (their tensors, not their graphs) are kept
in the order of the first pass, so every pass covers the same batches in the same order: a
shuffling loader gives the same matrix every time. The cache lives as long as the objective;
``cache_gb=0`` turns it off (every pass then reads the data anew).

Batches are weighted by their size: with weights (1, -1), the squared errors of two batches
are (0, 4) and (1,), so the loss is 5/3, not the mean of the batch means (1.5):

>>> from torch import nn
>>> model = nn.Linear(2, 1, bias=False).double()
>>> _ = model.weight.data.copy_(torch.tensor([[1.0, -1.0]]))
>>> X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
>>> y = torch.ones(3, 1, dtype=torch.float64)
>>> Objective(model, nn.MSELoss(), [(X[:2], y[:2]), (X[2:], y[2:])]).value()
1.6666666666666667
>>> Objective(model, nn.MSELoss(), [(X[:2], y[:2]), (X[2:], y[2:])], reduction="sum").value()
5.0
"""
from __future__ import annotations

import copy
import hashlib
import warnings
from typing import Callable, Iterable, Iterator, Sequence

import torch
from torch.func import functional_call, grad_and_value
from torch.nn.attention import SDPBackend, sdpa_kernel

from . import batches as batch_format
from . import distributed as ranks
from .device import free_memory_bytes, module_mode, saved_storages
from .errors import NeffError
from .parameters import FlatLayout, select_parameters

REDUCTIONS = ("mean", "sum")
MODES = ("eval", "train")


def _per_example(loss_fn: Callable) -> Callable:
    """A PyTorch loss module as per-example losses (neff weights batches itself; also avoids a
    forward-mode failure of some mean-reduced losses, e.g. MSELoss, under torch.func)."""
    if not isinstance(loss_fn, torch.nn.modules.loss._Loss):
        return loss_fn
    if loss_fn.reduction == "sum":
        raise NeffError("loss_fn has reduction='sum', which breaks the exact batch weighting; use "
                        "reduction='mean' and pass reduction='sum' to the operator for the summed scale")
    per_example = copy.copy(loss_fn)
    per_example.reduction = "none"
    return per_example


def _check_dropout(model: torch.nn.Module, mode: str) -> None:
    if mode == "train" and any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0
                               for m in model.modules()):
        raise NeffError("mode='train' with Dropout would draw a new mask for every product, so the "
                        "operator would not be one matrix; use mode='eval'")


def _check_data(data, batch_fn: Callable):
    """The data's first batch split into (inputs, targets), or one sentence on what is wrong."""
    if isinstance(data, torch.Tensor) or (
            isinstance(data, tuple) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)):
        raise NeffError("data must be an iterable of (inputs, targets) batches; wrap whole tensors "
                        "as [(X, y)] or pass a DataLoader")
    if iter(data) is data:
        raise NeffError("data is a one-shot iterator (such as a generator) but is read once per "
                        "product; pass a list of batches or a DataLoader")
    try:
        first = next(iter(data))
    except StopIteration:
        raise NeffError("data is empty: it yielded no (inputs, targets) batch; pass at least one "
                        "non-empty batch") from None
    inputs, targets = batch_fn(first)
    if not batch_format.tensors(inputs):
        raise NeffError(f"a batch's inputs are {batch_format.describe(inputs)}, not tensors; each batch must "
                        "hold tensors, as a DataLoader over a TensorDataset yields")
    return inputs, targets


class Objective:
    """The dataset loss of ``model`` under ``loss_fn`` as a function of the parameters selected
    by ``params`` (see ``neff.parameters.select_parameters``), in ``dtype`` on ``device``
    (default: those of the model's first parameter); module docstring for the semantics.
    ``cache_gb``: room for the cache in GB (None: a quarter of the device's free memory).
    ``batch_fn`` and ``output_fn``: adapters for batches and outputs that are not in a default
    format (``neff.batches``). ``loss_fn=None``: outputs only (no loss, no curvature).
    ``distributed=True``: ``data`` is this rank's shard, and every sum over the data is taken
    over all ranks' shards (``neff.distributed``)."""

    def __init__(self, model: torch.nn.Module, loss_fn: Callable | None, data: Iterable,
                 params: str | Sequence[str] = "all", *, reduction: str = "mean",
                 dtype: torch.dtype | None = None, device: str | torch.device | None = None,
                 mode: str = "eval", cache_gb: float | None = None, batch_fn: Callable | None = None,
                 output_fn: Callable | None = None, distributed: bool = False):
        if distributed:
            ranks.require()
            if next(iter(data), None) is None:
                raise NeffError(f"rank {ranks.rank()} of {ranks.world_size()} holds no batch: the data has fewer "
                                "batches than there are ranks; use fewer ranks or smaller batches")
        if reduction not in REDUCTIONS:
            raise NeffError(f"reduction={reduction!r} is unknown; use 'mean' or 'sum'")
        if mode not in MODES:
            raise NeffError(f"mode={mode!r} is unknown; use 'eval' or 'train'")
        if cache_gb is not None and not cache_gb >= 0:
            raise NeffError(f"cache_gb={cache_gb!r} must be a size in GB, 0 (no cache) or None (a "
                            "quarter of the device's free memory)")
        names = select_parameters(model, params)
        _check_dropout(model, mode)
        self.batch_fn = batch_fn or batch_format.split_batch
        self.output_fn = output_fn or batch_format.logits
        first = _check_data(data, self.batch_fn)
        reference = next(model.parameters())
        self.device = torch.device(device) if device is not None else reference.device
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise NeffError(f"device {str(self.device)!r} was asked for but PyTorch sees no CUDA GPU here; use "
                            "device 'cpu' (--device cpu), or a machine and a PyTorch build with CUDA")
        self.dtype = dtype or reference.dtype
        if not self.dtype.is_floating_point:
            raise NeffError(f"dtype={self.dtype} is not a floating type; use torch.float32 or torch.float64")
        self.model, self.loss_fn, self.data = model, _per_example(loss_fn), data
        self.reduction, self.mode, self.distributed = reduction, mode, distributed
        state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        state = {name: self.place(t.detach()).clone() for name, t in state.items()}
        self.primals = {name: state.pop(name) for name in names}
        self.fixed = state
        self.layout = FlatLayout(self.primals)
        self.param_names = names
        self.num_examples: int | None = None
        self.cache_bytes = (free_memory_bytes(self.device) // 4 if cache_gb is None
                            else int(cache_gb * 2**30))
        self.vectorise = self.device.type == "cuda"  # vmap over convolutions is slow on a CPU
        self._cache: list | None = None
        self._rest: list = []
        self.cached_bytes = 0
        self._check_batch(*first)

    @property
    def num_params(self) -> int:
        return self.layout.size

    def flat_params(self) -> torch.Tensor:
        """The selected parameters as one flat vector, in ``layout``'s order."""
        return self.layout.join(self.primals)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n={self.num_params}, params={len(self.param_names)} tensors, "
                f"reduction={self.reduction!r}, mode={self.mode!r}, dtype={self.dtype}, device={self.device})")

    # -- one batch ----------------------------------------------------------------------------
    def place(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` on the objective's device; floating tensors also in its dtype."""
        tensor = tensor.to(self.device, non_blocking=True)
        return tensor.to(self.dtype) if tensor.is_floating_point() else tensor

    def batches(self) -> Iterator[tuple]:
        """The data's (inputs, targets) batches on the objective's device and dtype."""
        return map(self._placed, self.data)

    def _placed(self, batch) -> tuple:
        inputs, targets = self.batch_fn(batch)
        return batch_format.apply(self.place, inputs), batch_format.apply(self.place, targets)

    def data_digest(self) -> str:
        """A hash of the examples as a multiset (a sum of per-example hashes), so a loader that
        shuffles gives the same digest on every pass, and other data a different one."""
        total, count = 0, 0
        for batch in self.data:
            inputs, targets = self.batch_fn(batch)
            rows = [t.detach().cpu().contiguous().reshape(t.shape[0], -1).view(torch.uint8).numpy()
                    for t in batch_format.tensors((inputs, targets)) if t.dim()]
            for i in range(batch_format.count(inputs, targets)):
                example = b"".join(row[i].tobytes() for row in rows)
                total += int.from_bytes(hashlib.blake2b(example, digest_size=8).digest(), "little")
                count += 1
        if self.distributed:  # 32-bit pieces, so that their sums over ranks fit an int64
            pieces = torch.tensor([count, total % 2**64 >> 32, total % 2**32], dtype=torch.int64, device=self.device)
            count, high, low = ranks.sum_over_ranks(pieces).tolist()
            total = (high << 32) + low
        return f"{count}:{total % 2**64:016x}"

    @torch.no_grad()
    def _check_batch(self, inputs, targets) -> None:
        """One forward pass and loss on a first batch, its failures as one sentence each."""
        inputs, targets = batch_format.apply(self.place, inputs), batch_format.apply(self.place, targets)
        batch_format.count(inputs, targets)
        with module_mode(self.model, self.mode == "train"):
            try:
                outputs = self.outputs(self.primals, inputs)
            except NeffError:
                raise
            except Exception as err:
                raise NeffError(f"the model fails on the data's inputs ({batch_format.describe(inputs)}): "
                                f"{_first_line(err)}; build the model for this data (its input shape and "
                                "number of classes)") from None
            try:
                if self.loss_fn is not None:
                    with warnings.catch_warnings():
                        warnings.filterwarnings("error", ".*broadcast")  # MSELoss's warning that it broadcasts
                        self.batch_loss(outputs, targets)
            except Exception as err:
                raise NeffError(_loss_failure(self.loss_fn, outputs, targets, err)) from None

    def _state(self) -> dict:
        # Train mode may update BatchNorm running statistics in place: give it copies.
        if self.mode == "train":
            return {name: t.clone() for name, t in self.fixed.items()}
        return self.fixed

    def outputs(self, primals: dict, inputs) -> torch.Tensor:
        """The model's outputs at the named parameters ``primals``, its buffers untouched.
        Attention runs on PyTorch's math kernel: the fused kernels have no double backward."""
        state = (primals, self._state())
        with sdpa_kernel(SDPBackend.MATH):
            output = batch_format.call(lambda *args, **kwargs: functional_call(self.model, state, args, kwargs),
                                       inputs)
        return self.output_fn(output)

    def batch_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The mean loss of one batch's outputs."""
        loss = self.loss_fn(outputs, targets)
        return loss.mean() if loss.dim() else loss

    def loss(self, primals: dict, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean loss of one batch as a function of the selected parameters."""
        return self.batch_loss(self.outputs(primals, inputs), targets)

    # -- over the data ------------------------------------------------------------------------
    def weighted_sum(self, values: Iterable[tuple[int, torch.Tensor]]) -> tuple[torch.Tensor, int]:
        """Size-weighted sum of per-batch (size, value) pairs, scaled by the reduction, and the
        number of examples seen; ``values`` is read in the objective's module mode."""
        total, count = None, 0
        with module_mode(self.model, self.mode == "train"):
            for size, value in values:
                total = value * size if total is None else total.add_(value, alpha=size)
                count += size
        if self.distributed and count:
            ranks.sum_over_ranks(total)
            count = int(ranks.sum_over_ranks(torch.tensor([count], dtype=torch.int64, device=total.device)))
        if count == 0:
            raise NeffError("data is empty: it yielded no examples; pass at least one non-empty batch")
        self.num_examples = count
        total = total.detach()  # train-mode BatchNorm can leave a graph on the result
        if self.reduction == "mean":
            total = total / count
        if not torch.isfinite(total).all():
            raise NeffError("the loss or its derivatives are not finite (NaN or inf) on this data; "
                            "check the inputs, the model's parameters and the loss function")
        return total, count

    def over_data(self, per_batch: Callable) -> tuple[torch.Tensor, int]:
        """``weighted_sum`` of ``per_batch(inputs, targets)``, a batch mean, over the data:
        (the dataset's value on the reduction's scale, the number of examples)."""
        return self.weighted_sum((batch_format.count(inputs, targets), per_batch(inputs, targets))
                                 for inputs, targets in self.batches())

    @torch.no_grad()
    def value(self) -> float:
        """The dataset loss."""
        return float(self.over_data(lambda inputs, targets: self.loss(self.primals, inputs, targets))[0])

    def loss_and_gradient(self) -> tuple[float, torch.Tensor]:
        """The dataset loss and its gradient in the selected parameters (same weighting)."""
        def per_batch(inputs, targets):
            g, value = grad_and_value(self.loss)(self.primals, inputs, targets)
            return torch.cat([self.layout.join(g), value.reshape(1)])

        total, _ = self.over_data(per_batch)
        return float(total[-1]), total[:-1]

    # -- the cache ----------------------------------------------------------------------------
    def linearised(self, build: Callable, block: bool) -> Iterator[tuple[int, Callable]]:
        """(batch size, ``build(inputs, targets, vectorised)``) for every batch, the first ones
        that fit in ``cache_bytes`` kept for later passes (module docstring); when not even the
        first fits, ``cache_bytes`` becomes 0. ``vectorised``: the linearisation will get whole
        blocks (``vectorise``, and ``block`` or a cache), else one vector at a time. The cache
        keeps what the first pass built: one ``build`` per objective."""
        vectorised = self.vectorise and block
        if self._cache is not None:
            yield from self._cache
            for inputs, targets in map(self._placed, self._rest):
                yield batch_format.count(inputs, targets), build(inputs, targets, vectorised)
            return
        if self.cache_bytes <= 0:
            for inputs, targets in self.batches():
                yield batch_format.count(inputs, targets), build(inputs, targets, vectorised)
            return
        kept, rest, room = [], [], self.cache_bytes
        for batch in self.data:
            inputs, targets = self._placed(batch)
            count = batch_format.count(inputs, targets)
            if rest:  # past the cached prefix
                rest.append(batch)
                yield count, build(inputs, targets, vectorised)
                continue
            linearisation, size = self._measured(build, inputs, targets)
            if size is not None and size <= room:
                room -= size
                kept.append((count, linearisation))
            else:
                rest.append(batch)
            yield count, linearisation
        if kept:
            self._cache, self._rest = kept, rest
            self.cached_bytes = self.cache_bytes - room
        else:
            self.cache_bytes = 0

    @property
    def cached_batches(self) -> int:
        """How many batches' linearisations the cache keeps (0 before the first pass; their
        size in bytes is ``cached_bytes``)."""
        return len(self._cache or ())

    def _measured(self, build: Callable, inputs, targets) -> tuple[Callable, int | None]:
        """A batch's linearisation and about how many bytes it holds (with its data), or None
        where that cannot be measured (``torch.func`` refuses saved-tensor hooks on a CPU)."""
        data = sum(t.nbytes for t in batch_format.tensors((inputs, targets)))
        if self.device.type == "cuda":
            linearisation, size = self.built_size(build, inputs, targets, self.vectorise)
            return linearisation, size + data
        if self.vectorise:
            return build(inputs, targets, True), None
        linearisation, size = self.built_size(build, inputs, targets, False)
        gradient = sum(t.nbytes for t in self.primals.values())
        return linearisation, size + data + gradient

    def built_size(self, build: Callable, inputs, targets, vectorised: bool) -> tuple[Callable, int]:
        """``build(inputs, targets, vectorised)`` and the bytes it holds: on a GPU what building it
        allocates, on a CPU the storages autograd saves for it other than the parameters' own
        (eager autograd only: ``torch.func`` refuses the hooks there)."""
        if self.device.type == "cuda":
            before = torch.cuda.memory_allocated(self.device)
            built = build(inputs, targets, vectorised)
            return built, torch.cuda.memory_allocated(self.device) - before
        with saved_storages() as saved:
            built = build(inputs, targets, vectorised)
        shared = {t.untyped_storage().data_ptr() for t in self.primals.values()}
        return built, sum(size for ptr, size in saved.items() if ptr not in shared)


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _loss_failure(loss_fn: Callable, outputs, targets, err: Exception) -> str:
    """One sentence on a loss that fails on a batch, with the likely fix."""
    what = f"the model's outputs ({batch_format.describe(outputs)}) and targets ({batch_format.describe(targets)})"
    if (isinstance(loss_fn, (torch.nn.MSELoss, torch.nn.L1Loss)) and isinstance(targets, torch.Tensor)
            and outputs.shape != targets.shape):
        return (f"{type(loss_fn).__name__} would broadcast {what} to another shape; give targets of the outputs' "
                "shape (e.g. targets.unsqueeze(1) for one output)")
    if (isinstance(loss_fn, (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss)) and isinstance(targets, torch.Tensor)
            and targets.is_floating_point() and targets.dim() == outputs.dim() - 1):
        return (f"{type(loss_fn).__name__} takes integer class labels but the targets are {targets.dtype} "
                f"({what}); convert them with targets.long(), or use a regression loss such as MSELoss")
    return f"the loss fails on {what}: {_first_line(err)}; give a loss that takes these outputs and targets"
