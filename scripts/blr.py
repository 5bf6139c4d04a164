"""Rule blr: Figure 4 (left), posterior contraction of Bayesian linear regression, closed form."""
import numpy as np

from neff.bayes import blr_contraction, fourier_features
from neff.files import log_to, provenance, write_csv, write_json

sm = snakemake  # noqa: F821 (snakemake injects it)
spec = sm.params.blr
with log_to(sm.log[0]):
    phi = fourier_features(np.linspace(0, spec["x_max"], spec["points"]), spec["features"])
    table = blr_contraction(phi, spec["noise_var"], spec["prior_var"], spec["z"], spec["seed"])
    write_csv(sm.output.table, table)
    write_json(sm.output.meta, provenance(blr=spec))
    print(table.iloc[::max(1, len(table) // 10)].to_string())
