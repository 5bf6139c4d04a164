"""The Snakemake workflow: plans, a tiny real run through every rule and its report, resumption of a killed
training job, a refused config and the offline download error (all in temporary folders)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

TINY = {
    "experiment": "tiny",
    "data": {"subset": 120},
    "train": {"epochs": 2, "checkpoint_every": 1},
    "spectrum": {"k": 5, "max_steps": 30, "batch_size": 64},
    "effdim": {"z": [0.1, 1.0], "z_plot": 0.1},
    "fig1": {"width": [4, 8]},
    "fig2": {"width": [4, 8], "depth": [1, 2], "param_contours": [500]},
    "surfaces": {  # a small two-spirals net with one extra plane (the complement), a tiny LeNet
        "spirals": {"model": {"width": 8, "depth": 2}, "train": {"epochs": 30, "checkpoint_every": 10},
                    "planes": {"bottom": {"k": 60}, "bottom_far": {"k": 20},
                               "degenerate": {"space": "complement", "k": 3, "extent": 1}},
                    "grid": {"points": 5}, "boundaries": {"bottom": 50, "resolution": 20},
                    "neff": {"width": [8], "depth": [2]}},
        "homogeneity": {"data": {"subset": 200}, "train": {"epochs": 2, "checkpoint_every": 1},
                        "hessian": {"k": 4, "max_steps": 40, "batch_size": 200},
                        "planes": {"top": {"k": 4}, "degenerate": {"k": 4}},
                        "grid": {"points": 3, "chunks": 1}, "sweep": {"steps": 3, "trials": 2}}},
    "bayes": {"blr": {"points": 40, "features": 20, "band": [15, 25]},  # 20 Fourier features, 40 points
              "bnn": {"width": 3, "sizes": [6, 12], "trials": 2, "warmup": 10, "samples": 10,
                      "max_tree_depth": 3, "map_steps": 20}},
    "random_features": {"n": 30, "d": {"start": 10, "stop": 60, "step": 10}, "total_features": 60,
                        "trials": 2, "n_test": 50},
}


def snakemake_command(workdir, *args, config=None):
    command = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    if config is not None:
        path = Path(workdir) / "test-config.yaml"
        path.write_text(yaml.safe_dump(config))
        command += ["--configfile", str(path)]
    return command + list(args)


def snakemake(workdir, *args, config=None, **kwargs):
    return subprocess.run(snakemake_command(workdir, *args, config=config), capture_output=True, text=True,
                          **kwargs)


def job_counts(output):
    table = output.split("Job stats:")[1].strip().split("\n\n")[0]
    return {name: int(count) for name, count in (line.split() for line in table.splitlines()[2:])}


def planned(output, *rules):
    """Planned job counts of the named rules (other stages have their own plan tests)."""
    counts = job_counts(output)
    return {rule: counts.get(rule, 0) for rule in rules}


FIG12_RULES = ("data", "train", "spectrum", "table", "figure", "all")


def test_plan_of_the_default_config(default_plan):
    assert planned(default_plan, *FIG12_RULES) == {"data": 1, "train": 23, "spectrum": 23, "table": 2,
                                                  "figure": 2, "all": 1}


def test_plan_of_the_paper_config(paper_plan):
    # 64 ResNet18 widths + 16 x 9 ConvNetDepth models, each trained and its spectrum computed
    assert planned(paper_plan, *FIG12_RULES) == {"data": 1, "train": 208, "spectrum": 208, "table": 2,
                                                  "figure": 2, "all": 1}


def test_plan_of_one_figure(tmp_path):
    done = snakemake(tmp_path, "-n", "results/figures/fig1.pdf")
    counts = job_counts(done.stdout)
    assert counts["train"] == 11 and counts["figure"] == 1 and "all" not in counts


def test_bad_config_is_refused_in_one_sentence(tmp_path):
    done = snakemake(tmp_path, "-n", config={"trian": {"epochs": 3}})
    assert done.returncode != 0
    assert ("config error at top level: Additional properties are not allowed ('trian' was unexpected); "
            "see config/README.md") in done.stdout + done.stderr
    done = snakemake(tmp_path, "-n", config={"train": {"optimizer": "rmsprop"}})
    assert "config error at train.optimizer: 'rmsprop' is not one of ['sgd', 'adam']" in done.stdout + done.stderr


def test_tiny_real_run_through_every_rule(tiny_run):
    tmp_path = tiny_run
    for figure in ("fig1", "fig2"):
        for ext in ("pdf", "png"):
            assert (tmp_path / "results" / "figures" / f"{figure}.{ext}").stat().st_size > 1000
    table = pd.read_csv(tmp_path / "results" / "tables" / "fig2.csv")
    assert len(table) == 4 and {"neff@0.1", "neff@1", "num_params", "test_loss"} <= set(table.columns)
    assert (table["neff@0.1"] > 0).all() and (table["k"] == 5).all()
    correlations = pd.read_csv(tmp_path / "results" / "tables" / "fig1_correlations.csv")
    assert set(correlations["measure"]) == {"neff@0.1", "neff@1", "num_params"}
    model = tmp_path / "results" / "tiny" / "models" / "model~mlp" / "width~8" / "depth~1" / "seed~0"
    record = json.loads((model / "spectrum.json").read_text())
    assert record["width"] == 8 and record["eigen"]["n_hvp"] > 0 and "torch" in record
    assert len(pd.read_csv(model / "metrics.csv")) == 2
    # the report: one page with every figure (PDF) and its caption
    done = snakemake(tmp_path, "--report", "results/report.html", config=TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "results" / "report.html").read_text()
    shown = json.loads(re.search(r"var results = (\{.*?\});\s*</script>", page, re.S).group(1))
    figures = [f"results/figures/{path.name}" for path in (tmp_path / "results" / "figures").glob("*.pdf")]
    assert figures and all(shown.get(figure, {}).get("caption") for figure in figures), sorted(shown)


def test_killed_training_job_resumes(tmp_path):
    config = {**TINY, "train": {"epochs": 400, "checkpoint_every": 1}}
    model = tmp_path / "results" / "tiny" / "models" / "model~mlp" / "width~4" / "depth~1" / "seed~0"
    target = str(model.relative_to(tmp_path) / "model.pt")
    job = subprocess.Popen(snakemake_command(tmp_path, "--cores", "1", target, config=config),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoint = model / "train.ckpt.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and job.poll() is None:
        time.sleep(0.05)
    assert checkpoint.exists(), "training never wrote a checkpoint"
    time.sleep(0.5)
    os.killpg(job.pid, signal.SIGTERM)  # as a cluster scheduler stops a job
    job.wait(60)
    assert not (model / "model.pt").exists()
    log = tmp_path / "results" / "logs" / "tiny" / "train" / "model~mlp" / "width~4" / "depth~1" / "seed~0.log"
    before = len(log.read_text().splitlines())
    done = snakemake(tmp_path, "--cores", "1", target, config=config)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed = [json.loads(line) for line in log.read_text().splitlines()[before:] if line.startswith("{")]
    assert resumed[0]["epoch"] > 1 and resumed[-1]["epoch"] == 400  # continued, not restarted
    assert len(pd.read_csv(model / "metrics.csv")) == 400


def test_offline_download_error(tmp_path):
    root = tmp_path / "resources" / "data"
    root.mkdir(parents=True)
    (root / "cifar-10-python.tar.gz").write_bytes(b"a truncated download")
    config = {**TINY, "data": {"name": "cifar10", "download": False, "root": str(root)}}
    done = snakemake(tmp_path, "--cores", "1", "results/tiny/data.pt", config=config)
    assert done.returncode != 0
    assert "place cifar-10-python.tar.gz from https://" in done.stdout + done.stderr
    assert not (tmp_path / "results" / "tiny" / "data.pt").exists()
