"""Rule random_features: Figure 8's tables, minimum-norm least squares on fresh weakly
informative features: across d at the paper's n (the curve) and over a (d, n) grid."""
from neff.files import log_to, provenance, write_csv, write_json
from neff.random_features import random_features_table

sm = snakemake  # noqa: F821 (snakemake injects it)
spec = sm.params.spec


def span(axis):
    return range(axis["start"], axis["stop"], axis["step"])


with log_to(sm.log[0]):
    fits = {key: spec[key] for key in ("ridge", "informative", "seed")}
    curve = random_features_table(sorted({*span(spec["d"]), spec["n"]}), [spec["n"]], trials=spec["trials"], **fits)
    grid = random_features_table(span(spec["grid"]["d"]), span(spec["grid"]["n"]), **fits)
    write_csv(sm.output.table, curve)
    write_csv(sm.output.grid, grid)
    write_json(sm.output.meta, provenance(random_features=spec))
    print(f"{len(curve)} fits across d at n = {spec['n']}, {len(grid)} over the (d, n) grid")
