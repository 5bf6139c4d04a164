"""The library installs and imports without the workflow's and the Bayesian parts' extras."""
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ["files", "errors", "parameters", "device", "objective", "hessian", "linear", "eigen", "productlog",
        "quadrature", "trace", "effdim", "validate", "spectra", "models", "data", "train", "surfaces", "bayes",
        "random_features", "tables", "plots", "surface_plots", "cli"]
BLOCKED = ("snakemake", "pyro")


def test_core_modules_import_without_snakemake_and_pyro():
    script = textwrap.dedent(f"""
        import importlib, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"{{name}} is blocked")
        sys.meta_path.insert(0, Block())
        import neff
        for module in {CORE!r}:
            importlib.import_module("neff." + module)
        import torch
        print(neff.estimate_effective_dimension(torch.diag(torch.arange(1.0, 9.0, dtype=torch.float64)),
                                                1.0, "certified", k=7).value[0])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) > 0


def test_core_dependencies_leave_out_the_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    assert not any(name in core for name in ("snakemake", "pyro", "gpytorch"))
    extras = project["optional-dependencies"]
    assert any("snakemake" in d for d in extras["workflow"]) and any("pyro" in d for d in extras["bayes"])
