"""Curvature of the training loss over a whole dataset, as a linear operator on parameter space.

For the dataset loss L(theta) = sum_b w_b L_b(theta) of an ``Objective`` (batch means L_b,
weights w_b = |b| / N, or |b| for ``reduction="sum"``; ``neff.objective`` for the semantics):

* ``HessianOperator`` applies H = sum_b w_b d^2 L_b / d theta^2;
* ``GGNOperator`` applies G = sum_b w_b J_b^T H_b J_b, with J_b the Jacobian of batch b's
  outputs in theta and H_b the Hessian of its mean loss in those outputs.

Each batch's linearisation (for H: the graph of its gradient; for G: the graphs of its outputs
and of the loss's gradient in them) is built once per pass and kept by the objective's cache
when all of them fit, so later products run backward passes only. A block of vectors is
applied to one linearisation, vectorised on a GPU and in turn on a CPU.

The Hessian of the mean squared error of a linear model is 2 X^T X / n:

>>> from torch import nn
>>> X = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
>>> y = X @ torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
>>> model = nn.Linear(3, 1, bias=False).double()
>>> data = [(X[:4], y[:4]), (X[4:], y[4:])]
>>> torch.allclose(HessianOperator(model, nn.MSELoss(), data).dense(), 2 * X.T @ X / 6)
True
>>> torch.allclose(GGNOperator(model, nn.MSELoss(), data).matmat(torch.eye(3, dtype=torch.float64)),
...                2 * X.T @ X / 6)
True
"""
from __future__ import annotations

import hashlib
from typing import Callable, Mapping, Sequence

import torch
from torch.func import grad, vjp, vmap

from . import distributed as ranks
from .device import free_memory_bytes
from .errors import NeffError
from .linear import Products
from .objective import Objective


def _blockwise(product: Callable[[dict], dict]) -> Callable[[dict], dict]:
    """A product of one tangent (named tensors) applied to a block of them: ``vmap`` over the
    leading dimension, or the product itself for a block of one."""
    def apply_all(tangents):
        if next(iter(tangents.values())).shape[0] == 1:
            one = product({name: t[0] for name, t in tangents.items()})
            return {name: t.unsqueeze(0) for name, t in one.items()}
        return vmap(product)(tangents)
    return apply_all


def _named(leaves: dict, vectors: list, found) -> dict:
    """Products by name with a block dimension of one; a gradient autograd left unused (None)
    is zero."""
    return {name: (torch.zeros_like(v) if f is None else f).unsqueeze(0)
            for name, v, f in zip(leaves, vectors, found)}


