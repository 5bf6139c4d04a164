"""The loss around trained parameters, in directions chosen by the Hessian's eigenvectors.

Section 5 and Appendix A of Maddox et al.: parameters move far along the many low-curvature
("degenerate") directions without changing the function, while a small move along the few
top eigenvectors does. Here:

* ``random_directions`` / ``plane_directions``: seeded random unit directions in the whole
  parameter space, in the span of a basis (e.g. the top-k eigenvectors), or in its orthogonal
  complement; plane directions are orthonormal (Gram-Schmidt, each projection done twice).
* ``eigenbasis``: the top-k, bottom-k (smallest |eigenvalue|) or complement-of-top-k basis.
* ``filter_normalize``: Li et al. (2018) filter-wise rescaling, for comparison.
* ``evaluate_points``: loss, accuracy and homogeneity (fraction of predictions unchanged from
  the centre) at a batch of parameter vectors, one ``vmap`` of ``functional_call`` per data
  batch: the model itself is never modified or copied.
* ``grid_coordinates`` / ``evaluate_plane``: a square grid of the plane, whole or in chunks.
* ``perturbation_sweep``: homogeneity and loss against perturbation norm, top vs degenerate.
* ``decision_maps``: class-1 probabilities over a 2-D input grid (two spirals).

Every eigenpair of a small model's dense Hessian comes from ``neff.eigen.exact_eigenpairs``.

Everything evaluates through an ``Objective`` (a ``HessianOperator`` is one), which already
holds the model, loss, data, parameter selection, dtype and BatchNorm mode.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.func import vmap

from .data import positive_probability, predicted_labels
from .errors import NeffError
from .objective import Objective
from .device import module_mode
from .parameters import FlatLayout, select_parameters

SPACES = ("full", "span", "complement")
EIGENSPACES = ("full", "top", "bottom", "complement")


def orthonormalize(vectors: torch.Tensor, against: torch.Tensor | None = None) -> torch.Tensor:
    """Orthonormal columns spanning ``vectors`` (n, m), each also orthogonal to the orthonormal
    columns of ``against``: Gram-Schmidt where every projection is applied twice, which keeps
    the result orthogonal to working precision ("twice is enough", Giraud et al. 2005).
    Written out rather than a QR of [against, vectors]: only the few new columns are
    orthogonalised, against a basis that may hold hundreds of long eigenvectors."""
    done = [] if against is None else [against]
    columns = []
    for v in vectors.T:
        for _ in range(2):
            for block in done:
                v = v - block @ (block.T @ v)
        norm = v.norm()
        if not norm > 1e-8 * max(1.0, float(vectors.abs().max())):
            raise NeffError("the directions are linearly dependent (or lie in the excluded subspace); "
                            "use another seed or a subspace with room for them")
        columns.append(v / norm)
        done.append(columns[-1][:, None])
    return torch.stack(columns, dim=1)


def _basis(basis: torch.Tensor | None, space: str, n: int, dtype, device) -> torch.Tensor | None:
    """An orthonormal basis with the span of ``basis`` (QR; eigenvectors are nearly orthonormal
    already), or None for the whole space."""
    if space not in SPACES:
        raise NeffError(f"space={space!r} is unknown; use 'full', 'span' or 'complement'")
    if space == "full":
        return None
    if basis is None or basis.dim() != 2 or basis.shape[0] != n:
        raise NeffError(f"space={space!r} needs a basis of shape ({n}, k); pass the eigenvectors as columns")
    if basis.shape[1] >= n and space == "complement":
        raise NeffError(f"the complement of a {basis.shape[1]}-vector basis in {n} dimensions is empty; "
                        "use a smaller k")
    return torch.linalg.qr(basis.to(device=device, dtype=dtype)).Q


def _draw(q: torch.Tensor | None, space: str, n: int, count: int, seed: int, dtype, device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    rows = q.shape[1] if space == "span" else n
    draws = torch.randn(rows, count, generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)
    if space == "span":
        return q @ draws
    if space == "complement":
        for _ in range(2):
            draws = draws - q @ (q.T @ draws)
    return draws


def random_directions(num_params: int, count: int = 1, space: str = "full", basis: torch.Tensor | None = None,
                      *, seed: int = 0, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """``count`` seeded random unit directions (rows of a (count, n) tensor) drawn uniformly in
    the whole space, in the span of ``basis``'s columns or in their orthogonal complement.
    Directions in a span are random combinations of the basis; in the complement, Gaussian
    vectors with the basis projected out twice."""
    q = _basis(basis, space, num_params, dtype, device)
    vectors = _draw(q, space, num_params, count, seed, dtype, device)
    return (vectors / vectors.norm(dim=0, keepdim=True)).T


def plane_directions(num_params: int, space: str = "full", basis: torch.Tensor | None = None, *,
                     seed: int = 0, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Two orthonormal random directions (a (2, n) tensor) in the chosen subspace."""
    q = _basis(basis, space, num_params, dtype, device)
    room = num_params if q is None else q.shape[1] if space == "span" else num_params - q.shape[1]
    if room < 2:
        raise NeffError(f"the {space} subspace has {room} dimension(s), too few for a plane; change k")
    vectors = _draw(q, space, num_params, 2, seed, dtype, device)
    # orthonormalising combinations of a span stays in it; in the complement, keep out of it
    return orthonormalize(vectors, q if space == "complement" else None).T


