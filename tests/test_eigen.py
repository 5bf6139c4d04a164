import numpy as np
import pytest
import torch
from torch import nn

import neff
from conftest import Interrupting, batches


@pytest.fixture
def saddle_operator(mlp, classification_data):
    """An untrained tanh net: its Hessian has many negative eigenvalues."""
    x, y = classification_data
    return neff.HessianOperator(mlp, nn.CrossEntropyLoss(), batches(x, y, 16))


@pytest.mark.parametrize("method", ["lanczos", "eigsh"])
def test_negative_curvature_keeps_its_sign(saddle_operator, method):
    dense = np.linalg.eigvalsh(saddle_operator.dense().numpy())
    assert dense[0] < -1e-3
    result = neff.top_eigenpairs(saddle_operator, 4, method, which="smallest", tol=1e-8)
    assert result.all_converged
    np.testing.assert_allclose(result.eigenvalues, dense[:4], rtol=1e-6)
    top = neff.top_eigenpairs(saddle_operator, 4, method, tol=1e-8)
    np.testing.assert_allclose(top.eigenvalues, dense[::-1][:4], rtol=1e-6)
    # the certificate: every pair lies within its residual of a dense eigenvalue
    gap = np.abs(result.eigenvalues[:, None] - dense[None]).min(1)
    assert np.all(gap <= result.residuals + 1e-12)


def test_eigenvectors_and_records(saddle_operator):
    result = neff.top_eigenpairs(saddle_operator, 3, tol=1e-8)
    v = result.eigenvectors
    assert v.shape == (saddle_operator.num_params, 3)
    torch.testing.assert_close(v.T @ v, torch.eye(3, dtype=torch.float64), atol=1e-8, rtol=0)
    record = result.record()
    assert record["n_hvp"] == result.n_hvp > 0 and len(record["ritz_values"]) == result.steps
    assert "converged" in str(result)


def test_too_short_run_is_flagged(saddle_operator):
    result = neff.top_eigenpairs(saddle_operator, 8, tol=1e-10, max_steps=10)
    assert not result.all_converged
    assert result.steps == 10 and result.n_hvp == 10 + 8  # steps (the residual of the last is free), residuals


def test_resumed_run_equals_uninterrupted(saddle_operator, tmp_path):
    full = neff.top_eigenpairs(saddle_operator, 6, tol=1e-9)
    checkpoint = tmp_path / "run.ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        neff.top_eigenpairs(Interrupting(saddle_operator, saddle_operator.n_hvp + 23), 6, tol=1e-9,
                            checkpoint=checkpoint)
    assert checkpoint.exists()
    before = saddle_operator.n_hvp
    resumed = neff.top_eigenpairs(saddle_operator, 6, tol=1e-9, checkpoint=checkpoint)
    assert np.array_equal(resumed.eigenvalues, full.eigenvalues)
    assert np.array_equal(resumed.residuals, full.residuals)
    assert saddle_operator.n_hvp - before == full.n_hvp - 23  # the first 23 products were replayed


def test_checkpoint_of_another_operator_is_refused(saddle_operator, trained_mlp, classification_data, tmp_path):
    checkpoint = tmp_path / "run.ckpt.pt"
    neff.top_eigenpairs(saddle_operator, 2, max_steps=25, checkpoint=checkpoint)
    x, y = classification_data
    other = neff.HessianOperator(trained_mlp, nn.CrossEntropyLoss(), batches(x, y, 16))
    with pytest.raises(neff.NeffError, match="belongs to another run"):
        neff.top_eigenpairs(other, 2, checkpoint=checkpoint)


def test_checkpoint_of_other_data_is_refused(mlp, classification_data, tmp_path):
    """Resuming with other data (one example changed) is refused, not answered with the old
    eigenvalues; the same examples in another order and batching are the same matrix and resume."""
    x, y = classification_data
    checkpoint = tmp_path / "run.ckpt.pt"
    first = neff.top_eigenpairs(neff.HessianOperator(mlp, nn.CrossEntropyLoss(), batches(x, y, 16)), 2,
                                checkpoint=checkpoint, tol=1e-8)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    shuffled = neff.HessianOperator(mlp, nn.CrossEntropyLoss(), batches(x[order], y[order], 24))
    resumed = neff.top_eigenpairs(shuffled, 2, checkpoint=checkpoint, tol=1e-8)
    assert resumed.n_hvp <= 2 < first.n_hvp  # replayed; only the final residuals computed
    assert np.allclose(resumed.eigenvalues, first.eigenvalues, rtol=1e-10)
    changed = y.clone()
    changed[0] = (changed[0] + 1) % 3
    other = neff.HessianOperator(mlp, nn.CrossEntropyLoss(), batches(x, changed, 16))
    with pytest.raises(neff.NeffError, match="belongs to another run"):
        neff.top_eigenpairs(other, 2, checkpoint=checkpoint, tol=1e-8)
    assert first.all_converged


