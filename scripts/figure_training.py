"""Rule training_figure: N_eff (with its interval) and train and test loss over the epochs of
each tracked model of a figure's grids."""
from pathlib import Path

import pandas as pd

from neff.files import log_to
from neff.plots import training_curves

sm = snakemake  # noqa: F821 (snakemake injects it)
spec = sm.params.figure
with log_to(sm.log[0]):
    curves = {}
    for neff_path, metrics_path in zip(sm.input.neff_during_training, sm.input.metrics):
        point = dict(part.split("~") for part in Path(neff_path).parent.parts if "~" in part)
        label = f"{point['model']} width {point['width']}, depth {point['depth']}, seed {point['seed']}"
        curves[label] = (pd.read_csv(neff_path), pd.read_csv(metrics_path))
    training_curves(curves, spec["z"], [sm.output.pdf, sm.output.png], title=sm.params.title)
    print(f"N_eff during training of {len(curves)} models at z = {spec['z']:g}: {sm.output.pdf}")
