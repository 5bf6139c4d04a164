"""Rule spectrum: what the N_eff estimators need from one trained model's Hessian: every
eigenpair (method dense, small models), or one solver run for the certified top k (its first
paper_steps Ritz values for the paper's estimator) and deflated SLQ probes for the rest. A
killed job resumes from its checkpoints (products, finished probes) on rerun."""
import time

import torch

from neff.data import read_dataset
from neff.device import default_device
from neff.files import log_to, provenance, write_json
from neff.hessian import HessianOperator
from neff.models import load_grid_model
from neff.spectra import checkpoint_files, compute_spectrum, save_spectrum

sm = snakemake  # noqa: F821 (snakemake injects it)
wc, spec, keep_vectors = sm.wildcards, sm.params.spectrum, sm.params.eigenvectors
torch.set_num_threads(sm.threads)
with log_to(sm.log[0], mode="a"):
    data = read_dataset(sm.input.data)
    model = load_grid_model(wc.model, data, wc.width, wc.depth, sm.input.model, **sm.params.model_kwargs)
    device = default_device()
    operator = HessianOperator(model, data.loss_fn(), data.loader("train", spec["batch_size"]), spec["params"],
                               reduction=spec["reduction"], dtype=getattr(torch, spec["dtype"]), device=device)
    print(operator)
    start = time.perf_counter()
    solver = {key: spec[key] for key in ("k", "tol", "max_steps", "seed", "probes", "probe_steps", "paper_steps",
                                         "rtol", "max_hvp") if key in spec}
    eigen, quadrature = compute_spectrum(operator, spec["method"], z=sm.params.z, checkpoint=sm.params.checkpoint,
                                         **solver)
    print(eigen)
    record = provenance(experiment=wc.experiment, model=wc.model, width=int(wc.width), depth=int(wc.depth),
                        seed=int(wc.seed), spectrum=spec, eigenvectors=keep_vectors,
                        num_examples=operator.num_examples, device=device, operator=operator.fingerprint(),
                        n_hvp=operator.n_hvp, seconds=time.perf_counter() - start)
    save_spectrum(sm.output.spectrum, eigen, record, eigenvectors=keep_vectors, quadrature=quadrature)
    write_json(sm.output.record, {**record, "eigen": eigen.record()})
    for done in checkpoint_files(sm.params.checkpoint).values():
        done.unlink(missing_ok=True)
