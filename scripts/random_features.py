"""Rule random_features: Figure 8's table, minimum-norm least squares across feature counts."""
from neff.files import log_to, provenance, write_csv, write_json
from neff.random_features import random_features_curve

sm = snakemake  # noqa: F821 (snakemake injects it)
spec = sm.params.spec
with log_to(sm.log[0]):
    d_values = sorted({*range(spec["d"]["start"], spec["d"]["stop"], spec["d"]["step"]), spec["n"]})
    table = random_features_curve(d_values, n=spec["n"], total_features=spec["total_features"], noise=spec["noise"],
                                  z=spec["z"], trials=spec["trials"], n_test=spec["n_test"], seed=spec["seed"])
    write_csv(sm.output.table, table)
    write_json(sm.output.meta, provenance(random_features=spec))
    print(f"{len(table)} rows for {len(d_values)} feature counts")
