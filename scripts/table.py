"""Rule table: the long N_eff table of one grid (a row per model, z and estimator, each model's
grid point and metrics read from its own final.json) and its rank correlations."""
import json

import pandas as pd

from neff.files import log_to, write_csv
from neff.spectra import eigen_result, load_spectrum
from neff.tables import MODEL_KEYS, neff_rows, rank_correlations

sm = snakemake  # noqa: F821 (snakemake injects it)
wc, effdim = sm.wildcards, sm.params.effdim
with log_to(sm.log[0]):
    rows = []
    for final_path, spectrum_path in zip(sm.input.final, sm.input.spectrum):
        final = json.loads(open(final_path).read())
        spectrum = load_spectrum(spectrum_path)
        if any(spectrum["record"].get(key) != final[key] for key in MODEL_KEYS):
            raise ValueError(f"{spectrum_path} and {final_path} describe different models")
        rows += neff_rows(final, eigen_result(spectrum), effdim["z"], spectrum["quadrature"],
                          sm.params.paper_steps)
    table = pd.DataFrame(rows).assign(experiment=wc.experiment, grid=wc.grid)
    write_csv(sm.output.table, table)
    correlations = rank_correlations(table, "test_loss", effdim["interpolation_threshold"])
    write_csv(sm.output.correlations, correlations)
    print(f"{len(rows)} rows for {len(sm.input.final)} models\n{correlations.to_string()}")
