"""Rule train: one model of an experiment, trained with checkpoints (a killed job resumes)."""
import json
import time
from pathlib import Path

import pandas as pd
import torch

from neff.data import read_dataset
from neff.files import atomic_path, log_to, provenance, write_csv, write_json
from neff.models import count_parameters, load_grid_model
from neff.tracking import COLUMNS, EffDimTracker
from neff.train import TrainConfig, train

sm = snakemake  # noqa: F821 (snakemake injects it)


def tracking_tracker(data, spec, partial, seed):
    """N_eff every `spec.every` epochs into `partial` (kept beside the training checkpoint, so a
    resumed job keeps its rows), or None where the model is not tracked."""
    if spec is None:
        return None
    return EffDimTracker(data.loss_fn(), data.loader("train", spec["batch_size"]), spec["z"], every=spec["every"],
                         csv=partial, k=spec["k"], method=spec["method"], max_hvp=spec["max_hvp"],
                         params=spec["params"], reduction=spec["reduction"], dtype=getattr(torch, spec["dtype"]),
                         seed=seed)


wc = sm.wildcards
torch.set_num_threads(sm.threads)
with log_to(sm.log[0], mode="a"):
    data = read_dataset(sm.input.data)
    config = TrainConfig(seed=int(wc.seed), **sm.params.train)
    torch.manual_seed(int(wc.seed))
    model = load_grid_model(wc.model, data, wc.width, wc.depth, **sm.params.model_kwargs)
    if not Path(sm.params.checkpoint).exists():  # a fresh start: no rows of an earlier run
        Path(sm.params.tracking_partial).unlink(missing_ok=True)
    tracker = tracking_tracker(data, sm.params.tracking, sm.params.tracking_partial, int(wc.seed))

    def on_epoch(row):
        print(json.dumps(row), flush=True)
        if tracker is not None and tracker.step(model, row["epoch"]) is not None:
            print(json.dumps({"neff_during_training": tracker.rows[-1]}), flush=True)

    start = time.perf_counter()
    history = train(model, data, config, checkpoint=sm.params.checkpoint, on_epoch=on_epoch)
    with atomic_path(sm.output.model) as tmp:
        torch.save(model.state_dict(), tmp)
    write_csv(sm.output.metrics, pd.DataFrame(history))
    write_csv(sm.output.tracking, pd.DataFrame(tracker.rows if tracker else [], columns=COLUMNS))
    Path(sm.params.checkpoint).unlink(missing_ok=True)  # done: a rerun (new data, say) starts afresh
    Path(sm.params.tracking_partial).unlink(missing_ok=True)
    write_json(sm.output.final, provenance(
        **history[-1], num_params=count_parameters(model), experiment=wc.experiment, model=wc.model,
        width=int(wc.width), depth=int(wc.depth), seed=int(wc.seed), model_kwargs=sm.params.model_kwargs,
        train=sm.params.train, seconds=time.perf_counter() - start))
