"""Rule bnn: one (N, trial) of Figure 4 (right): NUTS draws of a Bayesian neural network and
the parameter-, function- and Hessian-space N_eff."""
import time

import torch

from neff.bayes import bnn_effective_dimensions
from neff.data import bnn_regression_points
from neff.files import log_to, provenance, write_json
from neff.models import build_model

sm = snakemake  # noqa: F821 (snakemake injects it)
spec, size, trial = sm.params.bnn, int(sm.wildcards.size), int(sm.wildcards.trial)
torch.set_num_threads(sm.threads)
with log_to(sm.log[0]):
    x, y = map(torch.as_tensor, bnn_regression_points(size, spec["data_noise"], seed=spec["data_seed"]))
    torch.manual_seed(trial)
    net = build_model("mlp", 1, (x.shape[1],), width=spec["width"], depth=spec["depth"],
                      activation=spec["activation"], bias=spec["bias"])
    start = time.perf_counter()
    result = bnn_effective_dimensions(
        net, x, y, spec["samples"], spec["warmup"], seed=trial, prior_scale=spec["prior_scale"],
        precision=tuple(spec["precision_prior"]), max_tree_depth=spec["max_tree_depth"],
        z_param=spec["z_param"], z_function=spec["z_function"], map_steps=spec["map_steps"])
    print(result, flush=True)
    write_json(sm.output.record, provenance(size=size, trial=trial, **result, bnn=spec,
                                            wall_time_s=time.perf_counter() - start))
