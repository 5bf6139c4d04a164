"""Rule surfaces_boundaries: two-spirals decision maps of the trained net and of the net moved
along the bottom eigenvectors (a large norm) and along the top ones (a small norm)."""
import numpy as np
import torch

from neff.data import read_dataset
from neff.hessian import HessianOperator
from neff.io import atomic_path, provenance, write_json
from neff.models import load_grid_model
from neff.surfaces import decision_maps, eigenbasis, evaluate_points, random_directions

sm = snakemake  # noqa: F821 (snakemake injects it)
wc, spec, hessian = sm.wildcards, sm.params.boundaries, sm.params.hessian
data = read_dataset(sm.input.data)
model = load_grid_model(wc.model, data, wc.width, wc.depth, sm.input.model, **sm.params.model_kwargs)
operator = HessianOperator(model, data.loss_fn(), data.loader("train", hessian["batch_size"]), "all",
                           dtype=torch.float64)
eigen = torch.load(sm.input.eigenvectors, weights_only=True)
center, moves, titles = operator.flat_params(), [0.0], ["trained"]
for which in ("bottom", "top"):
    space, basis = eigenbasis(eigen["eigenvalues"].numpy(), eigen["eigenvectors"], which, spec[which])
    direction = random_directions(operator.num_params, 1, space, basis, seed=spec["seed"])[0]
    moves.append(spec[f"{which}_norm"] * direction)
    titles.append(f"along {which} {spec[which]} eigenvectors, norm {spec[f'{which}_norm']:g}")
points = torch.stack([center + move for move in moves])
kept = evaluate_points(operator, points)["homogeneity"]
titles = [f"{title}\n{keep:.1%} of train predictions kept" for title, keep in zip(titles, kept)]
inputs, labels = data.train.tensors
margin = 0.1 * (inputs.max(0).values - inputs.min(0).values)
xlim, ylim = [(float(lo), float(hi)) for lo, hi in zip(inputs.min(0).values - margin, inputs.max(0).values + margin)]
maps = decision_maps(operator, points, xlim, ylim, spec["resolution"])
with atomic_path(sm.output.maps) as tmp, open(tmp, "wb") as handle:
    np.savez(handle, probabilities=maps, titles=np.array(titles), xlim=xlim, ylim=ylim, inputs=inputs.numpy(),
             labels=labels.numpy(), homogeneity=kept)
write_json(sm.output.record, provenance(boundaries=spec, homogeneity=dict(zip(titles, kept.tolist()))))
