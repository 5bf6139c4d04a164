"""Rule figure_random_features: Figure 8 (random-features double descent and min(n, d) - N_eff)
with the original notebook's scatter and (d, n) heatmaps."""
import pandas as pd

from neff.files import log_to
from neff.plots import random_features

sm = snakemake  # noqa: F821 (snakemake injects it)
with log_to(sm.log[0]):
    random_features(pd.read_csv(sm.input.table), pd.read_csv(sm.input.grid), sm.params.spec["ridge"],
                    [sm.output.pdf, sm.output.png])
    print(f"{sm.output.pdf}, {sm.output.png}")
