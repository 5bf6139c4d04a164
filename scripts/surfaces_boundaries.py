"""Rule surfaces_boundaries: decision maps of a study's trained 2-D classifier and of the net
moved along the bottom eigenvectors (a large norm) and along the top ones (a small norm)."""
import numpy as np
import torch

from neff.data import read_dataset
from neff.files import atomic_path, log_to, provenance, write_json
from neff.models import load_grid_model
from neff.objective import Objective
from neff.spectra import load_spectrum
from neff.surfaces import decision_maps, eigenbasis, evaluate_points, random_directions

sm = snakemake  # noqa: F821 (snakemake injects it)
point = sm.params.point
spec, hessian = sm.params.boundaries, sm.params.spectrum
with log_to(sm.log[0]):
    data = read_dataset(sm.input.data)
    spectrum = load_spectrum(sm.input.spectrum, eigenvectors=True)
    model = load_grid_model(point["model"], data, point["width"], point["depth"], sm.input.model,
                            **sm.params.model_kwargs)
    objective = Objective(model, data.loss_fn(), data.loader("train", hessian["batch_size"]), "all",
                          dtype=torch.float64)
    center, moves, titles = objective.flat_params(), [0.0], ["trained"]
    for which in ("bottom", "top"):
        space, basis = eigenbasis(spectrum["eigenvalues"], spectrum["eigenvectors"], which, spec[which])
        direction = random_directions(objective.num_params, 1, space, basis, seed=spec["seed"])[0]
        moves.append(spec[f"{which}_norm"] * direction)
        titles.append(f"along {which} {spec[which]} eigenvectors, norm {spec[f'{which}_norm']:g}")
    points = torch.stack([center + move for move in moves])
    kept = evaluate_points(objective, points)["homogeneity"]
    titles = [f"{title}\n{keep:.1%} of train predictions kept" for title, keep in zip(titles, kept)]
    print("\n".join(titles))
    inputs, labels = data.train.tensors
    margin = 0.1 * (inputs.max(0).values - inputs.min(0).values)
    xlim, ylim = [(float(lo), float(hi))
                  for lo, hi in zip(inputs.min(0).values - margin, inputs.max(0).values + margin)]
    maps = decision_maps(objective, points, xlim, ylim, spec["resolution"])
    with atomic_path(sm.output.maps) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, probabilities=maps, titles=np.array(titles), xlim=xlim, ylim=ylim, inputs=inputs.numpy(),
                 labels=labels.numpy(), homogeneity=kept)
    write_json(sm.output.record, provenance(boundaries=spec, homogeneity=dict(zip(titles, kept.tolist()))))
