"""Rule spectrum: Hessian eigenpairs of one trained model: every pair (method dense, small
models) or the certified top k (lanczos, eigsh); eigenvectors kept where a study asks for them."""
import time

import torch

from neff.data import read_dataset
from neff.device import default_device
from neff.eigen import exact_eigenpairs, top_eigenpairs
from neff.files import log_to, provenance, write_json
from neff.hessian import HessianOperator
from neff.models import load_grid_model
from neff.spectra import save_spectrum

sm = snakemake  # noqa: F821 (snakemake injects it)
wc, spec, keep_vectors = sm.wildcards, sm.params.spectrum, sm.params.eigenvectors
torch.set_num_threads(sm.threads)
with log_to(sm.log[0]):
    data = read_dataset(sm.input.data)
    model = load_grid_model(wc.model, data, wc.width, wc.depth, sm.input.model, **sm.params.model_kwargs)
    device = default_device()
    operator = HessianOperator(model, data.loss_fn(), data.loader("train", spec["batch_size"]), spec["params"],
                               reduction=spec["reduction"], dtype=getattr(torch, spec["dtype"]), device=device)
    print(operator)
    start = time.perf_counter()
    if spec["method"] == "dense":
        eigen = exact_eigenpairs(operator)
    else:
        eigen = top_eigenpairs(operator, min(spec["k"], operator.num_params - 1), spec["method"], tol=spec["tol"],
                               max_steps=spec["max_steps"], seed=spec["seed"], return_eigenvectors=keep_vectors)
    print(eigen)
    record = provenance(experiment=wc.experiment, model=wc.model, width=int(wc.width), depth=int(wc.depth),
                        seed=int(wc.seed), spectrum=spec, eigenvectors=keep_vectors,
                        num_examples=operator.num_examples, device=device, operator=operator.fingerprint(),
                        seconds=time.perf_counter() - start)
    save_spectrum(sm.output.spectrum, eigen, record, eigenvectors=keep_vectors)
    write_json(sm.output.record, {**record, "eigen": eigen.record()})
