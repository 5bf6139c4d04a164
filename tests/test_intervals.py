"""The intervals neff states, pinned against hand computations on spectra and rules chosen here,
and their coverage over seeds (a small version of `python -m bench.calibration`)."""
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

import neff
from neff.effdim import certified_bounds, slq_bounds
from neff.eigen import EigenResult
from neff.quadrature import Quadrature


def f(x, z):
    return x / (x + z)


def eigen_result(values, residuals, converged, n, tol=1e-3):
    values = np.asarray(values, dtype=np.float64)
    return EigenResult(values, np.asarray(residuals, dtype=np.float64), np.asarray(converged), tol,
                       float(np.abs(values).max()), 0, 0.0, "lanczos", "largest", n)


def test_certified_bounds_by_hand_with_real_residuals():
    """theta = 4, 2, 1 with residuals 0.1, 0.2, 0.5 of n = 10: the value and lower bound are the
    Ritz sum; the upper bound moves every Ritz value up by its residual and puts the 7 others at
    theta_k + r_k = 1.5."""
    eigen = eigen_result([4.0, 2.0, 1.0], [0.1, 0.2, 0.5], [True, True, False], 10)
    value, lower, upper = certified_bounds(eigen, [1.0, 0.5])
    for i, z in enumerate([1.0, 0.5]):
        ritz = f(4.0, z) + f(2.0, z) + f(1.0, z)
        assert value[i] == lower[i] == pytest.approx(ritz, rel=1e-12)
        assert upper[i] == pytest.approx(f(4.1, z) + f(2.2, z) + f(1.5, z) + 7 * f(1.5, z), rel=1e-12)


def one_node_rules(nodes, norms):
    """Probes whose runs ended at once (beta = 0): probe i's rule is exact, one node with weight
    norms[i] (its coarse rule is the same, so the quadrature error is 0)."""
    nodes = np.asarray(nodes, dtype=np.float64)
    width = 3
    alpha = np.repeat(nodes[:, None], width, axis=1)
    return Quadrature(alpha, np.zeros_like(alpha), np.asarray(norms, dtype=np.float64), np.full(len(nodes), width))


def test_slq_interval_by_hand():
    """Converged pairs enter exactly, an unconverged one not at all; the sampling half-width is
    the wider of the t interval over the probes and the normal one of the variance bound
    2 tr(G^2); exact rules add no quadrature error."""
    eigen = eigen_result([5.0, 3.0], [0.0, 0.5], [True, False], 50)
    nodes, norms = [0.2, 1.0, 0.05, 2.0], [30.0, 40.0, 50.0, 35.0]
    z = 0.1
    samples = np.array([n * f(x, z) for x, n in zip(nodes, norms)])
    squares = np.array([n * f(x, z) ** 2 for x, n in zip(nodes, norms)])
    value, lower, upper, parts = slq_bounds(eigen, one_node_rules(nodes, norms), [z])
    t_half = stats.t.ppf(0.975, 3) * samples.std(ddof=1) / 2
    bound_half = stats.norm.ppf(0.975) * np.sqrt(2 * squares.mean() / 4)
    assert value[0] == pytest.approx(f(5.0, z) + samples.mean(), rel=1e-12)
    assert parts["quadrature_error"][0] == 0
    assert parts["sampling"][0] == pytest.approx(max(t_half, bound_half), rel=1e-12)
    assert t_half > bound_half  # this case pins the t quantile (3 degrees of freedom, not a normal 90%)
    assert (lower[0], upper[0]) == pytest.approx((value[0] - t_half, value[0] + t_half), rel=1e-12)
    even = [1.0, 1.0, 1.0, 1.0]  # no spread: the variance bound alone
    _, lower, upper, parts = slq_bounds(eigen, one_node_rules(even, [40.0] * 4), [z])
    assert parts["sampling"][0] == pytest.approx(stats.norm.ppf(0.975) * np.sqrt(2 * 40 * f(1.0, z) ** 2 / 4))
    two = slq_bounds(eigen, one_node_rules(nodes[:2], norms[:2]), [z])[3]["sampling"][0]  # 2 probes: the least
    assert two == pytest.approx(max(stats.t.ppf(0.975, 1) * samples[:2].std(ddof=1) / np.sqrt(2),
                                    stats.norm.ppf(0.975) * np.sqrt(2 * squares[:2].mean() / 2)), rel=1e-12)


