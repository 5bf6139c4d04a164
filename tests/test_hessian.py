import numpy as np
import pytest
import torch
from torch import nn

import neff
from conftest import batches, reference_hessian


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def test_mlp_with_biases_matches_dense_hessian(mlp, classification_data):
    x, y = classification_data
    data = batches(x, y, 16)  # 16, 16, 16, 5: a short last batch
    op = neff.HessianOperator(mlp, nn.CrossEntropyLoss(), data, dtype=torch.float64)
    dense = reference_hessian(mlp, nn.CrossEntropyLoss(), data)
    assert rel(op.dense(), dense) < 1e-10
    v = torch.randn(op.num_params, 4, dtype=torch.float64)
    assert rel(op.matmat(v), dense @ v) < 1e-10
    assert rel(op.matvec(v[:, 0]), dense @ v[:, 0]) < 1e-10
    assert op.num_examples == 53 and op.n_hvp == 5


def test_cnn_with_batchnorm_eigenvalues_and_buffers(bn_cnn):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(27, 1, 6, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (27,), generator=gen)
    data = batches(x, y, 10)  # 10, 10, 7
    buffers = {k: b.clone() for k, b in bn_cnn.named_buffers()}
    bn_cnn.train()
    op = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), data, dtype=torch.float64)
    bn_cnn.eval()
    dense = reference_hessian(bn_cnn, nn.CrossEntropyLoss(), data)
    bn_cnn.train()
    expected = np.linalg.eigvalsh(dense.numpy())[::-1][:5]
    result = neff.top_eigenpairs(op, 5, tol=1e-10)
    assert result.all_converged
    np.testing.assert_allclose(result.eigenvalues, expected, rtol=1e-8)
    for mode in ("eval", "train"):
        neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), data, dtype=torch.float64, mode=mode).matvec(
            torch.randn(op.num_params, dtype=torch.float64))
    for k, b in bn_cnn.named_buffers():
        assert torch.equal(b, buffers[k]), k
    assert bn_cnn.training and all(m.training for m in bn_cnn.modules())


def test_train_mode_uses_batch_statistics(bn_cnn):
    x = torch.randn(12, 1, 6, 6, dtype=torch.float64)
    y = torch.randint(0, 4, (12,))
    op = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), [(x, y)], mode="train")
    bn_cnn.train()
    dense = reference_hessian(bn_cnn, nn.CrossEntropyLoss(), [(x, y)])
    v = torch.randn(op.num_params, dtype=torch.float64)
    assert rel(op.matvec(v), dense @ v) < 1e-10


@pytest.mark.parametrize("reduction, scale", [("mean", 1 / 40), ("sum", 1.0)])
def test_linear_regression_closed_form(reduction, scale):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(40, 1, generator=gen, dtype=torch.float64)
    model = nn.Linear(5, 1, bias=False).double()
    half_mse = lambda out, t: 0.5 * ((out - t) ** 2).sum(1)  # noqa: E731 per-example losses
    op = neff.HessianOperator(model, half_mse, batches(x, y, 16), reduction=reduction)
    truth = x.T @ x * scale
    assert rel(op.dense(), truth) < 1e-12
    assert rel(op.matmat(torch.eye(5, dtype=torch.float64)), truth) < 1e-12
    ggn = neff.GGNOperator(model, half_mse, batches(x, y, 16), reduction=reduction)
    assert rel(ggn.matmat(torch.eye(5, dtype=torch.float64)), truth) < 1e-12


def test_batching_does_not_change_the_operator(mlp, classification_data):
    x, y = classification_data
    v = torch.randn(sum(p.numel() for p in mlp.parameters()), dtype=torch.float64)
    products = [neff.HessianOperator(mlp, nn.CrossEntropyLoss(), batches(x, y, b)).matvec(v)
                for b in (53, 10, 7)]
    for p in products[1:]:
        assert rel(p, products[0]) < 1e-12


def test_ggn_matches_dense_and_is_psd(mlp, classification_data):
    x, y = classification_data
    data = batches(x, y, 20)
    op = neff.GGNOperator(mlp, nn.CrossEntropyLoss(), data)
    dense = op.dense()
    v = torch.randn(op.num_params, 3, dtype=torch.float64)
    assert rel(op.matmat(v), dense @ v) < 1e-10
    assert np.linalg.eigvalsh(dense.numpy()).min() > -1e-10


def test_parameter_selection(bn_cnn):
    x, y = torch.randn(4, 1, 6, 6, dtype=torch.float64), torch.randint(0, 4, (4,))
    weights = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), [(x, y)], params="weights")
    assert weights.param_names == ["0.weight", "4.weight"]
    pattern = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), [(x, y)], params=["1.*"])
    assert pattern.param_names == ["1.weight", "1.bias"] and pattern.num_params == 6
    dense = reference_hessian(bn_cnn.eval(), nn.CrossEntropyLoss(), [(x, y)], params=["0.weight", "4.weight"])
    assert rel(weights.dense(), dense) < 1e-10


