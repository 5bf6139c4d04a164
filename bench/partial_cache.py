"""Product time with 0, 25, 50, 75 and 100% of the batches' graphs cached.

    python -m bench.partial_cache                     # the bench workloads (bench.run), 1024 images
    python -m bench.partial_cache --workloads mlp --size 512 --reps 3

For each workload the whole cache's size is measured first (one product with room for every
batch); each fraction then gets room for that share of it (``cache_gb``), so the first batches
that fit are kept and the rest are rebuilt on every product. Medians over ``--reps`` products,
after the first (which builds the cache), as seconds and as a ratio to the uncached product.
"""
from __future__ import annotations

import argparse

import torch

from neff.hessian import HessianOperator

from .run import median_seconds, workload

FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def product_seconds(operator: HessianOperator, reps: int) -> float:
    """Median seconds of a product, after the first (which builds the cache)."""
    v = torch.randn(operator.num_params, generator=torch.Generator().manual_seed(0))
    return median_seconds(lambda: operator.matvec(v), reps)


def rows(name: str, size: int, reps: int) -> list[dict]:
    model, batches, loss = workload(name, size)
    whole = HessianOperator(model, loss, batches, cache_gb=1e6)
    whole.matvec(torch.zeros(whole.num_params))
    out = []
    for fraction in FRACTIONS:
        # a little more than the share, so that a share of exactly m batches keeps m
        room = 0 if fraction == 0 else (fraction + 0.5 / len(batches)) * whole.cached_bytes / 2**30
        operator = HessianOperator(model, loss, batches, cache_gb=room)
        seconds = product_seconds(operator, reps)
        out.append({"workload": name, "cached": f"{operator.cached_batches}/{len(batches)}", "seconds": seconds})
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.partial_cache", description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=["resnet", "cnn", "mlp"])
    parser.add_argument("--size", type=int, default=1024, help="images (batches of 128)")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    print("| workload | batches cached | s / product | / uncached |\n|---|---|---|---|")
    for name in args.workloads:
        table = rows(name, args.size, args.reps)
        for row in table:
            print(f"| {row['workload']} | {row['cached']} | {row['seconds']:.3f} | "
                  f"{row['seconds'] / table[0]['seconds']:.2f} |")


if __name__ == "__main__":
    main()
