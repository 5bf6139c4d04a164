"""Curvature of the training loss over a whole dataset, as a linear operator on parameter space.

``HessianOperator`` applies H, the Hessian of the dataset loss, to vectors; ``GGNOperator``
applies the generalised Gauss-Newton matrix J^T H_loss J. Both share the machinery here:
parameter selection, exact batch weighting, BatchNorm/Dropout handling, dtype/device placement
and the per-batch cache. H is applied by double backward through each batch's gradient graph;
a block of vectors is applied to one graph, vectorised on a GPU and in turn on a CPU.

Each batch's linearisation (for H: the graph of its gradient) is built once per pass and, when
the linearisations of all batches fit in ``cache_gb``, kept: later products skip the forward and
backward passes and apply only the second backward (measured 1.3-2.3x faster on a CPU and a GPU,
BENCHMARKS.md). The cache holds the data's first pass, so a shuffling loader gives the same
matrix every time; it lives as long as the operator. ``cache_gb=0`` turns it off.

Objective semantics (the thing whose curvature is measured):

* ``loss_fn(outputs, targets)`` returns the mean loss of a batch (PyTorch's default
  ``reduction="mean"``) or per-example losses (``reduction="none"``, which neff averages).
* ``reduction="mean"``: H of (1/N) sum_i loss_i over all N examples; each batch is weighted by
  its size, so a short last batch counts exactly as much as its examples.
  ``reduction="sum"``: H of sum_i loss_i, i.e. N times the mean. The published curves of
  Maddox et al. summed batch-mean HVPs over B batches, i.e. B times the mean scale: their z
  corresponds to z / B on the mean scale (z = 1 with 391 batches of 128 is z = 2.6e-3 here).
* ``mode="eval"`` (default) evaluates BatchNorm with its running statistics and disables
  Dropout; ``mode="train"`` uses batch statistics. Either way the model's buffers and its
  train/eval flags are the same after every product as before.
"""
from __future__ import annotations

import copy
import hashlib
import os
from contextlib import contextmanager
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch.func import functional_call, grad, grad_and_value, jvp, vjp, vmap

from .errors import NeffError
from .parameters import FlatLayout, select_parameters

REDUCTIONS = ("mean", "sum")
MODES = ("eval", "train")


