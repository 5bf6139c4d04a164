"""Rule surfaces_sweep: loss and homogeneity on train and test against perturbation norm, along
random combinations of the top eigenvectors and along random directions orthogonal to them."""
import time

import numpy as np
import pandas as pd
import torch

from neff.data import read_dataset
from neff.device import default_device
from neff.files import log_to, provenance, write_csv, write_json
from neff.models import load_grid_model
from neff.objective import Objective
from neff.spectra import load_spectrum
from neff.surfaces import perturbation_sweep

sm = snakemake  # noqa: F821 (snakemake injects it)
point = sm.params.point
sweep, spec = sm.params.sweep, sm.params.spectrum
torch.set_num_threads(sm.threads)
with log_to(sm.log[0]):
    data = read_dataset(sm.input.data)
    spectrum = load_spectrum(sm.input.spectrum, eigenvectors=True)
    model = load_grid_model(point["model"], data, point["width"], point["depth"], sm.input.model,
                            **sm.params.model_kwargs)
    device = default_device()
    objectives = {split: Objective(model, data.loss_fn(), data.loader(split, spec["batch_size"]), "all",
                                   dtype=getattr(torch, spec["dtype"]), device=device)
                  for split in ("train", "test")}
    basis = spectrum["eigenvectors"]
    start = time.perf_counter()
    norms = np.linspace(0, sweep["max_norm"], sweep["steps"])
    table = pd.DataFrame(perturbation_sweep(objectives, basis, norms, sweep["trials"], seed=sweep["seed"],
                                            batch_points=sweep["batch_points"]))
    summary = table.groupby(["split", "direction", "norm"])[["loss", "homogeneity"]].mean()
    print(summary.to_string())
    write_csv(sm.output.sweep, table)
    write_json(sm.output.record, provenance(sweep=sweep, k=basis.shape[1], seconds=time.perf_counter() - start,
                                            mean_at_max_norm=summary.xs(norms[-1], level="norm").reset_index()
                                            .to_dict("records")))
