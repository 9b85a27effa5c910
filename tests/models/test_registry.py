"""The model registry: registration, duplicate names, listing, configs, cards and the describe helpers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scalebench.checks import ScalebenchError
from scalebench.models import (
    ModelCard,
    count_parameters,
    create_model,
    get_model_card,
    list_models,
    register_model,
    registry,
    resolve_config,
)
from scalebench.models.describe import LIST_COLUMNS, model_info, model_rows


def _card(name: str, **over) -> ModelCard:
    fields = {
        "name": name,
        "family": "toy",
        "paper": "nobody (2026), a toy",
        "bibtex_key": "toy2026",
        "default_config": {"width": 4, "bias": True},
        "quick_config": {"width": 2},
        "input_size": (1, 8, 8),
        "num_classes": 3,
        "num_params": 4 * 1 + 4 + 4 * 3 + 3,
        "scale_covariant": False,
        "reports_scale_selection": False,
    }
    fields.update(over)
    return ModelCard(**fields)


@pytest.fixture
def toy_registry(monkeypatch):
    """A private copy of the registry with one toy model; the real registry is untouched afterwards."""
    list_models()  # load the zoo first
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_model(_card("toy_net"))
    def toy_net(*, num_classes: int, in_channels: int, width: int = 4, bias: bool = True) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(in_channels, width, 1, bias=bias),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, num_classes),
        )

    return toy_net


def test_register_and_create_uses_card_defaults(toy_registry):
    assert "toy_net" in list_models("toy*")
    model = create_model("toy_net")
    assert model[0].in_channels == 1 and model[-1].out_features == 3
    assert count_parameters(model) == get_model_card("toy_net").num_params
    assert create_model("toy_net", quick=True)[0].out_channels == 2
    assert create_model("toy_net", quick=True, width=5)[0].out_channels == 5  # explicit beats quick
    assert create_model("toy_net", num_classes=7, in_channels=2)(torch.zeros(1, 2, 4, 4)).shape == (1, 7)


def test_duplicate_name_is_refused(toy_registry):
    with pytest.raises(ValueError, match="'toy_net' is already registered"):
        register_model(_card("toy_net"))(lambda **kw: None)


def test_registry_fixture_leaves_the_real_registry_alone():
    assert "toy_net" not in list_models()


def test_list_models_filters_with_fnmatch_and_sorts():
    names = list_models()
    assert names == sorted(names)
    assert list_models("njetnet_*") == ["njetnet_nin", "njetnet_resnet32"]
    assert list_models("resnet*") == ["resnet20", "resnet32"]
    assert list_models("no_such_*") == []
    assert set(list_models(task="classification")) >= {"cnn", "resnet20", "njetnet_nin"}


def test_resolve_config_merges_defaults_quick_and_overrides():
    full = resolve_config("njetnet_nin", {"order": 3}, quick=True)
    assert full["order"] == 3 and full["channels"] == (8,) * 8 and full["k"] == 2.0
    with pytest.raises(
        ScalebenchError, match=r"Unknown config key 'ordre' for model 'njetnet_nin'\. Valid keys: .*order"
    ):
        resolve_config("njetnet_nin", {"ordre": 3})


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [("num_scale_channels", "abc", "an integer, like the default 8"), ("epsilon", None, "a number"),
     ("include_zero_order", "abc", "true or false, like the default true"), ("max_order", 2.5, "an integer"),
     ("num_scale_channels", True, "an integer"), ("sigma0", False, "a number")],
)  # fmt: skip
def test_a_value_of_the_wrong_kind_names_the_key(key, value, expected):
    with pytest.raises(
        ScalebenchError, match=f"Config value {key}={value!r} for model 'gaussdernet': expected {expected}"
    ):
        resolve_config("gaussdernet", {key: value})
    assert (
        resolve_config("gaussdernet", {"num_scale_channels": 4, "sigma0": 1})["sigma0"] == 1
    )  # ints are numbers


def test_unknown_model_error_names_close_matches():
    with pytest.raises(ScalebenchError, match=r"Did you mean 'njetnet_nin'"):
        get_model_card("njetnet_nim")


def test_card_rejects_unknown_fields():
    with pytest.raises(Exception, match="extra"):
        _card("x", num_parms=3)


def test_count_parameters_skips_frozen_parameters():
    trainable = count_parameters(create_model("njetnet_nin", quick=True))
    frozen = count_parameters(create_model("njetnet_nin", quick=True, learn_sigma=False))
    assert trainable - frozen == 3  # one sigma per N-Jet layer


def test_model_rows_and_info():
    rows = model_rows("njetnet*")
    assert [r["name"] for r in rows] == ["njetnet_nin", "njetnet_resnet32"]
    assert set(rows[0]) == set(LIST_COLUMNS)
    assert rows[0]["params"] == "496,663" and rows[0]["covariant"] == "no"
    info = dict(model_info("njetnet_nin"))
    assert "Pintea" in info["paper"] and info["bibtex key"] == "pintea2021resolution"
    assert info["parameters"].startswith("496,663")
    assert info["default order"] == "2" and info["scale covariant"] == "no"
    assert info["paper training lr"] == "0.1"
    with pytest.raises(ScalebenchError, match=r"No registered model matches 'zzz\*'"):
        model_rows("zzz*")
