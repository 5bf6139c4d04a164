"""N_eff during training: products for the certified top k with and without a warm start.

    python -m bench.warm_start              # digits MLP and CNN, 12 epochs, N_eff every 2
    python -m bench.warm_start --small      # one MLP, 6 epochs (a test runs this)

Each model is trained with neff's loop; after every ``every`` epochs the same weights are
measured twice: a cold Lanczos run (seeded random start) and one started from the previous
measurement's eigenvectors (``EffDimTracker``'s warm start). Both must certify the same top k;
the table prints the products each needed and their ratio.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from neff.data import load_dataset
from neff.eigen import top_eigenpairs
from neff.hessian import HessianOperator
from neff.models import build_model
from neff.train import TrainConfig, train

MODELS = {"mlp": ("mlp", {"width": 32, "depth": 2}), "cnn": ("convnet_depth", {"width": 8, "depth": 2})}


def compare(name: str, epochs: int, every: int, k: int, tol: float, subset: int) -> list[dict]:
    """Rows (epoch, cold products, warm products, largest eigenvalue gap) for one model."""
    family, options = MODELS[name]
    data = load_dataset("digits", subset=subset)
    torch.manual_seed(0)
    model = build_model(family, data.num_classes, data.input_shape, **options)
    batches = data.loader("train", 256)
    rows, previous = [], None

    def measure(row):
        nonlocal previous
        if row["epoch"] % every:
            return
        operator = HessianOperator(model, data.loss_fn(), batches, dtype=torch.float64)
        cold = top_eigenpairs(operator, k, tol=tol, seed=row["epoch"])
        warm = top_eigenpairs(operator, k, tol=tol, seed=row["epoch"], warm_start=previous) if previous else None
        if warm is not None:
            assert warm.all_converged and cold.all_converged
            rows.append({"model": name, "epoch": row["epoch"], "cold": cold.n_hvp, "warm": warm.n_hvp,
                         "difference": float(np.max(np.abs(warm.eigenvalues - cold.eigenvalues)
                                                    / np.abs(cold.eigenvalues).max()))})
        previous = warm or cold

    train(model, data, TrainConfig(epochs=epochs, batch_size=64, optimizer="adam", lr=1e-3, schedule="constant"),
          device="cpu", on_epoch=measure)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--tol", type=float, default=1e-4)
    args = parser.parse_args(argv)
    epochs, every, names, subset = (6, 2, ["mlp"], 400) if args.small else (12, 2, list(MODELS), None)
    rows = [row for name in names for row in compare(name, epochs, every, args.k, args.tol, subset)]
    print(f"certified top {args.k} (tol {args.tol:g}) after every {every} epochs: products")
    print(f"{'model':>6} {'epoch':>6} {'cold':>6} {'warm':>6} {'ratio':>6} {'max rel diff':>13}")
    for row in rows:
        print(f"{row['model']:>6} {row['epoch']:>6} {row['cold']:>6} {row['warm']:>6} "
              f"{row['cold'] / row['warm']:>6.2f} {row['difference']:>13.1e}")
    total = sum(r["cold"] for r in rows) / sum(r["warm"] for r in rows)
    print(f"overall: {total:.2f}x fewer products with the warm start")
    return rows


if __name__ == "__main__":
    main()
