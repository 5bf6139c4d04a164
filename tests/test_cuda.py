"""The same operator and solvers on a CUDA device agree with the CPU (skipped without a GPU)."""
import numpy as np
import pytest
import torch
from torch import nn

import neff
from conftest import batches

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def images(seed):
    """45 seeded 6x6 images and their labels in batches of 16, 16 and 13."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(45, 1, 6, 6, generator=gen, dtype=torch.float64)
    return batches(x, torch.randint(0, 4, (45,), generator=gen), 16)


def test_cuda_matches_cpu(bn_cnn):
    data = images(0)
    cpu = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), data, dtype=torch.float64)
    gpu = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), data, dtype=torch.float64, device="cuda")
    v = torch.randn(cpu.num_params, 3, dtype=torch.float64)
    torch.testing.assert_close(gpu.matmat(v.cuda()).cpu(), cpu.matmat(v), rtol=1e-10, atol=1e-12)
    a = neff.top_eigenpairs(cpu, 5, tol=1e-9)
    b = neff.top_eigenpairs(gpu, 5, tol=1e-9)
    assert b.all_converged and b.eigenvectors.device.type == "cuda"
    np.testing.assert_allclose(b.eigenvalues, a.eigenvalues, rtol=1e-9)
    est = neff.estimate_effective_dimension(gpu, [0.01, 0.1], eigen=b)
    assert np.all(est.lower <= est.upper)
    assert gpu._cache is not None and gpu.vectorise  # kept on the GPU after the first product
    fresh = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), data, dtype=torch.float64, device="cuda",
                                 cache_gb=0)
    torch.testing.assert_close(fresh.matmat(v.cuda()), gpu.matmat(v.cuda()), rtol=1e-12, atol=1e-14)
    f32 = neff.HessianOperator(bn_cnn, nn.CrossEntropyLoss(), data, dtype=torch.float32, device="cuda")
    c = neff.top_eigenpairs(f32, 5, tol=1e-4)
    np.testing.assert_allclose(c.eigenvalues, a.eigenvalues, rtol=1e-4)


def test_cuda_ggn_is_cached_and_matches_cpu(bn_cnn):
    data = images(1)
    cpu = neff.GGNOperator(bn_cnn, nn.CrossEntropyLoss(), data, dtype=torch.float64)
    gpu = neff.GGNOperator(bn_cnn, nn.CrossEntropyLoss(), data, dtype=torch.float64, device="cuda")
    fresh = neff.GGNOperator(bn_cnn, nn.CrossEntropyLoss(), data, dtype=torch.float64, device="cuda", cache_gb=0)
    v = torch.randn(cpu.num_params, 3, dtype=torch.float64)
    for _ in range(2):
        torch.testing.assert_close(gpu.matmat(v.cuda()).cpu(), cpu.matmat(v), rtol=1e-10, atol=1e-12)
    assert gpu._cache is not None and gpu.vectorise
    torch.testing.assert_close(fresh.matmat(v.cuda()), gpu.matmat(v.cuda()), rtol=1e-12, atol=1e-14)


def test_training_uses_the_gpu_and_resumes(tmp_path):
    from neff.data import load_dataset
    from neff.models import build_model
    from neff.train import TrainConfig, train

    data = load_dataset("digits", subset=200)
    config = TrainConfig(epochs=3, batch_size=64, optimizer="adam", lr=0.01, checkpoint_every=1)
    torch.manual_seed(0)
    model = build_model("mlp", 10, (1, 8, 8), width=16, depth=1)
    history = train(model, data, config, checkpoint=tmp_path / "ckpt.pt")
    assert next(model.parameters()).device.type == "cuda" and len(history) == 3
    torch.manual_seed(0)
    again = build_model("mlp", 10, (1, 8, 8), width=16, depth=1)
    assert train(again, data, config, checkpoint=tmp_path / "ckpt.pt") == history
