"""Rule surfaces_join: the chunks of every plane of a study in one table (plane, a, b, loss,
accuracy, homogeneity)."""
import numpy as np
import pandas as pd

from neff.files import log_to, provenance, write_csv, write_json

sm = snakemake  # noqa: F821 (snakemake injects it)
with log_to(sm.log[0]):
    chunks = [dict(np.load(path)) for path in sm.input.chunks]
    columns = ("a", "b", "loss", "accuracy", "homogeneity")
    table = pd.concat([pd.DataFrame({"plane": str(c["plane"]), **{key: c[key] for key in columns}}) for c in chunks])
    write_csv(sm.output.surfaces, table)
    seconds = float(sum(c["seconds"] for c in chunks))
    write_json(sm.output.record, provenance(planes=sm.params.planes, grid=sm.params.grid, seconds=seconds))
    print(f"{len(chunks)} chunks, {len(table)} points, {seconds:.1f} s of evaluation")
