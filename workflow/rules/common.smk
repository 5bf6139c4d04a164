# Config checks, path patterns and input functions shared by every rule.
import math
import re

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import Paramspace, validate

POINT_KEYS = ["model", "width", "depth", "seed"]
POINT = Paramspace(pd.DataFrame(columns=POINT_KEYS)).wildcard_pattern
MODEL = f"results/{{experiment}}/models/{POINT}"
MODEL_LOG = f"{{experiment}}/{POINT}"  # below results/logs/<rule>/ and results/benchmarks/<rule>/
STUDY = "results/studies/{study}"
STUDY_FIGURES = {
    "surfaces": "planes",
    "boundaries": "boundaries",
    "perturbations": "sweep",
}
# figure <study>_<kind>, drawn where the study has the key


def config_error(where, problem):
    raise WorkflowError(
        f"config error at {where}: {problem}; see config/README.md for the allowed keys and values"
    )


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
        config_error(where, detail)


def grid_rows(experiment, grid):
    """The models of a grid as rows of (model, width, depth, seed)."""
    spec = config["experiments"][experiment]["grids"][grid]
    return [
        {"model": spec["model"], "width": w, "depth": d, "seed": s}
        for d in spec["depth"]
        for w in spec["width"]
        for s in spec["seed"]
    ]


def figure_sources(figure):
    """(experiment, grid) of each grid a figure draws: one experiment for all, or one per grid."""
    experiments = figure["experiment"]
    if not isinstance(experiments, list):
        experiments = [experiments] * len(figure["grids"])
    return list(zip(experiments, figure["grids"]))


def check_references(config):
    """Keys that name other keys, checked before any job runs."""
    experiments, studies = config["experiments"], config["studies"]
    for name, figure in config["figures"].items():
        where = f"figures.{name}"
        if isinstance(figure["experiment"], list) and len(figure["experiment"]) != len(
            figure["grids"]
        ):
            config_error(
                f"{where}.experiment",
                f"a list of experiments names one per grid, but there are {len(figure['experiment'])} for {len(figure['grids'])} grids",
            )
        if len(set(figure_sources(figure))) < len(figure["grids"]):
            config_error(
                f"{where}.grids",
                "a figure draws each grid of an experiment once; remove the repeated one",
            )
        for source, grid in figure_sources(figure):
            experiment = experiments.get(source)
            if experiment is None:
                config_error(
                    f"{where}.experiment",
                    f"{source!r} is not one of the experiments {sorted(experiments)}",
                )
            if grid not in experiment["grids"]:
                config_error(
                    f"{where}.grids",
                    f"{grid!r} is not a grid of experiment {source!r} ({sorted(experiment['grids'])})",
                )
            zs_from = "tracking" if figure["kind"] == "training" else "effdim"
            tracking = experiment.get("tracking") or {}
            if zs_from == "tracking" and tracking.get("grid") != grid:
                config_error(
                    f"{where}.grids",
                    f"a training figure draws the grid that experiments.{source}.tracking.grid names, and {grid!r} is not it; track it there",
                )
            zs = (tracking if zs_from == "tracking" else experiment["effdim"])["z"]
            if not any(math.isclose(figure["z"], z, rel_tol=1e-9) for z in zs):
                config_error(
                    f"{where}.z",
                    f"{figure['z']:g} is not one of experiments.{source}.{zs_from}.z {zs}; add it there or choose one of those",
                )
        if figure["kind"] == "width_depth" and len(figure["grids"]) != 1:
            config_error(
                f"{where}.grids", "a width_depth figure draws exactly one grid"
            )
    for name, experiment in experiments.items():
        tracking = experiment.get("tracking")
        if tracking and tracking["grid"] not in experiment["grids"]:
            config_error(
                f"experiments.{name}.tracking.grid",
                f"{tracking['grid']!r} is not a grid of this experiment ({sorted(experiment['grids'])})",
            )
        if tracking and tracking["every"] % experiment["train"].get("eval_every", 1):
            config_error(
                f"experiments.{name}.tracking.every",
                f"{tracking['every']} is not a multiple of train.eval_every ({experiment['train']['eval_every']}), the epochs at which training reports; choose a multiple",
            )
        target = experiment.get("measures", {}).get("target")
        families = {grid["model"] for grid in experiment["grids"].values()}
        if isinstance(target, dict) and not families <= set(target):
            config_error(
                f"experiments.{name}.measures.target",
                f"it names a target per model family but not for {sorted(families - set(target))}; add them",
            )
    for name, study in studies.items():
        where = f"studies.{name}"
        experiment = experiments.get(study["experiment"])
        if experiment is None:
            config_error(
                f"{where}.experiment",
                f"{study['experiment']!r} is not one of the experiments {sorted(experiments)}",
            )
        models = [
            row
            for grid in experiment["grids"]
            for row in grid_rows(study["experiment"], grid)
        ]
        if study["model"] not in models:
            config_error(
                f"{where}.model",
                f"{study['model']} is not a model of any grid of experiment {study['experiment']!r}; add it to one",
            )
        spectrum = experiment["spectrum"]
        wanted = {
            f"planes.{plane}": (spec["space"], spec.get("k", 0))
            for plane, spec in study["planes"].items()
        }
        if "boundaries" in study:
            wanted["boundaries.bottom"] = ("bottom", study["boundaries"]["bottom"])
            wanted["boundaries.top"] = ("top", study["boundaries"]["top"])
            for which in ("top", "bottom") if "grids" in study["boundaries"] else ():
                wanted[f"boundaries.grids.{which}"] = (
                    which,
                    study["boundaries"]["grids"][which],
                )
        for key, (space, k) in wanted.items():
            if space == "bottom" and spectrum["method"] != "dense":
                config_error(
                    f"{where}.{key}",
                    f"the bottom eigenvectors need every eigenpair, but experiments.{study['experiment']}.spectrum.method is {spectrum['method']!r}; use method: dense or space: complement",
                )
            if (
                space in ("top", "complement")
                and spectrum["method"] != "dense"
                and k > spectrum["k"]
            ):
                config_error(
                    f"{where}.{key}",
                    f"k = {k} exceeds the {spectrum['k']} eigenpairs of experiments.{study['experiment']}.spectrum.k; raise that or lower this",
                )
    taken = {f"{s}_{kind}" for s in studies for kind in STUDY_FIGURES}
    taken |= {"fig4", "fig8"}
    for name in config["figures"]:
        if name in taken:
            config_error(
                f"figures.{name}",
                "the name is taken by a study's or the Bayesian figures; choose another",
            )


