"""Generalization measures against closed forms: norms, the path norm and PAC-Bayes sigma."""
import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats
from torch import nn

from neff.errors import NeffError
from neff.measures import parameter_norm, path_norm, sharpness_sigma


def test_parameter_norm_all_and_weights():
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    tensors = [p.detach().double() for p in net.parameters()]
    assert parameter_norm(net) == pytest.approx(math.sqrt(sum(float((t**2).sum()) for t in tensors)), rel=1e-12)
    weights = [net[0].weight.detach(), net[2].weight.detach()]
    assert parameter_norm(net, "weights") == pytest.approx(
        math.sqrt(sum(float((w.double() ** 2).sum()) for w in weights)), rel=1e-12)


def test_path_norm_of_a_two_layer_linear_net_by_hand():
    """Linear net x -> V (W x + b) + c: with |.|^2 entries and ones in, the output sums
    sum_j V_j^2 (sum_i W_ji^2 + b_j^2) + c^2, the squared l2 norm over all paths (biases as
    paths from a constant unit)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    W, b = net[0].weight.detach().double(), net[0].bias.detach().double()
    V, c = net[1].weight.detach().double(), net[1].bias.detach().double()
    paths = float(((V**2) @ ((W**2).sum(1) + b**2)).sum() + (c**2).sum())
    assert path_norm(net, (4,)) == pytest.approx(math.sqrt(paths), rel=1e-12)
    assert path_norm(net, (4,), p=1) == pytest.approx(
        float((V.abs() @ (W.abs().sum(1) + b.abs())).sum() + c.abs().sum()), rel=1e-12)
    assert all(p.dtype == torch.float32 for p in net.parameters())  # the model itself untouched


def test_path_norm_of_a_negative_sum_is_nan_with_a_warning():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()
    net[1].running_mean.fill_(1e6)
    with pytest.warns(UserWarning, match="negative"):
        assert math.isnan(path_norm(net, (2,)))


def separable_logistic(n=400, d=5, seed=0):
    """A trained-like binary linear classifier (one logit) on two Gaussian clouds."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) + 1.5 * (2 * labels[:, None] - 1)
    model = nn.Linear(d, 1).double()
    with torch.no_grad():
        model.weight.copy_(torch.linspace(0.5, 1.5, d, dtype=torch.float64)[None])
        model.bias.fill_(0.3)
    return model, X, labels


def features(model, X):
    """Inputs with a 1 for the bias, and the per-coordinate parameter vector (w, b)."""
    return torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1), torch.cat([model.weight[0], model.bias]).detach()


def noise_var(X1, w, sigma, magnitude_aware, epsilon):
    """Variance of noise . x over the parameter noise of the (magnitude-aware) measure."""
    per_coordinate = sigma**2 * w**2 + epsilon**2 if magnitude_aware else torch.full_like(w, sigma**2)
    return (X1**2 * per_coordinate).sum(1)


@pytest.mark.parametrize("magnitude_aware", [False, True])
def test_sigma_for_accuracy_matches_the_closed_form(magnitude_aware):
    """Noise on (w, b) shifts margin m_i by N(0, v_i): P(correct) = Phi(m_i / sqrt(v_i)) per point,
    so the expected accuracy drop has a closed form; the sigma found must give the target drop."""
    model, X, labels = separable_logistic()
    X1, w = features(model, X)
    margins = ((X1 @ w) * (2 * labels - 1)).numpy()
    reference = float(np.mean(margins > 0))
    target, eps = 0.1, 0.1

    def drop(sigma):
        v = noise_var(X1, w, sigma, magnitude_aware, eps).numpy()
        return reference - float(np.mean(stats.norm.cdf(margins / np.sqrt(v))))
    truth = optimize.brentq(lambda s: drop(s) - target, 1e-4, 10)
    result = sharpness_sigma(model, [(X[:150], labels[:150]), (X[150:], labels[150:])], target=target,
                             draws=200, magnitude_aware=magnitude_aware, epsilon=eps, seed=1)
    assert result.converged and result.reference == pytest.approx(reference)
    assert abs(drop(result.sigma) - target) < 0.15 * target  # rtol 5% + the Monte Carlo error
    assert result.sigma == pytest.approx(truth, rel=0.1)
    assert result.bound == pytest.approx(1 / result.sigma**2)


@pytest.mark.parametrize("magnitude_aware", [False, True])
def test_sigma_for_mse_loss_matches_the_closed_form(magnitude_aware):
    """For a linear model at its least-squares fit under mean squared error, the loss grows by
    E loss(w + noise) - loss(w) = mean_i v_i."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(300, 4, generator=g, dtype=torch.float64)
    model = nn.Linear(4, 1).double()
    y = model(X).detach()  # a perfect fit: no cross term of the residuals with the noise
    X1, w = features(model, X)
    target, eps = 0.5, 0.1
    increase = lambda s: float(noise_var(X1, w, s, magnitude_aware, eps).mean())  # noqa: E731
    truth = optimize.brentq(lambda s: increase(s) - target, 1e-6, 1e3)
    result = sharpness_sigma(model, [(X, y)], nn.MSELoss(), target=target, metric="loss", draws=100,
                             magnitude_aware=magnitude_aware, epsilon=eps, seed=0)
    assert result.converged
    assert result.sigma == pytest.approx(truth, rel=0.08)


def test_sigma_leaves_the_model_bit_identical_and_is_seeded():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3)).train()
    with torch.no_grad():
        model[1].running_mean.uniform_()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X = torch.randn(64, 5)
    y = model.eval()(X).argmax(1).detach()  # labels the model gets right, so accuracy can drop by 0.2
    model.train()
    first = sharpness_sigma(model, [(X, y)], target=0.2, draws=5, seed=3)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training and model[2].training
    again = sharpness_sigma(model, [(X, y)], target=0.2, draws=5, seed=3)
    assert (again.sigma, again.steps) == (first.sigma, first.steps)
    assert sharpness_sigma(model, [(X, y)], target=0.2, draws=5, seed=4).steps != first.steps


def test_sigma_draws_fresh_noise_at_every_step_and_draw():
    """A single reused draw (the original's quirk) gives zero spread between draws."""
    model, X, labels = separable_logistic()
    result = sharpness_sigma(model, [(X, labels)], target=0.1, draws=20)
    assert result.stderr > 0


def test_sigma_grows_the_bracket_and_warns_when_the_target_is_out_of_reach():
    model, X, labels = separable_logistic()
    with torch.no_grad():
        model.weight.mul_(1e3)
        model.bias.mul_(1e3)  # 1000x flatter in absolute noise: sigma ~ 1000x the unit bracket
    result = sharpness_sigma(model, [(X, labels)], target=0.1, draws=50)
    assert result.sigma > 1 and result.converged
    with pytest.warns(UserWarning, match="did not reach"):
        assert not sharpness_sigma(model, [(X, labels)], target=0.1, draws=5, max_steps=3).converged


def test_sigma_names_the_fix_for_bad_input():
    model, X, labels = separable_logistic()
    with pytest.raises(NeffError, match="metric='loss'"):
        sharpness_sigma(nn.Linear(5, 1).double(), [(X, X[:, :1])])
    with pytest.raises(NeffError, match="needs loss_fn"):
        sharpness_sigma(model, [(X, labels)], metric="loss")
    with pytest.raises(NeffError, match="unknown"):
        sharpness_sigma(model, [(X, labels)], metric="error")
