"""Rule spirals_neff_figure: N_eff of the two-spirals nets against width and against depth."""
import pandas as pd

from neff.surface_plots import neff_width_depth

sm = snakemake  # noqa: F821 (snakemake injects it)
neff_width_depth(pd.read_csv(sm.input.table), sm.params.z, sm.output.pdf, title="two spirals, exact Hessian")
