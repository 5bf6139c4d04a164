import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import Paramspace, validate


def validate_config(config):
    """The config checked against the schema; a bad key or value stops the run before any job."""
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as err:
        # snakemake raises while handling jsonschema's ValidationError: that one names the key
        cause = err.__context__ if hasattr(err.__context__, "message") else err
        detail = getattr(cause, "message", str(cause)).splitlines()[0]
        where = (
            ".".join(str(p) for p in getattr(cause, "absolute_path", [])) or "top level"
        )
        raise WorkflowError(
            f"config error at {where}: {detail}; see config/README.md for the allowed keys and values"
        ) from None


validate_config(config)

EXPERIMENT = config["experiment"]
MODEL_DIR = f"results/{EXPERIMENT}/models/model~{{model}}/width~{{width}}/depth~{{depth}}/seed~{{seed}}"
BAYES_DIR = f"results/{EXPERIMENT}/bayes"


wildcard_constraints:
    width=r"\d+",
    depth=r"\d+",
    seed=r"\d+",
    figure=r"fig[12]",


def grid(figure):
    """The figure's grid of models as a Paramspace (model, width, depth, seed)."""
    spec = config[figure]
    depths = spec["depth"] if isinstance(spec["depth"], list) else [spec["depth"]]
    rows = [
        {"model": spec["model"], "width": w, "depth": d, "seed": s}
        for d in depths
        for w in spec["width"]
        for s in spec["seeds"]
    ]
    return Paramspace(pd.DataFrame(rows))


def model_files(figure, name):
    return [
        f"results/{EXPERIMENT}/models/{point}/{name}"
        for point in grid(figure).instance_patterns
    ]


def bnn_runs():
    """Every (N, trial) of the BNN study as a path piece size~N/trial~t."""
    spec = config["bayes"]["bnn"]
    return [f"size~{n}/trial~{t}" for n in spec["sizes"] for t in range(spec["trials"])]