def test_quadrature_error_is_the_change_from_the_half_rule():
    """Two-step runs whose last residual is not zero: the error term is the mean change from
    the one-node rule (alpha_1, the probe's norm) to the two-node rule of [[a1, b1], [b1, a2]]."""
    alpha = np.array([[1.0, 3.0], [2.0, 0.5], [0.9, 1.0]])  # every node positive
    beta = np.array([[1.0, 0.5], [0.4, 0.2], [0.3, 0.9]])
    norms = np.array([20.0, 25.0, 30.0])
    rule = Quadrature(alpha, beta, norms, np.array([2, 2, 2]))
    z = 0.5
    full = []
    for (a1, a2), (b1, _), norm in zip(alpha, beta, norms):
        theta, s = np.linalg.eigh(np.array([[a1, b1], [b1, a2]]))
        full.append(norm * np.sum(s[0] ** 2 * f(theta, z)))
    coarse = norms * f(alpha[:, 0], z)
    eigen = eigen_result([9.0], [0.0], [True], 40)
    value, lower, upper, parts = slq_bounds(eigen, rule, [z])
    assert value[0] == pytest.approx(f(9.0, z) + np.mean(full), rel=1e-12)
    assert parts["quadrature_error"][0] == pytest.approx(abs(np.mean(np.array(full) - coarse)), rel=1e-12)
    assert upper[0] - value[0] == pytest.approx(parts["sampling"][0] + parts["quadrature_error"][0], rel=1e-12)


def spectrum_matrix(values, seed=0):
    values = torch.as_tensor(values, dtype=torch.float64)
    q = torch.linalg.qr(torch.randn(len(values), len(values), generator=torch.Generator().manual_seed(seed),
                                    dtype=torch.float64)).Q
    return q @ torch.diag(values) @ q.T


def test_negative_count_below_a_tolerance_with_an_interval():
    """A positive semi-definite Hessian with 73 zeros (in float32 they come out within 1e-9 of
    0) has 0 eigenvalues below -tol, interval [0, < 0.01], not half of its zeros, as counting
    below 0 gives; a matrix with 60 clearly negative eigenvalues gets an interval that holds 60."""
    torch.manual_seed(0)  # a linear softmax layer on 8 examples in float32: rank <= 8 x 4 of 105
    x, y = torch.randn(8, 20), torch.randint(0, 5, (8,))
    psd = neff.HessianOperator(torch.nn.Linear(20, 5), torch.nn.CrossEntropyLoss(), [(x, y)])
    est = neff.estimate_effective_dimension(psd, 0.1, k=5)  # its zeros come out near +-1e-9
    low, high = est.details["num_negative_interval"]
    assert est.num_negative == 0 == low and high < 0.01  # Gauss-Radau at -tol: no mass there
    assert "eigenvalues below -" in str(est) and "0.0 [0.0, 0.0]" in str(est)
    mixed = spectrum_matrix(np.concatenate([np.linspace(0.01, 1, 140), -np.linspace(0.01, 0.5, 60)]), seed=1)
    est = neff.estimate_effective_dimension(mixed, 0.1, k=5)
    low, high = est.details["num_negative_interval"]
    assert low <= 60 <= high and high - low < 40


def test_rtol_is_reached_or_the_budget_says_so():
    values = np.concatenate([[10.0, 5.0, 2.0], np.linspace(0, 0.3, 297)])
    matrix = spectrum_matrix(values)
    truth = neff.effective_dimension(values, [0.01, 0.1])
    est = neff.estimate_effective_dimension(matrix, [0.01, 0.1], k=3, rtol=0.02, max_hvp=5000)
    assert np.all(est.upper - est.lower <= 2 * 0.02 * est.value)
    assert np.all((est.lower <= truth) & (truth <= est.upper))
    with pytest.warns(UserWarning, match=r"stopped at max_hvp=60 products: .*raise max_hvp"):
        short = neff.estimate_effective_dimension(matrix, [0.01, 0.1], k=3, rtol=0.001, max_hvp=60)
    assert short.n_hvp <= 60
    with pytest.raises(neff.NeffError, match="rtol=2 applies to method='slq' and must lie in"):
        neff.estimate_effective_dimension(matrix, 0.1, rtol=2)
    with pytest.raises(neff.NeffError, match="max_hvp=0 must be a positive number of products"):
        neff.estimate_effective_dimension(matrix, 0.1, max_hvp=0)


