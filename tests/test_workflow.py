"""The Snakemake workflow: plans, config checks at parse time, the tiny real run of every rule
(.test/config/config.yaml) with its long tables checked against the models' own records, its
logs and its report, resumption of a killed training job and the offline download error (all in
temporary folders)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from neff.effdim import effective_dimension
from neff.measures import MEASURES
from neff.spectra import load_spectrum

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TEST_CONFIG = ROOT / ".test" / "config" / "config.yaml"
TINY = yaml.safe_load(TEST_CONFIG.read_text())
MODELS = "results/double_descent/models"


def snakemake_command(workdir, *args, config=None, tiny=True):
    """snakemake on the repository's workflow in ``workdir``; with ``tiny`` on the test config,
    with ``config`` (a dict) merged over it (Snakemake's own deep update of config files)."""
    files = [str(TEST_CONFIG)] if tiny else []
    if config is not None:
        path = Path(workdir) / "overlay-config.yaml"
        path.write_text(yaml.safe_dump(config))
        files.append(str(path))
    command = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]
    return command + (["--configfile", *files] if files else [])


def snakemake(workdir, *args, config=None, tiny=True, **kwargs):
    return subprocess.run(snakemake_command(workdir, *args, config=config, tiny=tiny), capture_output=True,
                          text=True, **kwargs)


def experiment(name, **keys):
    """A config overlay changing keys of one experiment of the test config."""
    return {"experiments": {name: keys}}


def job_counts(output):
    table = output.split("Job stats:")[1].strip().split("\n\n")[0]
    return {name: int(count) for name, count in (line.split() for line in table.splitlines()[2:])}


def planned(output, *rules):
    """Planned job counts of the named rules (other stages have their own plan tests)."""
    counts = job_counts(output)
    return {rule: counts.get(rule, 0) for rule in rules}


MODEL_RULES = ("data", "train", "spectrum", "table", "figure", "all")


def test_plan_of_the_default_config(default_plan):
    # 23 digits MLPs (Figures 1-2 share 6) and 8 of Figure 1's widths without label noise, each
    # with its measures; the two-spirals study's net, 10 width-sweep and 6 depth-sweep nets (each
    # sweep on its own data, one data job each); one LeNet: each trained once and its spectrum
    # computed once
    assert planned(default_plan, *MODEL_RULES, "measures") == {
        "data": 6, "train": 49, "spectrum": 49, "table": 5, "figure": 5, "all": 1, "measures": 31}


def test_plan_of_the_paper_config(paper_plan):
    # 64 ResNet18 widths + 16 x 9 ConvNetDepth models and 16 ResNet18 widths with label noise, each
    # with its measures; the study's net, 29 widths x 5 repeats and 14 depths x 25 repeats of
    # two-spirals nets; one LeNet
    assert planned(paper_plan, *MODEL_RULES, "measures") == {
        "data": 6, "train": 721, "spectrum": 721, "table": 5, "figure": 5, "all": 1, "measures": 224}


def test_plan_of_one_figure(tmp_path):
    done = snakemake(tmp_path, "-n", "results/figures/fig1.pdf", tiny=False)
    counts = job_counts(done.stdout)
    assert counts["train"] == 11 and counts["figure"] == 1 and "all" not in counts


