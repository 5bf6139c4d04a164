import pytest
import torch

from neff import NeffError
from neff.models import MODELS, build_model, count_parameters


@pytest.mark.parametrize("k", [1, 2, 5])
def test_preact_resnet18_parameter_count(k):
    # the paper's ResNet18-k on CIFAR-100 has 2724 k^2 + 933 k + 100 parameters
    assert count_parameters(build_model("preact_resnet18", 100, (3, 32, 32), k=k)) == 2724 * k * k + 933 * k + 100


@pytest.mark.parametrize("width, depth, count", [(4, 0, 620), (64, 3, 1_604_196), (64, 8, 2_564_580)])
def test_convnet_depth_parameter_count(width, depth, count):
    assert count_parameters(build_model("convnet_depth", 100, (3, 32, 32), width=width, depth=depth)) == count


def test_original_head_pool_sees_only_the_top_left_at_depth_0():
    """hess/nets/convnet.py ends in MaxPool2d(4 * 2 * (3 - depth)) below depth 3: at depth 0 a
    24 x 24 window of the 32 x 32 map, blind to the bottom-right; global pooling is not."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    corner = x.clone()
    corner[..., 26:, 26:] = 10.0  # inputs beyond the window's receptive field (24 + 1 for the 3x3 conv)
    for depth, blind in ((0, True), (1, False), (2, False), (3, False)):
        original = build_model("convnet_depth", 10, (3, 32, 32), width=4, depth=depth, head_pool="original").eval()
        pooled = build_model("convnet_depth", 10, (3, 32, 32), width=4, depth=depth).eval()
        pooled.load_state_dict(original.state_dict())
        with torch.no_grad():
            assert torch.equal(original(x), original(corner)) == blind
            assert torch.equal(original(corner), pooled(corner)) == (depth > 0)
    with pytest.raises(NeffError, match="needs 32 x 32 inputs"):
        build_model("convnet_depth", 10, (1, 8, 8), width=4, depth=0, head_pool="original")


def test_lenet_parameter_count():
    assert count_parameters(build_model("lenet", 10, (3, 32, 32))) == 62_006


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_every_family_runs_on_digits_and_cifar_shapes(name, shape):
    kwargs = {"preact_resnet18": {"k": 2}, "convnet_depth": {"width": 4, "depth": 5}}.get(name, {})
    model = build_model(name, 7, shape, **kwargs)
    assert model(torch.randn(3, *shape)).shape == (3, 7)


def test_mlp_options():
    model = build_model("mlp", 3, (2,), width=5, depth=3, activation="elu", bias=False)
    assert count_parameters(model) == 2 * 5 + 5 * 5 * 2 + 5 * 3
    with pytest.raises(NeffError, match="activation='swish' is unknown"):
        build_model("mlp", 3, (2,), activation="swish")


def test_registry_errors_name_the_choices():
    with pytest.raises(NeffError, match="unknown model 'resnet50'; choose one of preact_resnet18"):
        build_model("resnet50", 10, (3, 32, 32))
    with pytest.raises(NeffError, match="takes width, depth, activation, bias; got unknown option"):
        build_model("mlp", 10, (1, 8, 8), k=3)
