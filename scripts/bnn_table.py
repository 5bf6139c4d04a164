"""Rule bnn_table: the BNN records of every (N, trial) as one table."""
import json

import pandas as pd

from neff.io import write_csv

sm = snakemake  # noqa: F821 (snakemake injects it)
columns = ["size", "trial", "num_params", "num_samples", "param_neff", "function_neff", "hessian_neff",
           "hessian_negative", "precision_mean", "wall_time_s"]
records = [json.loads(open(path).read()) for path in sm.input.records]
write_csv(sm.output.table, pd.DataFrame(records)[columns].sort_values(["size", "trial"]))
