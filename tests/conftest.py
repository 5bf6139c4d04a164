import json
import os
from pathlib import Path

import pytest
import torch
# torch.optim imports torch._dynamo when it builds an optimizer (about 2 s): import it once here, so
# that mutmut's forked test runs (docs/MUTATION.md) do not each pay for it
import torch._dynamo  # noqa: F401
from torch import nn


def pytest_collection_modifyitems(items):
    """Under mutmut (docs/MUTATION.md), the fastest tests first: a mutant's run stops at its
    first failing test, so a killed mutant then costs the least."""
    stats = Path("mutmut-stats.json")
    if "MUTANT_UNDER_TEST" in os.environ and stats.exists():
        duration = json.loads(stats.read_text())["duration_by_test"]
        items.sort(key=lambda item: duration.get(item.nodeid, 0.0))


def batches(x, y, size):
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def reference_hessian(model, loss_fn, data, params=None):
    """Dense Hessian of the size-weighted mean loss by double backward on a flat vector: an
    implementation independent of neff's."""
    named = dict(model.named_parameters())
    names = params or list(named)
    flat0 = torch.cat([named[n].detach().reshape(-1) for n in names])
    total = sum(x.shape[0] for x, _ in data)

    def loss(flat):
        pieces = torch.split(flat, [named[n].numel() for n in names])
        state = {n: p.view_as(named[n]) for n, p in zip(names, pieces)}
        value = 0
        for x, y in data:
            value = value + x.shape[0] * loss_fn(torch.func.functional_call(model, state, (x,)), y)
        return value / total

    return torch.autograd.functional.hessian(loss, flat0, vectorize=True)


def make_classification_data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(53, 6, generator=gen, dtype=torch.float64)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.5).long()
    return x, y


def make_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def train(model, x, y):
    opt = torch.optim.Adam(model.parameters(), 0.02)
    for _ in range(400):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


@pytest.fixture
def classification_data():
    return make_classification_data()


@pytest.fixture
def mlp():
    return make_mlp()


@pytest.fixture
def trained_mlp(mlp, classification_data):
    return train(mlp, *classification_data)


@pytest.fixture(scope="session")
def trained_hessian_matrix():
    x, y = make_classification_data()
    return reference_hessian(train(make_mlp(), x, y), nn.CrossEntropyLoss(), batches(x, y, 16))


@pytest.fixture
def trained_hessian(trained_hessian_matrix):
    """The trained MLP's Hessian (83 parameters, by :func:`reference_hessian`) as a matrix
    operator: tests of the estimators run on a real network's spectrum at the cost of matrix
    products, and do not depend on neff's Hessian code."""
    from neff.linear import DenseOperator
    return DenseOperator(trained_hessian_matrix)


@pytest.fixture
def bn_cnn():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 4)).double()
    with torch.no_grad():  # non-trivial running statistics
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return model


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole DAG, every figure, run once per test session on .test/config/config.yaml; its
    output is kept in run.json."""
    import json
    from test_workflow import snakemake
    workdir = tmp_path_factory.mktemp("tiny_run")
    done = snakemake(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    (workdir / "run.json").write_text(json.dumps({"stdout": done.stdout, "stderr": done.stderr}))
    return workdir


def _plan(tmp_path_factory, *args):
    from test_workflow import snakemake
    done = snakemake(tmp_path_factory.mktemp("plan"), "-n", *args, tiny=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="session")
def default_plan(tmp_path_factory):
    """`snakemake -n` of the default config, planned once per test session."""
    return _plan(tmp_path_factory)


@pytest.fixture(scope="session")
def paper_plan(tmp_path_factory):
    """`snakemake -n` of config/paper.yaml, planned once per test session."""
    from test_workflow import ROOT
    return _plan(tmp_path_factory, "--configfile", str(ROOT / "config" / "paper.yaml"))


class Interrupting:
    """Wraps an operator and raises after a number of products, like a killed job."""

    def __init__(self, operator, after):
        self.operator, self.after = operator, after

    def __getattr__(self, name):
        return getattr(self.operator, name)

    def matvec(self, v):
        return self.matmat(v.reshape(-1, 1))[:, 0]

    def matmat(self, block):
        if self.operator.n_hvp + block.shape[1] > self.after:
            raise KeyboardInterrupt
        return self.operator.matmat(block)
