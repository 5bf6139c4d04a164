"""Rule surfaces_directions: for every plane of a study, two orthonormal directions drawn at
random in the whole space, a span of eigenvectors or the complement of the top ones
(optionally filter normalised), with their orthonormality recorded."""
import torch

from neff.data import read_dataset
from neff.files import atomic_path, log_to, provenance, write_json
from neff.models import load_grid_model
from neff.spectra import load_spectrum
from neff.surfaces import eigenbasis, filter_normalize, plane_directions

sm = snakemake  # noqa: F821 (snakemake injects it)
planes, grid, point = sm.params.planes, sm.params.grid, sm.params.point
with log_to(sm.log[0]):
    data = read_dataset(sm.input.data)
    model = load_grid_model(point["model"], data, point["width"], point["depth"], sm.input.model,
                            **sm.params.model_kwargs)
    spectrum = load_spectrum(sm.input.spectrum, eigenvectors=True)
    vectors = spectrum["eigenvectors"]
    directions, checks = {}, {}
    for name, plane in planes.items():
        space, basis = eigenbasis(spectrum["eigenvalues"], vectors, plane["space"], plane.get("k", 0))
        pair = plane_directions(vectors.shape[0], space, basis, seed=grid["seed"])
        # checked before filter normalisation, which (as in Li et al.) leaves the subspace on purpose
        checks[name] = {"orthonormality_error": float((pair @ pair.T - torch.eye(2, dtype=pair.dtype)).abs().max()),
                        "outside_subspace": float((basis.T @ pair.T).abs().max()) if space == "complement" else None,
                        "filter_normalized": grid["filter_normalize"]}
        directions[name] = filter_normalize(pair, model) if grid["filter_normalize"] else pair
        print(f"plane {name}: {plane}, {checks[name]}")
    with atomic_path(sm.output.directions) as tmp:
        torch.save(directions, tmp)
    write_json(sm.output.record, provenance(planes=planes, grid=grid, checks=checks))
