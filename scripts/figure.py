"""Rule figure: Figure 1 (double descent) or Figure 2 (width x depth) from its table."""
import pandas as pd

from neff.plots import double_descent, width_depth

sm = snakemake  # noqa: F821 (snakemake injects it)
table = pd.read_csv(sm.input.table)
z, threshold = sm.params.effdim["z_plot"], sm.params.effdim["interpolation_threshold"]
if sm.wildcards.figure == "fig1":
    double_descent(table, z, threshold, sm.output.pdf, title=sm.params.title)
else:
    width_depth(table, z, threshold, sm.output.pdf, contours=sm.params.contours, title=sm.params.title)
