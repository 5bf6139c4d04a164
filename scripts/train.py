"""Rule train: one model of an experiment, trained with checkpoints (a killed job resumes)."""
import json
import time
from pathlib import Path

import pandas as pd
import torch

from neff.data import read_dataset
from neff.files import atomic_path, log_to, provenance, write_csv, write_json
from neff.models import count_parameters, load_grid_model
from neff.train import TrainConfig, train

sm = snakemake  # noqa: F821 (snakemake injects it)
wc = sm.wildcards
torch.set_num_threads(sm.threads)
with log_to(sm.log[0], mode="a"):
    data = read_dataset(sm.input.data)
    config = TrainConfig(seed=int(wc.seed), **sm.params.train)
    torch.manual_seed(int(wc.seed))
    model = load_grid_model(wc.model, data, wc.width, wc.depth, **sm.params.model_kwargs)
    start = time.perf_counter()
    history = train(model, data, config, checkpoint=sm.params.checkpoint,
                    on_epoch=lambda row: print(json.dumps(row), flush=True))
    with atomic_path(sm.output.model) as tmp:
        torch.save(model.state_dict(), tmp)
    write_csv(sm.output.metrics, pd.DataFrame(history))
    Path(sm.params.checkpoint).unlink(missing_ok=True)  # done: a rerun (new data, say) starts afresh
    write_json(sm.output.final, provenance(
        **history[-1], num_params=count_parameters(model), experiment=wc.experiment, model=wc.model,
        width=int(wc.width), depth=int(wc.depth), seed=int(wc.seed), model_kwargs=sm.params.model_kwargs,
        train=sm.params.train, seconds=time.perf_counter() - start))
