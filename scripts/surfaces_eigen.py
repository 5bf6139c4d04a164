"""Rules surfaces_spectrum and surfaces_eigen: Hessian eigenpairs of a study's trained model,
dense (every pair, small models) or certified top-k by Lanczos; the spectrum as a neff .npz or
the eigenvectors as a torch file."""
import time
from contextlib import redirect_stdout

import torch

from neff.data import read_dataset
from neff.eigen import top_eigenpairs
from neff.hessian import HessianOperator, default_device
from neff.io import atomic_path, provenance, save_spectrum, write_json
from neff.models import load_grid_model
from neff.validate import exact_eigenpairs

sm = snakemake  # noqa: F821 (snakemake injects it)
wc, spec = sm.wildcards, sm.params.hessian
torch.set_num_threads(sm.threads)
with open(sm.log[0], "w") as log, redirect_stdout(log):
    data = read_dataset(sm.input.data)
    model = load_grid_model(wc.model, data, wc.width, wc.depth, sm.input.model, **sm.params.model_kwargs)
    device = default_device()
    operator = HessianOperator(model, data.loss_fn(), data.loader("train", spec["batch_size"]), "all",
                               reduction=spec["reduction"], dtype=getattr(torch, spec["dtype"]), device=device)
    start = time.perf_counter()
    if spec["method"] == "dense":
        eigen = exact_eigenpairs(operator)
    else:
        eigen = top_eigenpairs(operator, min(spec["k"], operator.num_params - 1), "lanczos", tol=spec["tol"],
                               max_steps=spec["max_steps"], seed=spec["seed"])
    print(eigen)
    record = provenance(model=wc.model, width=int(wc.width), depth=int(wc.depth), seed=int(wc.seed), hessian=spec,
                        num_examples=operator.num_examples, device=device, operator=operator.fingerprint(),
                        seconds=time.perf_counter() - start)
    if "spectrum" in sm.output.keys():
        save_spectrum(sm.output.spectrum, eigen, record)
    else:
        with atomic_path(sm.output.eigenvectors) as tmp:
            torch.save({"eigenvalues": torch.as_tensor(eigen.eigenvalues),
                        "eigenvectors": eigen.eigenvectors.cpu().contiguous()}, tmp)
        write_json(sm.output.record, {**record, "eigen": eigen.record()})
