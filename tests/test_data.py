import numpy as np
import pytest
import torch
import torchvision

from neff import NeffError
from neff.data import BinaryCrossEntropy, cifar, corrupt_labels, load_dataset, spiral_arms
from neff.models import build_grid_model, count_parameters


def test_digits_split_is_fixed():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert len(a.train) == 1297 and len(a.test) == 500 and a.input_shape == (1, 8, 8)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert 0 <= float(a.train.tensors[0].min()) and float(a.train.tensors[0].max()) <= 1


def test_label_noise_is_seeded_exact_and_recorded():
    clean = load_dataset("digits")
    noisy = load_dataset("digits", label_noise=0.2)
    changed = np.flatnonzero((clean.train.tensors[1] != noisy.train.tensors[1]).numpy())
    assert np.array_equal(changed, noisy.corrupted) and len(changed) == round(0.2 * 1297)
    assert np.array_equal(load_dataset("digits", label_noise=0.2).corrupted, noisy.corrupted)
    assert torch.equal(clean.test.tensors[1], noisy.test.tensors[1])
    with pytest.raises(NeffError, match="between 0 and 1"):
        corrupt_labels(torch.zeros(5, dtype=torch.long), 10, 1.5, 0)


@pytest.mark.parametrize("name", ["spirals", "regression"])
def test_synthetic_sets(name):
    data = load_dataset(name, subset=50)
    assert len(data.train) == 50 and data.train.tensors[0].shape[1:] == data.input_shape


def test_cifar_offline_error_names_the_fix_and_leaves_no_partial_file(tmp_path, monkeypatch):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"not really an archive")  # a truncated download, say
    with pytest.raises(NeffError, match=r"CIFAR-10 is corrupt or incomplete in .* place cifar-10-python.tar.gz from https") as err:
        cifar(10, root=tmp_path, download=False)
    assert "\n" not in str(err.value)
    # torchvision's real download code, pointed at a closed local port so it fails offline
    # everywhere instead of fetching 160 MB on a machine that is online
    monkeypatch.setattr(torchvision.datasets.CIFAR100, "url", "http://127.0.0.1:9/cifar-100-python.tar.gz")
    empty = tmp_path / "fresh"
    with pytest.raises(NeffError, match="CIFAR-100 is missing in .* could not be downloaded"):
        cifar(100, root=empty, download=True)
    assert not (empty / "cifar-100-python.tar.gz").exists()


def test_spirals_are_the_originals():
    """Radius 1.5 t for t = sqrt(U) x 600 degrees, Gaussian noise of sd 1.3 per coordinate, the
    second class mirrored, raw scale; one logit with binary cross-entropy."""
    clean, _ = spiral_arms(20000, 0.0, np.random.default_rng(4))
    noisy, labels = spiral_arms(20000, 1.3, np.random.default_rng(4))
    radius = np.linalg.norm(clean[:20000], axis=1)
    t_max = 600 * np.pi / 180
    assert radius.max() == pytest.approx(1.5 * t_max, rel=1e-3) and radius.max() <= 1.5 * t_max
    # t = sqrt(U) t_max: P(t <= t_max / 2) = 1/4
    assert np.mean(radius <= 1.5 * t_max / 2) == pytest.approx(0.25, abs=0.01)
    angle = radius / 1.5
    np.testing.assert_allclose(clean[:20000], np.stack([-np.cos(angle), np.sin(angle)], 1) * radius[:, None], atol=1e-9)
    noise = noisy - clean
    assert noise.std(0) == pytest.approx([1.3, 1.3], rel=0.02) and np.abs(noise.mean(0)).max() < 0.03
    assert np.array_equal(noisy[20000:], -noisy[:20000]) and labels.tolist() == [0] * 20000 + [1] * 20000
    data = load_dataset("spirals")
    assert len(data.train) == len(data.test) == 1000 and data.train.tensors[1].float().mean() == pytest.approx(0.5, abs=0.05)
    assert data.num_classes == 1 and isinstance(data.loss_fn(), BinaryCrossEntropy)
    logits, targets = torch.tensor([[2.0], [-1.0]]), torch.tensor([1, 0])
    assert float(data.loss_fn()(logits, targets)) == pytest.approx(np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0))]))


