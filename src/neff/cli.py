"""The ``neff`` command: ``neff spectrum``, ``neff effdim``, ``neff validate``."""
from __future__ import annotations

import argparse
import ast
import importlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .data import DATASETS, load_dataset
from .effdim import NEGATIVE, as_z, certified_bounds, effective_dimension
from .eigen import METHODS, EigenResult, top_eigenpairs
from .errors import NeffError
from .hessian import HessianOperator
from .files import provenance, write_json
from .models import MODELS, build_model, load_checkpoint
from .spectra import eigen_result, load_spectrum, save_spectrum
from .validate import dense_check

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _value(text: str):
    """A Python literal (32, 0.5, False, 'relu') or else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _kwargs(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise NeffError(f"model option {pair!r} is not KEY=VALUE; write e.g. width=32")
        key, value = pair.split("=", 1)
        out[key] = _value(value)
    return out


def _model(args, data):
    kwargs = _kwargs(args.model_kwargs)
    torch.manual_seed(args.seed)  # the same initial weights on every run with this seed
    if args.factory:
        module, _, name = args.factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            raise NeffError(f"cannot import factory {args.factory!r}; give it as package.module:function") from None
        model = factory(**kwargs)
    else:
        model = build_model(args.model, data.num_classes, data.input_shape, **kwargs)
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint)
    return model


def _operator(args):
    as_z(args.z)  # refuse a bad z before any work
    data = load_dataset(args.dataset, seed=args.seed, subset=args.subset)
    model = _model(args, data)
    params = args.params[0] if args.params in (["all"], ["weights"]) else args.params
    return HessianOperator(model, data.loss_fn(), data.loader("train", args.batch_size), params,
                           reduction=args.reduction, dtype=DTYPES[args.dtype], device=args.device)


def _add_problem(parser):
    group = parser.add_argument_group("model and data")
    group.add_argument("--model", choices=sorted(MODELS), default="mlp", help="model family (default mlp)")
    group.add_argument("--model-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                       help="model options, e.g. width=32 depth=2")
    group.add_argument("--factory", help="package.module:function returning your nn.Module (instead of --model)")
    group.add_argument("--checkpoint", help="state dict to load into the model (loaded with weights_only=True)")
    group.add_argument("--dataset", choices=sorted(DATASETS), default="digits", help="training data (default digits)")
    group.add_argument("--subset", type=int, help="use only the first N training examples")
    group.add_argument("--batch-size", type=int, default=128)
    group.add_argument("--params", nargs="+", default=["all"],
                       help="'all', 'weights' (dim > 1, the paper's choice) or name patterns such as '*.weight'")
    group.add_argument("--reduction", choices=["mean", "sum"], default="mean")
    group.add_argument("--dtype", choices=sorted(DTYPES), default="float64")
    group.add_argument("--device", default="cpu")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--k", type=int, default=20, help="number of eigenpairs (default 20)")
    group.add_argument("--tol", type=float, default=1e-4, help="relative residual tolerance")
    group.add_argument("--z", type=float, nargs="+", default=[1.0], help="z values for N_eff")


def _spectrum(args) -> int:
    operator = _operator(args)
    start = time.perf_counter()
    eigen = top_eigenpairs(operator, args.k, args.method, which=args.which, tol=args.tol,
                           max_steps=args.max_steps, seed=args.seed, return_eigenvectors=False,
                           checkpoint=args.resume_file)
    record = provenance(model=args.model if not args.factory else args.factory,
                        model_kwargs=_kwargs(args.model_kwargs), checkpoint=args.checkpoint,
                        dataset=args.dataset, subset=args.subset, num_examples=operator.num_examples,
                        batch_size=args.batch_size, params=args.params, reduction=args.reduction,
                        dtype=args.dtype, device=args.device, seed=args.seed,
                        operator=operator.fingerprint(), seconds=time.perf_counter() - start)
    save_spectrum(args.out, eigen, record)
    write_json(Path(args.out).with_suffix(".json"), {**record, "eigen": eigen.record()})
    print(eigen)
    _print_effdim(eigen.eigenvalues, args.z, "clip", eigen)
    print(f"wrote {args.out}")
    return 0 if eigen.all_converged else 1


def _print_effdim(eigenvalues, z, negative, eigen: EigenResult | None):
    values = effective_dimension(eigenvalues, z, negative)
    negatives = int(np.sum(np.asarray(eigenvalues) < 0))
    header = f"{'z':>10} {'N_eff(top-k)':>13}"
    bounds = None
    if eigen is not None and eigen.which == "largest" and negative == "clip":
        bounds = certified_bounds(eigen, z)
        header += f" {'certified lower':>16} {'upper':>12}"
    print(f"N_eff from {len(eigenvalues)} eigenvalues ({negatives} negative, policy '{negative}')")
    print(header)
    for i, zi in enumerate(z):
        line = f"{zi:>10.4g} {values[i]:>13.5g}"
        if bounds is not None:
            line += f" {bounds[1][i]:>16.5g} {bounds[2][i]:>12.5g}"
        print(line)


def _effdim(args) -> int:
    spectrum = load_spectrum(args.file)
    eigen = eigen_result(spectrum) if spectrum["residuals"] is not None else None
    _print_effdim(spectrum["eigenvalues"], args.z, args.negative, eigen)
    return 0


def _validate(args) -> int:
    operator = _operator(args)
    report = dense_check(operator, k=args.k, z=args.z, tol=args.tol, max_params=args.max_params, seed=args.seed)
    print(report.eigen)
    print(report)
    return 0 if report.ok else 1


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="neff", description=__doc__)
    sub = main.add_subparsers(dest="command", required=True)
    spectrum = sub.add_parser("spectrum", help="certified top eigenvalues of the training-loss Hessian")
    _add_problem(spectrum)
    spectrum.add_argument("--method", choices=METHODS, default="lanczos")
    spectrum.add_argument("--which", choices=["largest", "smallest"], default="largest")
    spectrum.add_argument("--max-steps", type=int)
    spectrum.add_argument("--resume-file", help="checkpoint file for the Lanczos products (resumes a killed run)")
    spectrum.add_argument("--out", required=True, help="output .npz (a .json record is written beside it)")
    spectrum.set_defaults(run=_spectrum)
    effdim = sub.add_parser("effdim", help="N_eff table from a spectrum .npz (neff's or the original tool's)")
    effdim.add_argument("file")
    effdim.add_argument("--z", type=float, nargs="+", default=[1.0])
    effdim.add_argument("--negative", choices=NEGATIVE, default="clip")
    effdim.set_defaults(run=_effdim)
    check = sub.add_parser("validate", help="compare neff with a dense eigendecomposition (small models)")
    _add_problem(check)
    check.add_argument("--max-params", type=int, default=5000)
    check.set_defaults(run=_validate)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except NeffError as err:
        print(f"neff: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