def test_small_models_need_no_k():
    """Fewer parameters than the default k: the estimate works without an error about a k the
    user never passed (and an explicit k that is too large is still refused)."""
    values = np.array([3.0, 1.0, 0.5, 0.1, 0.0, 0.0])
    est = neff.estimate_effective_dimension(spectrum_matrix(values), 0.1)
    assert est.lower[0] <= neff.effective_dimension(values, 0.1) <= est.upper[0]
    with pytest.raises(neff.NeffError, match="k=20 must be smaller than the number of parameters"):
        neff.estimate_effective_dimension(spectrum_matrix(values), 0.1, k=20)


def test_validate_verdict_follows_its_rows(trained_mlp, classification_data):
    """A report whose slq interval misses says FAILED and names the row; cells print whole
    numbers (no cut to the last 24 characters)."""
    x, y = classification_data
    op = neff.HessianOperator(trained_mlp, torch.nn.CrossEntropyLoss(), [(x, y)], dtype=torch.float64)
    report = neff.dense_check(op, z=[0.1, 1.0], k=5)
    assert report.ok and "OK" in str(report).splitlines()[0]
    report.estimates["slq"].upper[:] = report.effdim_dense - 1e-3  # as if the interval had missed
    text = str(report)
    assert not report.ok and "FAILED" in text.splitlines()[0]
    assert "slq interval misses the dense N_eff at z = 0.1" in text.splitlines()[0]
    dense = f"{report.effdim_dense[0]:.4g}"
    assert any(line.split()[1] == dense for line in text.splitlines()[2:])
    assert f"[{report.estimates['certified'].lower[0]:.4g}, {report.estimates['certified'].upper[0]:.4g}] in" in text


@pytest.mark.coverage
def test_intervals_hold_over_seeds():
    """The calibration benchmark in small: a trained and an untrained MLP on digits (610
    parameters, hundreds of negative eigenvalues), 2 z, 12 seeds each: slq's 95% interval and
    the negative count's hold in at least 11 of 12, the certified bound always."""
    from bench.calibration import calibrate, dense_hessian, models
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (model, batches, params) in models(small=True).items():
            rows = calibrate(name, dense_hessian(model, batches, params), z=(0.01, 0.1), seeds=12)
            for row in rows:
                assert row["slq_coverage"] >= 11 / 12 and row["negative_coverage"] >= 11 / 12, row
                assert row["certified_coverage"] == 1.0, row


def test_gauss_radau_bounds_hold_each_probes_mass_below():
    """For every probe, the true mass below x (sum of (w . v_i)^2 over lambda_i < x, from the
    eigendecomposition) lies in Quadrature.mass_below's bounds, for spectra with a block of
    exact zeros and x just below 0, inside the bulk and above it; the bounds are far tighter
    than the probe's whole mass."""
    from neff.linear import as_operator
    from neff.quadrature import projected_probes, slq
    rng = np.random.default_rng(0)
    for trial in range(10):
        values = np.concatenate([rng.normal(0, 1, 150), np.zeros(50)])
        q = np.linalg.qr(rng.normal(size=(200, 200)))[0]
        matrix = torch.from_numpy(q @ np.diag(values) @ q.T)
        matrix = (matrix + matrix.T) / 2
        rule = slq(matrix, 3, 12, seed=trial)
        weights = (q.T @ projected_probes(as_operator(matrix), 3, trial, None).numpy()) ** 2
        for x in (-0.5, -1e-3, 0.7):
            low, high = rule.mass_below(x)
            true = weights[values < x].sum(axis=0)
            assert np.all((low - 1e-9 <= true) & (true <= high + 1e-9)), (trial, x)
            assert np.all(high - low < 0.5 * rule.norms)


@pytest.mark.coverage
@pytest.mark.parametrize("spectrum, budget", [("heavy_tail", 1000), ("negative_part", 1000), ("exact_zeros", 1000),
                                              ("symmetric_bulk", 150)])
