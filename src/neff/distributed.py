"""Curvature products over data split across processes, with ``torch.distributed``.

Each process (rank) holds a shard of the batches (:func:`shard`) and builds its operator with
``distributed=True``. A product is then the sum over ranks of each rank's size-weighted partial
sum, divided by the total number of examples: the single-process operator's matrix, with the
same exact batch weighting. Every rank runs the same solver on the same products: before each
product the block is broadcast from rank 0, so the ranks multiply the same vectors even if their
own arithmetic differed in the last bit, and every rank gets the same eigenpairs. Only rank 0
writes checkpoints (``is_main``). A rank that dies or stops answering makes the others fail
within the process group's timeout with a :class:`NeffError` naming it, rather than hang.

Launch with ``torchrun --nproc-per-node N script.py`` on one node, or ``srun`` across nodes
(one task per GPU); :func:`init` reads either's environment.
"""
from __future__ import annotations

import datetime
import os
import subprocess
import sys
from typing import Iterable, Iterator

import torch
import torch.distributed as dist

from .errors import NeffError

TIMEOUT_S = 1800


def active() -> bool:
    """Whether this process is part of an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """True on rank 0, and in a process that is not distributed."""
    return rank() == 0


def _slurm_env() -> None:
    """torchrun's variables from srun's (one task per GPU; MASTER_ADDR set by the job script)."""
    if "RANK" not in os.environ and "SLURM_PROCID" in os.environ:
        os.environ.update(RANK=os.environ["SLURM_PROCID"], WORLD_SIZE=os.environ["SLURM_NTASKS"],
                          LOCAL_RANK=os.environ.get("SLURM_LOCALID", "0"))
        os.environ.setdefault("MASTER_PORT", "29500")


def init(timeout_s: float = TIMEOUT_S) -> torch.device:
    """Join the process group that torchrun (or srun, one task per GPU) describes: NCCL with one
    GPU per rank where there are GPUs, gloo on CPUs. Returns this rank's device. A collective
    that waits longer than ``timeout_s`` (a dead or stuck rank) fails instead of hanging."""
    _slurm_env()
    missing = [name for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise NeffError(f"no distributed launch found ({', '.join(missing)} not set); start the ranks with "
                        "torchrun --nproc-per-node N, or srun with one task per GPU")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                            timeout=datetime.timedelta(seconds=timeout_s))
    return device


def launch_command(argv: list[str], ranks: int, nodes: int = 1) -> tuple[list[str], dict]:
    """The command (and environment) that starts ``python argv...`` as ``ranks`` processes: on
    one node torchrun (``--standalone``: it picks a free port), across ``nodes`` srun inside a
    SLURM allocation (one task per GPU, the first node as the rendezvous). Each process then
    calls :func:`init`."""
    if nodes == 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}",
                *argv], dict(os.environ)
    if "SLURM_JOB_NODELIST" not in os.environ:
        raise NeffError(f"{nodes} nodes were asked for outside a SLURM allocation; run under SLURM (the slurm "
                        "profile) or use one node")
    hosts = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]], check=True,
                           capture_output=True, text=True).stdout.split()
    environment = {**os.environ, "MASTER_ADDR": hosts[0], "MASTER_PORT": os.environ.get("MASTER_PORT", "29500")}
    return ["srun", f"--nodes={nodes}", f"--ntasks={ranks}", f"--ntasks-per-node={-(-ranks // nodes)}",
            sys.executable, *argv], environment


class Shard:
    """Every ``world``-th batch of ``data``, from the ``rank``-th on: this rank's share, read
    again on every pass (batch i goes to rank i mod world). The data must give the same batches
    in the same order on every rank: a loader that does not shuffle."""

    def __init__(self, data: Iterable, rank_: int, world: int):
        self.data, self.rank, self.world = data, rank_, world

    def __iter__(self) -> Iterator:
        for i, batch in enumerate(self.data):
            if i % self.world == self.rank:
                yield batch


def shard(data: Iterable, rank_: int | None = None, world: int | None = None) -> Shard:
    """This rank's share of ``data`` (default: the process group's rank and size)."""
    return Shard(data, rank() if rank_ is None else rank_, world_size() if world is None else world)


def _collective(operation, *args):
    try:
        operation(*args)
    except (RuntimeError, dist.DistBackendError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise NeffError(f"rank {rank()} of {world_size()}: another rank of the distributed run stopped or did not "
                        f"answer ({first}); see that rank's log for why it stopped") from None


def sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over the ranks, in place, the same on every rank."""
    _collective(dist.all_reduce, tensor)
    return tensor


def from_main(tensor: torch.Tensor) -> torch.Tensor:
    """Rank 0's ``tensor`` on every rank, in place."""
    _collective(dist.broadcast, tensor, 0)
    return tensor


def require() -> None:
    """Refuse ``distributed=True`` outside a process group, in one sentence."""
    if not active():
        raise NeffError("distributed=True needs a process group; call neff.distributed.init() in each rank "
                        "(started by torchrun or srun) before building the operator")
