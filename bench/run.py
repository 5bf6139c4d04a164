"""Benchmark neff against PyHessian, hessian-eigenthings and curvlinops, side by side.

    python -m bench.run                      # every part on every workload (long on a CPU)
    python -m bench.run --parts p1 --workloads mlp cnn --reps 5

Tools run alternately on the same model, data and dtype (float32, eval mode); medians over
repetitions; tables print RATIOS, which compare across noisy machines where seconds do not.
P1: one full-dataset HVP (time, peak memory) as a multiple of one gradient and of neff.
P2: top-20 eigenpairs; every tool's output is checked by neff's fresh-product residuals.
P3: N_eff error against a dense eigendecomposition at a budget of about 100 products, over
5 random starts (mean and root mean square error).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn

import neff
from neff.data import load_dataset
from neff.eigen import certify
from neff.models import build_model

from . import peers

TOOLS = ["neff", "pyhessian", "curvlinops", "eigenthings"]


DEVICE = torch.device("cpu")


def workload(name: str, size: int = 1024):
    """(model, batches of 128, loss) for a named workload on ``DEVICE``; ``tiny`` is for the
    smoke test."""
    torch.manual_seed(0)
    if name in ("resnet", "cnn"):
        x = torch.randn(size, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        y = torch.randint(0, 10, (size,), generator=torch.Generator().manual_seed(2))
        model = (build_model("preact_resnet18", 10, (3, 32, 32), k=8) if name == "resnet"
                 else build_model("convnet_depth", 10, (3, 32, 32), width=16, depth=3))
    else:
        data = load_dataset("digits", subset=256 if name == "tiny" else None)
        x, y = data.train.tensors
        width, depth = {"mlp": (256, 2), "tiny": (8, 1), "dense": (32, 1)}[name]
        model = build_model("mlp", 10, (1, 8, 8), width=width, depth=depth)
    batches = [(x[i:i + 128].to(DEVICE), y[i:i + 128].to(DEVICE)) for i in range(0, len(x), 128)]
    return model.to(DEVICE).eval(), batches, nn.CrossEntropyLoss()


def fit(model: nn.Module, batches, epochs: int) -> nn.Module:
    """``model`` trained by Adam (lr 0.01) on the cross-entropy of ``batches``, in eval mode."""
    optimizer = torch.optim.Adam(model.parameters(), 0.01)
    for _ in range(epochs):
        for inputs, targets in batches:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs), targets).backward()
            optimizer.step()
    return model.eval()


def trained_dense_workload():
    """A digits MLP of a few thousand parameters trained to near-zero loss (for P3)."""
    model, batches, loss = workload("dense")
    return fit(model, batches, 150), batches, loss


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def warm_up() -> None:
    """Start the device's libraries (CUDA context, cuBLAS, cuSOLVER) outside every timing."""
    model, batches, loss = workload("tiny")
    peers.gradient(model, loss, batches)
    torch.linalg.eigh(torch.eye(4, dtype=torch.float64, device=DEVICE))
    sync()


def seconds(function) -> float:
    sync()
    start = time.perf_counter()
    function()
    sync()
    return time.perf_counter() - start


def median_seconds(function, reps: int) -> float:
    """The median of ``reps`` timings of ``function``, after one untimed call (warm-up, caches)."""
    function()
    return statistics.median(seconds(function) for _ in range(reps))


def p1(name: str, tools: list[str], reps: int, with_memory: bool = True) -> list[dict]:
    model, batches, loss = workload(name)
    n = sum(p.numel() for p in model.parameters())
    v = torch.randn(n, generator=torch.Generator().manual_seed(3)).to(DEVICE)
    tools = [*tools, "neff-nocache", "neff-block8"]
    products = {tool: peers.hvp(tool, model, loss, batches) for tool in tools}
    reference = products["neff"](v)
    agreement = {t: float((f(v) - reference).norm() / reference.norm()) for t, f in products.items()}
    times = {tool: [] for tool in ["gradient", *tools]}
    for _ in range(reps):  # alternate tools within each repetition
        times["gradient"].append(seconds(lambda: peers.gradient(model, loss, batches)))
        for tool, function in products.items():
            times[tool].append(seconds(lambda: function(v)))
    median = {tool: statistics.median(t) for tool, t in times.items()}
    median["neff-block8"] /= 8  # per vector
    memory = {tool: peak_memory_mb(name, tool) if with_memory else float("nan") for tool in ["gradient", *tools]}
    return [{"workload": name, "params": n, "tool": tool, "hvp_s": median[tool],
             "x_gradient": median[tool] / median["gradient"], "x_neff": median[tool] / median["neff"],
             "mem_mb": memory[tool], "mem_x_gradient": memory[tool] / memory["gradient"] if memory["gradient"] > 0 else float("nan"),
             "rel_diff_vs_neff": agreement[tool]} for tool in tools]


