# Settings and helpers of the surfaces rules (surfaces.smk).
import re

SURFACES = config["surfaces"]
STUDY_OF = {spec["experiment"]: name for name, spec in SURFACES.items()}
if len(STUDY_OF) < len(SURFACES) or EXPERIMENT in STUDY_OF:
    raise WorkflowError(
        "experiment, surfaces.spirals.experiment and surfaces.homogeneity.experiment share a "
        "name; give each its own so their results folders stay apart"
    )
SURFACE_FIGURES = [
    "spirals_surfaces",
    "spirals_boundaries",
    "spirals_neff",
    "homogeneity_surfaces",
    "homogeneity_perturbations",
]
SMODEL = "results/{sexp}/models/model~{model}/width~{width}/depth~{depth}/seed~{seed}"
SLOG = "{sexp}/model~{model}/width~{width}/depth~{depth}/seed~{seed}"


wildcard_constraints:
    sexp="|".join(re.escape(name) for name in STUDY_OF),
    study="|".join(SURFACES),
    plane=r"[A-Za-z0-9_]+",
    chunk=r"\d+",


def study(wc):
    """The config of the study whose results folder is wildcard sexp."""
    return SURFACES[STUDY_OF[wc.sexp]]


def study_models(name, points):
    """Results folders of a study's models at (width, depth) points, named by Paramspace."""
    spec, model = SURFACES[name], SURFACES[name]["model"]
    rows = [
        {"model": model["name"], "width": w, "depth": d, "seed": model["seed"]}
        for w, d in points
    ]
    return [
        f"results/{spec['experiment']}/models/{pattern}"
        for pattern in Paramspace(pd.DataFrame(rows)).instance_patterns
    ]


def study_model(name):
    """Results folder of a study's own model."""
    model = SURFACES[name]["model"]
    return study_models(name, [(model["width"], model["depth"])])[0]


def neff_grid():
    """The two-spirals nets of the N_eff figure: widths at the study's depth, depths at its width."""
    model, sweep = SURFACES["spirals"]["model"], SURFACES["spirals"]["neff"]
    rows = [
        {"sweep": "width", "width": w, "depth": model["depth"]} for w in sweep["width"]
    ]
    rows += [
        {"sweep": "depth", "width": model["width"], "depth": d} for d in sweep["depth"]
    ]
    return rows


def neff_models(name):
    """Files ``name`` of every net of the N_eff figure, in the order of neff_grid()."""
    points = [(row["width"], row["depth"]) for row in neff_grid()]
    return [f"{folder}/{name}" for folder in study_models("spirals", points)]
