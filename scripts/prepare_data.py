"""Rule data: an experiment's dataset prepared once (split, subset, label noise) for all its models."""
from neff.data import load_dataset, save_dataset
from neff.files import log_to, provenance, write_json

sm = snakemake  # noqa: F821 (snakemake injects it)
spec = sm.params.data
with log_to(sm.log[0]):
    data = load_dataset(spec["name"], seed=spec["seed"], subset=spec["subset"], label_noise=spec["label_noise"],
                        root=spec["root"], download=spec["download"], normalization=spec.get("normalization"),
                        options=spec.get("options"))
    save_dataset(data, sm.output.data)
    print(f"{data.name}: {len(data.train)} training and {len(data.test)} test examples, "
          f"{len(data.corrupted)} labels corrupted")
    write_json(sm.output.record, provenance(data=spec, train_size=len(data.train), test_size=len(data.test),
                                            corrupted_labels=len(data.corrupted)))
