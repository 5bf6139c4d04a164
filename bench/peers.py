"""One adapter per tool: a full-dataset HVP on flat vectors, top-k eigenpairs, and an N_eff
estimate at a fixed product budget. Peers that are not installed are reported, not fatal."""
from __future__ import annotations

import importlib.util
import warnings
from unittest import mock

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

import neff
from neff.effdim import effective_dimension

PEERS = {"pyhessian": "pyhessian", "eigenthings": "hessian_eigenthings", "curvlinops": "curvlinops"}


def available(tool: str) -> bool:
    return tool == "neff" or importlib.util.find_spec(PEERS[tool]) is not None


class Counted:
    """Wraps a tool's one-vector HVP function and counts its calls."""

    def __init__(self, function):
        self.function, self.count = function, 0

    def __call__(self, *args):
        self.count += 1
        return self.function(*args)


def _on_cuda(model) -> bool:
    return next(model.parameters()).is_cuda


def hvp(tool: str, model, loss, batches):
    """A function flat v -> flat H v of the mean loss over all batches, for ``tool``.
    ``neff`` keeps each batch's gradient graph after the first product (its default when the
    graphs fit in memory), ``neff-nocache`` rebuilds them for every product, ``neff-block8``
    pushes a block of 8 vectors through one data pass (returns the first)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if tool == "neff":
        return neff.HessianOperator(model, loss, batches).matvec
    if tool == "neff-nocache":
        return neff.HessianOperator(model, loss, batches, cache_gb=0).matvec
    if tool == "neff-block8":
        operator = neff.HessianOperator(model, loss, batches)
        others = torch.randn(operator.num_params, 7, generator=torch.Generator().manual_seed(5)).to(params[0].device)
        return lambda v: operator.matmat(torch.cat([v[:, None], others], 1))[:, 0]
    if tool == "pyhessian":
        from pyhessian import hessian
        engine = hessian(model, loss, dataloader=batches, cuda=_on_cuda(model))
        sizes = [p.numel() for p in engine.params]

        def apply(v):
            pieces = [t.view_as(p) for t, p in zip(torch.split(v, sizes), engine.params)]
            return torch.cat([t.reshape(-1) for t in engine.dataloader_hv_product(pieces)[1]])
        return apply
    if tool == "curvlinops":
        from curvlinops import HessianLinearOperator
        operator = HessianLinearOperator(model, loss, params, batches, check_deterministic=False)
        return lambda v: operator @ v
    if tool == "eigenthings":
        import hessian_eigenthings as he
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            operator = he.HessianOperator(model, batches, he.supervised_loss(loss))
        return operator.matvec
    raise ValueError(tool)


def gradient(model, loss, batches):
    """One full-dataset gradient pass, the unit of cost."""
    model.zero_grad(set_to_none=True)
    for inputs, targets in batches:
        (loss(model(inputs), targets) * len(inputs)).backward()


def top_eigenpairs(tool: str, model, loss, batches, k: int, tol: float, seed: int = 0):
    """(eigenvalues, eigenvectors (n, k) float64, products used) by each tool's own method,
    from a start drawn with ``seed``."""
    if tool in ("neff", "neff-eigsh"):
        op = neff.HessianOperator(model, loss, batches)
        result = neff.top_eigenpairs(op, k, "eigsh" if tool == "neff-eigsh" else "lanczos", tol=tol, seed=seed)
        return result.eigenvalues, result.eigenvectors, op.n_hvp
    if tool == "pyhessian":
        from pyhessian import hessian
        engine = hessian(model, loss, dataloader=batches, cuda=_on_cuda(model))
        counted = engine.dataloader_hv_product = Counted(engine.dataloader_hv_product)
        torch.manual_seed(seed)  # PyHessian draws its start vectors from torch's global generator
        values, vectors = engine.eigenvalues(maxIter=100, tol=tol, top_n=k)
        flat = torch.stack([torch.cat([t.reshape(-1) for t in vec]) for vec in vectors], 1)
        return np.asarray(values), flat.double(), counted.count
    if tool == "curvlinops":
        apply = Counted(hvp("curvlinops", model, loss, batches))
        n = sum(p.numel() for p in model.parameters())
        device = next(model.parameters()).device
        matvec = lambda v: apply(torch.as_tensor(v, dtype=torch.float32, device=device).reshape(-1)).double().cpu().numpy()  # noqa: E731
        values, vectors = eigsh(LinearOperator((n, n), matvec=matvec, dtype=np.float64), k=k, which="LA",
                                tol=tol, v0=np.random.default_rng(seed).standard_normal(n))
        order = np.argsort(-values)
        return values[order], torch.from_numpy(vectors[:, order].copy()).to(device), apply.count
    if tool == "eigenthings":
        import hessian_eigenthings as he
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            operator = he.HessianOperator(model, batches, he.supervised_loss(loss))
        counted = operator.matvec = Counted(operator.matvec)
        result = he.lanczos(operator, k=k, which="LA", tol=tol, seed=seed)
        return result.eigenvalues.cpu().numpy(), result.eigenvectors.T.double(), counted.count
    raise ValueError(tool)


def effdim_at_budget(tool: str, model, loss, batches, z: np.ndarray, budget: int = 100, seed: int = 0):
    """(N_eff estimate at each z, products used, (lower, upper) or None where the tool states no
    interval) with about ``budget`` products and random starts drawn with ``seed``."""
    if tool in ("neff-slq", "neff-certified"):
        # 40% of the budget on Lanczos for the top pairs, 20% on certifying them, 40% on SLQ
        # probes of 10 steps on the rest (deflation)
        op = neff.HessianOperator(model, loss, batches)
        eigen = neff.top_eigenpairs(op, budget // 5, tol=1e-3, max_steps=budget * 2 // 5, seed=seed)
        method = tool.split("-")[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the budget stops the adaptive estimate, as intended here
            est = neff.estimate_effective_dimension(op, z, method, eigen=eigen, steps=10, seed=seed,
                                                    num_samples=max(2, (budget - op.n_hvp) // 10),
                                                    max_hvp=budget - op.n_hvp)
        return est.value, op.n_hvp, (est.lower, est.upper)
    if tool == "neff-slq-rtol":  # no budget: products until every interval is within +-1%
        op = neff.HessianOperator(model, loss, batches)
        est = neff.estimate_effective_dimension(op, z, rtol=0.01, max_hvp=5000, seed=seed)
        return est.value, op.n_hvp, (est.lower, est.upper)
    if tool == "paper":
        op = neff.HessianOperator(model, loss, batches)
        est = neff.estimate_effective_dimension(op, z, "paper", paper_steps=budget, seed=seed)
        return est.value, op.n_hvp, None
    if tool == "pyhessian":
        from pyhessian import hessian
        engine = hessian(model, loss, dataloader=batches, cuda=_on_cuda(model))
        calls = engine.dataloader_hv_product = Counted(engine.dataloader_hv_product)
        torch.manual_seed(seed)
        with mock.patch.object(torch, "eig", _legacy_eig, create=True):
            nodes, weights = engine.density(iter=budget, n_v=1)
        nodes, weights = np.asarray(nodes[0]), np.asarray(weights[0])
        n = sum(p.numel() for p in model.parameters())
        return np.array([n * np.sum(weights * effective_dimension_terms(nodes, zi)) for zi in z]), calls.count, None
    if tool in ("eigenthings", "curvlinops"):  # their nearest equivalent: N_eff of a top-k solve
        values, _, used = top_eigenpairs(tool, model, loss, batches, k=budget // 2, tol=1e-3, seed=seed)
        return effective_dimension(values, z), used, None
    raise ValueError(tool)


def _legacy_eig(matrix, eigenvectors=False):
    """Stand-in for ``torch.eig`` (removed in torch 1.9), which PyHessian's density still
    calls on its symmetric tridiagonal: eigenvalues as (real, imaginary) columns."""
    values, vectors = torch.linalg.eigh(matrix)
    return torch.stack([values, torch.zeros_like(values)], 1), vectors


def effective_dimension_terms(nodes: np.ndarray, z: float) -> np.ndarray:
    lam = np.clip(nodes, 0, None)
    return lam / (lam + z)