def test_intervals_hold_on_known_spectra(spectrum, budget):
    """Synthetic operators (300 x 300, eigenvalues chosen here): a power-law tail, a quarter of
    the spectrum negative, two thirds exact zeros, and a bulk symmetric about 0 under a budget
    too small for its quadrature to converge (there the quadrature error is most of the
    interval: without it 14 of 20 hold at z = 0.01). Over 20 seeds slq's 95% interval holds the
    true N_eff in at least 18 (a 10% bias, or intervals without the variance bound, fail too),
    the certified bound and the negative count in all."""
    from bench.calibration import calibrate
    rng = np.random.default_rng(1)
    values = {"heavy_tail": 2.0 * np.arange(1, 301) ** -1.5,
              "negative_part": np.concatenate([rng.exponential(0.05, 225), -rng.exponential(0.02, 75)]),
              "exact_zeros": np.concatenate([rng.exponential(0.1, 100), np.zeros(200)]),
              "symmetric_bulk": rng.normal(0, 1, 300)}[spectrum]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = calibrate(spectrum, spectrum_matrix(values, seed=2), z=(0.01, 0.1), seeds=20, max_hvp=budget)
    for row in rows:
        assert row["slq_coverage"] >= 0.9 and row["certified_coverage"] == 1.0, row
        assert row["negative_coverage"] == 1.0, row


