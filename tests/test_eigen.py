import numpy as np
import pytest
import torch
from torch import nn

import neff
from conftest import Interrupting, batches
from neff.eigen import certify, start_vector, warm_start_vector
from neff.linear import DenseOperator


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


def reference_lanczos(matrix, start, steps):
    """Lanczos with full reorthogonalisation in numpy: (alpha, beta) of ``steps`` steps."""
    basis, alpha, beta = [start / np.linalg.norm(start)], [], []
    for j in range(steps):
        w = matrix @ basis[j]
        alpha.append(basis[j] @ w)
        q = np.array(basis)
        for _ in range(2):
            w = w - q.T @ (q @ w)
        beta.append(np.linalg.norm(w))
        basis.append(w / beta[-1])
    return np.array(alpha), np.array(beta)


def first_converged_step(alpha, beta, k, tol, first, grow, cap):
    """The first step of the schedule (first, then + max(grow, steps // 16)) at which the Ritz
    residual estimates |beta_m s_m| of the top k meet tol x the largest |Ritz value|, or cap."""
    steps = first
    while steps < cap:
        theta, s = np.linalg.eigh(np.diag(alpha[:steps]) + np.diag(beta[:steps - 1], 1) + np.diag(beta[:steps - 1], -1))
        top = np.argsort(-theta)[:k]
        if np.all(np.abs(beta[steps - 1] * s[steps - 1, top]) <= tol * np.abs(theta).max()):
            return steps
        steps = min(cap, steps + max(grow, steps // 16))
    return cap


def test_lanczos_checks_on_its_schedule_and_stops_at_the_first_check_that_converges():
    """Against an independent Lanczos from the same start: the tridiagonal matrix, and the step
    at which neff stops: its first check at max(2k + 10, 20) steps (k + 2 from a warm start),
    then every max(5, steps // 16) (2 from a warm start), stopping at the first check whose
    residual estimates meet tol; without convergence, max(10 k, 100) steps."""
    q = np.linalg.qr(np.random.default_rng(0).standard_normal((300, 300)))[0]
    matrix = q @ np.diag(np.linspace(0, 1, 300)) @ q.T  # a flat top: over 96 steps, where steps // 16 > 5
    op = DenseOperator(torch.from_numpy(matrix))
    k, tol = 6, 1e-7
    cold = neff.top_eigenpairs(op, k, tol=tol, seed=4, max_steps=300)
    alpha, beta = reference_lanczos(matrix, start_vector(300, 4, "cpu")[:, 0].numpy(), 300)
    assert cold.steps == first_converged_step(alpha, beta, k, tol, max(2 * k + 10, 20), 5, 300) > 96
    np.testing.assert_allclose(cold.tridiagonal[0], alpha[:cold.steps], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(cold.tridiagonal[1], beta[:cold.steps], rtol=1e-6, atol=1e-12)
    warm = neff.top_eigenpairs(op, k, tol=tol, seed=5, max_steps=300, warm_start=cold)
    start = warm_start_vector(cold, 5, "cpu")[:, 0].numpy()
    alpha, beta = reference_lanczos(matrix, start, 300)
    assert warm.steps == first_converged_step(alpha, beta, k, tol, k + 2, 2, 300)
    np.testing.assert_allclose(warm.tridiagonal[0], alpha[:warm.steps], rtol=1e-8, atol=1e-12)
    assert neff.top_eigenpairs(op, 12, tol=1e-30, seed=4).steps == 120  # never converges: 10 k steps
    assert neff.top_eigenpairs(op, 6, tol=1e-30, seed=4).steps == 100


def test_certify_measures_unit_vectors():
    """Residuals of the normalised columns, whatever their lengths, one column or several; none
    given, none returned."""
    op = DenseOperator(torch.diag(torch.arange(1.0, 7.0, dtype=torch.float64)))
    v = torch.zeros(6, 2, dtype=torch.float64)
    v[5, 0], v[4, 0] = 3.0, 4.0  # unit: (0.6, 0.8) on eigenvalues 6 and 5
    v[0, 1] = 0.5  # eigenvalue 1 exactly
    u = torch.tensor([0.6 * 6, 0.8 * 5], dtype=torch.float64) - 5.5 * torch.tensor([0.6, 0.8], dtype=torch.float64)
    np.testing.assert_allclose(certify(op, np.array([5.5, 1.0]), v), [float(u.norm()), 0.0], atol=1e-15)
    np.testing.assert_allclose(certify(op, np.array([5.5]), v[:, :1]), [float(u.norm())], atol=1e-15)
    assert certify(op, np.array([]), v[:, :0]).shape == (0,)


def test_requests_at_their_boundaries(saddle_operator):
    """k from 1 to n - 1 (an integer), tol above 0."""
    n = saddle_operator.num_params
    assert len(neff.top_eigenpairs(saddle_operator, 1, tol=1e-6).eigenvalues) == 1
    for k, sentence in ((n, "must be smaller than the number of parameters"), (2.5, "must be a positive integer"),
                        (0, "must be a positive integer")):
        with pytest.raises(neff.NeffError, match=sentence):
            neff.top_eigenpairs(saddle_operator, k)
    with pytest.raises(neff.NeffError, match="tol=0 must be positive"):
        neff.top_eigenpairs(saddle_operator, 2, tol=0)


def test_product_log_saves_every_save_every_products(tmp_path):
    """With save_every=3 the checkpoint appears after the third new product, holds 3, then 6;
    close saves the rest. A replayed vector that drifts by 1e-7 of its norm is refused."""
    from neff.productlog import ProductLog
    op = DenseOperator(torch.diag(torch.arange(1.0, 9.0, dtype=torch.float64)))
    path = tmp_path / "log.pt"
    vectors = torch.randn(8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    log = ProductLog(op, 0, path, save_every=3)
    saved = []
    for i in range(7):
        log(vectors[:, i:i + 1])
        saved.append(len(torch.load(path)["products"]) if path.exists() else 0)
    assert saved == [0, 0, 3, 3, 3, 6, 6]
    log.close()
    assert len(torch.load(path)["products"]) == 7
    replay = ProductLog(op, 0, path)
    replay(vectors[:, :1])
    with pytest.raises(neff.NeffError, match="diverged from its checkpoint"):
        replay(vectors[:, 1:2] * (1 + 1e-7))
