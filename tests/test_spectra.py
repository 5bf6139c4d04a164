"""A model's spectrum as the workflow computes it (compute_spectrum), its file, its resumption
after a kill, and the estimator rows of the tables, against dense ground truth."""
import numpy as np
import pandas as pd
import pytest
import torch

import neff
from conftest import Interrupting
from neff.effdim import effective_dimension, paper_effective_dimension, slq_bounds
from neff.spectra import compute_spectrum, eigen_result, load_spectrum, save_spectrum
from neff.tables import headline, neff_rows

SOLVER = {"k": 6, "tol": 1e-6, "max_steps": 60, "seed": 3, "probes": 4, "probe_steps": 12, "paper_steps": 30}


@pytest.fixture
def operator(trained_hessian):
    return trained_hessian


def test_paper_ritz_values_come_from_the_same_run(operator):
    eigen, _ = compute_spectrum(operator, **SOLVER)
    assert eigen.steps >= SOLVER["paper_steps"]
    alone = neff.estimate_effective_dimension(operator, [0.01, 1.0], "paper", paper_steps=SOLVER["paper_steps"],
                                              seed=SOLVER["seed"])
    np.testing.assert_allclose(paper_effective_dimension(eigen.ritz(SOLVER["paper_steps"]), [0.01, 1.0]),
                               alone.value, rtol=1e-10)
    with pytest.raises(neff.NeffError, match="min_steps"):
        eigen.ritz(eigen.steps + 1)


@pytest.mark.parametrize("phase", ["lanczos", "slq"])
def test_killed_spectrum_resumes_to_the_uninterrupted_result(operator, tmp_path, phase):
    full, full_rule = compute_spectrum(operator, **SOLVER)
    lanczos_products = full.n_hvp
    kill_after = 17 if phase == "lanczos" else lanczos_products + 2 * SOLVER["probe_steps"] + 5
    checkpoint = tmp_path / "spectrum.ckpt"
    start = operator.n_hvp
    with pytest.raises(KeyboardInterrupt):
        compute_spectrum(Interrupting(operator, start + kill_after), **SOLVER, checkpoint=checkpoint)
    assert sorted(path.name for path in tmp_path.iterdir())[0].startswith("spectrum.ckpt.")
    before = operator.n_hvp
    resumed, rule = compute_spectrum(operator, **SOLVER, checkpoint=checkpoint)
    np.testing.assert_allclose(resumed.eigenvalues, full.eigenvalues, rtol=1e-12)
    np.testing.assert_allclose(rule.nodes, full_rule.nodes, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rule.weights, full_rule.weights, rtol=1e-9, atol=1e-12)
    spent = operator.n_hvp - before
    total = lanczos_products + SOLVER["probes"] * SOLVER["probe_steps"]
    if phase == "lanczos":  # every product before the kill replayed (the log is saved as the job dies)
        assert spent == total - kill_after
    else:  # the whole Lanczos run replayed but its residual checks, the two finished probes kept
        assert spent == SOLVER["k"] + (SOLVER["probes"] - 2) * SOLVER["probe_steps"]


def test_file_keeps_what_the_estimators_need(operator, tmp_path):
    eigen, rule = compute_spectrum(operator, **SOLVER)
    save_spectrum(tmp_path / "s.npz", eigen, {"model": "mlp"}, quadrature=rule)
    spectrum = load_spectrum(tmp_path / "s.npz")
    loaded = eigen_result(spectrum)
    np.testing.assert_array_equal(loaded.tridiagonal, eigen.tridiagonal)
    np.testing.assert_array_equal(spectrum["quadrature"].nodes, rule.nodes)
    pd.testing.assert_frame_equal(pd.DataFrame(neff_rows({}, loaded, [0.1], spectrum["quadrature"], 30)),
                                  pd.DataFrame(neff_rows({}, eigen, [0.1], rule, 30)))


def test_table_estimators_against_the_dense_spectrum(operator):
    """certified bounds hold, slq's interval holds the truth and its value carries the tail the
    top-k sum misses, the paper row is the Ritz-value sum, dense spectra give exact rows."""
    zs = [1e-3, 1e-2, 0.1]
    truth = neff.effective_dimension(np.linalg.eigvalsh(operator.dense().numpy()), zs)
    eigen, rule = compute_spectrum(operator, **{**SOLVER, "probes": 10, "probe_steps": 30})
    rows = {(row["estimator"], row["z"]): row for row in neff_rows({"model": "mlp"}, eigen, zs, rule, 30)}
    assert {name for name, _ in rows} == {"slq", "certified", "paper"}
    for z, exact in zip(zs, truth):
        slq, certified, paper = (rows[name, z] for name in ("slq", "certified", "paper"))
        assert certified["lower"] <= exact <= certified["upper"]
        assert slq["lower"] <= exact <= slq["upper"] and slq["interval"] == "95% confidence + quadrature error"
        assert np.isnan(paper["lower"]) and paper["value"] == pytest.approx(
            paper_effective_dimension(eigen.ritz(30), z))
    assert rows["slq", 1e-3]["value"] > rows["certified", 1e-3]["value"] + 5  # the tail at small z
    dense = neff_rows({}, neff.exact_eigenpairs(operator), zs)
    assert [row["estimator"] for row in dense] == ["exact"] * 3
    np.testing.assert_allclose([row["value"] for row in dense], truth, rtol=1e-10)


