"""Generalization measures beside N_eff (Section 7 of Maddox et al., v2): parameter norms, the
L_p path norm (Neyshabur et al. 2015) and PAC-Bayes flatness sigma (Jiang et al. 2020).

Each works on any ``nn.Module`` and any iterable of ``(inputs, targets)`` batches, and leaves
the model as it found it: perturbed parameters are passed functionally (``torch.func``), so the
module's own parameters, buffers and train/eval flags are never written.
"""
from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch

from .data import predicted_labels
from .errors import NeffError
from .objective import Objective
from .parameters import select_parameters

METRICS = ("accuracy", "loss")
MEASURES = ("l2_norm", "l2_norm_weights", "path_norm", "pacbayes_flatness", "pacbayes_mag_flatness")


@torch.no_grad()
def parameter_norm(model: torch.nn.Module, params: str | Sequence[str] = "all") -> float:
    """The Euclidean norm of the parameters selected by ``params`` (``"all"``, ``"weights"``:
    those N_eff uses by default, or name patterns; see ``neff.parameters.select_parameters``)."""
    named = dict(model.named_parameters())
    return math.sqrt(sum(float(named[name].double().pow(2).sum()) for name in select_parameters(model, params)))


@torch.no_grad()
def path_norm(model: torch.nn.Module, input_shape: Sequence[int], p: float = 2.0) -> float:
    """The L_p path norm (Neyshabur et al. 2015): a float64 copy of the model in eval mode with
    every parameter replaced by |w|^p, applied to one all-ones input of ``input_shape``, gives
    (sum of its outputs)^(1/p). For a ReLU network without normalisation layers this is the
    l_p norm of the products of weights along all input-output paths.

    The original applies it to a batch of 128 ones, which multiplies the value by 128^(1/p) and
    changes no ranking. A layer that subtracts a running mean (BatchNorm in eval mode) can make
    the sum negative: the path norm is then undefined and NaN is returned with a warning.

    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False), torch.nn.ReLU(),
    ...                           torch.nn.Linear(2, 1, bias=False))
    >>> _ = net[0].weight.data.copy_(torch.tensor([[1.0, -2.0], [0.0, 3.0]]))
    >>> _ = net[2].weight.data.copy_(torch.tensor([[2.0, -1.0]]))
    >>> path_norm(net, (2,))  # sqrt(4 * (1 + 4) + 1 * (0 + 9)) = sqrt(29)
    5.385164807134504
    """
    if p <= 0:
        raise NeffError(f"p={p!r} must be positive (the paper's path norm has p = 2)")
    absolute = copy.deepcopy(model).double().eval()
    for parameter in absolute.parameters():
        parameter.abs_().pow_(p)
    ones = torch.ones(1, *input_shape, dtype=torch.float64, device=next(model.parameters(), torch.empty(0)).device)
    total = float(absolute(ones).sum())
    if total < 0:
        warnings.warn(f"the path norm's sum of outputs is negative ({total:.3g}), as a layer that "
                      "subtracts a running mean (BatchNorm in eval mode) can make it; returning NaN",
                      stacklevel=2)
        return math.nan
    return total ** (1 / p)


@dataclass
class Flatness:
    """The PAC-Bayes flatness of a model (:func:`sharpness_sigma`): the largest noise scale
    ``sigma`` whose expected deviation of the ``metric`` stays at ``target``, and the bound term
    1/sigma^2 (large: sharp, predicted to generalize worse)."""

    sigma: float
    deviation: float  # Monte Carlo mean |E metric(w + noise) - metric(w)| at sigma
    stderr: float  # its standard error over the noise draws
    reference: float  # the unperturbed metric
    target: float
    metric: str
    magnitude_aware: bool
    converged: bool  # the deviation reached target (rtol) or the bracket closed (xtol)
    steps: list[tuple[float, float]] = field(default_factory=list)  # (sigma, deviation) tried

    @property
    def bound(self) -> float:
        return 1 / self.sigma**2


def _metric_fn(metric: str, objective: Objective) -> Callable:
    if metric == "loss":
        return objective.batch_loss

    def accuracy(outputs, targets):
        if targets.is_floating_point():
            raise NeffError("metric='accuracy' needs integer class labels, but the targets are "
                            "floating point (a regression?); use metric='loss'")
        return (predicted_labels(outputs) == targets).to(outputs.dtype).mean()
    return accuracy


