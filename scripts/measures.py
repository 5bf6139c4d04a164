"""Rule measures: the generalization measures of one trained model (Section 7), with provenance."""
import json

import torch

from neff.data import read_dataset
from neff.files import log_to, provenance, write_json
from neff.measures import generalization_measures
from neff.models import load_grid_model

sm = snakemake  # noqa: F821 (snakemake injects it)
wc, spec = sm.wildcards, dict(sm.params.measures)
torch.set_num_threads(sm.threads)
with log_to(sm.log[0]):
    data = read_dataset(sm.input.data)
    model = load_grid_model(wc.model, data, wc.width, wc.depth, checkpoint=sm.input.model,
                            **sm.params.model_kwargs)
    batches = data.loader("train", spec.pop("batch_size"), seed=spec["seed"], examples=spec.pop("examples"))
    record = generalization_measures(model, batches, data.loss_fn(), data.input_shape, **spec)
    record = provenance(**record, experiment=wc.experiment, model=wc.model, width=int(wc.width),
                        depth=int(wc.depth), seed=int(wc.seed), measures=dict(sm.params.measures))
    write_json(sm.output.measures, record)
    print(json.dumps(record, indent=1))
