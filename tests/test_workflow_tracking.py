"""N_eff during training in the tiny whole-DAG run: the tracked grid's models carry a row per
epoch whose last value is recomputed here from the trained weights, the others carry none, and
the training figure is drawn."""
import pandas as pd
import torch

import neff
from neff.data import read_dataset
from neff.models import load_grid_model
from neff.tracking import COLUMNS
from test_workflow import TINY


def test_tracked_models_record_neff_every_epoch(tiny_run):
    spec = TINY["experiments"]["double_descent"]
    tracking, spectrum = spec["tracking"], spec["spectrum"]
    models = tiny_run / "results" / "double_descent" / "models"
    grid = spec["grids"][tracking["grid"]]
    tracked = {f"model~{grid['model']}/width~{w}/depth~{d}/seed~{s}"
               for w in grid["width"] for d in grid["depth"] for s in grid["seed"]}
    for path in sorted(models.rglob("neff_during_training.csv")):
        rows = pd.read_csv(path)
        assert list(rows.columns) == COLUMNS
        point = path.parent.relative_to(models).as_posix()
        if point not in tracked:
            assert rows.empty, path
            continue
        tracked.discard(point)
        epochs = list(range(tracking["every"], spec["train"]["epochs"] + 1, tracking["every"]))
        assert rows["epoch"].tolist() == [e for e in epochs for _ in tracking["z"]]
        assert (rows["products"] <= tracking["max_hvp"]).all() and (rows["converged"] <= tracking["k"]).all()
        # the last row is the trained model: its dense N_eff (weights, the spectrum's dtype) is in the interval
        data = read_dataset(tiny_run / "results" / "double_descent" / "data.pt")
        width, depth = (int(part.split("~")[1]) for part in point.split("/")[1:3])
        model = load_grid_model("mlp", data, width, depth, path.parent / "model.pt",
                                **spec["model_kwargs"]["mlp"])
        operator = neff.HessianOperator(model, data.loss_fn(), data.loader("train", spectrum["batch_size"]),
                                        spectrum["params"], dtype=torch.float64)
        last = rows.iloc[-1]
        truth = float(neff.effective_dimension(neff.dense_spectrum(operator), last["z"]))
        assert last["lower"] <= truth <= last["upper"], (last, truth)
    assert not tracked  # every tracked model was checked
    assert (tiny_run / "results" / "figures" / "dynamics.pdf").stat().st_size > 0
    assert (tiny_run / "results" / "figures" / "dynamics.png").stat().st_size > 0