validate_config(config)
config["figures"] = {n: f for n, f in config["figures"].items() if f is not None}
check_references(config)
EXPERIMENTS, FIGURES, STUDIES = (
    config["experiments"],
    config["figures"],
    config["studies"],
)
MEASURED = {name: spec for name, spec in EXPERIMENTS.items() if "measures" in spec}
TRAINING_FIGURES = {n: f for n, f in FIGURES.items() if f["kind"] == "training"}
TABLE_FIGURES = {n: f for n, f in FIGURES.items() if f["kind"] != "training"}


def names(mapping):
    return "|".join(re.escape(name) for name in mapping) or "(?!)"


wildcard_constraints:
    experiment=names(EXPERIMENTS),
    model=r"[a-z0-9_]+",
    width=r"\d+",
    depth=r"\d+",
    seed=r"\d+",
    grid=r"[A-Za-z0-9_]+",
    study=names(STUDIES),


def grid_files(experiment, grid, name):
    """File ``name`` of every model of a grid."""
    points = Paramspace(pd.DataFrame(grid_rows(experiment, grid), columns=POINT_KEYS))
    return [
        f"results/{experiment}/models/{point}/{name}"
        for point in points.instance_patterns
    ]


def grid_measures(wc):
    """The measures.json of every model of a grid, where its experiment has `measures`."""
    if wc.experiment not in MEASURED:
        return []
    return grid_files(wc.experiment, wc.grid, "measures.json")


def measures_spec(wc):
    """An experiment's `measures` for one model, its `target` chosen by model family where it
    names one per family."""
    spec = dict(EXPERIMENTS[wc.experiment]["measures"])
    if isinstance(spec["target"], dict):
        spec["target"] = spec["target"][wc.model]
    return spec