def test_the_study_net_has_the_papers_2181_parameters():
    data = load_dataset("spirals")
    assert count_parameters(build_grid_model("mlp", data.num_classes, data.input_shape, 20, 6)) == 2181


def test_cifar_is_read_by_torchvision_and_normalised_as_configured(tmp_path, monkeypatch):
    """A tiny CIFAR-10 in torchvision's own format, read by torchvision's real loader (its
    checksums pointed at the files made here); the configured normalisation applies, and the
    crop padding is a black pixel in that normalisation."""
    import hashlib
    import pickle
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    pixels = {}

    def batch(name, size):
        pixels[name] = rng.integers(0, 256, (size, 3 * 32 * 32), dtype=np.uint8)
        (folder / name).write_bytes(pickle.dumps({"data": pixels[name], "labels": list(range(size))}))
        return [name, hashlib.md5((folder / name).read_bytes()).hexdigest()]

    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [batch(f"data_batch_{i}", 2) for i in range(1, 6)])
    monkeypatch.setattr(cls, "test_list", [batch("test_batch", 3)])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": hashlib.md5((folder / "batches.meta").read_bytes()).hexdigest()})
    normalization = {"mean": [0.5, 0.4, 0.3], "std": [0.5, 0.25, 0.2]}
    data = cifar(10, root=tmp_path, download=False, normalization=normalization)
    assert len(data.train) == 10 and len(data.test) == 3 and data.input_shape == (3, 32, 32)
    raw = pixels["test_batch"].reshape(3, 3, 32, 32) / 255
    expected = (raw - np.array([0.5, 0.4, 0.3])[:, None, None]) / np.array([0.5, 0.25, 0.2])[:, None, None]
    np.testing.assert_allclose(data.test.tensors[0].numpy(), expected, atol=1e-6)
    assert data.black == pytest.approx([-1.0, -1.6, -1.5])
    default = cifar(10, root=tmp_path, download=False)
    assert default.black == pytest.approx([-0.4914 / 0.2470, -0.4822 / 0.2435, -0.4465 / 0.2616])


def test_spirals_sweep_data_is_the_originals_split():
    """two_spirals_increasing_width: twospirals(1500, noise=1.0), shuffled, 1000 to train and the
    other 2000 to test; options reach only the synthetic generator that takes them."""
    data = load_dataset("spirals", options={"points_per_class": 1500, "noise": 1.0, "train": 1000})
    assert len(data.train) == 1000 and len(data.test) == 2000
    points = torch.cat([data.train.tensors[0], data.test.tensors[0]]).double()
    assert abs(float(points.mean(0).abs().max())) < 1e-6  # every point and its mirror image
    assert float(data.train.tensors[1].float().mean()) == pytest.approx(0.5, abs=0.05)  # shuffled classes
    with pytest.raises(NeffError, match=r"options \['noise_sd'\] do not apply to spirals; it takes noise"):
        load_dataset("spirals", options={"noise_sd": 1.0})
    with pytest.raises(NeffError, match="do not apply to digits; it takes none"):
        load_dataset("digits", options={"noise": 1.0})
    with pytest.raises(NeffError, match="must leave test points"):
        load_dataset("spirals", options={"points_per_class": 10, "train": 20})


def test_loader_subset_is_a_seeded_sample_of_distinct_examples_in_order():
    data = load_dataset("digits")
    X, y = data.train.tensors

    def rows(seed):
        inputs, labels = map(torch.cat, zip(*data.loader("train", 32, seed=seed, examples=50)))
        return [int(torch.nonzero((X == x).all(dim=(1, 2, 3)))[0]) for x in inputs], labels

    first, labels = rows(0)
    assert len(first) == len(set(first)) == 50 and first == sorted(first)
    assert torch.equal(labels, y[first])
    assert rows(0)[0] == first and rows(1)[0] != first
    assert sum(len(b[0]) for b in data.loader("train", 32, examples=10**6)) == len(X)
