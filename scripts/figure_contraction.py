"""Rule figure_contraction: Figure 4, posterior contraction of BLR (left) and a BNN (right)."""
import pandas as pd

from neff.plots import posterior_contraction

sm = snakemake  # noqa: F821 (snakemake injects it)
posterior_contraction(pd.read_csv(sm.input.blr), pd.read_csv(sm.input.bnn), sm.params.blr, sm.params.bnn,
                      sm.output.pdf)
