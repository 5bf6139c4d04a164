"""Fault tolerance of the workflow, on Figure 1's table of the tiny config in temporary folders: a
run killed mid-way is restarted and recomputes only what was missing or incomplete; an unchanged
rerun does nothing; a changed parameter reruns only its dependents; --keep-going finishes the other
branches when one model diverges, and reports the diverged one."""
import os
import signal
import subprocess
import time

import pytest

from test_workflow import experiment, planned, snakemake, snakemake_command

TARGET = "results/tables/double_descent/width.csv"
STAGES = ("data", "train", "spectrum", "table")


@pytest.fixture(scope="module")
def restarted(tmp_path_factory):
    """A run killed as a failing node kills it (SIGKILL: no clean-up) once its first training job
    has finished; then unlocked and restarted. Yields the folder, the files' modification times
    at the kill and the restart."""
    workdir = tmp_path_factory.mktemp("killed")
    log = workdir / "killed-run.log"
    with open(log, "w") as out:
        run = subprocess.Popen(snakemake_command(workdir, "--cores", "1", TARGET), stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 180
    while "(Rule: train)" not in log.read_text():
        assert run.poll() is None and time.time() < deadline, "no training job finished:\n" + log.read_text()
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    before = {path: path.stat().st_mtime_ns for path in (workdir / "results").rglob("*") if path.is_file()}
    assert snakemake(workdir, "--unlock").returncode == 0
    yield workdir, before, snakemake(workdir, "--cores", "2", "--rerun-incomplete", TARGET)


def test_killed_run_recomputes_only_what_is_missing(restarted):
    workdir, before, done = restarted
    assert done.returncode == 0, done.stderr[-3000:]
    assert planned(done.stderr, *STAGES) == {"data": 0, "train": 1, "spectrum": 2, "table": 1}
    kept = {path.relative_to(workdir / "results").as_posix() for path, mtime in before.items()
            if path.stat().st_mtime_ns == mtime}
    assert {"double_descent/data.pt", "double_descent/data.json"} <= kept
    assert len([path for path in kept if path.endswith("/model.pt")]) == 1  # the finished model, untouched


def test_unchanged_rerun_does_nothing(restarted):
    done = snakemake(restarted[0], "-n", TARGET)
    assert done.returncode == 0 and "Nothing to be done" in done.stdout + done.stderr


def test_changed_parameter_reruns_only_its_dependents(restarted):
    changed = experiment("double_descent", spectrum={"k": 4})
    done = snakemake(restarted[0], "-n", TARGET, config=changed)
    assert done.returncode == 0, done.stderr[-3000:]
    assert planned(done.stdout, *STAGES) == {"data": 0, "train": 0, "spectrum": 2, "table": 1}
    assert "Params have changed since last execution" in done.stdout


def test_keep_going_finishes_other_branches_and_reports_the_diverged_model(tmp_path):
    # Adam's first step moves every weight by about the learning rate: at 1e15 the logits of a
    # depth-2 MLP overflow (NaN loss, and the train script stops), a depth-1 MLP's stay finite.
    config = experiment("double_descent", train={"lr": 1e15}, grids={"width": {"width": [4]},
                                                                     "width_depth": {"width": [8], "depth": [2]}})
    other = "results/tables/double_descent/width_depth.csv"
    done = snakemake(tmp_path, "--cores", "2", "--keep-going", TARGET, other, config=config)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "training diverged at epoch" in output
    failed = output.split("Error in rule train:", 1)[1].split("\n\n", 1)[0]
    assert "width~8/depth~2" in failed
    assert (tmp_path / TARGET).exists() and not (tmp_path / other).exists()
    assert not list((tmp_path / "results" / "double_descent" / "models" / "model~mlp" / "width~8").rglob("model.pt"))
