"""The surfaces rules (Section 5, Appendix A.1-A.2): plans of both configs, a tiny real run of
the two-spirals rules with a rerun of one lost chunk, and the default config's homogeneity sweep
(degenerate directions keep the predictions, top directions do not). Between them every rule
runs once."""
import json

import pandas as pd
import pytest
import yaml

from test_workflow import ROOT, TINY, planned, snakemake

SURFACE_RULES = ("surfaces_data", "surfaces_train", "surfaces_spectrum", "surfaces_eigen", "surfaces_directions",
                 "surfaces_chunk", "surfaces_join", "surfaces_sweep", "surfaces_boundaries", "surfaces_neff_table",
                 "surfaces_figure", "spirals_boundaries_figure", "spirals_neff_figure", "homogeneity_figure")
FIGURES = ("spirals_surfaces", "spirals_boundaries", "spirals_neff", "homogeneity_surfaces",
           "homogeneity_perturbations")
HOMOGENEITY = "results/homogeneity_digits/models/model~lenet/width~0/depth~0/seed~0"
SPIRALS = "results/spirals/models/model~mlp/width~8/depth~2/seed~0"

SPIRALS_TARGETS = [f"results/figures/{figure}.pdf" for figure in FIGURES if figure.startswith("spirals")]


def yaml_planes(study):
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["surfaces"][study]["planes"]


def test_plan_of_the_default_config(default_plan):
    # spirals: the 20 x 5 net plus widths 4, 8 and depths 1, 3 (N_eff figure); one LeNet;
    # planes: 5 spirals planes in 1 chunk each, 2 digits planes in 2 chunks each
    assert planned(default_plan, *SURFACE_RULES) == {
        "surfaces_data": 2, "surfaces_train": 6, "surfaces_spectrum": 5, "surfaces_eigen": 2,
        "surfaces_directions": 2, "surfaces_chunk": 9, "surfaces_join": 2, "surfaces_sweep": 1,
        "surfaces_boundaries": 1, "surfaces_neff_table": 1, "surfaces_figure": 2, "spirals_boundaries_figure": 1,
        "spirals_neff_figure": 1, "homogeneity_figure": 1}


def test_plan_of_the_paper_config(paper_plan):
    # 8 widths + 8 depths (one shared) two-spirals nets, one CIFAR-10 LeNet; 5 x 8 + 2 x 25 chunks
    counts = planned(paper_plan, *SURFACE_RULES)
    assert counts["surfaces_train"] == 16 and counts["surfaces_spectrum"] == 15
    assert counts["surfaces_chunk"] == 90 and counts["surfaces_join"] == 2 and counts["surfaces_sweep"] == 1
    assert "results/homogeneity_cifar10/models/model~lenet/width~0/depth~0/seed~0/sweep.csv" in paper_plan


def test_a_study_sharing_the_main_experiment_name_is_refused(tmp_path):
    done = snakemake(tmp_path, "-n", config={"surfaces": {"spirals": {"experiment": "digits_noise20"}}})
    assert done.returncode != 0
    assert "give each its own" in done.stdout + done.stderr


def test_tiny_real_run_of_the_spirals_rules_and_a_rerun_of_one_lost_chunk(tmp_path):
    done = snakemake(tmp_path, "--cores", "2", *SPIRALS_TARGETS, config=TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    for target in SPIRALS_TARGETS:
        for ext in ("pdf", "png"):
            assert (tmp_path / target).with_suffix(f".{ext}").stat().st_size > 1000
    planes = tmp_path / SPIRALS / "planes"
    surfaces = pd.read_csv(planes / "surfaces.csv")
    assert len(surfaces) == 6 * 25 and set(surfaces["plane"]) == {*yaml_planes("spirals"), "degenerate"}
    centre = surfaces[(surfaces["a"] == 0) & (surfaces["b"] == 0)]
    final = json.loads((tmp_path / SPIRALS / "final.json").read_text())
    assert centre["loss"].to_numpy() == pytest.approx(final["train_loss"], rel=1e-5)  # every plane
    checks = json.loads((planes / "directions.json").read_text())["checks"]
    assert max(check["orthonormality_error"] for check in checks.values()) < 1e-10
    assert checks["degenerate"]["outside_subspace"] < 1e-10
    table = pd.read_csv(tmp_path / "results" / "tables" / "spirals_neff.csv")
    assert table[["sweep", "width", "depth"]].values.tolist() == [["width", 8, 2], ["depth", 8, 2]]
    assert (table["neff@50"] > 0).all()

    # a run stopped before one chunk was done: only that chunk (and what needs it) runs again
    for lost in (planes / "plane~bottom" / "chunk~0.npz", planes / "surfaces.csv",
                 tmp_path / "results" / "figures" / "spirals_surfaces.pdf"):
        lost.unlink()
    done = snakemake(tmp_path, "-n", *SPIRALS_TARGETS, config=TINY)
    assert planned(done.stdout, "surfaces_chunk", "surfaces_join", "surfaces_figure", "surfaces_train") == {
        "surfaces_chunk": 1, "surfaces_join": 1, "surfaces_figure": 1, "surfaces_train": 0}
    assert "plane=bottom, chunk=0" in done.stdout


def test_default_homogeneity_degenerate_directions_keep_predictions(tmp_path):
    """The default A.2 run and its figure: at the largest norm, random directions orthogonal to
    the top eigenvectors keep >= 95% of predictions, random top-eigenvector combinations far fewer."""
    done = snakemake(tmp_path, "--cores", "2", "results/figures/homogeneity_perturbations.pdf")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "results" / "figures" / "homogeneity_perturbations.png").stat().st_size > 1000
    sweep = pd.read_csv(tmp_path / HOMOGENEITY / "sweep.csv")
    at_max = sweep[sweep["norm"] == sweep["norm"].max()].groupby(["split", "direction"])["homogeneity"].mean()
    print(at_max.to_string())
    for split in ("train", "test"):
        assert at_max[split, "degenerate"] >= 0.95
        assert at_max[split, "top"] <= 0.6
