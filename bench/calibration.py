"""Calibration of neff's intervals: how often each stated interval holds the dense value.

    python -m bench.calibration                 # 5 models x 4 z x 20 seeds (about 10 minutes on 2 cores)
    python -m bench.calibration --seeds 40 --models untrained_mlp

Each model's Hessian is formed densely once (float64) and eigendecomposed for the truth; the
estimators then run on that matrix as their operator (the same products, made faster), each
from its own seed. Per model and z: the coverage of ``slq``'s 95% interval and of the
``certified`` bound, the root mean square error of ``slq`` and of the paper's estimator, the
mean half-width and products of ``slq`` (adaptive, default settings), and the coverage of the
interval on the number of eigenvalues below -tol. Hutchinson and Hutch++ intervals on tr(H)
are checked on the same matrices.
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from torch import nn

import neff
from neff.data import load_dataset
from neff.models import build_model

from .run import fit, table

Z = (1e-3, 1e-2, 1e-1, 1.0)


def _digits_batches(examples: int | None = None, size: int = 128):
    x, y = load_dataset("digits").train.tensors
    x, y = (x, y) if examples is None else (x[:examples], y[:examples])
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def _last_layer_of_resnet(batches):
    """torchvision's resnet18 (random weights: nothing can be downloaded), its BatchNorm
    statistics set on the data, and the Hessian of its last layer only (5,130 parameters):
    positive semi-definite, with thousands of exact zeros (rank <= examples x (classes - 1))."""
    import torchvision
    model = torchvision.models.resnet18(num_classes=10)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a plain average over the batches below
    images = [(nn.functional.interpolate(x.reshape(-1, 1, 8, 8).repeat(1, 3, 1, 1), size=32), y) for x, y in batches]
    with torch.no_grad():
        for x, _ in images:
            model.train()(x)
    return model.eval(), images, ["fc.*"]


def _mlp(seed: int, width: int, depth: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("mlp", 10, (1, 8, 8), width=width, depth=depth)


def models(small: bool = False) -> dict:
    """name -> (model, batches, params or None). ``small``: tiny versions for the test suite."""
    torch.manual_seed(0)
    batches = _digits_batches(256 if small else None)
    width = 8 if small else 32
    chosen = {"trained_mlp": (fit(_mlp(0, width), batches, 40 if small else 150), batches, None),
              "untrained_mlp": (_mlp(1, width).eval(), batches, None)}
    if small:
        return chosen
    torch.manual_seed(2)
    cnn = build_model("convnet_depth", 10, (1, 8, 8), width=4, depth=1)
    chosen["cnn_digits"] = (fit(cnn, batches, 30), batches, None)
    chosen["untrained_deep_mlp"] = (_mlp(3, 24, depth=3).eval(), batches, None)
    torch.manual_seed(4)
    chosen["resnet18_last_layer"] = _last_layer_of_resnet(_digits_batches(256))
    return chosen


def dense_hessian(model, batches, params=None) -> torch.Tensor:
    op = neff.HessianOperator(model, nn.CrossEntropyLoss(), batches, dtype=torch.float64,
                              **({"params": params} if params else {}))
    matrix = op.dense().double()
    return (matrix + matrix.T) / 2


def calibrate(name: str, matrix: torch.Tensor, z=Z, seeds: int = 20, **options) -> list[dict]:
    """One row per z: coverage, errors and costs over ``seeds`` runs of each estimator
    (``options`` go to ``estimate_effective_dimension``'s slq)."""
    z = np.asarray(z, dtype=np.float64)
    dense = torch.linalg.eigvalsh(matrix).numpy()
    truth = neff.effective_dimension(dense, z)
    runs = {"slq": [], "certified": [], "paper": []}
    warned = 0
    for seed in range(seeds):
        eigen = neff.top_eigenpairs(matrix, min(20, len(dense) - 1), tol=1e-4, seed=seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            runs["slq"].append(neff.estimate_effective_dimension(matrix, z, eigen=eigen, seed=seed, **options))
        warned += any("max_hvp" in str(w.message) for w in caught)
        runs["certified"].append(neff.estimate_effective_dimension(matrix, z, "certified", eigen=eigen))
        runs["paper"].append(neff.estimate_effective_dimension(matrix, z, "paper", seed=seed))
    slq = runs["slq"]
    negatives = int(np.sum(dense < -slq[0].details["negative_tol"]))
    rows = []
    for i, (zi, exact) in enumerate(zip(z, truth)):
        def held(estimates):
            return float(np.mean([e.lower[i] <= exact <= e.upper[i] for e in estimates]))

        def rms(estimates):
            return float(100 * np.sqrt(np.mean([((e.value[i] - exact) / exact) ** 2 for e in estimates])))
        rows.append({"model": name, "params": len(dense), "z": float(zi), "dense": float(exact),
                     "slq_coverage": held(slq), "slq_rms_pct": rms(slq),
                     "slq_half_width_pct": float(100 * np.mean([(e.upper[i] - e.lower[i]) / 2 / exact for e in slq])),
                     "slq_products": float(np.mean([e.n_hvp + e.details["eigen"]["n_hvp"] for e in slq])),
                     "slq_budget_warnings": warned, "certified_coverage": held(runs["certified"]),
                     "paper_rms_pct": rms(runs["paper"]), "negative_dense": negatives,
                     "negative_coverage": float(np.mean([lo <= negatives <= hi for lo, hi in
                                                         (e.details["num_negative_interval"] for e in slq)]))})
    return rows


def trace_coverage(name: str, matrix: torch.Tensor, seeds: int = 20) -> list[dict]:
    """Coverage of Hutchinson's and Hutch++'s 95% intervals of tr(H), 30 products each."""
    truth = float(torch.trace(matrix))
    rows = []
    for method, budget in ((neff.hutchinson, 30), (neff.hutchpp, 30)):
        intervals = [method(matrix, budget, seed=2 * seed).interval(0.95) for seed in range(seeds)]
        rows.append({"model": name, "estimator": method.__name__,
                     "coverage": float(np.mean([lo <= truth <= hi for lo, hi in intervals]))})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.calibration", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--models", nargs="+", help="a subset of the models (default: all five)")
    parser.add_argument("--small", action="store_true", help="the test suite's tiny version")
    args = parser.parse_args(argv)
    results = {"effdim": [], "trace": []}
    for name, (model, batches, params) in models(args.small).items():
        if args.models and name not in args.models:
            continue
        matrix = dense_hessian(model, batches, params)
        rows = calibrate(name, matrix, Z[1:3] if args.small else Z, args.seeds)
        results["effdim"] += rows
        results["trace"] += trace_coverage(name, matrix, args.seeds)
        print(f"{name}: {len(matrix)} parameters\n" + table(rows), flush=True)
    print(f"\n## N_eff intervals over {args.seeds} seeds\n" + table(results["effdim"]))
    print(f"\n## Trace intervals over {args.seeds} seeds\n" + table(results["trace"]))
    return results


if __name__ == "__main__":
    main()
