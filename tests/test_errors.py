"""Every bad input gets one clear sentence (a NeffError) and leaves nothing half-written."""
import numpy as np
import pytest
import torch
from torch import nn

import neff
from conftest import batches
from neff.files import atomic_path
from neff.models import load_checkpoint

LOSS = nn.CrossEntropyLoss()


def one_line(err):
    message = str(err.value)
    assert "\n" not in message and len(message) < 300
    return message


def test_empty_data(mlp):
    with pytest.raises(neff.NeffError, match="data is empty") as err:
        neff.HessianOperator(mlp, LOSS, [])
    one_line(err)


def test_data_that_is_not_batches(mlp, classification_data):
    x, y = classification_data
    with pytest.raises(neff.NeffError, match=r"wrap whole tensors as \[\(X, y\)\]"):
        neff.HessianOperator(mlp, LOSS, (x, y))
    with pytest.raises(neff.NeffError, match="one-shot iterator"):
        neff.HessianOperator(mlp, LOSS, (b for b in batches(x, y, 10)))


def test_no_trainable_parameters(mlp, classification_data):
    for p in mlp.parameters():
        p.requires_grad_(False)
    with pytest.raises(neff.NeffError, match="no trainable parameters"):
        neff.HessianOperator(mlp, LOSS, [classification_data])


def test_unknown_selection_and_pattern(mlp, classification_data):
    with pytest.raises(neff.NeffError, match="params='biases' is not a selection"):
        neff.HessianOperator(mlp, LOSS, [classification_data], params="biases")
    with pytest.raises(neff.NeffError, match="pattern 'conv.*' matches no trainable parameter; names are 0.weight"):
        neff.HessianOperator(mlp, LOSS, [classification_data], params=["conv.*"])


def test_negative_cache_size(mlp, classification_data):
    with pytest.raises(neff.NeffError, match="cache_gb=-1 must be a size in GB"):
        neff.HessianOperator(mlp, LOSS, [classification_data], cache_gb=-1)


def test_k_not_below_number_of_parameters(mlp, classification_data):
    op = neff.HessianOperator(mlp, LOSS, [classification_data])
    with pytest.raises(neff.NeffError, match=f"k={op.num_params} must be smaller than the number of parameters"):
        neff.top_eigenpairs(op, op.num_params)


@pytest.mark.parametrize("z", [0, -1.0, [1.0, 0.0], float("nan")])
def test_non_positive_z(z):
    with pytest.raises(neff.NeffError, match="z must be a positive number"):
        neff.effective_dimension([1.0, 2.0], z)


def test_nan_loss(mlp, classification_data):
    x, y = classification_data
    x = x.clone()
    x[3, 0] = float("nan")
    op = neff.HessianOperator(mlp, LOSS, [(x, y)])
    with pytest.raises(neff.NeffError, match="not finite"):
        op.matvec(torch.ones(op.num_params, dtype=torch.float64))
    with pytest.raises(neff.NeffError, match="not finite"):
        neff.top_eigenpairs(op, 2)


def test_checkpoint_that_does_not_fit(mlp, tmp_path):
    path = tmp_path / "model.pt"
    torch.save(nn.Sequential(nn.Linear(6, 9), nn.Tanh(), nn.Linear(9, 3)).state_dict(), path)
    with pytest.raises(neff.NeffError, match=r"does not fit the model \(wrong shape: 0.bias, 0.weight"):
        load_checkpoint(mlp, path)
    torch.save({"model": {"other.weight": torch.zeros(2)}}, path)
    with pytest.raises(neff.NeffError, match="missing: 0.bias"):
        load_checkpoint(mlp, path)
    torch.save({"model": mlp.state_dict(), "epoch": 3}, path)
    assert load_checkpoint(mlp, path) is mlp


class Payload:
    pass


def test_untrusted_checkpoint_is_not_unpickled(mlp, tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, path)
    with pytest.raises(neff.NeffError, match="cannot be loaded safely") as err:
        load_checkpoint(mlp, path)
    one_line(err)


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.npz"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_bad_block_shape(mlp, classification_data):
    op = neff.HessianOperator(mlp, LOSS, [classification_data])
    with pytest.raises(neff.NeffError, match=r"expected a block of shape"):
        op.matmat(np.ones((3, 2)))
