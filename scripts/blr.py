"""Rule blr: Figure 4 (left), posterior contraction of Bayesian linear regression, closed form."""
import numpy as np

from neff.bayes import blr_contraction, fourier_features
from neff.io import provenance, write_csv, write_json

sm = snakemake  # noqa: F821 (snakemake injects it)
spec = sm.params.blr
phi = fourier_features(np.linspace(0, spec["x_max"], spec["points"]), spec["features"])
write_csv(sm.output.table, blr_contraction(phi, spec["noise_var"], spec["prior_var"], spec["z"], spec["seed"]))
write_json(sm.output.meta, provenance(blr=spec))
