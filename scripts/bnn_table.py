"""Rule bnn_table: the BNN records of every (N, trial) as one table."""
import pandas as pd

from neff.files import log_to, read_json, write_csv

sm = snakemake  # noqa: F821 (snakemake injects it)
columns = ["size", "trial", "num_params", "num_samples", "param_neff", "function_neff",
           "function_neff_original", "hessian_neff",
           "hessian_negative", "precision_mean", "wall_time_s"]
with log_to(sm.log[0]):
    records = [read_json(path) for path in sm.input.records]
    table = pd.DataFrame(records)[columns].sort_values(["size", "trial"])
    write_csv(sm.output.table, table)
    print(table.to_string())