class CurvatureOperator(Products, Objective):
    """A curvature matrix C of an ``Objective``'s dataset loss, applied by ``matmat`` and
    ``matvec`` (numpy or torch) or viewed by ``to_scipy``. Takes the ``Objective``'s arguments,
    and for blocks of vectors under ``vmap`` (on a GPU) ``chunk_size``, at most that many vectors
    at once, or ``memory_gb``, the room for one chunk's products (None: half the device's free
    memory when first measured): the chunk is then as many vectors as fit, at the size of a
    batch's linearisation per vector (``vector_bytes``, measured once on the first batch)."""

    kind = "curvature"

    def __init__(self, *args, chunk_size: int | None = None, memory_gb: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if chunk_size is not None and not chunk_size >= 1:
            raise NeffError(f"chunk_size={chunk_size!r} must be a positive number of vectors, or None")
        if memory_gb is not None and not memory_gb > 0:
            raise NeffError(f"memory_gb={memory_gb!r} must be a positive size in GB, or None (half the "
                            "device's free memory)")
        self.chunk_size, self.memory_gb = chunk_size, memory_gb
        self.vector_bytes: int | None = None
        self.n_hvp = 0
        self._fingerprint: str | None = None

    @classmethod
    def groups(cls, model: torch.nn.Module, loss_fn: Callable, data,
               groups: Mapping[str, str | Sequence[str]], **kwargs) -> dict[str, "CurvatureOperator"]:
        """One operator per named group of parameters, each a ``params`` selection such as
        ``{"attention": ["*.self_attn.*"], "head": ["head.*"]}``: the diagonal blocks of the
        whole matrix, for comparing layers. ``top_eigenpairs`` and ``estimate_effective_dimension``
        take the dict and return one result per group. Each group keeps its own cache."""
        return {name: cls(model, loss_fn, data, params, **kwargs) for name, params in groups.items()}

    @property
    def shape(self) -> tuple[int, int]:
        return (self.num_params, self.num_params)

    def fingerprint(self) -> str:
        """A hash of what defines the operator's matrix: its kind, reduction, mode, dtype, the
        selected parameters' names, shapes and values, and the data (``data_digest``)."""
        if self._fingerprint is None:
            digest = hashlib.sha256(f"{self.kind}|{self.reduction}|{self.mode}|{self.dtype}".encode())
            for name, tensor in self.primals.items():
                digest.update(f"{name}{tuple(tensor.shape)}".encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            digest.update(self.data_digest().encode())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def linearise(self, inputs, targets, vectorised: bool) -> Callable[[dict], dict]:
        """For one batch's mean loss, the map from tangents (named tensors with a leading block
        dimension) to their curvature products; ``vectorised``: it will get whole blocks, else
        one vector at a time."""
        raise NotImplementedError

    def _build(self, inputs, targets, vectorised: bool) -> Callable[[dict], dict]:
        """``linearise``, measuring ``vector_bytes`` on the first vectorised batch."""
        if vectorised and self.chunk_size is None and self.vector_bytes is None:
            self.vector_bytes = self._linearisation_bytes(inputs, targets)
        return self.linearise(inputs, targets, vectorised)

    def _linearisation_bytes(self, inputs, targets) -> int:
        """The memory one batch's linearisation holds (``built_size``; on a CPU, of the eager one)."""
        return max(self.built_size(self.linearise, inputs, targets, self.device.type == "cuda")[1], 1)

    def chunk(self, size: int) -> int:
        """How many of ``size`` vectors go under one ``vmap``: ``chunk_size``, or as many as fit
        the memory budget (class docstring), at least one; one at a time where not vectorised."""
        if not self.vectorise:
            return 1
        if self.chunk_size is not None or self.vector_bytes is None:
            return min(self.chunk_size or size, size)
        budget = (free_memory_bytes(self.device) // 2 if self.memory_gb is None
                  else int(self.memory_gb * 2**30))
        return max(1, min(size, budget // self.vector_bytes))

    def _apply(self, linearisation: Callable, tangents: dict, size: int) -> torch.Tensor:
        """The (size, n) products of one batch, in chunks of ``chunk(size)`` vectors."""
        step = self.chunk(size)
        parts = []
        for i in range(0, size, step):
            products = linearisation({name: t[i:i + step] for name, t in tangents.items()})
            parts.append(self.layout.join(products, lead=(min(step, size - i),)))
        return torch.cat(parts)

    def _block(self, rows: torch.Tensor) -> torch.Tensor:
        """Products for the rows of a (b, n) block in one pass over the data (or the cache)."""
        tangents = self.layout.split(rows)
        b = rows.shape[0]
        total, _ = self.weighted_sum((size, self._apply(linearisation, tangents, b))
                                     for size, linearisation in self.linearised(self._build, b > 1))
        self.n_hvp += b
        return total

    def _products(self, block: torch.Tensor) -> torch.Tensor:
        rows = self.place(block.T).contiguous()
        if self.distributed:  # every rank multiplies rank 0's vectors (neff.distributed)
            ranks.from_main(rows)
        return self._block(rows).T

    def dense_batch(self, inputs, targets) -> torch.Tensor:
        """The (n, n) curvature of one batch, built without the product code (for validation)."""
        raise NotImplementedError

    def dense(self) -> torch.Tensor:
        """The whole (n, n) matrix over the data, same weighting; for small models only."""
        return self.over_data(self.dense_batch)[0]


class HessianOperator(CurvatureOperator):
    """H v for the Hessian of the dataset loss: double backward through each batch's gradient
    graph, built once per batch and pass (or once in all, when cached). A graph applied one
    vector at a time comes from eager autograd, whose uncached products are faster than
    ``torch.func``'s. One that gets whole blocks (on a GPU: blocks, and every cached graph) is
    ``torch.func``'s pullback of the gradient, whose ``vmap`` runs faster on convolutions than
    autograd's batched gradients (BENCHMARKS.md)."""

    kind = "hessian"

    def linearise(self, inputs, targets, vectorised):
        if vectorised:
            pullback = vjp(grad(lambda p: self.loss(p, inputs, targets)), self.primals)[1]
            return _blockwise(lambda tangent: pullback(tangent)[0])
        leaves = {name: t.detach().requires_grad_() for name, t in self.primals.items()}
        gradient = torch.autograd.grad(self.loss(leaves, inputs, targets), list(leaves.values()),
                                       create_graph=True, allow_unused=True)
        # a gradient component without a graph (or of a parameter the loss never uses) is
        # constant: it adds nothing to H v
        live = [i for i, g in enumerate(gradient) if g is not None and g.requires_grad]
        outputs = [gradient[i] for i in live]

        def apply_each(tangents):
            vectors = [t[0] for t in tangents.values()]
            found = [None] * len(vectors)
            if outputs:
                found = torch.autograd.grad(outputs, list(leaves.values()), [vectors[i] for i in live],
                                            retain_graph=True, allow_unused=True)
            return _named(leaves, vectors, found)
        return apply_each

    def dense_batch(self, inputs, targets):
        def flat_loss(flat):
            return self.loss(self.layout.split(flat), inputs, targets)
        # one row at a time through a flat-vector loss, without the products' graphs or cache
        # (torch.func.hessian measured slower, BENCHMARKS.md)
        return torch.autograd.functional.hessian(flat_loss, self.flat_params())


class GGNOperator(CurvatureOperator):
    """G v = J^T H_loss J v, the generalised Gauss-Newton matrix (positive semi-definite for
    convex losses such as cross-entropy and squared error). Each batch's outputs and the loss's
    gradient in them are built once (and cached like the Hessian's graphs); a product is then
    three backward passes: J v as the transpose of the linear pullback u -> J^T u, H_loss (J v)
    by double backward through the loss's gradient, and J^T of that. Eager autograd one vector
    at a time, ``torch.func``'s pullbacks under ``vmap`` for whole blocks."""

    kind = "ggn"

    def linearise(self, inputs, targets, vectorised):
        if vectorised:
            outputs, pullback = vjp(lambda p: self.outputs(p, inputs), self.primals)
            push = vjp(lambda u: pullback(u)[0], torch.zeros_like(outputs))[1]  # J, the transpose of J^T
            curvature = vjp(grad(lambda o: self.batch_loss(o, targets)), outputs)[1]  # H_loss, symmetric
            return _blockwise(lambda tangent: pullback(curvature(push(tangent)[0])[0])[0])
        leaves = {name: t.detach().requires_grad_() for name, t in self.primals.items()}
        params = list(leaves.values())
        outputs = self.outputs(leaves, inputs)
        point = outputs.detach().requires_grad_()
        loss_grad = torch.autograd.grad(self.batch_loss(point, targets), point, create_graph=True)[0]
        cotangent = torch.zeros_like(outputs, requires_grad=True)
        pulled = torch.autograd.grad(outputs, params, cotangent, create_graph=True, allow_unused=True)
        live = [i for i, g in enumerate(pulled) if g is not None]  # the others do not move the outputs

        def apply_each(tangents):
            vectors = [t[0] for t in tangents.values()]
            jv = torch.autograd.grad([pulled[i] for i in live], cotangent, [vectors[i] for i in live],
                                     retain_graph=True)[0]
            hjv = (torch.autograd.grad(loss_grad, point, jv, retain_graph=True)[0]
                   if loss_grad.requires_grad else torch.zeros_like(jv))  # a linear loss: H_loss = 0
            found = torch.autograd.grad(outputs, params, hjv, retain_graph=True, allow_unused=True)
            return _named(leaves, vectors, found)
        return apply_each

    def dense_batch(self, inputs, targets):
        flat = self.flat_params()
        outputs = self.outputs(self.primals, inputs)
        jac = torch.func.jacrev(lambda f: self.outputs(self.layout.split(f), inputs))(flat)
        jac = jac.reshape(outputs.numel(), -1)
        h_out = torch.func.hessian(lambda o: self.batch_loss(o.reshape(outputs.shape), targets))(
            outputs.reshape(-1))
        return jac.T @ h_out @ jac
