import pytest
import torch
from torch import nn

from neff.objective import Objective
from conftest import batches


@pytest.fixture
def regression():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(10, 1, generator=gen, dtype=torch.float64)
    model = nn.Linear(3, 1, bias=False).double()
    return model, x, y


def test_value_and_gradient_weight_a_short_last_batch_by_its_size(regression):
    model, x, y = regression
    data = batches(x, y, 4)  # 4, 4, 2
    objective = Objective(model, nn.MSELoss(), data)
    w = model.weight.detach().T
    residual = x @ w - y
    loss = float((residual ** 2).mean())
    batch_means = sum(float((r ** 2).mean()) for r in residual.split(4)) / 3
    assert abs(loss - batch_means) > 1e-3  # the weighting matters on this data
    assert objective.value() == pytest.approx(loss, rel=1e-14)
    value, gradient = objective.loss_and_gradient()
    assert value == pytest.approx(loss, rel=1e-14)
    torch.testing.assert_close(gradient, (2 * x.T @ residual / 10).reshape(-1), rtol=1e-12, atol=0)
    assert objective.num_examples == 10 and objective.num_params == 3


def test_sum_is_n_times_mean(regression):
    model, x, y = regression
    mean = Objective(model, nn.MSELoss(), batches(x, y, 4))
    total = Objective(model, nn.MSELoss(), batches(x, y, 4), reduction="sum")
    assert total.value() == pytest.approx(10 * mean.value(), rel=1e-14)
    torch.testing.assert_close(total.loss_and_gradient()[1], 10 * mean.loss_and_gradient()[1],
                               rtol=1e-12, atol=0)


def test_linearised_builds_each_batch_once_when_cached(regression):
    model, x, y = regression
    built = []

    def build(inputs, targets, vectorised):
        built.append(inputs.shape[0])
        return inputs.shape[0]

    cached = Objective(model, nn.MSELoss(), batches(x, y, 4), cache_gb=1)
    for _ in range(3):
        assert list(cached.linearised(build, block=False)) == [(4, 4), (4, 4), (2, 2)]
    assert built == [4, 4, 2]
    built.clear()
    fresh = Objective(model, nn.MSELoss(), batches(x, y, 4), cache_gb=0)
    for _ in range(2):
        list(fresh.linearised(build, block=False))
    assert built == [4, 4, 2] * 2


def test_data_digest_counts_the_examples_and_tells_data_apart():
    """The digest starts with the number of examples, is the same for the same examples in any
    order and batching, and differs whenever one number of one example changes."""
    x = torch.arange(24, dtype=torch.float64).reshape(12, 2)
    y = torch.arange(12) % 3
    model = torch.nn.Linear(2, 3).double()

    def digest(x, y, size=4):
        return Objective(model, torch.nn.CrossEntropyLoss(), [(x[i:i + size], y[i:i + size])
                                                              for i in range(0, len(x), size)]).data_digest()
    reference = digest(x, y)
    assert reference.startswith("12:") and digest(x.flip(0), y.flip(0), 5) == reference
    variants = set()
    for i in range(12):
        changed = x.clone()
        changed[i, i % 2] += 1
        variants.add(digest(changed, y))
        labels = y.clone()
        labels[i] = (labels[i] + 1) % 3
        variants.add(digest(x, labels))
    assert len(variants) == 24 and reference not in variants
