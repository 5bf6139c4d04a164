"""Rule spectrum: what the N_eff estimators need from one trained model's Hessian: every
eigenpair (method dense, small models), or one solver run for the certified top k (its first
paper_steps Ritz values for the paper's estimator) and deflated SLQ probes for the rest. A
killed job resumes from its checkpoints (products, finished probes) on rerun.

With resources.spectrum_ranks > 1 the job starts that many processes (torchrun on one node,
srun across resources.spectrum_nodes), each with a shard of the batches (neff.distributed):
this file again, given the job as a JSON file. Rank 0 writes the outputs."""
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from neff import distributed
from neff.data import read_dataset
from neff.device import default_device
from neff.files import log_to, provenance, write_json
from neff.hessian import HessianOperator
from neff.models import load_grid_model
from neff.spectra import checkpoint_files, compute_spectrum, save_spectrum


def run(job: dict, device: torch.device) -> None:
    spec, world = job["spectrum"], distributed.world_size()
    data = read_dataset(job["data"])
    model = load_grid_model(job["model"], data, job["width"], job["depth"], job["checkpoint_model"],
                            **job["model_kwargs"])
    batches = data.loader("train", spec["batch_size"])
    operator = HessianOperator(model, data.loss_fn(), distributed.shard(batches) if world > 1 else batches,
                               spec["params"], reduction=spec["reduction"], dtype=getattr(torch, spec["dtype"]),
                               device=device, distributed=world > 1)
    print(operator, f"rank {distributed.rank()} of {world}" if world > 1 else "")
    start = time.perf_counter()
    solver = {key: spec[key] for key in ("k", "tol", "max_steps", "seed", "probes", "probe_steps", "paper_steps",
                                         "rtol", "max_hvp") if key in spec}
    eigen, quadrature = compute_spectrum(operator, spec["method"], z=job["z"], checkpoint=job["checkpoint"], **solver)
    print(eigen)
    fingerprint = operator.fingerprint()  # a collective in a distributed run: every rank takes part
    if not distributed.is_main():
        return
    record = provenance(**job["record"], spectrum=spec, eigenvectors=job["eigenvectors"], ranks=world,
                        num_examples=operator.num_examples, device=device, operator=fingerprint,
                        n_hvp=operator.n_hvp, seconds=time.perf_counter() - start)
    save_spectrum(job["spectrum_file"], eigen, record, eigenvectors=job["eigenvectors"], quadrature=quadrature)
    write_json(job["record_file"], {**record, "eigen": eigen.record()})
    for done in checkpoint_files(job["checkpoint"]).values():
        done.unlink(missing_ok=True)


if "snakemake" not in globals():  # one rank of a distributed job
    run(json.loads(Path(sys.argv[1]).read_text()), distributed.init())
    sys.exit()
sm = snakemake  # noqa: F821 (snakemake injects it)
wc = sm.wildcards
job = {"data": sm.input.data, "checkpoint_model": sm.input.model, "model": wc.model, "width": wc.width,
       "depth": wc.depth, "model_kwargs": sm.params.model_kwargs, "spectrum": sm.params.spectrum, "z": sm.params.z,
       "eigenvectors": sm.params.eigenvectors, "checkpoint": sm.params.checkpoint,
       "spectrum_file": sm.output.spectrum, "record_file": sm.output.record,
       "record": {"experiment": wc.experiment, "model": wc.model, "width": int(wc.width), "depth": int(wc.depth),
                  "seed": int(wc.seed)}}
torch.set_num_threads(sm.threads)
with log_to(sm.log[0], mode="a") as log:
    if sm.params.ranks == 1:
        run(job, default_device())
    else:
        path = Path(sm.params.checkpoint + ".job.json")
        path.write_text(json.dumps(job))
        command, environment = distributed.launch_command([str(Path(sm.scriptdir) / "spectrum.py"), str(path)],
                                                          sm.params.ranks, sm.params.nodes)
        print(" ".join(command))
        subprocess.run(command, env=environment, stdout=log, stderr=log, check=True)
        path.unlink()
