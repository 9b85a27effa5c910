"""Every registered model, through its card: forward/backward, shapes, parameter count, determinism, config.

Parametrised over ``list_models(task="classification")``, so a newly registered classifier is tested without
new test code (segmentation models: ``tests/segmentation/test_seg_models.py``). Each
model runs with its card's ``quick_config`` on a tiny input (batch 2, 24x24); the parameter count is checked
on the default config, without a forward pass.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from scalebench.checks import ScalebenchError
from scalebench.models import count_parameters, create_model, get_model_card, list_models
from scalebench.models.baselines import cifar_resnet_plan
from scalebench.models.registry import builder_signature

MODELS = list_models(task="classification")
TINY = 24


def _tiny_input(name: str, seed: int = 0) -> torch.Tensor:
    card = get_model_card(name)
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, card.input_size[0], TINY, TINY, generator=g)


def _quick(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, quick=True)


def test_zoo_has_the_models_of_issue_3():
    for name in ("cnn", "resnet20", "njetnet_nin", "njetnet_resnet32"):
        assert name in MODELS


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_shapes_and_finite(name: str):
    card = get_model_card(name)
    model = _quick(name)
    model.train()
    x = _tiny_input(name)
    y = model(x)
    assert y.shape == (2, card.num_classes)
    assert torch.isfinite(y).all()
    y.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_equals_card(name: str):
    card = get_model_card(name)
    model = create_model(name)  # default config, the card's classes and input channels
    assert count_parameters(model) == card.num_params


@pytest.mark.parametrize("name", MODELS)
def test_deterministic_given_seed(name: str):
    x = _tiny_input(name)
    outs = []
    for _ in range(2):
        model = _quick(name, seed=3).eval()
        with torch.no_grad():
            outs.append(model(x))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    other = _quick(name, seed=4).eval()
    with torch.no_grad():
        assert not torch.equal(other(x), outs[0])


@pytest.mark.parametrize("name", MODELS)
def test_card_lists_every_builder_kwarg_with_its_default(name: str):
    card = get_model_card(name)
    params = builder_signature(name).parameters
    named = {
        k: p
        for k, p in params.items()
        if k not in ("num_classes", "in_channels") and p.kind is not inspect.Parameter.VAR_KEYWORD
    }
    takes_var_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if takes_var_kwargs:
        assert set(named) <= set(card.default_config)
        # a **config builder must accept every key of the card: pass them all explicitly
        model = create_model(name, **card.default_config)
        assert count_parameters(model) == card.num_params
    else:
        assert set(named) == set(card.default_config), (
            "card.default_config must list exactly the builder kwargs"
        )
    for key, p in named.items():
        if p.default is not inspect.Parameter.empty:
            assert p.default == card.default_config[key], f"{name}.{key}: builder default != card default"
    assert set(card.quick_config) <= set(card.default_config)
    assert card.input_size[0] >= 1 and card.num_params > 0 and card.paper and card.bibtex_key


@pytest.mark.parametrize("name", MODELS)
def test_unknown_config_key_is_a_clear_error(name: str):
    with pytest.raises(
        ScalebenchError, match=rf"Unknown config key 'no_such_key' for model '{name}'. Valid keys"
    ):
        create_model(name, no_such_key=1)


def test_unknown_model_lists_close_and_registered_names():
    with pytest.raises(
        ScalebenchError, match=r"Unknown model 'resnet21'. Did you mean .*'resnet20'.*Registered models: "
    ):
        create_model("resnet21")


@pytest.mark.parametrize("name", MODELS)
def test_learned_sigmas_and_scale_selection_interfaces(name: str):
    card = get_model_card(name)
    model = _quick(name).eval()
    x = _tiny_input(name)
    if hasattr(model, "learned_sigmas"):
        sigmas = model.learned_sigmas()
        assert sigmas and all(isinstance(s, float) and s > 0 for s in sigmas)
    if card.reports_scale_selection:
        with torch.no_grad():
            logits, winner = model.forward_with_selection(x)
        assert logits.shape == (2, card.num_classes) and winner.shape[0] == 2


def test_cnn_baseline_has_the_depth_and_width_of_the_default_gaussdernet():
    cnn = get_model_card("cnn").default_config
    gdn = get_model_card("gaussdernet").default_config
    assert tuple(cnn["widths"]) == tuple(gdn["widths"])
    model = create_model("cnn")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == len(gdn["widths"]) + 1  # + the class layer, as GaussDerNet
    assert all(c.kernel_size == (3, 3) for c in convs)


@pytest.mark.parametrize(
    ("name", "label"), [("resnet20", "CIFAR ResNet"), ("njetnet_resnet32", "N-Jet ResNet")]
)
def test_both_cifar_resnets_check_depth_and_width_in_one_place(name: str, label: str):
    """The plain and the N-Jet ResNet share one block plan: same stage layout, same errors."""
    with pytest.raises(ScalebenchError, match=f"{label} depth must be 6n\\+2 .* got 9"):
        create_model(name, depth=9)
    with pytest.raises(
        ScalebenchError, match=f"width=0 for model '{name}': expected an integer in \\[1, 1024\\]"
    ):
        create_model(name, depth=8, width=0)  # the registry's rule, shared by both cards
    with pytest.raises(ScalebenchError, match=f"{label} width must be a positive integer, got 0"):
        cifar_resnet_plan(8, 0, name=label)
    model = create_model(name, depth=14, width=2)
    assert [b.conv2.out_channels for b in model.blocks] == [2, 2, 4, 4, 8, 8]


@pytest.mark.parametrize("name", MODELS)
def test_the_protocol_can_put_every_model_on_its_device_channels_last(name: str):
    """The protocol moves each model with ``model_to_device`` (channels-last on the classification task); a
    model with a 5-D kernel (DSS) must survive it, and the output must not depend on the memory format."""
    from scalebench.benchmark.engine import model_to_device

    model = _quick(name).eval()
    x = _tiny_input(name)
    with torch.no_grad():
        plain = model(x)
        moved = model_to_device(model, torch.device("cpu"), channels_last=True)
        out = moved(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, plain, rtol=1e-4, atol=1e-5)