def peak_memory_mb(name: str, tool: str) -> float:
    """Peak memory of one product (or gradient) above what the process held before the tool
    was set up, so memory a tool keeps between products (neff's cache) counts. Measured in a
    fresh process where large allocations are mapped and unmapped one by one (glibc malloc
    settings), so the resident size follows live tensors; after a warm-up call the peak is
    reset and the next call measured (Linux VmHWM). NaN where that cannot be read."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    out = subprocess.run([sys.executable, "-m", "bench.run", "--memory", tool, "--workloads", name,
                          "--device", str(DEVICE)],
                         capture_output=True, text=True, env=env)
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1])["peak_mb"] if out.returncode == 0 and lines else float("nan")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def measure_memory(name: str, tool: str) -> None:
    model, batches, loss = workload(name)
    v = torch.randn(sum(p.numel() for p in model.parameters())).to(DEVICE)
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
    else:
        before = _status_kb("VmRSS")
    function = (lambda: peers.gradient(model, loss, batches)) if tool == "gradient" else (
        lambda f=peers.hvp(tool, model, loss, batches): f(v))
    function()  # warm-up: builds what a tool keeps, and one-off initialisation
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        function()
        torch.cuda.synchronize()
        print(json.dumps({"peak_mb": (torch.cuda.max_memory_allocated() - before) / 2**20}))
        return
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset the peak resident size to the current one
    except OSError:
        return
    function()
    print(json.dumps({"peak_mb": (_status_kb("VmHWM") - before) / 1024}))


def p2(name: str, tools: list[str], k: int = 20, tol: float = 1e-4) -> list[dict]:
    model, batches, loss = workload(name)
    check = neff.HessianOperator(model, loss, batches)
    rows = []
    for tool in tools:
        start = time.perf_counter()
        try:
            values, vectors, used = peers.top_eigenpairs(tool, model, loss, batches, k, tol)
        except Exception as err:  # a peer that breaks is reported, not fatal
            rows.append({"workload": name, "tool": f"{tool} FAILED: {str(err).splitlines()[0][:60]}",
                         "hvps": 0, "seconds": 0.0, "pairs": 0, "certified": 0, "lambda_1": float("nan")})
            continue
        elapsed = time.perf_counter() - start
        residuals = certify(check, values, vectors.to(torch.float64))
        rows.append({"workload": name, "tool": tool, "hvps": used, "seconds": elapsed, "pairs": len(values),
                     "certified": int(np.sum(residuals <= tol * np.abs(values).max())),
                     "lambda_1": float(np.max(values))})
    return rows


def p3(tools: list[str], z=(0.01, 0.1, 1.0), budget: int = 100, seeds: int = 5) -> list[dict]:
    """Each estimator from ``seeds`` random starts: the mean error, the root mean square error
    (one lucky start says little about a randomised method) and, where the tool states an
    interval, how many starts it covered the dense value."""
    model, batches, loss = trained_dense_workload()
    dense = neff.dense_spectrum(neff.HessianOperator(model, loss, batches, dtype=torch.float64))
    truth = neff.effective_dimension(dense, np.asarray(z))
    rows = []
    for tool in tools:
        try:
            runs = [peers.effdim_at_budget(tool, model, loss, batches, np.asarray(z), budget, seed)
                    for seed in range(seeds)]
        except Exception as err:  # a peer that breaks is reported, not fatal
            runs = [(np.full(len(z), np.nan), 0, None)]
            tool = f"{tool} FAILED: {str(err).splitlines()[0][:60]}"
        values = np.array([value for value, _, _ in runs])  # (seeds, z)
        errors = 100 * (values - truth) / truth
        intervals = [interval for _, _, interval in runs if interval is not None]
        for i, (zi, exact) in enumerate(zip(z, truth)):
            covered = sum(bool(lower[i] <= exact <= upper[i]) for lower, upper in intervals)
            rows.append({"tool": tool, "hvps": float(np.mean([used for _, used, _ in runs])), "z": zi, "dense": exact,
                         "mean_estimate": float(values[:, i].mean()),
                         "mean_error_pct": float(errors[:, i].mean()),
                         "rms_error_pct": float(np.sqrt((errors[:, i] ** 2).mean())),
                         "interval_covers": f"{covered}/{len(intervals)}" if intervals else "-"})
    return rows


def table(rows: list[dict]) -> str:
    if not rows:
        return "(nothing measured)"
    keys = list(rows[0])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["p1", "p2", "p3"], choices=["p1", "p2", "p3"])
    parser.add_argument("--workloads", nargs="+", default=["resnet", "cnn", "mlp"])
    parser.add_argument("--p2-workloads", nargs="+", default=["mlp"])
    parser.add_argument("--tools", nargs="+", default=TOOLS)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip P1's memory (a process per tool)")
    parser.add_argument("--budget", type=int, default=100, help="products for P3")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--memory", help=argparse.SUPPRESS)  # internal: one measurement per process
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)
    if args.memory:
        measure_memory(args.workloads[0], args.memory)
        return {}
    warm_up()
    tools = [t for t in args.tools if peers.available(t)]
    missing = sorted(set(args.tools) - set(tools))
    where = torch.cuda.get_device_name() if DEVICE.type == "cuda" else (
        f"{platform.machine()} CPU, {torch.get_num_threads()} threads")
    print(f"# neff {neff.__version__}, torch {torch.__version__}, {where}, float32; "
          f"not installed: {', '.join(missing) or 'none'}")
    results = {}
    if "p1" in args.parts:
        results["p1"] = [row for name in args.workloads for row in p1(name, tools, args.reps, not args.no_memory)]
        print("\n## P1: one full-dataset HVP\n" + table(results["p1"]))
    if "p2" in args.parts:
        eig_tools = ["neff", "neff-eigsh", *[t for t in tools if t != "neff"]]
        results["p2"] = [row for name in args.p2_workloads for row in p2(name, eig_tools)]
        print("\n## P2: top-20 eigenpairs, residuals checked by neff\n" + table(results["p2"]))
    if "p3" in args.parts:
        est_tools = ["neff-slq", "neff-slq-rtol", "neff-certified", "paper", *[t for t in tools if t != "neff"]]
        results["p3"] = p3(est_tools, budget=args.budget)
        print(f"\n## P3: N_eff error at ~{args.budget} products vs dense, 5 starts\n" + table(results["p3"]))
    return results


if __name__ == "__main__":
    main()
