"""Keyword groups declared once (models.keywords) reach the layer that consumes them, in every network."""

import inspect
from typing import Any

import pytest

from scalebench.checks import ScalebenchError
from scalebench.models import count_parameters, create_model
from scalebench.models.baselines import check_layout
from scalebench.models.keywords import shared_keywords, takes_keywords_of
from scalebench.models.registry import builder_signature


def _layout(*, width: int = 8, depth: int = 2, hidden: str = "x") -> None: ...


@takes_keywords_of(_layout, exclude=("hidden",), depth=3)
class _Net:
    def __init__(self, *, num_classes: int, bias: bool = True, **group: Any) -> None:
        self.num_classes, self.bias, self.group = num_classes, bias, group


def test_group_enters_the_signature_in_order_with_overridden_defaults():
    params = inspect.signature(_Net).parameters
    assert list(params) == ["num_classes", "width", "depth", "bias"]
    assert params["depth"].default == 3 and params["width"].default == 8
    assert [p.name for p in shared_keywords(_layout, exclude=("hidden",))] == ["width", "depth"]


def test_group_defaults_are_filled_in_and_calls_are_checked():
    net = _Net(num_classes=2, width=4)
    assert net.group == {"width": 4, "depth": 3} and net.bias is True
    with pytest.raises(TypeError, match="hidden"):
        _Net(num_classes=2, hidden="y")  # excluded from the group
    with pytest.raises(TypeError, match="num_classes"):
        _Net(width=4)


def test_overriding_a_keyword_the_source_lacks_fails_at_declaration():
    with pytest.raises(TypeError, match="nope"):
        takes_keywords_of(_layout, nope=1)


@pytest.mark.parametrize("name", ["cnn", "si_convnet", "sicnn", "fovmax", "input_pyramid", "stn_cnn"])
def test_layout_keywords_reach_the_plain_cnn_layers(name: str):
    """Every network with the plain-CNN layout takes check_layout's keywords, and they shape its layers."""
    params = builder_signature(name).parameters
    for p in inspect.signature(check_layout).parameters.values():
        assert p.name in params
    small = create_model(name, num_classes=10, in_channels=1, widths=(4, 4), pool_after=(0,))
    default = create_model(name, num_classes=10, in_channels=1)
    assert count_parameters(small) < count_parameters(default)
    with pytest.raises(ScalebenchError, match="pool_after"):
        create_model(name, num_classes=10, in_channels=1, widths=(4, 4), pool_after=(5,))


@pytest.mark.parametrize("name", ["sesn", "disco", "dss"])
def test_head_keywords_reach_the_scale_equivariant_cnn(name: str):
    model = create_model(name, num_classes=10, in_channels=1, widths=(4, 6), hidden=0, pool_after=(0,))
    assert [c.out_channels for c in model.convs] == [4, 6]
    assert len(model.head) == 3  # hidden 0: BatchNorm1d -> Dropout -> Linear
    assert model.pool_after == frozenset({0})


@pytest.mark.parametrize("name", ["njetnet_resnet32", "njetnet_nin", "njet-unet"])
def test_njet_keywords_reach_every_njet_layer(name: str):
    from scalebench.models.njet import NJetConv2d

    model = create_model(name, num_classes=10, in_channels=3, order=1, init_sigma=2.0, learn_sigma=False)
    layers = [m for m in model.modules() if isinstance(m, NJetConv2d)]
    assert layers
    assert all(m.order == 1 and not m.log2_sigma.requires_grad for m in layers)
    assert all(float(m.sigma) == pytest.approx(2.0) for m in layers)