def test_scipy_view_and_float32(mlp, classification_data):
    x, y = classification_data
    op64 = neff.HessianOperator(mlp, nn.CrossEntropyLoss(), batches(x, y, 16))
    op32 = neff.HessianOperator(mlp, nn.CrossEntropyLoss(), batches(x, y, 16), dtype=torch.float32)
    v = np.random.default_rng(0).standard_normal(op64.num_params)
    exact = op64.to_scipy() @ v
    assert exact.dtype == np.float64
    np.testing.assert_allclose(op32.to_scipy() @ v, exact, rtol=0, atol=1e-5 * np.abs(exact).max())


def test_loss_and_gradient(mlp, classification_data):
    x, y = classification_data
    op = neff.HessianOperator(mlp, nn.CrossEntropyLoss(), batches(x, y, 16))
    loss, gradient = op.loss_and_gradient()
    full = nn.functional.cross_entropy(mlp(x), y)
    expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(full, list(mlp.parameters()))])
    assert abs(loss - full.item()) < 1e-12 and rel(gradient, expected) < 1e-10


def test_pytorch_loss_modules_are_weighted_per_example():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    y = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    model = nn.Linear(4, 2, bias=False).double()
    op = neff.HessianOperator(model, nn.MSELoss(), batches(x, y, 8))
    truth = torch.kron(torch.eye(2, dtype=torch.float64), x.T @ x * 2 / (30 * 2))  # mean over 2 outputs
    assert rel(op.matmat(torch.eye(8, dtype=torch.float64)), truth) < 1e-12
    with pytest.raises(neff.NeffError, match="reduction='sum', which breaks the exact batch weighting"):
        neff.HessianOperator(model, nn.MSELoss(reduction="sum"), batches(x, y, 8))


def test_train_mode_with_dropout_is_refused(classification_data):
    model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.2), nn.Linear(8, 3)).double()
    with pytest.raises(neff.NeffError, match="Dropout would draw a new mask"):
        neff.HessianOperator(model, nn.CrossEntropyLoss(), [classification_data], mode="train")
    neff.HessianOperator(model, nn.CrossEntropyLoss(), [classification_data])  # eval mode is fine


class CountingData:
    """Batches that count how often they are read."""

    def __init__(self, data):
        self.data, self.passes = data, 0

    def __iter__(self):
        self.passes += 1
        return iter(self.data)


def test_cached_products_equal_fresh_ones_and_skip_the_data(bn_cnn):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(27, 1, 6, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (27,), generator=gen)
    dense = reference_hessian(bn_cnn.eval(), nn.CrossEntropyLoss(), batches(x, y, 10))
    data = CountingData(batches(x, y, 10))
    cached = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), data)
    fresh = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), batches(x, y, 10), cache_gb=0)
    v = torch.randn(cached.num_params, 5, dtype=torch.float64)
    passes = data.passes
    for _ in range(3):
        assert rel(cached.matmat(v), dense @ v) < 1e-10
        assert rel(cached.matvec(v[:, 0]), dense @ v[:, 0]) < 1e-10
        assert torch.equal(fresh.matmat(v), cached.matmat(v))
    assert data.passes == passes + 1  # the first product read the data; the others used the cache
    assert cached.n_hvp == 3 * 11 and cached.num_examples == 27


