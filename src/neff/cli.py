"""The ``neff`` command: ``neff spectrum``, ``neff effdim``, ``neff validate``; models from the
registry or ``--factory``, data from the built-in sets or ``--data``."""
from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from .data import DATASETS, Dataset, batches_of, load_dataset, task_of
from .effdim import ESTIMATORS, NEGATIVE, as_z, certified_bounds, effective_dimension, estimate_effective_dimension
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


@dataclass
class Problem:
    """The training batches and what a model and a loss need to know about them."""

    batches: Iterable
    input_shape: tuple[int, ...] | None
    num_classes: int
    loss_fn: Callable


def _import(spec: str, option: str):
    """The object named by ``package.module:name``, importable from the current folder as
    under ``python -m``; each failure in one sentence with its real cause."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise NeffError(f"{option} {spec!r} is not package.module:function; write e.g. {option} mymodels:build")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
            raise NeffError(f"{option}: no module {module_name!r} on the path (the current folder {os.getcwd()} "
                            "and the installed packages); run neff from the folder that holds it, or install "
                            "it") from None
        raise NeffError(f"{option}: importing {module_name} needs {err.name!r}, which is not installed; "
                        f"pip install it") from None
    except Exception as err:
        raise NeffError(f"{option}: importing {module_name} fails ({type(err).__name__}: {err}); fix the "
                        "module") from None
    if not hasattr(module, name):
        raise NeffError(f"{option}: module {module_name} ({getattr(module, '__file__', '?')}) has no "
                        f"{name!r}; check the name after the colon")
    return getattr(module, name)


def _problem(args) -> Problem:
    if args.data:
        if args.subset is not None:
            raise NeffError("--subset applies to the built-in datasets; select the examples in your --data function")
        function = _import(args.data, "--data")
        try:
            data = function()
        except Exception as err:
            raise NeffError(f"--data {args.data} failed ({type(err).__name__}: {err}); fix the function") from None
        if not isinstance(data, Dataset):
            batches = batches_of(data, args.batch_size)
            return Problem(batches, *task_of(batches))
    else:
        data = load_dataset(args.dataset, seed=args.seed, subset=args.subset)
    return Problem(data.loader("train", args.batch_size), data.input_shape, data.num_classes, data.loss_fn())


def _model(args, problem: Problem) -> torch.nn.Module:
    kwargs = _kwargs(args.model_kwargs)
    torch.manual_seed(args.seed)  # the same initial weights on every run with this seed
    if args.factory:
        model = _from_factory(args.factory, problem, kwargs)
    else:
        if problem.input_shape is None:
            raise NeffError("the data's inputs are not one tensor, so the registry's models cannot take them; "
                            "build your model with --factory")
        model = build_model(args.model, problem.num_classes, problem.input_shape, **kwargs)
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint)
    return model


def _from_factory(spec: str, problem: Problem, kwargs: dict) -> torch.nn.Module:
    """The factory's model, given ``input_shape`` and ``num_classes`` where it takes them."""
    factory = _import(spec, "--factory")
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        signature = None  # no signature to check (a builtin): the call says
    parameters = signature.parameters if signature is not None else {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    given = {key: value for key, value in (("input_shape", problem.input_shape), ("num_classes", problem.num_classes))
             if key in parameters or takes_any}
    given.update(kwargs)
    try:
        if signature is not None:
            signature.bind(**given)
    except TypeError as err:
        raise NeffError(f"--factory {spec} cannot be called with {sorted(given) or 'no arguments'}: {err}; pass "
                        "the options it takes, and only those, with --model-kwargs KEY=VALUE") from None
    try:
        model = factory(**given)
    except Exception as err:
        raise NeffError(f"--factory {spec} failed ({type(err).__name__}: {err}); fix the factory or its "
                        "--model-kwargs") from None
    if not isinstance(model, torch.nn.Module):
        raise NeffError(f"--factory {spec} returned an object of type {type(model).__name__}, not a torch.nn.Module; "
                        "return the model")
    return model


def _operator(args):
    as_z(args.z)  # refuse a bad z before any work
    problem = _problem(args)
    model = _model(args, problem)
    params = args.params[0] if args.params in (["all"], ["weights"]) else args.params
    return HessianOperator(model, problem.loss_fn, problem.batches, params,
                           reduction=args.reduction, dtype=DTYPES[args.dtype], device=args.device)


def _add_problem(parser):
    group = parser.add_argument_group("model and data")
    group.add_argument("--model", choices=sorted(MODELS), default="mlp", help="model family (default mlp)")
    group.add_argument("--model-kwargs", nargs="*", default=[], metavar="KEY=VALUE",
                       help="model options, e.g. width=32 depth=2")
    group.add_argument("--factory", help="package.module:function returning your nn.Module (instead of --model); "
                                         "given input_shape and num_classes where it takes them")
    group.add_argument("--checkpoint", help="state dict to load into the model (loaded with weights_only=True)")
    group.add_argument("--dataset", choices=sorted(DATASETS), default="digits", help="training data (default digits)")
    group.add_argument("--data", help="package.module:function returning your training data (instead of --dataset): "
                                      "(inputs, targets) tensors, a torch Dataset or a DataLoader")
    group.add_argument("--subset", type=_positive, help="use only the first N training examples")
    group.add_argument("--batch-size", type=_positive, default=128)
    group.add_argument("--params", nargs="+", default=["all"],
                       help="'all', 'weights' (dim > 1, the paper's choice) or name patterns such as '*.weight'")
    group.add_argument("--reduction", choices=["mean", "sum"], default="mean")
    group.add_argument("--dtype", choices=sorted(DTYPES), default="float64")
    group.add_argument("--device", default="cpu")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--k", type=_positive, help="number of top eigenpairs (default 20, fewer for small models)")
    group.add_argument("--tol", type=float, default=1e-4, help="relative residual tolerance")
    group.add_argument("--z", type=float, nargs="+", default=[1.0], help="z values for N_eff")


def _record(args, operator, seconds: float) -> dict:
    """The provenance of a result: what was measured, on what, with which software."""
    return provenance(model=args.factory or args.model, model_kwargs=_kwargs(args.model_kwargs),
                      checkpoint=args.checkpoint, dataset=args.data or args.dataset, subset=args.subset,
                      num_examples=operator.num_examples, batch_size=args.batch_size, params=args.params,
                      reduction=args.reduction, dtype=args.dtype, device=args.device, seed=args.seed,
                      operator=operator.fingerprint(), seconds=seconds)


def _spectrum(args) -> int:
    operator = _operator(args)
    start = time.perf_counter()
    eigen = top_eigenpairs(operator, args.k or 20, args.method, which=args.which, tol=args.tol,
                           max_steps=args.max_steps, seed=args.seed, return_eigenvectors=False,
                           checkpoint=args.resume_file)
    record = _record(args, operator, time.perf_counter() - start)
    save_spectrum(args.out, eigen, record)
    write_json(Path(args.out).with_suffix(".json"), {**record, "eigen": eigen.record()})
    print(eigen)
    _print_effdim(eigen.eigenvalues, args.z, "clip", eigen)
    print(f"wrote {args.out}")
    return 0 if eigen.all_converged else 1


def _print_effdim(eigenvalues, z, negative, eigen: EigenResult | None):
    negatives = int(np.sum(np.asarray(eigenvalues) < 0))
    if negative == "raise" and negatives:
        raise NeffError(f"{negatives} eigenvalues are negative; pass --negative clip (count them, add 0) or "
                        "--negative abs to accept them")
    values = effective_dimension(eigenvalues, z, negative)
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
    if args.file is None:
        return _effdim_of_model(args)
    spectrum = load_spectrum(args.file)
    eigen = eigen_result(spectrum) if spectrum["residuals"] is not None else None
    _print_effdim(spectrum["eigenvalues"], args.z, args.negative, eigen)
    return 0


def _effdim_of_model(args) -> int:
    operator = _operator(args)
    start = time.perf_counter()
    estimate = estimate_effective_dimension(operator, args.z, args.method, k=args.k, rtol=args.rtol,
                                            max_hvp=args.max_hvp, negative=args.negative, tol=args.tol,
                                            seed=args.seed)
    print(estimate)
    if args.out:
        write_json(args.out, {**_record(args, operator, time.perf_counter() - start), "effdim": estimate.record()})
        print(f"wrote {args.out}")
    return 0


def _validate(args) -> int:
    operator = _operator(args)
    report = dense_check(operator, k=args.k or 20, z=args.z, tol=args.tol, max_params=args.max_params,
                         seed=args.seed)
    print(report.eigen)
    print(report)
    return 0 if report.ok else 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="neff", description=__doc__)
    sub = main.add_subparsers(dest="command", required=True)
    spectrum = sub.add_parser("spectrum", help="certified top eigenvalues of the training-loss Hessian")
    _add_problem(spectrum)
    spectrum.add_argument("--method", choices=METHODS, default="lanczos")
    spectrum.add_argument("--which", choices=["largest", "smallest"], default="largest")
    spectrum.add_argument("--max-steps", type=_positive)
    spectrum.add_argument("--resume-file", help="checkpoint file for the Lanczos products (resumes a killed run)")
    spectrum.add_argument("--out", required=True, help="output .npz (a .json record is written beside it)")
    spectrum.set_defaults(run=_spectrum)
    effdim = sub.add_parser("effdim", help="N_eff with its interval for a model (the options below), or the "
                                           "N_eff table of a spectrum .npz (neff's or the original tool's)")
    effdim.add_argument("file", nargs="?", help="a spectrum .npz; without it, N_eff of the model on the data")
    _add_problem(effdim)
    effdim.add_argument("--method", choices=ESTIMATORS, default="slq", help="estimator for a model (default slq)")
    effdim.add_argument("--rtol", type=float, help="slq: spend products until every interval is within "
                                                   "+-rtol x N_eff (e.g. 0.05)")
    effdim.add_argument("--max-hvp", type=_positive, default=1000, help="product budget (default 1000)")
    effdim.add_argument("--negative", choices=NEGATIVE, default="clip")
    effdim.add_argument("--out", help="a .json record of the estimate and its provenance (for a model)")
    effdim.set_defaults(run=_effdim)
    check = sub.add_parser("validate", help="compare neff with a dense eigendecomposition (small models)")
    _add_problem(check)
    check.add_argument("--max-params", type=_positive, default=5000)
    check.set_defaults(run=_validate)
    return main


def _one_line(message, category, *args, **kwargs) -> str:
    return f"neff: warning: {message}\n"


def _terminated(signum, frame):
    raise KeyboardInterrupt  # unwinds like Ctrl-C, so every checkpoint is saved on the way out


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    formatwarning, warnings.formatwarning = warnings.formatwarning, _one_line
    try:
        return args.run(args)
    except NeffError as err:
        print(f"neff: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        saved = getattr(args, "resume_file", None)
        print("neff: interrupted; " + (f"the products computed so far are saved in {saved}: run the same command "
                                       "again to resume" if saved else
                                       "nothing was saved (neff spectrum --resume-file FILE keeps a long run's "
                                       "products)"), file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = formatwarning
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
