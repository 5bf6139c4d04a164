"""neff.surfaces: directions in (or out of) eigen-subspaces, planes, sweeps, decision maps."""
import numpy as np
import pytest
import torch
from torch import nn

from neff import NeffError
from neff.hessian import HessianOperator
from neff.surfaces import (chunk_of, decision_maps, eigenbasis, evaluate_plane, evaluate_points,
                           filter_normalize, grid_coordinates, perturbation_sweep, plane_directions,
                           random_directions)
from neff.eigen import exact_eigenpairs

from conftest import batches, reference_hessian


def snapshot(model):
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


def assert_unchanged(model, before):
    after = model.state_dict()
    assert all(torch.equal(after[name], before[name]) for name in before)


@pytest.fixture(scope="module")
def classifier():
    """A small trained classifier (module-wide: every test leaves it unchanged, and checks so)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(53, 6, generator=gen, dtype=torch.float64)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.5).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    optimizer = torch.optim.Adam(model.parameters(), 0.02)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model, x, y


@pytest.fixture(scope="module")
def operator(classifier):
    model, x, y = classifier
    return HessianOperator(model, nn.CrossEntropyLoss(), batches(x, y, 20))


@pytest.fixture(scope="module")
def eigen(operator):
    return exact_eigenpairs(operator)


def test_exact_eigenpairs_diagonalise_the_dense_hessian(operator, eigen, classifier):
    model, x, y = classifier
    dense = reference_hessian(model, nn.CrossEntropyLoss(), batches(x, y, 20))  # independent of neff
    vectors, values = eigen.eigenvectors, torch.as_tensor(eigen.eigenvalues)
    assert torch.allclose(vectors.T @ dense @ vectors, torch.diag(values), atol=1e-10)
    assert np.all(np.diff(eigen.eigenvalues) <= 0) and eigen.all_converged and eigen.method == "dense"


@pytest.mark.parametrize("space, k", [("full", 0), ("top", 3), ("bottom", 20), ("complement", 5),
                                      ("complement", 55)])
def test_plane_directions_are_orthonormal_and_in_the_requested_subspace(operator, eigen, space, k):
    kind, basis = eigenbasis(eigen.eigenvalues, eigen.eigenvectors, space, k)
    directions = plane_directions(operator.num_params, kind, basis, seed=3)
    assert directions.dtype == torch.float64 and directions.shape == (2, operator.num_params)
    assert torch.allclose(directions @ directions.T, torch.eye(2, dtype=torch.float64), atol=1e-10, rtol=0)
    if kind == "span":  # no component outside the span
        outside = directions.T - basis @ (basis.T @ directions.T)
        assert outside.norm(dim=0).max() < 1e-10
    if kind == "complement":  # no component along any top-k eigenvector
        assert (basis.T @ directions.T).abs().max() < 1e-10
    assert not torch.equal(directions, plane_directions(operator.num_params, kind, basis, seed=4))


def test_bottom_means_smallest_in_magnitude_and_top_largest():
    values = np.array([5.0, 2.0, 0.001, -0.002, -1.0])
    vectors = torch.eye(5, dtype=torch.float64)
    assert eigenbasis(values, vectors, "bottom", 2)[1].argmax(0).tolist() == [2, 3]
    assert eigenbasis(values, vectors, "top", 2)[1].argmax(0).tolist() == [0, 1]
    with pytest.raises(NeffError, match="needs every eigenpair"):  # a top-k spectrum has no bottom
        eigenbasis(values[:3], vectors[:, :3], "bottom", 2)


def test_random_directions_are_unit_and_refuse_a_subspace_without_room(operator, eigen):
    basis = eigen.eigenvectors[:, :4]
    top = random_directions(operator.num_params, 6, "span", basis, seed=0)
    assert torch.allclose(top.norm(dim=1), torch.ones(6, dtype=torch.float64))
    with pytest.raises(NeffError, match="too few for a plane"):
        plane_directions(operator.num_params, "complement", eigen.eigenvectors[:, :-1])
    with pytest.raises(NeffError, match="is empty"):
        random_directions(operator.num_params, 1, "complement", eigen.eigenvectors)
    with pytest.raises(NeffError, match="needs a basis"):
        plane_directions(operator.num_params, "span")
    with pytest.raises(NeffError, match="unknown"):
        plane_directions(operator.num_params, "bottom")


def test_plane_centre_is_the_trained_loss_and_parameters_are_untouched(operator, classifier):
    model = classifier[0]
    before = snapshot(model)
    directions = plane_directions(operator.num_params, seed=0)
    coordinates = grid_coordinates(0.5, 5)
    surface = evaluate_plane(operator, directions, coordinates, batch_points=7)
    centre = int(np.flatnonzero((coordinates == 0).all(axis=1))[0])
    loss, _ = operator.loss_and_gradient()
    assert surface["loss"][centre] == pytest.approx(loss, abs=1e-12)
    assert surface["homogeneity"][centre] == 1.0 and surface["loss"].max() > loss
    assert_unchanged(model, before)
    pieces = [evaluate_plane(operator, directions, chunk_of(coordinates, 3, c))["loss"] for c in range(3)]
    assert np.allclose(np.concatenate(pieces), surface["loss"], rtol=1e-12, atol=0)


def test_surface_of_linear_regression_is_its_quadratic_form():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64) + 0.1 * torch.randn(40, 1, generator=gen,
                                                                                          dtype=torch.float64)
    model = nn.Linear(3, 1).double()
    operator = HessianOperator(model, nn.MSELoss(), batches(x, y, 16))
    hessian = operator.dense()
    eigen = exact_eigenpairs(operator)
    kind, basis = eigenbasis(eigen.eigenvalues, eigen.eigenvectors, "complement", 1)
    directions = plane_directions(operator.num_params, kind, basis, seed=0)
    coordinates = grid_coordinates(2.0, 7)
    surface = evaluate_plane(operator, directions, coordinates)
    loss, gradient = operator.loss_and_gradient()
    steps = torch.as_tensor(coordinates) @ directions
    expected = loss + steps @ gradient + 0.5 * ((steps @ hessian) * steps).sum(1)
    assert np.allclose(surface["loss"], expected.numpy(), rtol=1e-10, atol=1e-12)
    assert np.isnan(surface["homogeneity"]).all()


def test_sweep_keeps_predictions_in_degenerate_directions_and_parameters_intact(operator, eigen, classifier):
    model, x, y = classifier
    before = snapshot(model)
    test = HessianOperator(model, nn.CrossEntropyLoss(), [(x[:30], y[:30])])
    rows = perturbation_sweep({"train": operator, "test": test}, eigen.eigenvectors[:, :3], [0.0, 0.5, 2.0], 4)
    assert len(rows) == 2 * 3 * 4 * 2
    assert_unchanged(model, before)
    at_zero = [r for r in rows if r["norm"] == 0.0]
    assert all(r["homogeneity"] == 1.0 for r in at_zero)

    def mean_loss(direction):
        return np.mean([r["loss"] for r in rows if r["direction"] == direction and r["norm"] == 2.0])
    assert mean_loss("top") > mean_loss("degenerate")

    def mean_homogeneity(direction):
        return np.mean([r["homogeneity"] for r in rows if r["direction"] == direction and r["norm"] == 2.0])
    assert mean_homogeneity("degenerate") > mean_homogeneity("top")


def test_filter_normalisation_matches_filter_norms_and_zeroes_biases(classifier, operator):
    directions = plane_directions(operator.num_params, seed=0)
    model = classifier[0]
    scaled = filter_normalize(directions, model)
    pieces = operator.layout.split(scaled)
    weight = model[0].weight.detach()
    assert torch.allclose(pieces["0.weight"].norm(dim=2), weight.norm(dim=1).expand(2, -1))
    assert torch.equal(pieces["0.bias"], torch.zeros_like(pieces["0.bias"]))
    with pytest.raises(NeffError, match="trainable parameters"):
        filter_normalize(directions[:, :-1], model)


def test_decision_maps_of_the_trained_point_match_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ELU(), nn.Linear(8, 2)).double()
    x = torch.randn(20, 2, dtype=torch.float64)
    operator = HessianOperator(model, nn.CrossEntropyLoss(), [(x, (x[:, 0] > 0).long())])
    before = snapshot(model)
    maps = decision_maps(operator, operator.flat_params()[None], (-1, 1), (-2, 2), resolution=5)
    assert maps.shape == (1, 5, 5)
    with torch.no_grad():
        corner = model(torch.tensor([[1.0, -2.0]], dtype=torch.float64)).softmax(-1)[0, 1]  # x max, y min
    assert maps[0, 0, -1] == pytest.approx(float(corner), abs=1e-12)
    assert_unchanged(model, before)


def test_bad_input_is_named(operator):
    with pytest.raises(NeffError, match="points >= 2"):
        grid_coordinates(1.0, 1)
    with pytest.raises(NeffError, match="chunks are numbered 0 to 2"):
        chunk_of(grid_coordinates(1.0, 3), 3, 3)
    with pytest.raises(NeffError, match="expected points of shape"):
        evaluate_points(operator, torch.zeros(2, 3))
    with pytest.raises(NeffError, match="use one of full, top, bottom, complement"):
        eigenbasis(np.ones(3), torch.eye(3), "middle", 1)


def test_homogeneity_is_agreement_with_the_trained_predictions_not_accuracy():
    """A 1-D two-class linear model right on 3 of 4 points: at its own weights accuracy is 0.75
    and homogeneity 1; with the weights negated every prediction flips, so accuracy is 0.25 and
    homogeneity 0; with the weights doubled predictions stay, so homogeneity is 1 again."""
    model = nn.Linear(1, 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        model.bias.zero_()
    x = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]], dtype=torch.float64)  # predicted 0, 0, 1, 1
    y = torch.tensor([0, 0, 1, 0])
    operator = HessianOperator(model, nn.CrossEntropyLoss(), [(x[:3], y[:3]), (x[3:], y[3:])])
    theta = operator.flat_params()
    values = evaluate_points(operator, torch.stack([theta, -theta, 2 * theta]))
    assert values["accuracy"].tolist() == [0.75, 0.25, 0.75]
    assert values["homogeneity"].tolist() == [1.0, 0.0, 1.0]
