"""Rule table: N_eff per model for a sweep of z beside its size and metrics; rank correlations."""
import json

import pandas as pd

from neff.io import load_spectrum, write_csv
from neff.tables import model_row, rank_correlations

sm = snakemake  # noqa: F821 (snakemake injects it)
effdim = sm.params.effdim
rows = []
for point, final_path, spectrum_path in zip(sm.params.grid, sm.input.final, sm.input.spectrum):
    final = json.loads(open(final_path).read())
    spectrum = load_spectrum(spectrum_path)
    metrics = {key: final[key] for key in ("num_params", "train_loss", "test_loss", "train_acc", "test_acc")}
    rows.append(model_row(point, metrics, spectrum["eigenvalues"], spectrum["converged"], effdim["z"]))
table = pd.DataFrame(rows)
write_csv(sm.output.table, table)
write_csv(sm.output.correlations, rank_correlations(table, effdim["z"], "test_loss", effdim["interpolation_threshold"]))
