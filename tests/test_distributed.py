"""Products over data sharded across 2 processes (real torch.distributed, gloo on the CPU),
launched by torchrun, against the single-process operator; a rank that dies fails the run."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import neff
from neff import distributed

WORKER = Path(__file__).with_name("distributed_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_sharded_products_equal_the_single_process_operator(tmp_path):
    """5 batches (the last short) over 2 ranks (3 and 2 of them): products, the dense matrix, the
    loss, the example count, the fingerprint and the eigenvalues equal the single-process
    operator's to 1e-10, identically on both ranks, for the Hessian and the GGN; rank 0 alone
    writes the checkpoint."""
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(WORKER), str(tmp_path), "equal"], capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["batches"] for r in ranks] == [3, 2]
    for kind in ("hessian", "ggn"):
        for r in ranks:
            got = r[kind]
            for name in ("product", "dense", "eigenvalues"):
                np.testing.assert_allclose(got[name], got[f"single_{name}"], rtol=1e-10, atol=1e-13)
            assert got["value"] == pytest.approx(got["single_value"], rel=1e-12)
            assert got["examples"] == 47 and got["fingerprint"] == got["single_fingerprint"]
        assert ranks[0][kind] == ranks[1][kind]  # the same numbers on every rank, to the last bit
        assert (tmp_path / f"{kind}.pt").exists()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_rank_that_dies_fails_the_run_instead_of_hanging(tmp_path):
    """Two ranks started by hand (as srun would): rank 1 exits after one product, and rank 0's
    next product fails with one sentence well within the worker's 20 s timeout."""
    env = {**ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2"}
    start = time.monotonic()
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(tmp_path), "die"], env={**env, "RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    (_, err0), (_, _) = (p.communicate(timeout=120) for p in procs)
    assert procs[1].returncode == 3 and procs[0].returncode == 1
    assert "neff.errors.NeffError: rank 0 of 2: another rank of the distributed run stopped" in err0, err0[-2000:]
    assert time.monotonic() - start < 60


def test_distributed_needs_a_process_group(mlp, classification_data, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(neff.NeffError, match="distributed=True needs a process group; call neff.distributed.init"):
        neff.HessianOperator(mlp, None, [classification_data], distributed=True)
    with pytest.raises(neff.NeffError, match="no distributed launch found .*; start the ranks with torchrun"):
        distributed.init()


def test_shards_deal_batches_round_robin():
    data = list(range(7))
    assert [list(distributed.shard(data, r, 3)) for r in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    assert list(distributed.shard(data)) == data  # not distributed: all of it
