"""Rule surfaces_directions: for every plane of a study, two orthonormal directions drawn at
random in the whole space, a span of eigenvectors or the complement of the top ones
(optionally filter normalised), with their orthonormality recorded."""
import torch

from neff.data import read_dataset
from neff.io import atomic_path, provenance, write_json
from neff.models import load_grid_model
from neff.surfaces import eigenbasis, filter_normalize, plane_directions

sm = snakemake  # noqa: F821 (snakemake injects it)
wc, grid = sm.wildcards, sm.params.grid
data = read_dataset(sm.input.data)
model = load_grid_model(wc.model, data, wc.width, wc.depth, sm.input.model, **sm.params.model_kwargs)
eigen = torch.load(sm.input.eigenvectors, weights_only=True)
directions, checks = {}, {}
for name, plane in sm.params.planes.items():
    space, basis = eigenbasis(eigen["eigenvalues"].numpy(), eigen["eigenvectors"].double(), plane["space"],
                              plane.get("k", 0))
    pair = plane_directions(eigen["eigenvectors"].shape[0], space, basis, seed=grid["seed"])
    # checked before filter normalisation, which (as in Li et al.) leaves the subspace on purpose
    checks[name] = {"orthonormality_error": float((pair @ pair.T - torch.eye(2, dtype=pair.dtype)).abs().max()),
                    "outside_subspace": float((basis.T @ pair.T).abs().max()) if space == "complement" else None,
                    "filter_normalized": grid["filter_normalize"]}
    directions[name] = filter_normalize(pair, model) if grid["filter_normalize"] else pair
with atomic_path(sm.output.directions) as tmp:
    torch.save(directions, tmp)
write_json(sm.output.record, provenance(planes=sm.params.planes, grid=grid, checks=checks))