def test_adaptive_slq_stops_at_the_first_plan_that_meets_its_targets():
    """The adaptive estimate stops at the first plan (probes, steps) whose quadrature error is
    within max(half the sampling half-width, rtol/4 x N_eff) and whose interval is within
    +-rtol x N_eff; the plan before it (half the probes, or half the steps) failed the test that
    doubled it. Seeded: the rules are those of ProbeRuns with the same seed; within budget it
    does not warn."""
    from neff.effdim import _deflation_basis, adaptive_slq
    from neff.quadrature import ProbeRuns
    values = np.concatenate([[10.0, 5.0, 2.0], np.linspace(0, 0.3, 297)])
    matrix, zs, rtol = spectrum_matrix(values), np.array([0.01, 0.1]), 0.05
    eigen = neff.top_eigenpairs(matrix, 3, tol=1e-10)

    def criteria(rule):
        value, lower, upper, parts = slq_bounds(eigen, rule, zs)
        allowed = np.maximum(0.5 * parts["sampling"], 0.25 * rtol * np.abs(value))
        return (bool(np.all(parts["quadrature_error"] <= allowed)),
                bool(np.all(upper - lower <= 2 * rtol * np.abs(value))))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rule, bounds = adaptive_slq(matrix, eigen, zs, num_samples=3, steps=4, rtol=rtol, max_hvp=10**5, seed=3)
    probes, steps = len(rule.norms), rule.alpha.shape[1]
    assert (probes, steps) != (3, 4) and criteria(rule) == (True, True)
    runs = ProbeRuns(matrix, _deflation_basis(eigen), seed=3)
    assert np.allclose(runs.run(probes, steps).alpha, rule.alpha, rtol=1e-12, atol=1e-14)
    if probes > 3:
        assert criteria(ProbeRuns(matrix, _deflation_basis(eigen), seed=3).run(probes // 2, steps)) == (True, False)
    else:
        assert not criteria(ProbeRuns(matrix, _deflation_basis(eigen), seed=3).run(probes, steps // 2))[0]
    assert np.array_equal(bounds[0], slq_bounds(eigen, rule, zs)[0])


def test_slq_checkpoint_of_another_run_is_refused(tmp_path):
    """An SLQ checkpoint is refused for another seed, step count, probe count or deflation
    basis (each is in its header), and kept for the same run; one step is a valid rule."""
    from neff.quadrature import slq
    matrix = spectrum_matrix(np.linspace(0, 1, 40))
    basis = torch.linalg.qr(torch.randn(40, 2, generator=torch.Generator().manual_seed(1),
                                        dtype=torch.float64)).Q
    path = tmp_path / "slq.pt"
    first = slq(matrix, 3, 6, seed=0, basis=basis, checkpoint=path)
    assert np.array_equal(slq(matrix, 3, 6, seed=0, basis=basis, checkpoint=path).alpha, first.alpha)
    for other in ({"seed": 1, "basis": basis}, {"steps": 7, "basis": basis}, {"num_samples": 4, "basis": basis},
                  {"basis": basis[:, :1]}, {}):
        options = {"num_samples": 3, "steps": 6, "seed": 0, **other}
        with pytest.raises(neff.NeffError, match="belongs to another run"):
            slq(matrix, options.pop("num_samples"), options.pop("steps"), checkpoint=path, **options)
    assert slq(matrix, 2, 1).alpha.shape == (2, 1)
    with pytest.raises(neff.NeffError):
        slq(matrix, 2, 0)


def test_every_part_of_the_interval_adds_up():
    """A case where every part is non-zero (sampling, the quadrature error of short rules, a
    converged pair with a real residual, a negative converged eigenvalue): lower and upper are
    value -+ (sampling + quadrature error + the residual term), and the negative count adds the
    known negative eigenvalues to the rules' count with its interval."""
    values = np.concatenate([[4.0, -2.0], np.linspace(-0.5, 1.0, 98)])
    matrix = spectrum_matrix(values)
    eigen = neff.top_eigenpairs(matrix, 1, tol=1e-10)
    vector = torch.as_tensor(eigen.eigenvectors)
    negative = vector.new_zeros(100, 1)
    negative[:, 0] = torch.linalg.eigh(matrix).eigenvectors[:, 0]  # the -2.0 eigenvector
    pairs = EigenResult(np.array([4.0, -2.0]), np.array([0.05, 0.0]), np.array([True, True]), 1e-3, 4.0, 0, 0.0,
                        "lanczos", "largest", 100, eigenvectors=torch.cat([vector, negative], 1))
    from neff.effdim import deflated_slq
    rule = deflated_slq(matrix, pairs, num_samples=4, steps=5, seed=1)
    z = np.array([0.1, 1.0])
    value, lower, upper, parts = slq_bounds(pairs, rule, z)
    moved = np.maximum(np.abs(f(4.05, z) - f(4.0, z)), np.abs(f(3.95, z) - f(4.0, z)))
    assert np.all(parts["quadrature_error"] > 0) and np.all(parts["sampling"] > 0) and np.all(moved > 0)
    assert np.allclose(value - lower, parts["sampling"] + parts["quadrature_error"] + moved, rtol=1e-12)
    assert np.allclose(upper - value, parts["sampling"] + parts["quadrature_error"] + moved, rtol=1e-12)
    estimate, low, high = parts["num_negative"]
    counts = rule.samples(lambda x: (x < -parts["negative_tol"]) * 1.0)
    assert estimate == pytest.approx(1 + counts.mean(), rel=1e-12)
    below_low, below_high = rule.mass_below(-parts["negative_tol"])
    half = max(stats.t.ppf(0.975, 3) * counts.std(ddof=1) / 2,
               stats.norm.ppf(0.975) * np.sqrt(2 * np.mean(counts)) / 2)  # counts are 0/1 per node: f^2 = f
    assert low == pytest.approx(max(0.0, 1 + below_low.mean() - half), rel=1e-9)
    assert high == pytest.approx(1 + below_high.mean() + half, rel=1e-9)


def test_deflation_projects_out_the_basis():
    """The deflated operator P C P (P = I - B B^T) maps the basis to zero and agrees with P C P
    formed densely."""
    from neff.linear import as_operator
    from neff.quadrature import deflated
    matrix = spectrum_matrix(np.linspace(-1, 2, 30))
    basis = torch.linalg.qr(torch.randn(30, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)).Q
    projector = torch.eye(30, dtype=torch.float64) - basis @ basis.T
    block = torch.randn(30, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    closure = deflated(as_operator(matrix), basis)
    assert torch.allclose(closure(block), projector @ matrix @ projector @ block, atol=1e-12)
    assert torch.allclose(closure(basis), torch.zeros(30, 3, dtype=torch.float64), atol=1e-12)
    assert torch.equal(deflated(as_operator(matrix), basis[:, :0])(block), matrix @ block)
    one = basis[:, :1]  # a basis of one vector is projected out too
    assert torch.allclose(deflated(as_operator(matrix), one)(one), torch.zeros(30, 1, dtype=torch.float64), atol=1e-12)