def test_an_added_experiment_is_a_config_entry(tmp_path):
    """config/examples/label_noise40.yaml adds an experiment and its figure, no rule."""
    example = ROOT / "config" / "examples" / "label_noise40.yaml"
    done = snakemake(tmp_path, "-n", "results/figures/fig1_noise40.pdf", "--configfile", str(example), tiny=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert job_counts(done.stdout) == {"data": 1, "train": 11, "spectrum": 11, "table": 1, "figure": 1, "total": 25}
    assert "results/double_descent_noise40/models/model~mlp/width~512/depth~1/seed~0/spectrum.npz" in done.stdout


def refusal(tmp_path, config):
    done = snakemake(tmp_path, "-n", config=config)
    assert done.returncode != 0 and "Job stats" not in done.stdout
    return done.stdout + done.stderr


def test_bad_config_is_refused_in_one_sentence(tmp_path):
    assert ("config error at top level: Additional properties are not allowed ('trian' was unexpected); "
            "see config/README.md") in refusal(tmp_path, {"trian": {"epochs": 3}})
    message = refusal(tmp_path, experiment("double_descent", train={"optimizer": "rmsprop"}))
    assert "config error at experiments.double_descent.train.optimizer: 'rmsprop' is not one of" in message


@pytest.mark.parametrize("config, sentence", [
    ({"figures": {"fig1": {"z": 0.2}}},
     "config error at figures.fig1.z: 0.2 is not one of experiments.double_descent.effdim.z [0.1, 1.0]"),
    ({"figures": {"fig1": {"grids": ["widths"]}}},
     "config error at figures.fig1.grids: 'widths' is not a grid of experiment 'double_descent'"),
    ({"figures": {"fig1": {"experiment": "double"}}},
     "config error at figures.fig1.experiment: 'double' is not one of the experiments"),
    ({"studies": {"spirals": {"model": {"width": 16}}}},
     "config error at studies.spirals.model: {'model': 'mlp', 'width': 16, 'depth': 2, 'seed': 0} is not a "
     "model of any grid of experiment 'spirals'"),
    ({"figures": {"spirals_neff": {"experiment": ["spirals_width"]}}},
     "config error at figures.spirals_neff.experiment: a list of experiments names one per grid, but there are 1 for 2 grids"),
    ({"figures": {"spirals_neff": {"experiment": ["spirals_width", "spirals_width"], "grids": ["width", "width"]}}},
     "config error at figures.spirals_neff.grids: a figure draws each grid of an experiment once"),
    (experiment("double_descent", measures={"target": {"lenet": 0.1}}),
     "config error at experiments.double_descent.measures.target: it names a target per model family but not "
     "for ['mlp']; add them"),
    ({"figures": {"spirals_neff": {"experiment": ["spirals_depth", "spirals_width"]}}},
     "config error at figures.spirals_neff.grids: 'width' is not a grid of experiment 'spirals_depth'"),
    ({"studies": {"homogeneity": {"planes": {"top": {"space": "bottom"}}}}},
     "config error at studies.homogeneity.planes.top: the bottom eigenvectors need every eigenpair"),
    ({"studies": {"homogeneity": {"planes": {"top": {"k": 5}}}}},
     "config error at studies.homogeneity.planes.top: k = 5 exceeds the 4 eigenpairs"),
    ({"figures": {"spirals_surfaces": {"kind": "sweeps", "experiment": "spirals_width", "grids": ["width"], "z": 50}}},
     "config error at figures.spirals_surfaces: the name is taken"),
])
def test_keys_that_name_other_keys_are_checked_before_any_job(tmp_path, config, sentence):
    assert sentence in refusal(tmp_path, config)


def test_tiny_real_run_through_every_rule(tiny_run):
    for figure in (*TINY["figures"], "fig4", "fig8", "spirals_surfaces", "homogeneity_perturbations"):
        for ext in ("pdf", "png"):
            assert (tiny_run / "results" / "figures" / f"{figure}.{ext}").stat().st_size > 1000
    model = tiny_run / MODELS / "model~mlp" / "width~8" / "depth~1" / "seed~0"
    record = json.loads((model / "spectrum.json").read_text())
    assert record["width"] == 8 and record["eigen"]["n_hvp"] > 0 and "torch" in record
    assert len(pd.read_csv(model / "metrics.csv")) == 2


@pytest.mark.parametrize("grid", ["width", "width_depth"])
def test_long_tables_hold_the_models_own_numbers(tiny_run, grid):
    """Every row of a table against the model's own final.json and its spectrum file: one row
    per (model, z, estimator); the certified top-k sum recomputed from the eigenvalues, the
    paper's estimator from the Lanczos coefficients, and the headline (slq) never a truncated
    sum: a finite interval, at least the top-k sum, more where the tail is not negligible."""
    spec = TINY["experiments"]["double_descent"]
    table = pd.read_csv(tiny_run / "results" / "tables" / "double_descent" / f"{grid}.csv")
    points = {(w, d) for w in spec["grids"][grid]["width"] for d in spec["grids"][grid]["depth"]}
    assert len(table) == 3 * len(points) * len(spec["effdim"]["z"])
    assert set(table["estimator"]) == {"slq", "certified", "paper"} and (table["grid"] == grid).all()
    for row in table.itertuples():
        folder = tiny_run / MODELS / f"model~{row.model}" / f"width~{row.width}" / f"depth~{row.depth}" / "seed~0"
        final = json.loads((folder / "final.json").read_text())
        assert (row.num_params, row.test_loss, row.train_loss) == (
            final["num_params"], pytest.approx(final["test_loss"], rel=1e-12), pytest.approx(final["train_loss"], rel=1e-12))
        spectrum = load_spectrum(folder / "spectrum.npz")
        assert row.num_converged == spectrum["converged"].sum() and row.k == spec["spectrum"]["k"]
        if row.estimator == "certified":
            assert row.value == pytest.approx(effective_dimension(spectrum["eigenvalues"], row.z), rel=1e-12)
            assert row.lower == row.value <= row.upper and row.interval == "bound"
        elif row.estimator == "paper":
            alpha, beta = np.array(spectrum["record"]["eigen"]["tridiagonal"])[:, :spec["spectrum"]["paper_steps"]]
            ritz = np.linalg.eigvalsh(np.diag(alpha) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1))
            assert row.value == pytest.approx(np.sum([t / (t + row.z) for t in ritz if t > 0 and t != 1.0]), rel=1e-9)
            assert np.isnan(row.lower) and np.isnan(row.upper)
        else:
            top_k = table[(table.estimator == "certified") & (table.width == row.width) & (table.depth == row.depth)
                          & (table.z == row.z)].iloc[0]
            assert np.isfinite(row.lower) and row.lower < row.value < row.upper
            assert row.value >= top_k.value and row.upper >= top_k.lower and row.lower <= top_k.upper
            if top_k.upper - top_k.lower > 1:  # the tail is not negligible: the headline carries it
                assert row.value > top_k.value + 0.1
    assert {(row.width, row.depth) for row in table.itertuples()} == points
    assert sorted(table["z"].unique()) == spec["effdim"]["z"]
    correlations = pd.read_csv(tiny_run / "results" / "tables" / "double_descent" / f"{grid}.correlations.csv")
    assert set(correlations["measure"]) == {"neff", "num_params", *MEASURES}
    assert sorted(correlations.dropna(subset=["z"])["z"].unique()) == spec["effdim"]["z"]
    assert set(correlations["estimator"].dropna()) >= {"slq", "certified", "paper"}


