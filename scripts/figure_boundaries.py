"""Rule spirals_boundaries_figure: two-spirals decision boundaries, trained and perturbed."""
import numpy as np

from neff.surface_plots import decision_boundaries

sm = snakemake  # noqa: F821 (snakemake injects it)
decision_boundaries(dict(np.load(sm.input.maps)), sm.output.pdf, title="two spirals: decision boundaries")