def default_device() -> torch.device:
    """The first CUDA device when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def module_mode(model: torch.nn.Module, training: bool):
    """Put every submodule in train or eval mode for the block, then restore each flag."""
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
    """Record the storages autograd saves for backward inside the block: {data_ptr: bytes}."""
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield seen


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


def _check_data(data) -> None:
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
    if not (isinstance(first, (tuple, list)) and len(first) == 2
            and all(isinstance(t, torch.Tensor) for t in first)):
        raise NeffError("each batch of data must be an (inputs, targets) pair of tensors, as a "
                        "DataLoader over a TensorDataset yields")


class CurvatureOperator:
    """Shared machinery of the dataset-level curvature operators (see the module docstring)."""

    kind = "curvature"

    def __init__(self, model: torch.nn.Module, loss_fn: Callable, data: Iterable,
                 params: str | Sequence[str] = "all", *, reduction: str = "mean",
                 dtype: torch.dtype | None = None, device: str | torch.device | None = None,
                 mode: str = "eval", chunk_size: int | None = None, cache_gb: float | None = None):
        if reduction not in REDUCTIONS:
            raise NeffError(f"reduction={reduction!r} is unknown; use 'mean' or 'sum'")
        if mode not in MODES:
            raise NeffError(f"mode={mode!r} is unknown; use 'eval' or 'train'")
        if cache_gb is not None and not cache_gb >= 0:
            raise NeffError(f"cache_gb={cache_gb!r} must be a size in GB, 0 (no cache) or None (a "
                            "quarter of the device's free memory)")
        names = select_parameters(model, params)
        _check_dropout(model, mode)
        _check_data(data)
        reference = next(model.parameters())
        self.device = torch.device(device) if device is not None else reference.device
        self.dtype = dtype or reference.dtype
        if not self.dtype.is_floating_point:
            raise NeffError(f"dtype={self.dtype} is not a floating type; use torch.float32 or torch.float64")
        self.model, self.loss_fn, self.data = model, _per_example(loss_fn), data
        self.reduction, self.mode, self.chunk_size = reduction, mode, chunk_size
        state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        state = {name: self._place(t.detach()).clone() for name, t in state.items()}
        self.primals = {name: state.pop(name) for name in names}
        self.fixed = state
        self.layout = FlatLayout(self.primals)
        self.param_names = names
        self.num_examples: int | None = None
        self.n_hvp = 0
        self.cache_bytes = (free_memory_bytes(self.device) // 4 if cache_gb is None
                            else int(cache_gb * 2**30))
        self.vectorise = self.device.type == "cuda"  # vmap over convolutions is slow on a CPU
        self._cache: list | None = None
        self._fingerprint: str | None = None

    # -- shape and identity -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return (self.layout.size, self.layout.size)

    @property
    def num_params(self) -> int:
        return self.layout.size

    def flat_params(self) -> torch.Tensor:
        return self.layout.join(self.primals)

    def fingerprint(self) -> str:
        """A hash of what defines the operator's matrix apart from the data: its kind,
        reduction, mode, dtype and the selected parameters' names, shapes and values. The data
        is not hashed: keep it fixed between a run and its resumption."""
        if self._fingerprint is None:
            digest = hashlib.sha256(f"{self.kind}|{self.reduction}|{self.mode}|{self.dtype}".encode())
            for name, tensor in self.primals.items():
                digest.update(f"{name}{tuple(tensor.shape)}".encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    # -- data ---------------------------------------------------------------------------------
    def _place(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self.device, non_blocking=True)
        return tensor.to(self.dtype) if tensor.is_floating_point() else tensor

    def batches(self):
        """The data's (inputs, targets) batches on the operator's device and dtype."""
        for inputs, targets in self.data:
            yield self._place(inputs), self._place(targets)

    def _state(self) -> dict:
        # Train mode may update BatchNorm running statistics in place: give it copies.
        if self.mode == "train":
            return {name: t.clone() for name, t in self.fixed.items()}
        return self.fixed

    def outputs(self, primals: dict, inputs: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, (primals, self._state()), (inputs,))

    def batch_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(outputs, targets)
        return loss.mean() if loss.dim() else loss

    def loss(self, primals: dict, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean loss of one batch as a function of the selected parameters."""
        return self.batch_loss(self.outputs(primals, inputs), targets)

    def _weighted_sum(self, values: Iterable[tuple[int, torch.Tensor]]) -> tuple[torch.Tensor, int]:
        """Size-weighted sum of per-batch (size, value) pairs, scaled by the reduction, and the
        number of examples seen."""
        total, count = None, 0
        with module_mode(self.model, self.mode == "train"):
            for size, value in values:
                total = value * size if total is None else total.add_(value, alpha=size)
                count += size
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

    def _over_data(self, per_batch: Callable) -> tuple[torch.Tensor, int]:
        """``_weighted_sum`` of ``per_batch(inputs, targets)`` over the data."""
        return self._weighted_sum((inputs.shape[0], per_batch(inputs, targets))
                                  for inputs, targets in self.batches())

    # -- products -----------------------------------------------------------------------------
    def linearise(self, inputs, targets, vectorised: bool) -> Callable[[dict], dict]:
        """For one batch's mean loss, the map from tangents (named tensors with a leading block
        dimension) to their curvature products; ``vectorised``: it will get whole blocks, else
        one vector at a time."""
        raise NotImplementedError

    def _linearised(self, block: bool):
        """(size, linearisation) for every batch, kept for later passes when all of them fit in
        ``cache_bytes`` (module docstring); when they do not, ``cache_bytes`` becomes 0 and each
        pass rebuilds them."""
        if self._cache is not None:
            yield from self._cache
            return
        if self.cache_bytes <= 0:
            yield from ((inputs.shape[0], self.linearise(inputs, targets, self.vectorise and block))
                        for inputs, targets in self.batches())
            return
        kept, room = [], self.cache_bytes
        for inputs, targets in self.batches():
            linearisation, size = self._measured(inputs, targets)
            item = (inputs.shape[0], linearisation)
            room = -1 if size is None else room - size  # unmeasured: no cache
            if room >= 0:
                kept.append(item)
            else:
                kept.clear()  # all or nothing: part of a pass is no use to the next pass
            yield item
        if room >= 0:
            self._cache = kept
        else:
            self.cache_bytes = 0

    def _measured(self, inputs, targets) -> tuple[Callable, int | None]:
        """A batch's linearisation and about how many bytes it holds (with its data), or None
        where that cannot be measured (``torch.func`` refuses saved-tensor hooks on a CPU)."""
        data = inputs.nbytes + targets.nbytes
        if self.device.type == "cuda":
            before = torch.cuda.memory_allocated(self.device)
            linearisation = self.linearise(inputs, targets, self.vectorise)
            return linearisation, torch.cuda.memory_allocated(self.device) - before + data
        if self.vectorise:
            return self.linearise(inputs, targets, True), None
        with saved_storages() as saved:
            linearisation = self.linearise(inputs, targets, False)
        shared = {t.untyped_storage().data_ptr() for t in self.primals.values()}
        gradient = sum(t.nbytes for t in self.primals.values())
        return linearisation, sum(size for ptr, size in saved.items() if ptr not in shared) + data + gradient

    def _apply(self, linearisation: Callable, tangents: dict, size: int) -> torch.Tensor:
        """The (size, n) products of one batch: the whole block at once (or in chunks of
        ``chunk_size``) where vectorised, one vector at a time otherwise."""
        step = (self.chunk_size or size) if self.vectorise else 1
        parts = []
        for i in range(0, size, step):
            products = linearisation({name: t[i:i + step] for name, t in tangents.items()})
            parts.append(self.layout.join(products, lead=(min(step, size - i),)))
        return torch.cat(parts)

    def _block(self, rows: torch.Tensor) -> torch.Tensor:
        """Products for the rows of a (b, n) block in one pass over the data."""
        tangents = self.layout.split(rows)
        b = rows.shape[0]
        total, _ = self._weighted_sum((size, self._apply(linearisation, tangents, b))
                                      for size, linearisation in self._linearised(b > 1))
        self.n_hvp += b
        return total

    def matmat(self, V):
        """C V for V of shape (n, b); numpy in, numpy (float64) out; torch keeps dtype and device."""
        as_numpy = isinstance(V, np.ndarray)
        block = torch.as_tensor(V)
        if block.dim() != 2 or block.shape[0] != self.num_params:
            raise NeffError(f"expected a block of shape ({self.num_params}, b), got {tuple(block.shape)}")
        out = self._block(self._place(block.T).contiguous()).T
        return out.detach().cpu().double().numpy() if as_numpy else out.to(block.device, block.dtype)

    def matvec(self, v):
        """C v for v of shape (n,)."""
        return self.matmat(v.reshape(-1, 1))[:, 0]

    def __matmul__(self, other):
        return self.matvec(other) if other.ndim == 1 else self.matmat(other)

    def to_scipy(self) -> LinearOperator:
        """A float64 ``scipy.sparse.linalg.LinearOperator`` view (for eigsh, cg, ...)."""
        return LinearOperator(self.shape, matvec=self.matvec, rmatvec=self.matvec,
                              matmat=self.matmat, rmatmat=self.matmat, dtype=np.float64)

    def loss_and_gradient(self) -> tuple[float, torch.Tensor]:
        """The dataset loss and its gradient in the selected parameters (same weighting)."""
        def per_batch(inputs, targets):
            g, value = grad_and_value(self.loss)(self.primals, inputs, targets)
            return torch.cat([self.layout.join(g), value.reshape(1)])

        total, _ = self._over_data(per_batch)
        return float(total[-1]), total[:-1]

    def dense_batch(self, inputs, targets) -> torch.Tensor:
        """The (n, n) curvature of one batch, built without the product code (for validation)."""
        raise NotImplementedError

    def dense(self) -> torch.Tensor:
        """The whole (n, n) matrix over the data, same weighting; for small models only."""
        return self._over_data(self.dense_batch)[0]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n={self.num_params}, params={len(self.param_names)} tensors, "
                f"reduction={self.reduction!r}, mode={self.mode!r}, dtype={self.dtype}, device={self.device})")


