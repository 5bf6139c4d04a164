"""Rule figure_perturbations: loss and homogeneity against perturbation norm (Appendix A.2)."""
import pandas as pd

from neff.files import log_to
from neff.surface_plots import homogeneity

sm = snakemake  # noqa: F821 (snakemake injects it)
with log_to(sm.log[0]):
    homogeneity(pd.read_csv(sm.input.sweep), [sm.output.pdf, sm.output.png], title=sm.params.title)
    print(f"{sm.output.pdf}, {sm.output.png}")
