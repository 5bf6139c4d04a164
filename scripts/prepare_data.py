"""Rule data: the dataset prepared once (split, subset, label noise) for every model."""
from contextlib import redirect_stdout

from neff.data import load_dataset, save_dataset
from neff.io import provenance, write_json

spec = snakemake.params.data  # noqa: F821 (snakemake injects it)
with open(snakemake.log[0], "w") as log, redirect_stdout(log):  # noqa: F821
    data = load_dataset(spec["name"], seed=spec["seed"], subset=spec["subset"], label_noise=spec["label_noise"],
                        root=spec["root"], download=spec["download"])
    save_dataset(data, snakemake.output.data)  # noqa: F821
    write_json(snakemake.output.record, provenance(  # noqa: F821
        data=spec, train_size=len(data.train), test_size=len(data.test), corrupted_labels=len(data.corrupted)))