def test_headline_refuses_a_table_of_top_k_sums_only(operator):
    eigen, _ = compute_spectrum(operator, **{**SOLVER, "probes": 0})
    table = pd.DataFrame(neff_rows({"model": "mlp"}, eigen, [0.1]))
    with pytest.raises(neff.NeffError, match="no headline rows"):
        headline(table, 0.1)


def test_probe_runs_that_stop_early_stack_and_are_exact(tmp_path):
    """A probe's run stops on an invariant subspace (4 distinct eigenvalues: at 4 of 30 steps)
    and its rule is then exact, so the coarse rule is the whole one (no quadrature error);
    rules of runs of different lengths stack and each still integrates x^2 exactly; a tiny
    spectrum (4e-6) runs all 30 steps (the breakdown threshold is relative)."""
    from neff.quadrature import slq, stacked
    q = torch.linalg.qr(torch.randn(300, 300, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))[0]
    few = q @ torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.5], dtype=torch.float64).repeat(75)) @ q.T
    tiny = q @ torch.diag(torch.linspace(0, 1, 300, dtype=torch.float64) ** 3 * 4e-6) @ q.T
    rule = slq(few, 3, 30, seed=0, checkpoint=tmp_path / "slq.pt")
    assert rule.steps.tolist() == [4, 4, 4]
    np.testing.assert_allclose(rule.samples(np.log, coarse=True), rule.samples(np.log), rtol=1e-12)
    assert slq(tiny, 3, 30, seed=0).steps.tolist() == [30, 30, 30]
    both = stacked([(r.alpha[0, :m], r.beta[0, :m], r.norms[0]) for r in (rule, slq(tiny, 1, 30, seed=0))
                    for m in [r.steps[0]]])
    probe = neff.quadrature.projected_probes(neff.linear.as_operator(few), 1, 0, None)
    exact = [float(probe[:, 0] @ a @ a @ probe[:, 0]) for a in (few, tiny)]
    np.testing.assert_allclose(both.samples(lambda x: x**2), exact, rtol=1e-9)
    assert both.steps.tolist() == [4, 30] and both.nodes.shape == (2, 30)


def test_headline_is_chosen_per_model(operator):
    """A table of a dense and a Lanczos spectrum: each model keeps its own headline; a model
    with only a top-k sum makes the table refuse."""
    eigen, rule = compute_spectrum(operator, **SOLVER)
    table = pd.DataFrame(neff_rows({"model": "mlp", "width": 1}, neff.exact_eigenpairs(operator), [0.1])
                         + neff_rows({"model": "mlp", "width": 2}, eigen, [0.1], rule, 30))
    rows = headline(table, 0.1)
    assert sorted(zip(rows["width"], rows["estimator"])) == [(1, "exact"), (2, "slq")]
    bare = pd.DataFrame(neff_rows({"model": "mlp", "width": 3}, eigen, [0.1]))
    with pytest.raises(neff.NeffError, match="some models of the table have no headline rows"):
        headline(pd.concat([table, bare]), 0.1)


def test_spectrum_with_a_tolerance_spends_products_until_it_is_met(operator):
    """With rtol (the workflow's spectrum.rtol) the probes are the adaptive estimate's: the
    saved rule gives intervals within +-rtol at every z, holding the dense N_eff; without it
    the first plan (4 probes of 12 steps) is wider."""
    z = [0.1, 1.0]
    dense = effective_dimension(neff.dense_spectrum(operator), z)
    eigen, rule = compute_spectrum(operator, **SOLVER, rtol=0.05, z=z)
    value, lower, upper, _ = slq_bounds(eigen, rule, z)
    assert np.all(upper - lower <= 2 * 0.05 * value) and np.all((lower <= dense) & (dense <= upper))
    _, fixed = compute_spectrum(operator, **SOLVER)
    assert rule.steps.sum() > fixed.steps.sum() == 4 * 12