def test_vectorised_blocks_equal_vector_by_vector_ones(bn_cnn):
    """The GPU's paths run on the CPU: torch.func's pullback under vmap in chunks of 2, 2 and
    1 vectors, then eager single vectors once the unmeasurable cache is given up."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(27, 1, 6, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (27,), generator=gen)
    looped = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), batches(x, y, 10))
    vectorised = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), batches(x, y, 10), chunk_size=2)
    vectorised.vectorise = True
    v = torch.randn(looped.num_params, 5, dtype=torch.float64)
    assert rel(vectorised.matmat(v), looped.matmat(v)) < 1e-12
    assert rel(vectorised.matvec(v[:, 0]), looped.matvec(v[:, 0])) < 1e-12
    assert vectorised.cache_bytes == 0  # torch.func's graph cannot be measured on a CPU: not kept


def test_a_cache_that_does_not_fit_is_given_up(mlp, classification_data):
    x, y = classification_data
    data = CountingData(batches(x, y, 16))
    op = neff.HessianOperator(mlp, nn.CrossEntropyLoss(), data, cache_gb=1e-6)  # about 1 kB
    dense = reference_hessian(mlp, nn.CrossEntropyLoss(), batches(x, y, 16))
    v = torch.randn(op.num_params, dtype=torch.float64)
    passes = data.passes
    for _ in range(2):
        assert rel(op.matvec(v), dense @ v) < 1e-10
    assert data.passes == passes + 2 and op.cache_bytes == 0


def test_the_cache_fixes_a_shuffled_train_mode_operator(bn_cnn):
    x = torch.randn(24, 1, 6, 6, dtype=torch.float64)
    y = torch.randint(0, 4, (24,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8, shuffle=True)
    v = torch.randn(sum(p.numel() for p in bn_cnn.parameters()), dtype=torch.float64)
    fresh = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), loader, mode="train", cache_gb=0)
    cached = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), loader, mode="train")
    torch.manual_seed(0)
    assert not torch.equal(fresh.matvec(v), fresh.matvec(v))  # batch statistics of new batches
    assert torch.equal(cached.matvec(v), cached.matvec(v))  # one frozen pass


def test_parameters_with_constant_gradient_have_zero_curvature():
    model = nn.Linear(3, 2).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    op = neff.HessianOperator(model, lambda out, t: out.sum(dim=1), [(x, x[:, 0])])  # linear loss
    assert torch.equal(op.matvec(torch.ones(op.num_params, dtype=torch.float64)),
                       torch.zeros(op.num_params, dtype=torch.float64))
    assert torch.equal(op.dense(), torch.zeros(8, 8, dtype=torch.float64))


def test_cached_ggn_products_equal_fresh_ones_and_the_dense_ggn(bn_cnn):
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(27, 1, 6, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (27,), generator=gen)
    data = CountingData(batches(x, y, 10))
    cached = neff.GGNOperator(bn_cnn, nn.CrossEntropyLoss(), data)
    fresh = neff.GGNOperator(bn_cnn, nn.CrossEntropyLoss(), batches(x, y, 10), cache_gb=0)
    dense = fresh.dense()
    v = torch.randn(cached.num_params, 4, dtype=torch.float64)
    passes = data.passes
    for _ in range(3):
        assert rel(cached.matmat(v), dense @ v) < 1e-10
        assert torch.equal(fresh.matmat(v), cached.matmat(v))
    assert data.passes == passes + 1 and cached._cache is not None  # one pass built the cache
    vectorised = neff.GGNOperator(bn_cnn, nn.CrossEntropyLoss(), batches(x, y, 10), chunk_size=3)
    vectorised.vectorise = True  # the GPU's torch.func path, run on the CPU
    assert rel(vectorised.matmat(v), cached.matmat(v)) < 1e-12
    assert rel(vectorised.matvec(v[:, 0]), cached.matvec(v[:, 0])) < 1e-12


def test_ggn_of_a_loss_linear_in_the_outputs_is_zero():
    model = nn.Linear(3, 2).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    op = neff.GGNOperator(model, lambda out, t: out.sum(dim=1), [(x, x[:, 0])])
    assert torch.equal(op.matvec(torch.ones(op.num_params, dtype=torch.float64)),
                       torch.zeros(op.num_params, dtype=torch.float64))


def test_ggn_of_cross_entropy_is_the_closed_form_softmax_curvature(mlp, classification_data):
    """Independent of neff's own dense(): G = (1/N) sum_i J_i^T (diag(p_i) - p_i p_i^T) J_i, with
    each example's Jacobian J_i by torch.func.jacrev and p_i the softmax at the model's logits
    (a loss Hessian taken anywhere else, e.g. at zero logits, fails)."""
    x, y = classification_data
    params = {name: p.detach() for name, p in mlp.named_parameters()}
    names, shapes = list(params), [p.shape for p in params.values()]
    flat = torch.cat([p.reshape(-1) for p in params.values()])

    def logits(vector, inputs):
        pieces = torch.split(vector, [s.numel() for s in shapes])
        named = {n: piece.reshape(s) for n, piece, s in zip(names, pieces, shapes)}
        return torch.func.functional_call(mlp, named, (inputs,))

    jacobian = torch.func.jacrev(logits)(flat, x)  # (N, C, n)
    p = torch.softmax(logits(flat, x), dim=1)
    curvature = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    truth = torch.einsum("ica,icd,idb->ab", jacobian, curvature, jacobian) / len(x)
    op = neff.GGNOperator(mlp, nn.CrossEntropyLoss(), batches(x, y, 20))
    assert rel(op.matmat(torch.eye(op.num_params, dtype=torch.float64)), truth) < 1e-10
    assert rel(op.dense(), truth) < 1e-10


def test_parameters_that_do_not_move_the_outputs_and_single_vector_blocks():
    """A parameter the forward pass never uses has zero curvature in the Hessian and the GGN,
    on the one-vector and the block (vmap) paths, and a block of one vector on the vectorised
    path equals the dense product."""
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 2)
            self.spare = nn.Parameter(torch.ones(4))

        def forward(self, x):
            return self.linear(x)

    torch.manual_seed(0)
    model = Unused().double()
    data = [(torch.randn(7, 3, dtype=torch.float64), torch.randint(0, 2, (7,)))]
    for kind in (neff.HessianOperator, neff.GGNOperator):
        for vectorise in (False, True):
            op = kind(model, nn.CrossEntropyLoss(), data, cache_gb=0)
            op.vectorise = vectorise
            dense = op.dense()
            v = torch.randn(op.num_params, 1, dtype=torch.float64)
            assert torch.allclose(op.matmat(v), dense @ v, atol=1e-12)
            assert torch.allclose(op.matmat(torch.cat([v, 2 * v], 1)), dense @ torch.cat([v, 2 * v], 1), atol=1e-12)
            assert torch.count_nonzero(dense[:4]) == 0  # "spare" comes first: the module's own parameters lead
