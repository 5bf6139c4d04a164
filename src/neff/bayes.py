"""Posterior contraction (Maddox et al. 2020, Section 4): N_eff of Bayesian posteriors.

* Bayesian linear regression in closed form. For a prior N(0, S0), noise variance sigma^2
  and features Phi, the posterior covariance is (S0^-1 + Phi^T Phi / sigma^2)^-1. With
  S0 = alpha^2 I the contraction of the prior is exactly an effective dimension:
  tr S0 - tr S_post = alpha^2 N_eff(Phi^T Phi / sigma^2, z = 1 / alpha^2).
* A Bayesian neural network sampled with pyro's NUTS: N_eff of the second moment of the
  parameter samples (parameter space) and of the covariance of their predictions (function
  space), beside the Hessian N_eff of the MAP network from :class:`neff.HessianOperator`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, vmap

from .effdim import effective_dimension
from .errors import NeffError
from .hessian import HessianOperator
from .parameters import FlatLayout


def fourier_features(x, num_features: int) -> np.ndarray:
    """cos((j + 1) pi x) and sin((j + 1) pi x) for j < num_features / 2: the paper's BLR design."""
    if num_features < 2 or num_features % 2:
        raise NeffError(f"num_features={num_features} must be a positive even number (a cos and a "
                        "sin per frequency)")
    angles = np.pi * np.asarray(x, dtype=np.float64)[:, None] * np.arange(1, num_features // 2 + 1)
    return np.concatenate([np.cos(angles), np.sin(angles)], axis=1)


def prior_matrix(prior_cov, num_params: int) -> np.ndarray:
    """The prior covariance as a matrix from a scalar (alpha^2 I), a diagonal or a matrix."""
    prior = np.asarray(prior_cov, dtype=np.float64)
    matrix = {0: lambda: prior * np.eye(num_params), 1: lambda: np.diag(prior)}.get(prior.ndim, lambda: prior)()
    if (matrix.shape != (num_params, num_params) or not np.allclose(matrix, matrix.T)
            or np.any(np.linalg.eigvalsh(matrix) <= 0)):
        raise NeffError(f"prior_cov must be a positive number, a positive diagonal or a symmetric positive "
                        f"definite matrix for {num_params} parameters (got shape {prior.shape})")
    return matrix


def _check_noise(noise_var: float) -> None:
    if not noise_var > 0:
        raise NeffError(f"noise_var={noise_var} must be a positive variance")


def blr_posterior(phi, noise_var: float, prior_cov, y=None) -> tuple[np.ndarray | None, np.ndarray]:
    """(mean, covariance) of the weights of y = Phi w + N(0, noise_var), w ~ N(0, prior_cov);
    the mean is None without targets ``y``."""
    phi = np.asarray(phi, dtype=np.float64)
    _check_noise(noise_var)
    prior = prior_matrix(prior_cov, phi.shape[1])
    cov = np.linalg.inv(np.linalg.inv(prior) + phi.T @ phi / noise_var)
    cov = (cov + cov.T) / 2
    mean = None if y is None else cov @ phi.T @ np.asarray(y, dtype=np.float64) / noise_var
    return mean, cov


def blr_contraction(phi, noise_var: float, prior_cov, z: float, seed: int = 0) -> pd.DataFrame:
    """Posterior contraction as the rows of ``phi`` arrive one at a time in a seeded random order.

    After n points (``point``: the row added last, -1 before any): ``param_neff`` =
    N_eff(S_post, z) and ``function_neff`` = N_eff of the function-space covariance
    Phi_n S_post Phi_n^T on the n points seen, with ``trace`` = tr S_post. S_post is
    updated by Sherman-Morrison (O(p^2) a point, no fresh inverse); one symmetric
    eigendecomposition per space per step.
    """
    phi = np.asarray(phi, dtype=np.float64)
    _check_noise(noise_var)
    cov = prior_matrix(prior_cov, phi.shape[1])
    order = np.random.default_rng(seed).permutation(len(phi))
    rows = [{"n": 0, "point": -1, "param_neff": effective_dimension(np.linalg.eigvalsh(cov), z),
             "function_neff": 0.0, "trace": np.trace(cov)}]
    for n, index in enumerate(order, start=1):
        gain = cov @ phi[index]
        cov = cov - np.outer(gain, gain) / (noise_var + phi[index] @ gain)
        cov = (cov + cov.T) / 2
        seen = phi[order[:n]]
        rows.append({"n": n, "point": index, "param_neff": effective_dimension(np.linalg.eigvalsh(cov), z),
                     "function_neff": effective_dimension(np.linalg.eigvalsh(seen @ cov @ seen.T), z),
                     "trace": np.trace(cov)})
    return pd.DataFrame(rows)


def sample_eigenvalues(samples: torch.Tensor, center: bool) -> np.ndarray:
    """Eigenvalues of the second moment (``center=False``) or the covariance of the rows of
    ``samples`` (S, d), from its singular values: never forms the d x d matrix."""
    rows = samples.double()
    if center:
        rows = rows - rows.mean(0)
    scale = rows.shape[0] - 1 if center else rows.shape[0]
    return (torch.linalg.svdvals(rows) ** 2 / max(scale, 1)).numpy()


@dataclass
class PosteriorSamples:
    """NUTS draws: ``params`` (S, p) laid out by ``layout``, ``precision`` (S,) of the noise."""

    params: torch.Tensor
    precision: torch.Tensor
    layout: FlatLayout

    def predictions(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """net(x) under every draw, (S, N)."""
        call = lambda flat: functional_call(net, self.layout.split(flat), (x,)).squeeze(-1)  # noqa: E731
        return vmap(call)(self.params)


def log_posterior(net: nn.Module, x: torch.Tensor, y: torch.Tensor, prior_scale: float = 1.0,
                  precision=(3.0, 1.0)):
    """log p(sites | x, y) up to a constant, for the sites ``{"w": flat parameters}`` plus
    ``"log_tau"`` when the noise precision tau is sampled. Every parameter ~ N(0,
    prior_scale^2) and y ~ N(net(x), 1/tau); tau ~ Gamma(concentration, rate) for a pair
    ``precision`` (the density carries the Jacobian of tau = exp(log_tau)), or tau is fixed
    to a number ``precision`` (then the model is conjugate for a linear ``net``)."""
    layout = FlatLayout(dict(net.named_parameters()))
    as_tensor = lambda value: torch.as_tensor(value, dtype=x.dtype)  # noqa: E731
    prior = torch.distributions.Normal(as_tensor(0.0), as_tensor(prior_scale))
    hyper = torch.distributions.Gamma(*map(as_tensor, precision)) if _sampled(precision) else None
    y = y.reshape(-1)

    def log_density(sites: dict) -> torch.Tensor:
        tau = sites["log_tau"].exp() if hyper is not None else as_tensor(precision)
        mean = functional_call(net, layout.split(sites["w"]), (x,)).reshape(-1)
        value = torch.distributions.Normal(mean, tau.rsqrt()).log_prob(y).sum() + prior.log_prob(sites["w"]).sum()
        return value if hyper is None else value + hyper.log_prob(tau) + sites["log_tau"]

    return log_density, layout


def _sampled(precision) -> bool:
    return isinstance(precision, (tuple, list))


def sample_posterior(net: nn.Module, x: torch.Tensor, y: torch.Tensor, num_samples: int, warmup: int,
                     seed: int = 0, prior_scale: float = 1.0, precision=(3.0, 1.0),
                     max_tree_depth: int = 10, jit: bool = True, progress: bool = False) -> PosteriorSamples:
    """Draw from :func:`log_posterior` with pyro's NUTS (step size and diagonal mass matrix
    adapted during ``warmup``), starting from ``net``'s parameters. pyro gets the potential
    directly rather than a pyro model: the same sampler without tracing a model at every
    leapfrog step; ``jit`` compiles the potential (faster on a small BNN)."""
    try:
        import pyro
        from pyro.infer import MCMC, NUTS
    except ImportError:
        raise NeffError("sampling a Bayesian neural network needs pyro-ppl; install it with "
                        "pip install 'neff[bayes]'") from None
    if num_samples < 2 or warmup < 1:
        raise NeffError(f"NUTS needs num_samples >= 2 and warmup >= 1 (got {num_samples}, {warmup})")
    log_density, layout = log_posterior(net, x.detach(), y.detach(), prior_scale, precision)
    start = {"w": layout.join(dict(net.named_parameters())).detach()}
    if _sampled(precision):
        start["log_tau"] = torch.zeros((), dtype=start["w"].dtype)
    pyro.set_rng_seed(seed)
    kernel = NUTS(potential_fn=lambda sites: -log_density(sites), max_tree_depth=max_tree_depth,
                  jit_compile=jit, ignore_jit_warnings=True)
    mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=warmup, initial_params=start,
                disable_progbar=not progress)
    mcmc.run()
    draws = mcmc.get_samples()
    tau = draws["log_tau"].exp() if _sampled(precision) else torch.full((num_samples,), float(precision))
    return PosteriorSamples(draws["w"].detach(), tau.detach(), layout)


def map_network(net: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: float, prior_scale: float = 1.0,
                start: torch.Tensor | None = None, steps: int = 500) -> nn.Module:
    """``net`` moved by L-BFGS to the mode of :func:`log_posterior` at a fixed noise
    ``precision``, from the flat parameters ``start`` (e.g. a posterior draw) when given."""
    log_density, layout = log_posterior(net, x, y, prior_scale, float(precision))
    flat = layout.join(dict(net.named_parameters())) if start is None else start
    flat = flat.detach().clone().requires_grad_()
    optimizer = torch.optim.LBFGS([flat], max_iter=steps, tolerance_grad=1e-9, tolerance_change=1e-12,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = -log_density({"w": flat})
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        for p, value in zip(net.parameters(), layout.split(flat).values()):
            p.copy_(value)
    return net


def likelihood_hessian_eigenvalues(net: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: float) -> np.ndarray:
    """Eigenvalues of the Hessian of the negative log likelihood, precision/2 sum (net(x) - y)^2,
    from the library's operator (dense: a BNN is small). Their N_eff at z = 1/prior_scale^2 is
    the number of directions the data determine in the Laplace approximation (the BLR identity)."""
    operator = HessianOperator(net, nn.MSELoss(), [(x, y.reshape(-1, 1))], reduction="sum",
                               dtype=torch.float64)
    return torch.linalg.eigvalsh(precision / 2 * operator.dense()).numpy()


def bnn_effective_dimensions(net: nn.Module, x: torch.Tensor, y: torch.Tensor, num_samples: int, warmup: int,
                             seed: int = 0, prior_scale: float = 1.0, precision=(3.0, 1.0),
                             max_tree_depth: int = 10, z_param: float = 1.0, z_function: float = 1e-10,
                             map_steps: int = 500) -> dict:
    """The views of a BNN at one training set, side by side:

    * ``param_neff``: N_eff(z_param) of the second moment of the NUTS draws of every parameter
      (the weights and, when sampled, the noise precision, as the original stacks them); it
      falls from its prior value as the data pin down directions. S draws span at most S
      directions: a warning says when S < p;
    * ``function_neff``: N_eff(z_function) of the covariance of the draws' predictions net(x);
    * ``function_neff_original``: the original notebook's variant, kept to compare with the
      published curve: the covariance of predictive draws (net(x) plus the draw's observation
      noise) whose SQUARED singular values, divided by S - 1, are taken as eigenvalues (a quirk:
      eigenvalue^2 / (S - 1), not the covariance's eigenvalues);
    * ``hessian_neff``: N_eff(1 / prior_scale^2) of the likelihood Hessian at the MAP
      network (L-BFGS from the last draw, noise precision at its posterior mean): the number
      of directions the data determine, which rises as ``param_neff`` falls; its negative
      eigenvalues (an indefinite Hessian) add 0 and are counted in ``hessian_negative``.

    ``net`` ends at the MAP parameters."""
    samples = sample_posterior(net, x, y, num_samples, warmup, seed, prior_scale, precision, max_tree_depth)
    params = torch.cat([samples.params, samples.precision[:, None]], 1) if _sampled(precision) else samples.params
    if num_samples < params.shape[1]:
        warnings.warn(f"{num_samples} draws span at most {num_samples} of {params.shape[1]} parameter "
                      "directions, so param_neff is biased low; draw more samples than parameters", stacklevel=2)
    with torch.no_grad():
        predictions = samples.predictions(net, x)
        noise = torch.randn(predictions.shape, generator=torch.Generator().manual_seed(seed), dtype=predictions.dtype)
        predictive = predictions + noise * samples.precision[:, None].to(predictions.dtype).rsqrt()
    quirk = np.linalg.svd(np.atleast_2d(np.cov(predictive.double().numpy().T)), compute_uv=False) ** 2 / (num_samples - 1)
    tau = float(samples.precision.mean())
    map_network(net, x, y, tau, prior_scale, start=samples.params[-1], steps=map_steps)
    curvature = likelihood_hessian_eigenvalues(net, x, y, tau)
    return {"num_params": params.shape[1], "num_samples": num_samples,
            "param_neff": effective_dimension(sample_eigenvalues(params, center=False), z_param),
            "function_neff": effective_dimension(sample_eigenvalues(predictions, center=True), z_function),
            "function_neff_original": effective_dimension(quirk, z_function),
            "hessian_neff": effective_dimension(curvature, 1 / prior_scale ** 2),
            "hessian_negative": int(np.sum(curvature < 0)),
            "precision_mean": tau}