def test_every_job_writes_its_log(tiny_run):
    logs = sorted((tiny_run / "results" / "logs").rglob("*.log"))
    jobs = job_counts(json.loads((tiny_run / "run.json").read_text())["stderr"])
    assert len(logs) == jobs["total"] - jobs["all"]  # every job but `all` has a log of its own
    empty = [str(log.relative_to(tiny_run)) for log in logs if "finished in" not in log.read_text()]
    assert not empty, empty


def test_report_renders_every_caption(tiny_run):
    done = snakemake(tiny_run, "--report", "results/report.html")
    assert done.returncode == 0, done.stderr[-3000:]
    errors = re.findall(r".*\((?:ERROR|SEVERE|WARNING)/\d\).*", done.stdout + done.stderr)
    assert not errors, errors
    page = (tiny_run / "results" / "report.html").read_text()
    shown = json.loads(re.search(r"var results = (\{.*?\});\s*</script>", page, re.S).group(1))
    figures = [f"results/figures/{path.name}" for path in (tiny_run / "results" / "figures").glob("*.pdf")]
    assert figures and all(shown.get(figure, {}).get("caption") for figure in figures), sorted(shown)
    assert not any("System Message" in shown[figure]["caption"] for figure in figures)


def kill_once_written(workdir, target, config, checkpoint, grace=0.0):
    """Run snakemake for ``target`` and stop it with SIGTERM (as a cluster scheduler stops a
    job) once ``checkpoint`` exists (and ``grace`` seconds more)."""
    job = subprocess.Popen(snakemake_command(workdir, "--cores", "1", target, config=config),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and job.poll() is None:
        time.sleep(0.02)
    assert checkpoint.exists(), f"the job never wrote {checkpoint.name}"
    time.sleep(grace)
    os.killpg(job.pid, signal.SIGTERM)
    job.wait(60)


def test_killed_training_job_resumes(tmp_path):
    config = experiment("double_descent", train={"epochs": 400, "checkpoint_every": 1})
    model = tmp_path / MODELS / "model~mlp" / "width~4" / "depth~1" / "seed~0"
    target = str(model.relative_to(tmp_path) / "model.pt")
    kill_once_written(tmp_path, target, config, model / "train.ckpt.pt", grace=0.5)
    assert not (model / "model.pt").exists()
    log = tmp_path / "results" / "logs" / "train" / "double_descent" / "model~mlp" / "width~4" / "depth~1" / "seed~0.log"
    before = len(log.read_text().splitlines())
    done = snakemake(tmp_path, "--cores", "1", target, config=config)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = [json.loads(line) for line in log.read_text().splitlines()[before:] if line.startswith("{")]
    assert resumed[0]["epoch"] > 1 and resumed[-1]["epoch"] == 400  # continued, not restarted
    assert len(pd.read_csv(model / "metrics.csv")) == 400


def test_killed_spectrum_job_resumes(tmp_path):
    """A spectrum job killed once its product log holds products resumes from it: the rerun
    computes fewer products than a fresh run of the same job and gets the same spectrum."""
    spectrum = {"batch_size": 16, "tol": 1.0e-12, "max_steps": 200, "paper_steps": 20, "probes": 4, "probe_steps": 10}
    config = experiment("double_descent", spectrum=spectrum)
    model = tmp_path / MODELS / "model~mlp" / "width~4" / "depth~1" / "seed~0"
    target = str(model.relative_to(tmp_path) / "spectrum.npz")
    assert snakemake(tmp_path, "--cores", "1", str(model.relative_to(tmp_path) / "model.pt"),
                     config=config).returncode == 0
    products = model / "spectrum.ckpt.products.pt"
    kill_once_written(tmp_path, target, config, products)
    assert not (model / "spectrum.npz").exists() and products.exists()
    done = snakemake(tmp_path, "--cores", "1", target, config=config)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not list(model.glob("spectrum.ckpt.*"))  # checkpoints removed once the job is done
    resumed, resumed_file = json.loads((model / "spectrum.json").read_text()), load_spectrum(model / "spectrum.npz")
    (model / "spectrum.npz").unlink()
    fresh = snakemake(tmp_path, "--cores", "1", target, config=config)  # no checkpoint left: from scratch
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    full, full_file = json.loads((model / "spectrum.json").read_text()), load_spectrum(model / "spectrum.npz")
    assert full["n_hvp"] - resumed["n_hvp"] >= 10  # the saved products were replayed, not recomputed
    np.testing.assert_allclose(resumed_file["eigenvalues"], full_file["eigenvalues"], rtol=1e-9)
    np.testing.assert_allclose(resumed_file["quadrature"].nodes, full_file["quadrature"].nodes, rtol=1e-6, atol=1e-9)


def test_offline_download_error(tmp_path):
    root = tmp_path / "resources" / "data"
    root.mkdir(parents=True)
    (root / "cifar-10-python.tar.gz").write_bytes(b"a truncated download")
    config = experiment("homogeneity", data={"name": "cifar10", "download": False, "root": str(root)})
    done = snakemake(tmp_path, "--cores", "1", "results/homogeneity/data.pt", config=config)
    assert done.returncode != 0
    assert "place cifar-10-python.tar.gz from https://" in done.stdout + done.stderr
    assert not (tmp_path / "results" / "homogeneity" / "data.pt").exists()
    log = (tmp_path / "results" / "logs" / "data" / "homogeneity.log").read_text()
    assert "Traceback" in log and "failed after" in log  # the failure is in the job's own log


def test_spectrum_job_over_two_ranks_equals_one_process(tmp_path):
    """resources.spectrum_ranks: 2 makes the spectrum job start two ranks (torchrun, gloo here),
    each with half of the batches; rank 0 writes the same spectrum as a one-process job."""
    spectrum = {"batch_size": 50, "dtype": "float64", "tol": 1.0e-10, "max_steps": 120, "paper_steps": 20, "probes": 3,
                "probe_steps": 10}
    config = experiment("double_descent", spectrum=spectrum)
    model = tmp_path / MODELS / "model~mlp" / "width~4" / "depth~1" / "seed~0"
    target = str(model.relative_to(tmp_path) / "spectrum.npz")
    assert snakemake(tmp_path, "--cores", "1", target, config=config).returncode == 0
    single = load_spectrum(model / "spectrum.npz")
    config["resources"] = {"spectrum_ranks": 2}
    (model / "spectrum.npz").unlink()
    done = snakemake(tmp_path, "--cores", "2", target, config=config)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = load_spectrum(model / "spectrum.npz")
    record = json.loads((model / "spectrum.json").read_text())
    assert record["ranks"] == 2 and record["num_examples"] == single["record"]["num_examples"]
    np.testing.assert_allclose(ranks["eigenvalues"], single["eigenvalues"], rtol=1e-10)
    np.testing.assert_allclose(ranks["quadrature"].nodes, single["quadrature"].nodes, rtol=1e-6, atol=1e-9)
    assert not list(model.glob("spectrum.ckpt*"))  # the job file and checkpoints are gone
