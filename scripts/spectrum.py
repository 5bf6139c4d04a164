"""Rule spectrum: certified top eigenvalues of the training-loss Hessian of one trained model."""
import time
from contextlib import redirect_stdout

import torch

from neff.data import read_dataset
from neff.eigen import top_eigenpairs
from neff.hessian import HessianOperator, default_device
from neff.io import provenance, save_spectrum
from neff.models import load_grid_model

sm = snakemake  # noqa: F821 (snakemake injects it)
wc, spec = sm.wildcards, sm.params.spectrum
torch.set_num_threads(sm.threads)
with open(sm.log[0], "w") as log, redirect_stdout(log):
    data = read_dataset(sm.input.data)
    model = load_grid_model(wc.model, data, wc.width, wc.depth, sm.input.model, **sm.params.model_kwargs)
    device = default_device()
    operator = HessianOperator(model, data.loss_fn(), data.loader("train", spec["batch_size"]), spec["params"],
                               reduction=spec["reduction"], dtype=getattr(torch, spec["dtype"]), device=device)
    start = time.perf_counter()
    k = min(spec["k"], operator.num_params - 1)
    eigen = top_eigenpairs(operator, k, spec["method"], tol=spec["tol"], max_steps=spec["max_steps"],
                           seed=spec["seed"], return_eigenvectors=False)
    print(eigen)
    save_spectrum(sm.output.spectrum, eigen, provenance(
        model=wc.model, width=int(wc.width), depth=int(wc.depth), seed=int(wc.seed), spectrum=spec,
        num_examples=operator.num_examples, device=device, operator=operator.fingerprint(),
        seconds=time.perf_counter() - start))
