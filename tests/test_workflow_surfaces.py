"""The study rules (Section 5, Appendix A.1-A.2): plans of both configs, a tiny real run of the
two-spirals study with a rerun of one lost chunk, and the default config's homogeneity sweep
(degenerate directions keep the predictions, top directions do not). Between them every rule
runs once."""
import json

import numpy as np
import pandas as pd
import pytest

from neff.spectra import load_spectrum
from test_workflow import TINY, planned, snakemake

STUDY_RULES = ("surfaces_directions", "surfaces_chunk", "surfaces_join", "surfaces_sweep", "surfaces_boundaries",
               "figure_surfaces", "figure_boundaries", "figure_perturbations")
SPIRALS_MODEL = "results/spirals/models/model~mlp/width~8/depth~2/seed~0"
SPIRALS = "results/studies/spirals"
SPIRALS_TARGETS = [f"results/figures/spirals_{name}.pdf" for name in ("surfaces", "boundaries", "neff")]


def test_plan_of_the_default_config(default_plan):
    # 6 spirals planes in 1 chunk each, 2 digits planes in 2 chunks each
    assert planned(default_plan, *STUDY_RULES) == {
        "surfaces_directions": 2, "surfaces_chunk": 10, "surfaces_join": 2, "surfaces_sweep": 1,
        "surfaces_boundaries": 1, "figure_surfaces": 2, "figure_boundaries": 1, "figure_perturbations": 1}


def test_plan_of_the_paper_config(paper_plan):
    counts = planned(paper_plan, *STUDY_RULES)
    assert counts["surfaces_chunk"] == 6 * 8 + 2 * 25 and counts["surfaces_join"] == 2
    assert "results/studies/homogeneity/sweep.csv" in paper_plan
    assert "results/homogeneity/models/model~lenet/width~0/depth~0/seed~0/spectrum.npz" in paper_plan


def test_tiny_real_run_of_the_spirals_study_and_a_rerun_of_one_lost_chunk(tmp_path):
    done = snakemake(tmp_path, "--cores", "2", *SPIRALS_TARGETS)
    assert done.returncode == 0, done.stderr[-3000:]
    for target in SPIRALS_TARGETS:
        for ext in ("pdf", "png"):
            assert (tmp_path / target).with_suffix(f".{ext}").stat().st_size > 1000
    surfaces = pd.read_csv(tmp_path / SPIRALS / "surfaces.csv")
    planes = TINY["studies"]["spirals"]["planes"]
    assert len(surfaces) == len(planes) * 25 and set(surfaces["plane"]) == set(planes)
    # decision maps: trained, bottom, top, then the classifier grids (norms 0 .. max, fresh directions)
    maps = np.load(tmp_path / SPIRALS / "boundaries.npz")
    grids = TINY["studies"]["spirals"]["boundaries"]["grids"]
    assert maps["rows"].tolist() == [0, 1, 2] + [3] * grids["steps"] + [4] * grids["steps"]
    for first in (3, 3 + grids["steps"]):  # norm 0 is the trained net itself
        np.testing.assert_array_equal(maps["probabilities"][first], maps["probabilities"][0])
        assert maps["homogeneity"][first] == 1 and "norm 0\n" in str(maps["titles"][first])
    assert f"norm {grids['top_norm']:g}" in str(maps["titles"][2 + grids["steps"]])
    assert not np.array_equal(maps["probabilities"][2 + grids["steps"]], maps["probabilities"][0])
    centre = surfaces[(surfaces["a"] == 0) & (surfaces["b"] == 0)]
    final = json.loads((tmp_path / SPIRALS_MODEL / "final.json").read_text())
    assert centre["loss"].to_numpy() == pytest.approx(final["train_loss"], rel=1e-5)  # every plane
    checks = json.loads((tmp_path / SPIRALS / "directions.json").read_text())["checks"]
    assert max(check["orthonormality_error"] for check in checks.values()) < 1e-10
    assert checks["degenerate"]["outside_subspace"] < 1e-10
    # the study's net keeps its eigenvectors (every pair: dense), the sweeps' nets do not
    vectors = load_spectrum(tmp_path / SPIRALS_MODEL / "spectrum.npz", eigenvectors=True)["eigenvectors"]
    assert vectors.shape == (final["num_params"], final["num_params"])
    assert "eigenvectors" not in np.load(
        tmp_path / "results/spirals_width/models/model~mlp/width~4/depth~2/seed~0/spectrum.npz").files

    # a run stopped before one chunk was done: only that chunk (and what needs it) runs again
    for lost in (tmp_path / SPIRALS / "planes" / "plane~bottom" / "chunk~0.npz", tmp_path / SPIRALS / "surfaces.csv",
                 tmp_path / "results" / "figures" / "spirals_surfaces.pdf"):
        lost.unlink()
    done = snakemake(tmp_path, "-n", *SPIRALS_TARGETS)
    assert planned(done.stdout, "surfaces_chunk", "surfaces_join", "figure_surfaces", "train", "spectrum") == {
        "surfaces_chunk": 1, "surfaces_join": 1, "figure_surfaces": 1, "train": 0, "spectrum": 0}
    assert "study=spirals, plane=bottom, chunk=0" in done.stdout


def test_default_homogeneity_degenerate_directions_keep_predictions(tmp_path):
    """The default A.2 run and its figure: at the largest norm, random directions orthogonal to
    the top eigenvectors keep >= 95% of predictions, random top-eigenvector combinations far fewer."""
    done = snakemake(tmp_path, "--cores", "2", "results/figures/homogeneity_perturbations.pdf", tiny=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "results" / "figures" / "homogeneity_perturbations.png").stat().st_size > 1000
    sweep = pd.read_csv(tmp_path / "results" / "studies" / "homogeneity" / "sweep.csv")
    at_max = sweep[sweep["norm"] == sweep["norm"].max()].groupby(["split", "direction"])["homogeneity"].mean()
    print(at_max.to_string())
    for split in ("train", "test"):
        assert at_max[split, "degenerate"] >= 0.95
        assert at_max[split, "top"] <= 0.6
