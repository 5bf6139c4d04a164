import numpy as np
import pytest
import torch
import torchvision

from neff import NeffError
from neff.data import cifar, corrupt_labels, load_dataset


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
