"""Rule surfaces_chunk: train loss, accuracy and homogeneity on one chunk of a plane's grid."""
import time

import numpy as np
import torch

from neff.data import read_dataset
from neff.device import default_device
from neff.files import atomic_path, log_to
from neff.models import load_grid_model
from neff.objective import Objective
from neff.surfaces import chunk_of, evaluate_plane, grid_coordinates

sm = snakemake  # noqa: F821 (snakemake injects it)
wc, spec = sm.wildcards, sm.params.spectrum
point, grid, plane = sm.params.point, sm.params.grid, sm.params.plane
torch.set_num_threads(sm.threads)
with log_to(sm.log[0]):
    data = read_dataset(sm.input.data)
    model = load_grid_model(point["model"], data, point["width"], point["depth"], sm.input.model,
                            **sm.params.model_kwargs)
    objective = Objective(model, data.loss_fn(), data.loader("train", spec["batch_size"]), "all",
                          dtype=getattr(torch, spec["dtype"]), device=default_device())
    start = time.perf_counter()
    coordinates = chunk_of(grid_coordinates(plane["extent"], grid["points"]), grid["chunks"], int(wc.chunk))
    directions = torch.load(sm.input.directions, weights_only=True)[wc.plane]
    surface = evaluate_plane(objective, directions, coordinates, grid["batch_points"])
    seconds = time.perf_counter() - start
    with atomic_path(sm.output.chunk) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, plane=wc.plane, seconds=seconds, **surface)
    print(f"plane {wc.plane}, chunk {wc.chunk}: {len(coordinates)} points in {seconds:.1f} s, "
          f"loss {surface['loss'].min():.4g} .. {surface['loss'].max():.4g}")
