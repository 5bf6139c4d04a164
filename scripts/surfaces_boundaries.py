"""Rule surfaces_boundaries: decision maps of a study's trained 2-D classifier and of the net
moved along the bottom eigenvectors (a large norm) and along the top ones (a small norm); with
``grids``, the original's classifier grids: the net moved along a fresh random direction of each
eigenspace at ``steps`` norms from 0 to the largest (notebooks/two_spirals.ipynb, cells 57-61)."""
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
    center = objective.flat_params()

    def moves(which: str, k: int, norms) -> tuple[list, list]:
        """Points moved by ``norms`` along fresh random directions in an eigenspace, and titles."""
        space, basis = eigenbasis(spectrum["eigenvalues"], spectrum["eigenvectors"], which, k)
        directions = random_directions(objective.num_params, len(norms), space, basis, seed=spec["seed"])
        return ([center + norm * direction for norm, direction in zip(norms, directions)],
                [f"along {which} {k} eigenvector{'s' * (k > 1)}, norm {norm:.3g}" for norm in norms])

    panels = [([center], ["trained"])] + [moves(which, spec[which], [spec[f"{which}_norm"]])
                                          for which in ("bottom", "top")]
    grids = spec.get("grids")
    if grids:
        panels += [moves(which, grids[which], np.linspace(0, grids[f"{which}_norm"], grids["steps"]).tolist())
                   for which in ("top", "bottom")]
    points = torch.stack([point for group, _ in panels for point in group])
    titles = [title for _, group in panels for title in group]
    rows = np.repeat(np.arange(len(panels)), [len(group) for group, _ in panels])
    kept = evaluate_points(objective, points)["homogeneity"]
    titles = [f"{title}\n{keep:.1%} of train predictions kept" for title, keep in zip(titles, kept)]
    print("\n".join(titles))
    inputs, labels = data.train.tensors
    margin = 0.1 * (inputs.max(0).values - inputs.min(0).values)
    xlim, ylim = [(float(lo), float(hi))
                  for lo, hi in zip(inputs.min(0).values - margin, inputs.max(0).values + margin)]
    maps = decision_maps(objective, points, xlim, ylim, spec["resolution"])
    with atomic_path(sm.output.maps) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, probabilities=maps, titles=np.array(titles), rows=rows, xlim=xlim, ylim=ylim,
                 inputs=inputs.numpy(), labels=labels.numpy(), homogeneity=kept)
    write_json(sm.output.record, provenance(boundaries=spec, homogeneity=dict(zip(titles, kept.tolist()))))
