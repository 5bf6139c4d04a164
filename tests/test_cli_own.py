"""The command line on your own work: --data and --factory from the current folder, N_eff of
a model in one command, errors from outside neff as one sentence, interrupted runs that keep
their products."""
import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from neff import top_eigenpairs
from neff.cli import main
from neff.spectra import save_spectrum

USER_CODE = '''
import math
import torch

def pairs():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(90, 5, generator=generator), torch.randint(0, 3, (90,), generator=generator)

def float_labels():
    inputs, labels = pairs()
    return inputs, labels.double()

def broken():
    raise ValueError("no file data.csv")

def shaped(input_shape, num_classes, width=4):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(math.prod(input_shape), width),
                               torch.nn.Tanh(), torch.nn.Linear(width, num_classes))

def needs(hidden):
    return shaped((5,), 3, hidden)

def number():
    return 3

class TupleOut(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(5, 3)

    def forward(self, x):
        return self.linear(x), x
'''


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """A folder holding the user's own module (and one with a missing dependency) as the
    current folder; sys.path and the module cache restored afterwards."""
    (tmp_path / "mywork.py").write_text(textwrap.dedent(USER_CODE))
    (tmp_path / "needsdep.py").write_text("import not_an_installed_package\n")
    (tmp_path / "notes.pt").write_text("these are my notes, not weights\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("mywork", "needsdep"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def test_own_data_and_factory_from_the_current_folder(user_folder, capsys):
    """--data and --factory found in the current folder; the factory gets the data's input shape
    and class count with the --model-kwargs; the estimate and its record name them."""
    argv = ["effdim", "--data", "mywork:pairs", "--factory", "mywork:shaped", "--model-kwargs", "width=3",
            "--z", "0.1", "--k", "5", "--out", "e.json"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "N_eff by slq" in printed and "30 parameters" in printed  # (5 + 1) * 3 + (3 + 1) * 3
    record = json.loads((user_folder / "e.json").read_text())
    assert record["dataset"] == "mywork:pairs" and record["model"] == "mywork:shaped"
    assert record["num_examples"] == 90 and record["effdim"]["method"] == "slq"


def test_effdim_of_a_model_with_a_tolerance(capsys):
    """`neff effdim` for a model: slq with its interval, widened no further than rtol; the
    certified method's bounds; both bracket the dense value of the same model."""
    problem = ["--model", "mlp", "--model-kwargs", "width=3", "depth=1", "--subset", "120", "--z", "0.1", "--k", "8"]
    assert main(["validate", *problem]) == 0
    dense = float(capsys.readouterr().out.split("\n0.1 ")[1].split()[0])
    assert main(["effdim", *problem, "--rtol", "0.2", "--max-hvp", "400"]) == 0
    slq = capsys.readouterr().out.splitlines()
    value, low, high = map(float, slq[-1].split()[1:])
    assert low <= dense <= high and (high - low) / 2 <= 0.2 * value + 1e-12
    assert main(["effdim", *problem, "--method", "certified"]) == 0
    value, low, high = map(float, capsys.readouterr().out.splitlines()[-1].split()[1:])
    assert low <= dense <= high


@pytest.mark.parametrize("options, message", [
    (["--model", "lenet", "--dataset", "spirals"],
     "model 'lenet' takes images (channels, height, width), but the data's inputs have shape (2,); use model 'mlp'"),
    (["--device", "cuda"], "device 'cuda' was asked for but PyTorch sees no CUDA GPU here; use device 'cpu'"),
    (["--factory", "nowhere:build"], "--factory: no module 'nowhere' on the path (the current folder"),
    (["--factory", "needsdep:build"],
     "--factory: importing needsdep needs 'not_an_installed_package', which is not installed; pip install it"),
    (["--factory", "mywork:nothing"], "--factory: module mywork ("),
    (["--factory", "mywork"], "--factory 'mywork' is not package.module:function"),
    (["--factory", "mywork:number"], "returned an object of type int, not a torch.nn.Module"),
    (["--factory", "mywork:needs"], "cannot be called with no arguments: missing a required argument: 'hidden'"),
    (["--data", "mywork:pairs", "--factory", "mywork:TupleOut"],
     "the model returns a tuple of 2 (Tensor, Tensor), not a tensor"),
    (["--data", "mywork:float_labels", "--factory", "mywork:shaped"],  # floats: regression targets
     "MSELoss would broadcast the model's outputs (a tensor of shape (90, 1) (torch.float64)) and targets (a tensor "
     "of shape (90,) (torch.float64)) to another shape; give targets of the outputs' shape"),
    (["--data", "mywork:broken"], "--data mywork:broken failed (ValueError: no file data.csv)"),
    (["--data", "mywork:pairs", "--subset", "10"], "--subset applies to the built-in datasets"),
    (["--checkpoint", "notes.pt"], "checkpoint notes.pt is a text file, not a PyTorch checkpoint"),
    (["--data", "mywork:pairs", "--model", "mlp", "--model-kwargs", "width=3", "depth=1"], None),
])
def test_errors_from_outside_neff_are_one_sentence(options, message, user_folder, capsys):
    small = [] if "--data" in options else ["--subset", "100"]
    code = main(["spectrum", *small, *options, "--k", "2", "--out", "x.npz"])
    err = capsys.readouterr().err.strip()
    if message is None:
        assert code == 0, err
        return
    assert code == 2 and err.startswith("neff: error:") and "\n" not in err and message in err, err
    assert not (user_folder / "x.npz").exists()


def test_float_labels_for_a_classification_loss(user_folder):
    from neff import HessianOperator
    from neff.errors import NeffError
    inputs, labels = torch.randn(6, 5), torch.tensor([0.0, 1, 2, 0, 1, 2])
    with pytest.raises(NeffError, match="takes integer class labels but the targets are torch.float32"):
        HessianOperator(torch.nn.Linear(5, 3), torch.nn.CrossEntropyLoss(), [(inputs, labels)])


def test_bad_numbers_and_negative_policy_name_the_option(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["spectrum", "--batch-size", "0", "--out", "x.npz"])
    assert "argument --batch-size: 0 is not a positive number" in capsys.readouterr().err
    path = tmp_path / "s.npz"
    eigen = top_eigenpairs(torch.diag(torch.tensor([3.0, -1.0, -0.5, 2.0, 0.1], dtype=torch.float64)), k=4,
                           tol=1e-8)
    save_spectrum(path, eigen, {})
    assert main(["effdim", str(path), "--negative", "raise"]) == 2
    assert "1 eigenvalues are negative; pass --negative clip" in capsys.readouterr().err


SLOW_MODEL = '''
import time
from pathlib import Path
import torch

class Slow(torch.autograd.Function):
    """The identity, whose backward (every product runs it) takes 20 ms and is counted in a file."""
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        time.sleep(0.02)
        with open("backward.log", "a") as log:
            log.write("x")
        return grad * 1.0

def build():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(64, 10)

        def forward(self, x):
            return Slow.apply(self.linear(torch.tanh(x.flatten(1))))
    return Net()
'''


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_spectrum_keeps_its_products(signum, tmp_path):
    """Ctrl-C (SIGINT) or SIGTERM while products run: the command saves every product computed
    so far (not only the last multiple of 10), says so in one line without a traceback, exits
    130; the same command then resumes from them (test_eigen: a resumed run equals an
    uninterrupted one)."""
    (tmp_path / "slowmodel.py").write_text(textwrap.dedent(SLOW_MODEL))
    command = [sys.executable, "-m", "neff.cli", "spectrum", "--factory", "slowmodel:build", "--subset", "64",
               "--k", "2", "--tol", "1e-8", "--resume-file", "run.pt", "--out", "s.npz"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "backward.log"
    deadline = time.time() + 120
    while (not log.exists() or len(log.read_text()) < 5) and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "neff: interrupted; the products computed so far are saved in run.pt" in err
    saved = len(torch.load(tmp_path / "run.pt", weights_only=True)["products"])
    assert 1 <= saved < 10  # a save on the way out, not the periodic one
    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 and "2/2 largest eigenpairs converged" in resumed.stdout, resumed.stderr
    assert len(torch.load(tmp_path / "run.pt", weights_only=True)["products"]) > saved
