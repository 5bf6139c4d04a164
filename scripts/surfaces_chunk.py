"""Rule surfaces_chunk: train loss, accuracy and homogeneity on one chunk of a plane's grid."""
import time

import numpy as np
import torch

from neff.data import read_dataset
from neff.hessian import HessianOperator, default_device
from neff.io import atomic_path
from neff.models import load_grid_model
from neff.surfaces import chunk_of, evaluate_plane, grid_coordinates

sm = snakemake  # noqa: F821 (snakemake injects it)
wc, plane, grid, spec = sm.wildcards, sm.params.plane, sm.params.grid, sm.params.hessian
torch.set_num_threads(sm.threads)
data = read_dataset(sm.input.data)
model = load_grid_model(wc.model, data, wc.width, wc.depth, sm.input.model, **sm.params.model_kwargs)
device = default_device()
operator = HessianOperator(model, data.loss_fn(), data.loader("train", spec["batch_size"]), "all",
                           dtype=getattr(torch, spec["dtype"]), device=device)
start = time.perf_counter()
coordinates = chunk_of(grid_coordinates(plane["extent"], grid["points"]), grid["chunks"], int(wc.chunk))
directions = torch.load(sm.input.directions, weights_only=True)[wc.plane]
surface = evaluate_plane(operator, directions, coordinates, grid["batch_points"])
with atomic_path(sm.output.chunk) as tmp, open(tmp, "wb") as handle:
    np.savez(handle, plane=wc.plane, seconds=time.perf_counter() - start, **surface)