def tracking_spec(wc):
    """An experiment's `tracking` with its `spectrum` settings for a model of its tracked grid,
    else None (the model is trained without measurements)."""
    experiment = EXPERIMENTS[wc.experiment]
    tracking = experiment.get("tracking")
    point = {
        "model": wc.model,
        "width": int(wc.width),
        "depth": int(wc.depth),
        "seed": int(wc.seed),
    }
    if not tracking or point not in grid_rows(wc.experiment, tracking["grid"]):
        return None
    spectrum = experiment["spectrum"]
    return {
        **tracking,
        **{
            key: spectrum[key] for key in ("params", "dtype", "batch_size", "reduction")
        },
    }


def training_files(wc):
    """The metrics and N_eff-during-training records of every model a training figure draws."""
    return {
        name: [
            path
            for experiment, grid in figure_sources(FIGURES[wc.figure])
            for path in grid_files(experiment, grid, f"{name}.csv")
        ]
        for name in ("metrics", "neff_during_training")
    }


def model_kwargs(wc):
    """Options of the model family of wildcard ``model`` in its experiment."""
    return EXPERIMENTS[wc.experiment]["model_kwargs"].get(wc.model, {})


def study_model(study):
    """Results folder of a study's model."""
    spec = STUDIES[study]
    return MODEL.format(experiment=spec["experiment"], **spec["model"])


def study_experiment(wc):
    return EXPERIMENTS[STUDIES[wc.study]["experiment"]]


def study_inputs(*names):
    """Input function: the named files (data, model, spectrum, ...) of a study's model."""

    def inputs(wc):
        spec = STUDIES[wc.study]
        files = {
            "data": f"results/{spec['experiment']}/data.pt",
            "model": f"{study_model(wc.study)}/model.pt",
            "spectrum": f"{study_model(wc.study)}/spectrum.npz",
        }
        return {name: files[name] for name in names}

    return inputs


def study_title(study):
    """The data and model family of a study, e.g. 'spirals, mlp'."""
    spec = STUDIES[study]
    return (
        f"{EXPERIMENTS[spec['experiment']]['data']['name']}, {spec['model']['model']}"
    )


def study_model_kwargs(wc):
    spec = STUDIES[wc.study]
    return study_experiment(wc)["model_kwargs"].get(spec["model"]["model"], {})


VECTOR_MODELS = {study_model(study) for study in STUDIES}


def keeps_eigenvectors(wc):
    """Whether a model's spectrum keeps its eigenvectors: only where a study uses them."""
    return MODEL.format(**dict(wc.items())) in VECTOR_MODELS


def figure_tables(wc):
    return [
        f"results/tables/{experiment}/{grid}.csv"
        for experiment, grid in figure_sources(FIGURES[wc.figure])
    ]


def figure_panels(wc):
    """A name for each grid a figure draws, in the order of its tables: the experiments where
    they differ (with their label noise where that differs), else the grids, else both.
    """
    sources = figure_sources(FIGURES[wc.figure])
    noise = [EXPERIMENTS[e]["data"]["label_noise"] for e, _ in sources]
    experiments = [
        f"{e}, {n:.0%} label noise" if len(set(noise)) > 1 else e
        for (e, _), n in zip(sources, noise)
    ]
    for names in (experiments, [g for _, g in sources]):
        if len(set(names)) == len(names):
            return names
    return [f"{e}/{g}" for e, g in sources]


def figure_title(figure):
    """The data and model families a figure draws, e.g. 'digits, mlp'."""
    sources = figure_sources(FIGURES[figure])
    data = sorted({EXPERIMENTS[e]["data"]["name"] for e, _ in sources})
    models = sorted({EXPERIMENTS[e]["grids"][g]["model"] for e, g in sources})
    return f"{', '.join(data)}, {', '.join(models)}"


def figure_threshold(wc):
    """The interpolation threshold of the figure's (first) experiment."""
    experiment = figure_sources(FIGURES[wc.figure])[0][0]
    return EXPERIMENTS[experiment]["effdim"]["interpolation_threshold"]


def study_figures():
    """The figures of every study: surfaces, and boundaries / perturbations where configured."""
    return [
        f"{study}_{kind}"
        for study, spec in STUDIES.items()
        for kind, key in STUDY_FIGURES.items()
        if key in spec
    ]


def bnn_runs():
    """Every (N, trial) of the BNN study as a path piece size~N/trial~t."""
    spec = config["bayes"]["bnn"]
    return [f"size~{n}/trial~{t}" for n in spec["sizes"] for t in range(spec["trials"])]
