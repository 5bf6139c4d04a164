"""Rule figure_contraction: Figure 4, posterior contraction of BLR (left) and a BNN (right)."""
import pandas as pd

from neff.files import log_to
from neff.plots import posterior_contraction

sm = snakemake  # noqa: F821 (snakemake injects it)
with log_to(sm.log[0]):
    posterior_contraction(pd.read_csv(sm.input.blr), pd.read_csv(sm.input.bnn), sm.params.blr, sm.params.bnn,
                          [sm.output.pdf, sm.output.png])
    print(f"{sm.output.pdf}, {sm.output.png}")
