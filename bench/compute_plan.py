"""A compute plan for config/paper.yaml: GPU-hours of its CIFAR trainings and spectra.

    python -m bench.compute_plan              # a GPU: CIFAR-sized synthetic tensors (no download)
    python -m bench.compute_plan --quick      # tiny models and images on the CPU (a smoke run)

It measures, on this machine's device, seconds per training epoch (SGD steps of batch 128 over
50,000 images) and per Hessian product (one uncached product over the same images, batch 128:
the worst case, without the graph cache) for ResNet18 k = 8, 32, 64 and the CNN at widths 16
and 64 (depth 3). Every model of the paper config's CIFAR grids then gets a cost interpolated
in log(width) between the measured ones (the CNN's scaled by its number of convolutions), and
the table sums, per experiment and grid, epochs x seconds per epoch + products x seconds per
product, with products per spectrum = max_steps + k (certificates) + probes x probe_steps.
The numbers are estimates of the order of the cost, for SLURM requests; see BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import yaml

from neff.hessian import HessianOperator
from neff.models import build_grid_model

from .run import median_seconds

MEASURED = {"preact_resnet18": (8, 32, 64), "convnet_depth": (16, 64)}
CNN_DEPTH = 3
ROOT = Path(__file__).resolve().parents[1]


def synthetic(images: int, classes: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(images, 3, 32, 32, generator=gen).to(device)
    return x, torch.randint(0, classes, (images,), generator=gen).to(device)


def measure(family: str, width: int, images: int, batches: int, device) -> dict:
    """Seconds per epoch over ``images`` and per product over them, from ``batches`` batches."""
    torch.manual_seed(0)
    model = build_grid_model(family, 100, (3, 32, 32), width, CNN_DEPTH).to(device)
    x, y = synthetic(128 * batches, 100, device)
    loss = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def steps():
        model.train()
        for i in range(batches):
            optimizer.zero_grad(set_to_none=True)
            loss(model(x[128 * i:128 * (i + 1)]), y[128 * i:128 * (i + 1)]).backward()
            optimizer.step()

    data = [(x[128 * i:128 * (i + 1)], y[128 * i:128 * (i + 1)]) for i in range(batches)]
    operator = HessianOperator(model, loss, data, "weights", cache_gb=0, device=device)
    v = torch.randn(operator.num_params, device=device)
    scale = images / (128 * batches)
    return {"family": family, "width": width, "params": operator.num_params,
            "epoch_s": median_seconds(steps, 3) * scale,
            "product_s": median_seconds(lambda: operator.matvec(v), 3) * scale}


def convolutions(depth: int) -> int:
    return 1 + depth


def cost(rows: list[dict], family: str, width: int, depth: int, key: str) -> float:
    """``key`` seconds of a model, interpolated in log(width) between the measured widths."""
    measured = sorted((row["width"], row[key]) for row in rows if row["family"] == family)
    widths, values = np.log([w for w, _ in measured]), np.log([v for _, v in measured])
    i = int(np.clip(np.searchsorted(widths, np.log(width)) - 1, 0, len(widths) - 2))
    slope = (values[i + 1] - values[i]) / (widths[i + 1] - widths[i])
    value = float(np.exp(values[i] + slope * (np.log(width) - widths[i])))
    return value * (convolutions(depth) / convolutions(CNN_DEPTH) if family == "convnet_depth" else 1.0)


def plan(rows: list[dict], config: dict) -> list[dict]:
    """GPU-hours per CIFAR experiment and grid of ``config`` (ResNet18 and CNN grids)."""
    table = []
    for name, experiment in config["experiments"].items():
        if not str(experiment["data"]["name"]).startswith("cifar"):
            continue
        spectrum, epochs = experiment["spectrum"], experiment["train"]["epochs"]
        products = spectrum["max_steps"] + spectrum["k"] + spectrum["probes"] * spectrum["probe_steps"]
        for grid_name, grid in experiment["grids"].items():
            if grid["model"] not in MEASURED:  # LeNet (homogeneity): minutes, not GPU-hours
                continue
            models = [(w, d) for w in grid["width"] for d in grid["depth"] for _ in grid["seed"]]
            train = sum(epochs * cost(rows, grid["model"], w, d, "epoch_s") for w, d in models) / 3600
            spectra = sum(products * cost(rows, grid["model"], w, d, "product_s") for w, d in models) / 3600
            table.append({"experiment": name, "grid": grid_name, "models": len(models), "train_h": train,
                          "spectrum_h": spectra, "products": products})
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny widths and images on the CPU")
    parser.add_argument("--config", default=str(ROOT / "config" / "paper.yaml"))
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.quick else "cpu")
    images, batches = (256, 1) if args.quick else (50_000, 8)
    widths = {"preact_resnet18": (2, 4), "convnet_depth": (4, 8)} if args.quick else MEASURED
    rows = [measure(family, width, images, batches, device) for family, ws in widths.items() for width in ws]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; {images} images, batch 128, timed on {batches} batches and scaled")
    print("| model | width | parameters | s / epoch | s / product |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['family']} | {row['width']} | {row['params']:,} | {row['epoch_s']:.2f} | {row['product_s']:.3f} |")
    print("\n| experiment | grid | models | products / spectrum | training GPU-h | spectra GPU-h |\n|---|---|---|---|---|---|")
    for row in plan(rows, yaml.safe_load(Path(args.config).read_text())):
        print(f"| {row['experiment']} | {row['grid']} | {row['models']} | {row['products']} | "
              f"{row['train_h']:.1f} | {row['spectrum_h']:.1f} |")


if __name__ == "__main__":
    main()
