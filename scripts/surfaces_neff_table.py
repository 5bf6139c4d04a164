"""Rule surfaces_neff_table: N_eff of the exact Hessian spectrum of each two-spirals net beside
its size and final losses (width sweep at fixed depth, depth sweep at fixed width)."""
import json

import pandas as pd

from neff.io import load_spectrum, write_csv
from neff.tables import model_row

sm = snakemake  # noqa: F821 (snakemake injects it)
rows = []
for point, final_path, spectrum_path in zip(sm.params.grid, sm.input.final, sm.input.spectrum):
    final = json.loads(open(final_path).read())
    spectrum = load_spectrum(spectrum_path)
    metrics = {key: final[key] for key in ("num_params", "train_loss", "test_loss", "train_acc", "test_acc")}
    rows.append(model_row(point, metrics, spectrum["eigenvalues"], spectrum["converged"], sm.params.z))
write_csv(sm.output.table, pd.DataFrame(rows))