class HessianOperator(CurvatureOperator):
    """H v for the Hessian of the dataset loss: double backward through each batch's gradient
    graph, built once per batch and pass (or once in all, when cached). A graph applied one
    vector at a time comes from eager autograd (uncached products 1.5x faster than with
    ``torch.func`` on the H200 ResNet and a CPU MLP). One that gets whole blocks (on a GPU:
    blocks, and every cached graph) is ``torch.func``'s pullback of the gradient, whose
    ``vmap`` runs 3x faster on convolutions than autograd's batched gradients (BENCHMARKS.md)."""

    kind = "hessian"

    def linearise(self, inputs, targets, vectorised):
        if vectorised:
            pullback = vjp(grad(lambda p: self.loss(p, inputs, targets)), self.primals)[1]

            def apply_all(tangents):
                if next(iter(tangents.values())).shape[0] == 1:
                    one = pullback({name: t[0] for name, t in tangents.items()})[0]
                    return {name: t.unsqueeze(0) for name, t in one.items()}
                return vmap(lambda t: pullback(t)[0])(tangents)
            return apply_all
        leaves = {name: t.detach().requires_grad_() for name, t in self.primals.items()}
        gradient = torch.autograd.grad(self.loss(leaves, inputs, targets), list(leaves.values()),
                                       create_graph=True)
        # a gradient component without a graph is constant: it adds nothing to H v
        live = [i for i, g in enumerate(gradient) if g.requires_grad]
        outputs = [gradient[i] for i in live]

        def apply_each(tangents):
            vectors = [t[0] for t in tangents.values()]
            found = [None] * len(vectors)
            if outputs:
                found = torch.autograd.grad(outputs, list(leaves.values()), [vectors[i] for i in live],
                                            retain_graph=True, allow_unused=True)
            return {name: (torch.zeros_like(v) if f is None else f).unsqueeze(0)
                    for name, v, f in zip(leaves, vectors, found)}
        return apply_each

    def dense_batch(self, inputs, targets):
        def flat_loss(flat):
            return self.loss(self.layout.split(flat), inputs, targets)
        # one row at a time through a flat-vector loss, without the products' graphs or cache
        # (torch.func.hessian measured 3.5x slower on a 1,782-parameter MLP)
        return torch.autograd.functional.hessian(flat_loss, self.flat_params())


class GGNOperator(CurvatureOperator):
    """G v = J^T H_loss J v, the generalised Gauss-Newton matrix (positive semi-definite for
    convex losses such as cross-entropy and squared error)."""

    kind = "ggn"

    def linearise(self, inputs, targets, vectorised):
        return vmap(lambda tangent: self.batch_product(inputs, targets, tangent))

    def batch_product(self, inputs, targets, tangent):
        def forward(p):
            return self.outputs(p, inputs)
        outputs, jv = jvp(forward, (self.primals,), (tangent,))
        loss_grad = grad(lambda o: self.batch_loss(o, targets))
        hjv = jvp(loss_grad, (outputs,), (jv,))[1]
        return vjp(forward, self.primals)[1](hjv)[0]

    def dense_batch(self, inputs, targets):
        flat = self.flat_params()
        outputs = self.outputs(self.primals, inputs)
        jac = torch.func.jacrev(lambda f: self.outputs(self.layout.split(f), inputs))(flat)
        jac = jac.reshape(outputs.numel(), -1)
        h_out = torch.func.hessian(lambda o: self.batch_loss(o.reshape(outputs.shape), targets))(
            outputs.reshape(-1))
        return jac.T @ h_out @ jac
