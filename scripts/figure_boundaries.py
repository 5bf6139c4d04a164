"""Rule figure_boundaries: decision boundaries of a study's 2-D classifier, trained and perturbed."""
import numpy as np

from neff.files import log_to
from neff.surface_plots import decision_boundaries

sm = snakemake  # noqa: F821 (snakemake injects it)
with log_to(sm.log[0]):
    decision_boundaries(dict(np.load(sm.input.maps)), [sm.output.pdf, sm.output.png], title=sm.params.title)
    print(f"{sm.output.pdf}, {sm.output.png}")
