"""N_eff during training: the tracker in a plain loop and in neff's, its csv, its warm start,
TensorBoard and the Lightning callback."""
import csv
import importlib.util
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import neff
from conftest import batches
from neff.errors import NeffError
from neff.tracking import COLUMNS, EffDimTracker


def read(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def train_epochs(model, data, epochs, tracker, start=1):
    optimizer = torch.optim.Adam(model.parameters(), 0.02)
    for epoch in range(start, start + epochs):
        for x, y in data:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        tracker.step(model, epoch)


def test_plain_loop_records_every_few_epochs(mlp, classification_data, tmp_path):
    """Rows at epochs 2, 4, 6 for each z, each the N_eff of the weights of that epoch (checked
    against the dense value at the end), with an interval around it; the model is left in
    train mode and unchanged by the measurements."""
    x, y = classification_data
    data = batches(x, y, 16)
    tracker = EffDimTracker(nn.CrossEntropyLoss(), data, z=[0.01, 0.1], every=2, csv=tmp_path / "neff.csv", k=5,
                            max_hvp=250)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_epochs(mlp, data, 6, tracker)
    rows = read(tmp_path / "neff.csv")
    assert list(rows[0]) == COLUMNS
    assert [(int(r["epoch"]), float(r["z"])) for r in rows] == [(e, z) for e in (2, 4, 6) for z in (0.01, 0.1)]
    assert mlp.training
    dense = neff.dense_spectrum(neff.HessianOperator(mlp, nn.CrossEntropyLoss(), data))
    for row, z in zip(rows[-2:], (0.01, 0.1)):
        truth = float(neff.effective_dimension(dense, z))
        assert float(row["lower"]) <= truth <= float(row["upper"]), (row, truth)
        assert abs(float(row["neff"]) - truth) < 0.1 * truth
        assert int(row["converged"]) == int(row["k"]) == 5 and int(row["products"]) > int(row["eigen_products"])


def test_rows_past_a_resumed_epoch_are_replaced(mlp, classification_data, tmp_path):
    """A run killed after measuring epoch 4 but resumed from its epoch-2 checkpoint measures
    epoch 4 again: the csv keeps one row per epoch and z, the new one."""
    x, y = classification_data
    data = batches(x, y, 53)
    path = tmp_path / "neff.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        EffDimTracker(nn.CrossEntropyLoss(), data, z=0.1, every=2, csv=path, k=3, method="certified").measure(mlp, 2)
        stale = EffDimTracker(nn.CrossEntropyLoss(), data, z=0.1, every=2, csv=path, k=3, method="certified")
        stale.measure(mlp, 4)
        stale_value = read(path)[-1]["neff"]
        train_epochs(mlp, data, 1, EffDimTracker(nn.CrossEntropyLoss(), data, z=0.1, every=99))  # other weights
        EffDimTracker(nn.CrossEntropyLoss(), data, z=0.1, every=2, csv=path, k=3, method="certified").measure(mlp, 4)
    rows = read(path)
    assert [r["epoch"] for r in rows] == ["2", "4"] and rows[-1]["neff"] != stale_value
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(NeffError, match="is not an N_eff record"):
        EffDimTracker(nn.CrossEntropyLoss(), data, z=0.1, csv=tmp_path / "other.csv")


def test_warm_start_certifies_the_same_pairs_with_fewer_products(trained_mlp, classification_data):
    """Started from a nearby operator's eigenvectors (the same weights after one more small
    step), Lanczos certifies the same top k as a cold start, with fewer products."""
    x, y = classification_data
    data = batches(x, y, 16)
    before = neff.top_eigenpairs(neff.HessianOperator(trained_mlp, nn.CrossEntropyLoss(), data), 6, tol=1e-6)
    with torch.no_grad():
        for p in trained_mlp.parameters():
            p.add_(1e-3 * torch.randn_like(p))
    operator = neff.HessianOperator(trained_mlp, nn.CrossEntropyLoss(), data)
    cold = neff.top_eigenpairs(operator, 6, tol=1e-6)
    warm = neff.top_eigenpairs(operator, 6, tol=1e-6, warm_start=before)
    assert cold.all_converged and warm.all_converged
    assert np.allclose(warm.eigenvalues, cold.eigenvalues, rtol=1e-8)
    assert warm.n_hvp < cold.n_hvp
    with pytest.raises(NeffError, match="warm_start applies to method='lanczos'"):
        neff.top_eigenpairs(operator, 6, method="eigsh", warm_start=before)


def test_in_neffs_training_loop(tmp_path):
    from neff.data import load_dataset
    from neff.models import build_model
    from neff.train import TrainConfig, train
    data = load_dataset("digits", subset=120)
    torch.manual_seed(0)
    model = build_model("mlp", 10, data.input_shape, width=4, depth=1)
    tracker = EffDimTracker(data.loss_fn(), data.loader("train", 60), z=1.0, every=1, k=4, method="certified",
                            csv=tmp_path / "n.csv")
    train(model, data, TrainConfig(epochs=2, batch_size=60, optimizer="adam", lr=1e-2, schedule="constant"),
          device="cpu", on_epoch=lambda row: tracker.step(model, row["epoch"]))
    assert [r["epoch"] for r in read(tmp_path / "n.csv")] == ["1", "2"]


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_tensorboard_scalars(mlp, classification_data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    x, y = classification_data
    tracker = EffDimTracker(nn.CrossEntropyLoss(), batches(x, y, 53), z=0.1, k=3, method="certified",
                            tensorboard=tmp_path / "tb")
    estimate = tracker.measure(mlp, 3)
    events = EventAccumulator(str(next((tmp_path / "tb").glob("**/events.*")).parent))
    events.Reload()
    for tag, value in (("neff", estimate.value), ("neff_lower", estimate.lower), ("neff_upper", estimate.upper)):
        [scalar] = events.Scalars(f"{tag}/z=0.1")
        assert scalar.step == 3 and scalar.value == pytest.approx(float(value[0]), rel=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("lightning") is None,
                    reason="PyTorch Lightning is not installed (pip install -e '.[lightning]')")
@pytest.mark.filterwarnings("ignore:The `srun` command is available")
def test_lightning_callback(classification_data, tmp_path):
    import lightning
    from neff.lightning import EffDimCallback
    x, y = classification_data

    class Module(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()

        def forward(self, inputs):
            return self.net(inputs)

        def training_step(self, batch, index):
            return nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), 0.02)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    callback = EffDimCallback(nn.CrossEntropyLoss(), data, z=0.1, every=2, k=3, method="certified",
                              csv=tmp_path / "n.csv")
    trainer = lightning.Trainer(max_epochs=4, callbacks=[callback], logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                                default_root_dir=tmp_path)
    module = Module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, data)
    assert [r["epoch"] for r in read(tmp_path / "n.csv")] == ["2", "4"]
    final = neff.estimate_effective_dimension(neff.HessianOperator(module, nn.CrossEntropyLoss(), data), 0.1,
                                              "certified", k=3)
    assert float(read(tmp_path / "n.csv")[-1]["neff"]) == pytest.approx(float(final.value[0]), rel=1e-6)
    assert trainer.callback_metrics["neff/z=0.1"] == pytest.approx(float(final.value[0]), rel=1e-6)
