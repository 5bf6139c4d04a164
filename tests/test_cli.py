import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from neff.cli import main
from neff.models import build_model

PROBLEM = ["--model", "mlp", "--model-kwargs", "width=6", "depth=1", "--dataset", "digits", "--subset", "150",
           "--batch-size", "64"]


def test_spectrum_effdim_round_trip(tmp_path, capsys):
    out = tmp_path / "spec.npz"
    assert main(["spectrum", *PROBLEM, "--k", "5", "--tol", "1e-6", "--z", "0.1", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "5/5 largest eigenpairs converged" in printed and f"wrote {out}" in printed
    with np.load(out) as npz:
        assert set(npz.files) >= {"pos_evals", "eigenvalues", "residuals", "converged", "ritz_values", "record"}
        evals = npz["eigenvalues"]
        assert np.array_equal(npz["pos_evals"], evals[evals > 0])
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["dataset"] == "digits" and record["num_examples"] == 150 and record["torch"] == torch.__version__
    assert record["model_kwargs"] == {"width": 6, "depth": 1} and record["eigen"]["n_hvp"] > 0
    assert main(["effdim", str(out), "--z", "0.1", "1"]) == 0
    table = capsys.readouterr().out
    value = float(table.splitlines()[-1].split()[1])
    assert value == pytest.approx(np.sum(evals / (evals + 1.0)), rel=1e-4)


def test_effdim_reads_the_original_tools_npz(tmp_path, capsys):
    path = tmp_path / "old.npz"
    np.savez(path, pos_evals=np.array([3.0, 1.0, 0.5]))
    assert main(["effdim", str(path), "--z", "1"]) == 0
    assert "1.5833" in capsys.readouterr().out  # 0.75 + 0.5 + 1/3


def test_spectrum_with_checkpoint_and_weights_only(tmp_path, capsys):
    model = build_model("mlp", 10, (1, 8, 8), width=6, depth=1)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    out = tmp_path / "w.npz"
    assert main(["spectrum", *PROBLEM, "--checkpoint", str(tmp_path / "m.pt"), "--params", "weights",
                 "--k", "3", "--out", str(out)]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["params"] == ["weights"]


def test_validate_command(capsys):
    assert main(["validate", *PROBLEM, "--k", "4", "--z", "0.1"]) == 0
    assert "certificates hold" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["effdim", "missing.npz"], "missing.npz does not exist"),
    (["spectrum", *PROBLEM, "--checkpoint", "nope.pt", "--out", "x.npz"], "checkpoint nope.pt does not exist"),
    (["spectrum", "--model-kwargs", "width", "--out", "x.npz"], "is not KEY=VALUE"),
    (["spectrum", *PROBLEM, "--k", "100000", "--out", "x.npz"], "must be smaller than the number of parameters"),
])
def test_bad_input_is_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("neff: error:") and "\n" not in err
    assert not (tmp_path / "x.npz").exists()


def test_installed_command():
    done = subprocess.run([sys.executable, "-m", "neff.cli", "effdim", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--negative" in done.stdout


def test_seeded_runs_repeat_and_options_parse_as_python(tmp_path, capsys):
    outs = [tmp_path / f"r{i}.npz" for i in range(2)]
    for out in outs:
        assert main(["spectrum", "--model", "mlp", "--model-kwargs", "width=6", "depth=1", "bias=False",
                     "--dataset", "digits", "--subset", "100", "--k", "3", "--out", str(out)]) == 0
    first, second = (np.load(out)["eigenvalues"] for out in outs)
    assert np.array_equal(first, second)
    record = json.loads(outs[0].with_suffix(".json").read_text())
    assert record["model_kwargs"]["bias"] is False and int(np.load(outs[0])["num_params"]) == 64 * 6 + 6 * 10


def test_bad_z_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "z.npz"
    assert main(["spectrum", *PROBLEM, "--z", "0", "--out", str(out)]) == 2
    assert "z must be a positive number" in capsys.readouterr().err and not out.exists()