def test_checkpoint_of_another_seed_is_refused(saddle_operator, tmp_path):
    checkpoint = tmp_path / "run.ckpt.pt"
    neff.top_eigenpairs(saddle_operator, 2, max_steps=25, checkpoint=checkpoint, seed=0)
    with pytest.raises(neff.NeffError, match="belongs to another run"):
        neff.top_eigenpairs(saddle_operator, 2, max_steps=25, checkpoint=checkpoint, seed=1)


def test_replay_that_drifts_from_its_checkpoint_is_refused(saddle_operator, tmp_path):
    """A stored product altered on disk sends the replayed Krylov vectors away from the recorded
    ones: the next replayed product must be refused, not used."""
    checkpoint = tmp_path / "run.ckpt.pt"
    neff.top_eigenpairs(saddle_operator, 2, max_steps=25, checkpoint=checkpoint)
    state = torch.load(checkpoint, weights_only=True)
    state["products"][3] = state["products"][3] + 1e-3 * torch.randn(state["products"][3].shape, dtype=torch.float64)
    torch.save(state, checkpoint)
    with pytest.raises(neff.NeffError, match="diverged from its checkpoint"):
        neff.top_eigenpairs(saddle_operator, 2, max_steps=25, checkpoint=checkpoint)


def test_lanczos_and_eigsh_agree(trained_mlp, classification_data):
    x, y = classification_data
    op = neff.HessianOperator(trained_mlp, nn.CrossEntropyLoss(), batches(x, y, 53))
    a = neff.top_eigenpairs(op, 5, "lanczos", tol=1e-8)
    b = neff.top_eigenpairs(op, 5, "eigsh", tol=1e-8)
    assert a.all_converged and b.all_converged
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-7)


def test_repeated_eigenvalues_are_reported_not_hidden():
    """H = I_2 (x) X^T X / n: every eigenvalue twice. One start vector sees one copy of each."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(40, 2, generator=gen, dtype=torch.float64)
    model = nn.Linear(3, 2, bias=False).double()
    half_sse = lambda out, t: 0.5 * ((out - t) ** 2).sum(1)  # noqa: E731
    op = neff.HessianOperator(model, half_sse, [(x, y)])
    with pytest.warns(UserWarning, match="only 3 of the 5 requested eigenpairs"):
        result = neff.top_eigenpairs(op, 5, tol=1e-10)
    assert result.k == 3
    report = neff.dense_check(op, result, z=[0.1])
    assert report.certificates_hold and not report.ok


def test_exact_eigenpairs_record_every_field():
    """The dense result of a matrix whose eigenpairs are known: every field of its record,
    the residuals measured (a non-symmetric part would show), products counted from the call."""
    values = np.array([3.0, -1.0, 0.5, 2.0])
    from neff.linear import as_operator
    op = as_operator(np.diag(values))
    op.matvec(torch.ones(4, dtype=torch.float64))  # a product before the call
    result = neff.exact_eigenpairs(op)
    assert result.eigenvalues.tolist() == [3.0, 2.0, 0.5, -1.0] and result.ritz_values.tolist() == [3.0, 2.0, 0.5, -1.0]
    assert np.allclose(np.abs(result.eigenvectors.numpy()), np.eye(4)[:, [0, 3, 2, 1]])
    assert np.all(result.residuals < 1e-15) and result.residuals.shape == (4,) and result.converged.all()
    assert (result.tol, result.norm_estimate, result.method, result.which) == (1e-8, 3.0, "dense", "largest")
    assert (result.num_params, result.steps, result.n_hvp) == (4, 4, 0) and 0 <= result.wall_time < 60  # read, not multiplied
    tiny = neff.exact_eigenpairs(np.diag([1e-12, 0.0]))
    assert tiny.converged.all() and tiny.norm_estimate == 1e-12


def test_eigsh_is_seeded():
    """ARPACK starts from the seeded vector: the same seed gives the same pairs to the last bit."""
    values = np.linspace(0.0, 1.0, 60) ** 3
    first, second = (neff.top_eigenpairs(np.diag(values), 4, method="eigsh", tol=1e-6, seed=3) for _ in range(2))
    assert np.array_equal(first.eigenvalues, second.eigenvalues) and np.array_equal(first.residuals, second.residuals)
