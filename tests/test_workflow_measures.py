"""Section 7 in the tiny whole-DAG run: the measures rule for every model of the experiments with
`measures`, their values in the tables recomputed independently from the models' weights, and
the rank correlations of every measure with every target."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from test_workflow import TINY

from neff.measures import MEASURES
from neff.tables import TARGETS


def model_folder(run, experiment, row):
    return (run / "results" / experiment / "models" / f"model~{row.model}" / f"width~{row.width}"
            / f"depth~{row.depth}" / f"seed~{row.seed}")


def mlp_norms(state):
    """L2 norms and the L2 path norm of a ReLU MLP from its state dict, by hand: squared weights
    and biases propagate an all-ones input (every unit stays non-negative, so ReLU is the identity)."""
    layers = sorted({key.rsplit(".", 1)[0] for key in state}, key=lambda name: int(name.split(".")[-1]))
    units = torch.ones(state[f"{layers[0]}.weight"].shape[1], dtype=torch.float64)
    for layer in layers:
        units = state[f"{layer}.weight"].double() ** 2 @ units + state[f"{layer}.bias"].double() ** 2
    squares = {key: float((value.double() ** 2).sum()) for key, value in state.items()}
    return (math.sqrt(sum(squares.values())), math.sqrt(sum(v for k, v in squares.items() if k.endswith("weight"))),
            math.sqrt(float(units.sum())))


@pytest.mark.parametrize("experiment, grid", [("double_descent", "width"), ("double_descent", "width_depth"),
                                              ("noise_contrast", "width")])
def test_tables_carry_every_measure_of_every_model(tiny_run, experiment, grid):
    spec = TINY["experiments"][experiment]["measures"]
    table = pd.read_csv(tiny_run / "results" / "tables" / experiment / f"{grid}.csv")
    models = table.drop_duplicates(["width", "depth"])
    assert len(models) == len(TINY["experiments"][experiment]["grids"][grid]["width"]) * len(
        TINY["experiments"][experiment]["grids"][grid]["depth"])
    for row in models.itertuples():
        folder = model_folder(tiny_run, experiment, row)
        record = json.loads((folder / "measures.json").read_text())
        assert record["git_commit"] and record["time_utc"] and record["width"] == row.width
        target = spec["target"] if not isinstance(spec["target"], dict) else spec["target"][row.model]
        assert record["measures"]["target"] == target and f"train_{spec['metric']}" in record
        l2, l2_weights, path = mlp_norms(torch.load(folder / "model.pt"))
        assert (row.l2_norm, row.l2_norm_weights, row.path_norm) == (
            pytest.approx(l2, rel=1e-6), pytest.approx(l2_weights, rel=1e-6), pytest.approx(path, rel=1e-6))
        assert row.pacbayes_flatness == pytest.approx(1 / record["sigma"] ** 2, rel=1e-12)
        assert row.pacbayes_mag_flatness == pytest.approx(1 / record["sigma_mag"] ** 2, rel=1e-12)
        assert 0 < record["sigma_steps"] <= spec["max_steps"]


def test_correlations_rank_every_measure_against_every_target(tiny_run):
    table = pd.read_csv(tiny_run / "results" / "tables" / "double_descent" / "width_depth.csv")
    correlations = pd.read_csv(tiny_run / "results" / "tables" / "double_descent" / "width_depth.correlations.csv")
    assert set(correlations["measure"]) == {"neff", "num_params", *MEASURES}
    assert set(correlations["target"]) == set(TARGETS) and set(correlations["models"]) == {"all", "interpolating"}
    models = table.drop_duplicates(["width", "depth"])
    targets = {"test_loss": models["test_loss"], "test_error": 1 - models["test_acc"],
               "gen_gap": models["test_loss"] - models["train_loss"]}
    for measure in ("l2_norm", "path_norm", "pacbayes_flatness"):
        for target, values in targets.items():
            row = correlations[(correlations.measure == measure) & (correlations.target == target)
                               & (correlations.models == "all")].iloc[0]
            expected = stats.kendalltau(models[measure], values).statistic
            assert row.n == len(models)
            assert row.kendall_tau == pytest.approx(expected, nan_ok=True)
    slq = table[(table.estimator == "slq") & np.isclose(table.z, 0.1)]
    row = correlations[(correlations.measure == "neff") & (correlations.estimator == "slq")
                       & np.isclose(correlations.z, 0.1) & (correlations.target == "gen_gap")
                       & (correlations.models == "all")].iloc[0]
    assert row.spearman == pytest.approx(
        stats.spearmanr(slq["value"], slq["test_loss"] - slq["train_loss"]).statistic, nan_ok=True)


def test_experiments_without_measures_have_none(tiny_run):
    table = pd.read_csv(tiny_run / "results" / "tables" / "spirals_width" / "width.csv")
    assert not set(MEASURES) & set(table.columns)
    assert not list((tiny_run / "results" / "spirals_width").rglob("measures.json"))
