"""Rule homogeneity_figure: loss and homogeneity against perturbation norm (Appendix A.2)."""
import pandas as pd

from neff.surface_plots import homogeneity

sm = snakemake  # noqa: F821 (snakemake injects it)
homogeneity(pd.read_csv(sm.input.sweep), sm.output.pdf, title=sm.params.title)
