"""Rule surfaces_sweep: loss and homogeneity on train and test against perturbation norm, along
random combinations of the top eigenvectors and along random directions orthogonal to them."""
import time
from contextlib import redirect_stdout

import numpy as np
import pandas as pd
import torch

from neff.data import read_dataset
from neff.hessian import HessianOperator, default_device
from neff.io import provenance, write_csv, write_json
from neff.models import load_grid_model
from neff.surfaces import perturbation_sweep

sm = snakemake  # noqa: F821 (snakemake injects it)
wc, sweep, spec = sm.wildcards, sm.params.sweep, sm.params.hessian
torch.set_num_threads(sm.threads)
with open(sm.log[0], "w") as log, redirect_stdout(log):
    data = read_dataset(sm.input.data)
    model = load_grid_model(wc.model, data, wc.width, wc.depth, sm.input.model, **sm.params.model_kwargs)
    device = default_device()
    operators = {split: HessianOperator(model, data.loss_fn(), data.loader(split, spec["batch_size"]), "all",
                                        dtype=getattr(torch, spec["dtype"]), device=device)
                 for split in ("train", "test")}
    basis = torch.load(sm.input.eigenvectors, weights_only=True)["eigenvectors"]
    start = time.perf_counter()
    norms = np.linspace(0, sweep["max_norm"], sweep["steps"])
    table = pd.DataFrame(perturbation_sweep(operators, basis, norms, sweep["trials"], seed=sweep["seed"],
                                            batch_points=sweep["batch_points"]))
    summary = table.groupby(["split", "direction", "norm"])[["loss", "homogeneity"]].mean()
    print(summary.to_string())
    write_csv(sm.output.sweep, table)
    write_json(sm.output.record, provenance(sweep=sweep, k=basis.shape[1], seconds=time.perf_counter() - start,
                                            mean_at_max_norm=summary.xs(norms[-1], level="norm").reset_index()
                                            .to_dict("records")))
