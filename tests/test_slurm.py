"""The workflow on a real SLURM: a one-node cluster on this machine (tests/slurm_cluster.py) runs
Figure 1's table of the tiny config through the repository's profile, `snakemake --profile slurm`;
every job goes through sbatch, GPU jobs ask SLURM for a GPU, and the table equals a local run's."""
import re
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from slurm_cluster import Unavailable, jobs, local_slurm
from test_workflow import ROOT, job_counts, snakemake

pytestmark = pytest.mark.slurm

CONFIG = {"resources": {"gpu": 1}}  # as config/paper.yaml: train and spectrum ask for a GPU
TARGET = "results/tables/double_descent/width.csv"
# Over the profile, only what a test cluster needs: it has no accounting database (squeue for
# status), and its jobs take seconds (first status check after 2 s, not 40 s).
OVERRIDES = ("--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        with local_slurm(tmp_path_factory.mktemp("slurm")) as env:
            yield env
    except Unavailable as why:
        pytest.skip(f"no SLURM to test on: {why}")


def test_profile_runs_the_workflow_through_sbatch_as_locally(cluster, tmp_path, capsys):
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    on_slurm.mkdir()
    local.mkdir()
    (on_slurm / "slurm").symlink_to(ROOT / "slurm")  # run as from the repository root
    with ThreadPoolExecutor() as pool:  # the local run while the SLURM one mostly waits
        local_run = pool.submit(snakemake, local, "--cores", "1", TARGET, config=CONFIG, timeout=420)
        done = snakemake(on_slurm, "--profile", "slurm", *OVERRIDES, TARGET, config=CONFIG, cwd=on_slurm,
                         env=cluster, timeout=420)
    assert done.returncode == 0, done.stderr[-3000:]
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", done.stderr)
    with capsys.disabled():  # shown in CI's output, not captured
        print(f"\n{len(submitted)} jobs went through sbatch: SLURM job ids {', '.join(submitted)}")
    assert len(set(submitted)) == job_counts(done.stderr)["total"] == 8  # data, 2 x (train, spectrum, measures), table
    seen = jobs(cluster)
    assert {seen[job]["state"] for job in submitted} == {"COMPLETED"}
    gpu_rules = {seen[job]["comment"].split("_")[1] for job in submitted if seen[job]["tres"] == "gres:gpu:1"}
    assert gpu_rules == {"train", "spectrum", "measures"}

    assert local_run.result().returncode == 0, local_run.result().stderr[-3000:]
    tables = [pd.read_csv(folder / TARGET) for folder in (on_slurm, local)]
    pd.testing.assert_frame_equal(*tables, rtol=1e-6)