def eigenbasis(eigenvalues: np.ndarray, eigenvectors: torch.Tensor, space: str, k: int = 0):
    """The (library space, basis) of a named eigenspace: ``top`` (span of the k largest
    eigenvalues), ``bottom`` (span of the k smallest in magnitude: the most degenerate
    directions), ``complement`` (orthogonal to the top k) or ``full``."""
    if space not in EIGENSPACES:
        raise NeffError(f"space={space!r} is unknown; use one of {', '.join(EIGENSPACES)}")
    if space == "full":
        return "full", None
    values = np.asarray(eigenvalues)
    if not 1 <= k <= len(values):
        raise NeffError(f"k={k} must be between 1 and the {len(values)} eigenvectors available")
    if space == "bottom" and eigenvectors.shape[1] < eigenvectors.shape[0]:
        raise NeffError(f"space='bottom' needs every eigenpair, but {eigenvectors.shape[1]} of "
                        f"{eigenvectors.shape[0]} are given; use hessian.method: dense (or 'complement')")
    order = np.argsort(np.abs(values))[:k] if space == "bottom" else np.argsort(-values)[:k]
    basis = eigenvectors[:, torch.as_tensor(order.copy())]
    return ("complement" if space == "complement" else "span"), basis


def filter_normalize(directions: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """Li et al. (2018) filter normalisation of (b, n) directions laid out as the model's
    trainable parameters: each filter (slice along the first axis of a weight tensor) rescaled
    to the norm of the same filter of the trained weights; one-dimensional parameters (biases,
    BatchNorm scales) set to zero, as in their plots. The result is no longer orthonormal
    nor inside the requested subspace."""
    weights = {name: model.get_parameter(name).detach() for name in select_parameters(model, "all")}
    layout = FlatLayout(weights)
    if directions.shape[-1] != layout.size:
        raise NeffError(f"directions have {directions.shape[-1]} entries but the model has {layout.size} "
                        "trainable parameters; draw them for this model")
    scaled = {}
    for name, piece in layout.split(directions).items():
        weight = weights[name].to(piece)
        if weight.dim() <= 1:
            scaled[name] = torch.zeros_like(piece)
            continue
        filter_norm = weight.flatten(1).norm(dim=1)
        piece_norm = piece.flatten(2).norm(dim=2)
        factor = filter_norm / piece_norm.clamp_min(1e-12)
        scaled[name] = piece * factor.reshape(*factor.shape, *([1] * (weight.dim() - 1)))
    return layout.join(scaled, lead=(directions.shape[0],))


@torch.no_grad()
def evaluate_points(operator: Objective, points: torch.Tensor, batch_points: int = 64) -> dict:
    """Mean loss, accuracy and homogeneity over the objective's data at each row of ``points``
    (b, n), parameter vectors in the objective's layout, ``batch_points`` of them per ``vmap``
    (fewer bound the memory). Homogeneity is the fraction of examples
    whose predicted class equals the prediction at the objective's own (trained) parameters;
    accuracy and homogeneity are NaN for regression (float targets)."""
    points = operator.place(torch.as_tensor(points))
    if points.dim() != 2 or points.shape[1] != operator.num_params:
        raise NeffError(f"expected points of shape (b, {operator.num_params}), got {tuple(points.shape)}")

    classify = []

    def per_batch(inputs, targets):
        classify.append(not targets.is_floating_point())
        reference = predicted_labels(operator.outputs(operator.primals, inputs))

        def at(flat):
            outputs = operator.outputs(operator.layout.split(flat), inputs)
            predicted = predicted_labels(outputs)
            accuracy = (predicted == targets).to(outputs.dtype).mean() if classify[-1] else outputs.new_zeros(())
            return torch.stack([operator.batch_loss(outputs, targets), accuracy,
                                (predicted == reference).to(outputs.dtype).mean()])
        return torch.cat([vmap(at)(points[i:i + batch_points])
                          for i in range(0, len(points), batch_points)])

    total, count = operator.over_data(per_batch)
    values = total.cpu().double().numpy()
    if operator.reduction == "sum":  # accuracy and homogeneity are fractions either way
        values[:, 1:] /= count
    if not all(classify):
        values[:, 1:] = np.nan
    return {"loss": values[:, 0], "accuracy": values[:, 1], "homogeneity": values[:, 2]}


def grid_coordinates(extent: float, points: int) -> np.ndarray:
    """The (points**2, 2) coordinates (a, b) of a square grid over [-extent, extent]^2, row by
    row (b slowest); an odd ``points`` puts the centre (0, 0) on the grid."""
    if points < 2 or not extent > 0:
        raise NeffError(f"a grid needs points >= 2 and extent > 0 (got {points}, {extent})")
    axis = np.linspace(-extent, extent, points)
    b, a = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def chunk_of(coordinates: np.ndarray, chunks: int, chunk: int) -> np.ndarray:
    """The ``chunk``-th of ``chunks`` nearly equal consecutive pieces of the grid."""
    if not 0 <= chunk < chunks:
        raise NeffError(f"chunk {chunk} does not exist; chunks are numbered 0 to {chunks - 1}")
    return np.array_split(coordinates, chunks)[chunk]


def evaluate_plane(operator: Objective, directions: torch.Tensor, coordinates: np.ndarray,
                   batch_points: int = 64) -> dict:
    """Loss, accuracy and homogeneity at theta + a d_1 + b d_2 for each (a, b) row of
    ``coordinates``, theta the objective's parameters, in batches of ``batch_points``."""
    directions = operator.place(torch.as_tensor(directions))
    if directions.shape != (2, operator.num_params):
        raise NeffError(f"expected directions of shape (2, {operator.num_params}), got {tuple(directions.shape)}")
    coeffs = operator.place(torch.as_tensor(coordinates))
    points = operator.flat_params() + coeffs @ directions
    return {"a": coordinates[:, 0], "b": coordinates[:, 1],
            **evaluate_points(operator, points, batch_points)}


def perturbation_sweep(operators: dict[str, Objective], basis: torch.Tensor, norms, trials: int,
                       *, seed: int = 0, batch_points: int = 64) -> list[dict]:
    """For each norm and trial a fresh random unit direction (as the original's perturbations.py)
    in the span of ``basis`` ("top") and one in its orthogonal complement ("degenerate"); the
    parameters are moved by the norm along it and every objective (e.g. {"train": ..., "test":
    ...}, same model and parameters) reports loss, accuracy and homogeneity. Returns one row per
    (direction, norm, trial, split)."""
    first = next(iter(operators.values()))
    n, norms = first.num_params, np.asarray(norms, dtype=np.float64)
    rows = []
    for label, space in (("top", "span"), ("degenerate", "complement")):
        directions = random_directions(n, len(norms) * trials, space, basis, seed=seed, dtype=first.dtype,
                                       device=first.device).reshape(len(norms), trials, n)
        steps = first.place(torch.as_tensor(norms))
        moves = (steps[:, None, None] * directions).reshape(-1, n)  # norm-major, then trial
        for split, operator in operators.items():
            metrics = evaluate_points(operator, operator.flat_params() + moves, batch_points)
            for i, (norm, trial) in enumerate(np.ndindex(len(norms), trials)):
                rows.append({"direction": label, "norm": float(norms[norm]), "trial": trial, "split": split,
                             **{key: float(value[i]) for key, value in metrics.items()}})
    return rows


@torch.no_grad()
def decision_maps(operator: Objective, points: torch.Tensor, xlim, ylim, resolution: int = 200) -> np.ndarray:
    """Probability of class 1 over a ``resolution`` x ``resolution`` grid of 2-D inputs (rows:
    y, columns: x) for each parameter vector in ``points`` (b, n): a (b, res, res) array."""
    x = torch.linspace(*xlim, resolution, dtype=torch.float64)
    y = torch.linspace(*ylim, resolution, dtype=torch.float64)
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    inputs = operator.place(torch.stack([xx.ravel(), yy.ravel()], dim=1))
    points = operator.place(torch.as_tensor(points))
    with module_mode(operator.model, operator.mode == "train"):
        probs = vmap(lambda flat: positive_probability(operator.outputs(operator.layout.split(flat), inputs)))(points)
    return probs.reshape(len(points), resolution, resolution).cpu().double().numpy()
