"""Rule table: the long N_eff table of one grid (a row per model, z and estimator, each model's
grid point and metrics read from its own final.json, its generalization measures from its
measures.json where the experiment has them) and the rank correlations of every measure."""
import pandas as pd

from neff.files import log_to, read_json, write_csv
from neff.spectra import eigen_result, load_spectrum
from neff.tables import MODEL_KEYS, neff_rows, rank_correlations

sm = snakemake  # noqa: F821 (snakemake injects it)
wc, effdim = sm.wildcards, sm.params.effdim
with log_to(sm.log[0]):
    rows = []
    measures = sm.input.measures or [None] * len(sm.input.final)
    for final_path, spectrum_path, measures_path in zip(sm.input.final, sm.input.spectrum, measures):
        final, spectrum = read_json(final_path), load_spectrum(spectrum_path)
        extra = read_json(measures_path) if measures_path else {}
        for path, record in ((spectrum_path, spectrum["record"]), (measures_path, extra)):
            if record and any(record.get(key) != final[key] for key in MODEL_KEYS):
                raise ValueError(f"{path} and {final_path} describe different models")
        rows += neff_rows(final | extra, eigen_result(spectrum), effdim["z"], spectrum["quadrature"],
                          sm.params.paper_steps)
    table = pd.DataFrame(rows).assign(experiment=wc.experiment, grid=wc.grid)
    write_csv(sm.output.table, table)
    correlations = rank_correlations(table, interpolation_threshold=effdim["interpolation_threshold"])
    write_csv(sm.output.correlations, correlations)
    print(f"{len(rows)} rows for {len(sm.input.final)} models\n{correlations.to_string()}")
