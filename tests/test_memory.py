"""Memory: a graph cache that keeps as many batches as fit, and blocks of products chunked to a
memory budget, both giving the products of the uncached, unchunked operator."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import neff
from conftest import reference_hessian
from test_hessian import CountingData, rel

KINDS = [neff.HessianOperator, neff.GGNOperator]


def images(n=40, seed=7):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 6, 6, generator=gen, dtype=torch.float64), torch.randint(0, 4, (n,), generator=gen)


@pytest.mark.parametrize("kind", KINDS)
def test_any_fraction_cached_gives_the_uncached_products(bn_cnn, kind):
    """With a shuffling loader (5 batches of 8): no cache, 1, 2 or 4 batches' graphs kept, or all
    5, the products equal the uncached operator's and the dense matrix; after its first pass an
    operator with a partial cache rebuilds the rest from its kept batches, not from the loader."""
    x, y = images()
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    v = torch.randn(sum(p.numel() for p in bn_cnn.parameters()), 3, dtype=torch.float64)
    uncached = kind(bn_cnn, nn.CrossEntropyLoss(), loader, cache_gb=0)
    expected = uncached.matmat(v)
    if kind is neff.HessianOperator:
        assert rel(expected, reference_hessian(bn_cnn.eval(), nn.CrossEntropyLoss(), [(x, y)]) @ v) < 1e-10
    whole = kind(bn_cnn, nn.CrossEntropyLoss(), loader, cache_gb=1.0)
    whole.matmat(v)
    assert whole.cached_batches == 5
    per_batch = whole.cached_bytes / 5
    for kept in (1, 2, 4):
        data = CountingData(loader)
        op = kind(bn_cnn, nn.CrossEntropyLoss(), data, cache_gb=(kept + 0.5) * per_batch / 2**30)
        passes = data.passes
        for _ in range(3):
            assert rel(op.matmat(v), expected) < 1e-12
        assert op.cached_batches == kept and data.passes == passes + 1


def test_a_partial_cache_fixes_a_shuffled_train_mode_operator(bn_cnn):
    """Batch statistics depend on which examples share a batch: the kept first pass (graphs of 2
    batches, the other batches' tensors) makes a shuffled train-mode operator one matrix."""
    x, y = images(24)
    loader = DataLoader(TensorDataset(x, y), batch_size=6, shuffle=True)
    v = torch.randn(sum(p.numel() for p in bn_cnn.parameters()), dtype=torch.float64)
    whole = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), loader, mode="train", cache_gb=1.0)
    whole.matvec(v)
    partial = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), loader, mode="train",
                                   cache_gb=2.5 * whole.cached_bytes / whole.cached_batches / 2**30)
    first = partial.matvec(v)
    assert partial.cached_batches == 2
    assert torch.equal(partial.matvec(v), first) and torch.equal(partial.matvec(v), first)


class Spy:
    """Records how many vectors each application of a linearisation gets."""

    def __init__(self, operator):
        self.sizes, self.linearise = [], operator.linearise
        operator.linearise = self

    def __call__(self, inputs, targets, vectorised):
        apply = self.linearise(inputs, targets, vectorised)

        def recorded(tangents):
            self.sizes.append(next(iter(tangents.values())).shape[0])
            return apply(tangents)
        return recorded


@pytest.mark.parametrize("kind", KINDS)
def test_blocks_are_chunked_to_the_memory_budget(bn_cnn, kind):
    """On the vectorised (GPU) path, run here on the CPU: a budget of 2.5 linearisations chunks
    a block of 5 vectors as 2, 2, 1 per batch; one below a linearisation, one vector at a time;
    no budget set, the whole block; the products are the same each time."""
    x, y = images(20)
    data = [(x[:10], y[:10]), (x[10:], y[10:])]
    v = torch.randn(sum(p.numel() for p in bn_cnn.parameters()), 5, dtype=torch.float64)
    expected = kind(bn_cnn, nn.CrossEntropyLoss(), data, cache_gb=0).matmat(v)
    probe = kind(bn_cnn, nn.CrossEntropyLoss(), data, cache_gb=0)
    probe.vectorise = True
    probe.matmat(v)
    size = probe.vector_bytes
    assert size > 3 * x[:10].nbytes  # the saved activations, not just the inputs
    for memory_gb, chunks in ((2.5 * size / 2**30, [2, 2, 1]), (0.5 * size / 2**30, [1] * 5), (None, [5])):
        op = kind(bn_cnn, nn.CrossEntropyLoss(), data, cache_gb=0, memory_gb=memory_gb)
        op.vectorise = True
        spy = Spy(op)
        assert rel(op.matmat(v), expected) < 1e-12
        assert spy.sizes == chunks * 2 and op.vector_bytes == size


def test_bad_chunking_settings_are_refused(mlp, classification_data):
    x, y = classification_data
    with pytest.raises(neff.NeffError, match="memory_gb=0 must be a positive size"):
        neff.HessianOperator(mlp, nn.CrossEntropyLoss(), [(x, y)], memory_gb=0)
    with pytest.raises(neff.NeffError, match="chunk_size=0 must be a positive number"):
        neff.HessianOperator(mlp, nn.CrossEntropyLoss(), [(x, y)], chunk_size=0)
    assert neff.HessianOperator(mlp, nn.CrossEntropyLoss(), [(x, y)], chunk_size=1).chunk_size == 1
