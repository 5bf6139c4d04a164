import pytest
import torch

from neff import NeffError
from neff.data import load_dataset
from neff.models import build_model
from neff.train import TrainConfig, augment_images, learning_rate, train


def test_paper_schedule():
    config = TrainConfig(epochs=200, lr=0.01)
    assert learning_rate(config, 0) == learning_rate(config, 100) == 0.01
    assert learning_rate(config, 140) == pytest.approx(0.01 * (1 - 0.99 * 0.5))
    assert learning_rate(config, 180) == learning_rate(config, 199) == pytest.approx(1e-4)


def small_run(**kwargs):
    data = load_dataset("digits", subset=200)
    torch.manual_seed(0)
    model = build_model("mlp", 10, (1, 8, 8), width=16, depth=1)
    config = TrainConfig(**{"epochs": 4, "batch_size": 32, "lr": 0.05, "checkpoint_every": 1, **kwargs})
    return data, model, config


def test_training_learns_and_records_metrics():
    data, model, config = small_run(optimizer="adam")
    config.lr = 0.02
    history = train(model, data, config, device="cpu")
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < history[0]["train_loss"] and history[-1]["test_acc"] > 0.3  # chance: 0.1


def test_augmentation_crops_and_flips():
    images = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 1, 8, 8)
    out = augment_images(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and not torch.equal(out, images)
    assert set(out.unique().tolist()) <= set(images.unique().tolist()) | {0.0}


def test_crops_pad_with_black_as_torchvision_does_before_normalising():
    """RandomCrop(32, padding=4) pads the raw image with 0, then Normalize: after normalisation
    the border is (0 - mean) / std per channel, not 0."""
    mean, std = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.2023, 0.1994, 0.2010])
    raw = 0.1 + 0.9 * torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    normalised = (raw - mean.view(3, 1, 1)) / std.view(3, 1, 1)
    out = augment_images(normalised, torch.Generator().manual_seed(0), fill=(-mean / std).tolist())
    back = out * std.view(3, 1, 1) + mean.view(3, 1, 1)
    black = back.abs() < 1e-5
    assert black.any() and (black.all(1) | ~black.any(1)).all()  # whole black pixels, all channels
    assert (back[~black] >= 0.1 - 1e-5).all()  # everything else is the image


def test_training_crops_pad_with_the_datasets_black():
    """The training loop hands the dataset's black pixel to the crops: another black, another run."""
    def one_epoch(black):
        data, model, config = small_run(augment=True)
        config.epochs = 1
        data.black = black
        train(model, data, config, device="cpu")
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(one_epoch(None), one_epoch((0.0,)))
    assert not torch.equal(one_epoch(None), one_epoch((-3.0,)))


class Killed(Exception):
    pass


def killed_at(tmp_path, epoch, **settings):
    """small_run(**settings) trained with a checkpoint and stopped after its row of ``epoch``."""
    def kill(row):
        if row["epoch"] == epoch:
            raise Killed

    data, model, config = small_run(**settings)
    with pytest.raises(Killed):
        train(model, data, config, checkpoint=tmp_path / "ckpt.pt", device="cpu", on_epoch=kill)


def whole_run(**settings):
    """The rows and final parameters of small_run(**settings) trained without interruption."""
    data, model, config = small_run(**settings)
    rows = train(model, data, config, device="cpu")
    return rows, [p.detach().clone() for p in model.parameters()]


def resumed_run(tmp_path, **settings):
    """small_run(**settings) resumed from the checkpoint: rows, model, data and config."""
    data, model, config = small_run(**settings)
    steps = []  # training-mode forward passes, one per minibatch
    model.register_forward_pre_hook(lambda module, args: steps.append(1) if module.training else None)
    rows = train(model, data, config, checkpoint=tmp_path / "ckpt.pt", device="cpu")
    return rows, model, len(steps) / -(-len(data.train) // config.batch_size)


def test_killed_run_resumes_exactly(tmp_path):
    full, expected = whole_run()
    killed_at(tmp_path, 2)
    rows, model, epochs_run = resumed_run(tmp_path)
    assert rows == full and epochs_run == 2
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), expected))


def test_evaluation_every_few_epochs_changes_no_step(tmp_path):
    """eval_every thins the metrics rows (the last epoch always has one) but not the training,
    and a run killed after an evaluation resumes to the same rows and parameters."""
    _, expected = whole_run()
    rows, thinned = whole_run(eval_every=3)
    assert [row["epoch"] for row in rows] == [3, 4]
    assert all(torch.equal(a, b) for a, b in zip(thinned, expected))
    killed_at(tmp_path, 3, eval_every=3)
    resumed, model, epochs_run = resumed_run(tmp_path, eval_every=3)
    assert resumed == rows and epochs_run == 1
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), expected))


def test_resume_between_evaluations_runs_only_the_remaining_epochs(tmp_path):
    """A checkpoint taken at an epoch without a metrics row (epoch 2 of eval_every 3) resumes
    there: the rerun trains epochs 3-4 only and ends as a whole run."""
    rows, expected = whole_run(eval_every=3, checkpoint_every=2)
    killed_at(tmp_path, 3, eval_every=3, checkpoint_every=2)  # the last checkpoint: epoch 2
    resumed, model, epochs_run = resumed_run(tmp_path, eval_every=3, checkpoint_every=2)
    assert resumed == rows and epochs_run == 2
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), expected))


def test_checkpoint_from_before_later_settings_resumes(tmp_path):
    """A checkpoint written before eval_every and the fast-training options existed (no such
    keys, a row per epoch) resumes as trained with their defaults; with another precision it is
    refused."""
    full, _ = whole_run()
    killed_at(tmp_path, 2)
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    del state["epochs_done"]
    for key in ("eval_every", "channels_last", "precision", "compile"):
        del state["config"][key]
    torch.save(state, tmp_path / "ckpt.pt")
    with pytest.raises(NeffError, match="was written with other training settings"):
        resumed_run(tmp_path, precision="bf16")
    rows, _, epochs_run = resumed_run(tmp_path)
    assert rows == full and epochs_run == 2


def test_divergence_is_one_clear_error():
    data, model, config = small_run()
    config.lr = 1e6
    with pytest.raises(NeffError, match="training diverged at epoch 1 .* lower the learning rate"):
        train(model, data, config, device="cpu")


def test_bad_settings():
    with pytest.raises(NeffError, match="optimizer='rmsprop' is unknown"):
        TrainConfig(optimizer="rmsprop")