def sharpness_sigma(model: torch.nn.Module, data: Iterable, loss_fn: Callable | None = None, *,
                    target: float = 0.1, metric: str = "accuracy", magnitude_aware: bool = False,
                    epsilon: float = 1e-3, draws: int = 20, upper: float = 1.0, max_steps: int = 20,
                    rtol: float = 0.05, xtol: float = 1e-3, seed: int = 0,
                    params: str | Sequence[str] = "all", dtype: torch.dtype | None = None,
                    device: str | torch.device | None = None) -> Flatness:
    """PAC-Bayes flatness sigma (Jiang et al. 2020): bisection for the largest scale sigma of
    Gaussian weight noise at which the expected train ``metric`` (``"accuracy"`` or ``"loss"``
    under ``loss_fn``, on ``data``, in eval mode) deviates from the unperturbed one by
    ``target`` (the paper: 0.01 for its ResNets, 0.1 for its CNN grid).

    The noise on each selected parameter w is N(0, sigma^2), or with ``magnitude_aware``
    N(0, sigma^2 w^2 + epsilon^2) (Jiang et al.'s magnitude-aware variant). Every bisection step
    averages ``draws`` fresh noise draws (the original reused one draw for all of them). The
    bracket starts at [0, ``upper``] and doubles ``upper`` while even it deviates less than
    the target. Stops when the deviation is within ``rtol * target`` of the target, when the
    bracket is narrower than ``xtol * upper``, or after ``max_steps`` steps. Seeded: the same
    ``seed`` gives the same sigma.
    """
    if metric not in METRICS:
        raise NeffError(f"metric={metric!r} is unknown; use 'accuracy' or 'loss'")
    if not target > 0 or draws < 1 or not upper > 0 or max_steps < 1:
        raise NeffError(f"target={target!r}, upper={upper!r}, draws={draws!r} and max_steps={max_steps!r} "
                        "must be positive")
    if metric == "loss" and loss_fn is None:
        raise NeffError("metric='loss' needs loss_fn, e.g. torch.nn.CrossEntropyLoss()")
    objective = Objective(model, loss_fn, data, params,
                          dtype=dtype, device=device, cache_gb=0)
    evaluate = _metric_fn(metric, objective)
    weights = objective.primals
    generator = torch.Generator(objective.device).manual_seed(seed)

    def value(primals) -> float:
        return float(objective.over_data(lambda x, t: evaluate(objective.outputs(primals, x), t))[0])

    def perturbed(sigma) -> dict:
        noisy = {}
        for name, w in weights.items():
            scale = (sigma**2 * w**2 + epsilon**2).sqrt() if magnitude_aware else sigma
            noisy[name] = w + scale * torch.randn(w.shape, generator=generator, device=w.device, dtype=w.dtype)
        return noisy

    reference = value(weights)

    def deviation(sigma) -> tuple[float, float]:
        deviations = torch.tensor([value(perturbed(sigma)) - reference for _ in range(draws)])
        stderr = float(deviations.std() / math.sqrt(draws)) if draws > 1 else math.nan
        return abs(float(deviations.mean())), stderr

    steps, lower, bracketed, sigma = [], 0.0, False, upper
    while True:
        dev, stderr = deviation(sigma)
        steps.append((sigma, dev))
        if dev > target:
            upper, bracketed = sigma, True
        else:
            lower = sigma
        converged = abs(dev - target) <= rtol * target or (bracketed and upper - lower <= xtol * upper)
        if converged or len(steps) >= max_steps:
            break
        sigma = (lower + upper) / 2 if bracketed else 2 * sigma
    if not converged:
        warnings.warn(f"sharpness_sigma did not reach the target deviation {target:g} in {max_steps} "
                      f"steps (last: sigma {sigma:.4g}, deviation {dev:.4g}); raise max_steps", stacklevel=2)
    return Flatness(sigma, dev, stderr, reference, target, metric, magnitude_aware, converged, steps)


def generalization_measures(model: torch.nn.Module, data: Iterable, loss_fn: Callable,
                            input_shape: Sequence[int], **sigma_options) -> dict:
    """Every measure of this module for one model, as one flat record: the parameter norms
    (all parameters, and the weights N_eff uses), the L2 path norm, and sigma and the bound
    term 1/sigma^2 of PAC-Bayes flatness (``pacbayes_flatness``) and of its magnitude-aware
    variant (``pacbayes_mag_flatness``), Jiang et al.'s names; ``sigma_options`` as for
    :func:`sharpness_sigma`. Every measure in :data:`MEASURES` grows as the model is predicted
    to generalize worse."""
    record = {"l2_norm": parameter_norm(model), "l2_norm_weights": parameter_norm(model, "weights"),
              "path_norm": path_norm(model, input_shape)}
    for name, aware in (("", False), ("_mag", True)):
        flat = sharpness_sigma(model, data, loss_fn, magnitude_aware=aware, **sigma_options)
        record |= {f"pacbayes{name}_flatness": flat.bound, f"sigma{name}": flat.sigma,
                   f"sigma{name}_deviation": flat.deviation, f"sigma{name}_stderr": flat.stderr,
                   f"sigma{name}_converged": flat.converged, f"sigma{name}_steps": len(flat.steps)}
    return record | {f"train_{flat.metric}": flat.reference}
