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
    [("num_scale_channels", "abc", "an integer, like the default 8"), ("epsilon", None, "a finite number"),
     ("include_zero_order", "abc", "true or false, like the default true"), ("max_order", 2.5, "an integer"),
     ("num_scale_channels", True, "an integer"), ("sigma0", False, "a finite number")],
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


# ---------------------------------------------------------------------------------------------------------
# Config validation (reliability probe D11, D17): one ScalebenchError naming the key, before anything is built


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("cnn", {"widths": "abc"}, r"widths='abc' for model 'cnn': expected a list of integers"),
        ("cnn", {"widths": ["x", 8]}, r"widths=\['x', 8\] .*expected a list of integers"),
        ("cnn", {"pool_after": ["a"]}, r"pool_after=\['a'\] .*expected a list of integers"),
        ("cnn", {"widths": 5}, r"widths=5 .*expected a list of integers"),
        (
            "cnn",
            {"widths": [8.7, 8]},
            r"widths=\[8\.7, 8\] .*expected a list of integers",
        ),  # D17: never truncated
        ("cnn", {"dropout": float("nan")}, r"dropout=nan .*expected a finite number"),
        ("cnn", {"dropout": float("inf")}, r"dropout=inf .*expected a finite number"),
        ("gaussdernet", {"sigma0": float("nan")}, r"sigma0=nan .*expected a finite number"),
        ("cnn", {"dropout": 2}, r"dropout=2 .*expected a finite number in \[0, 1\)"),
        (
            "cnn",
            {"dropout": -1},
            r"dropout=-1 .*expected a finite number in \[0, 1\)",
        ),  # D17: accepted before
        ("cnn", {"global_pool": "median"}, r"global_pool='median' .*expected one of 'avg', 'max'"),
        (
            "gaussdernet",
            {"sigma0": 1e30},
            r"sigma0=1e\+30 .*\(0, 256\] \(scalebench.models.gaussder.MAX_SIGMA",
        ),
        (
            "gaussdernet",
            {"num_scale_channels": 100000},
            r"num_scale_channels=100000 .*MAX_SCALE_CHANNELS = 64",
        ),
        (
            "cnn",
            {"widths": [100000, 100000]},
            r"widths=.* each in \[1, 4096\] .*registry.MAX_CHANNELS = 4096",
        ),
        (
            "gaussdernet",
            {"widths": [1e9]},
            r"widths=\[1000000000.0\] .*list of integers or one of 'lindeberg2022'",
        ),
        ("gaussdernet", {"widths": "abc"}, r"widths='abc' .*or one of 'lindeberg2022'"),
        (
            "cnn",
            {"widths": [8] * 600},
            r"widths=.* of 1 to 512 items \(scalebench.models.registry.MAX_LAYERS",
        ),
        ("njetnet_nin", {"channels": [8, 8]}, r"channels=\[8, 8\] .*of exactly 8 items"),
        ("njetnet_nin", {"init_sigma": 1e6}, r"init_sigma=.*MAX_NJET_SIGMA"),
        ("unet", {"levels": 40}, r"levels=40 .*in \[1, 8\]"),
    ],
)
def test_an_invalid_config_value_is_one_error_naming_the_key(name, config, message):
    with pytest.raises(ScalebenchError, match=message):
        registry.validate_model_config(name, config)


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("cnn", {"widths": [4000] * 8}, r"would have 1,008,460,010 parameters, more than the limit of 100,000,000 "
                                        r"\(scalebench.models.registry.MAX_PARAMETERS\)"),
        ("gaussdernet", {"sigma_growth": 3.0}, r"largest sigma .* exceeds scalebench.models.gaussder.MAX_SIGMA"),
        ("gaussdernet", {"max_order": 0, "include_zero_order": False}, r"leaves no N-jet term"),
        ("cnn", {"widths": [8, 8], "pool_after": [5]}, r"pool_after lists layer indices \[5\] outside 0..1"),
    ],
)  # fmt: skip
def test_sizes_and_cross_key_limits_are_checked_on_the_meta_device(name, config, message):
    with pytest.raises(ScalebenchError, match=message):
        registry.validate_model_config(name, config)
    with pytest.raises(ScalebenchError, match=message):
        create_model(name, **config)  # create_model checks the same way before building for real


def test_valid_configs_pass_unchanged():
    """Values are returned as given (never converted), so the run hash of a valid config does not change."""
    full = registry.validate_model_config("cnn", {"widths": [8] * 60, "pool_after": [0]})
    assert full["widths"] == [8] * 60 and full["global_pool"] == "avg"
    assert (
        registry.validate_model_config("gaussdernet", {"widths": "lindeberg2022"})["widths"]
        == "lindeberg2022"
    )
    assert registry.validate_model_config("gaussdernet", {"sigma0": 1})["sigma0"] == 1  # an int stays an int
    assert registry.validate_model_config("cnn", None, quick=True)["widths"] == (
        8,
        8,
        12,
        12,
    )  # the card's tuple
    with pytest.raises(ScalebenchError, match=r"must be a JSON object"):
        registry.validate_model_config("cnn", [1, 2])


def _zoo() -> list[str]:
    """The models scalebench registers (not the stand-ins other test folders register)."""
    builders = {n: registry._REGISTRY[n][0] for n in list_models()}
    return [
        n for n, b in builders.items() if getattr(b, "func", b).__module__.startswith("scalebench.models.")
    ]


@pytest.mark.parametrize("name", _zoo())
def test_every_zoo_key_has_a_rule_and_the_card_configs_pass(name):
    card = get_model_card(name)
    rules = registry.config_rules(name)
    assert [k for k, v in card.default_config.items() if k not in rules and not isinstance(v, bool)] == []
    registry.validate_model_config(name, {})
    registry.validate_model_config(name, {}, quick=True)
    meta = registry.create_meta_model(name)
    assert count_parameters(meta) == card.num_params
    assert all(p.device.type == "meta" for p in meta.parameters())


def test_the_meta_build_draws_no_random_numbers():
    """create_model builds on the meta device first; the weights must equal those of the builder called directly."""
    torch.manual_seed(3)
    a = create_model("gaussdernet", quick=True)
    torch.manual_seed(3)
    b = registry._REGISTRY["gaussdernet"][0](
        num_classes=10, in_channels=1, **resolve_config("gaussdernet", quick=True)
    )
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_a_rule_for_a_key_the_card_lacks_is_refused(toy_registry):
    with pytest.raises(ValueError, match=r"name keys its card does not have: \['depth'\]"):
        register_model(_card("toy_two"), rules={"depth": registry.ConfigRule(low=1)})


def test_run_hashes_of_existing_configs_are_unchanged():
    """Pinned before the config checks were added: results already computed keep their run directories."""
    from scalebench.benchmark.config import make_config, resolve_recipe, run_identity
    from scalebench.fileio import config_hash

    def run_hash(name, preset, over, scales):
        card = get_model_card(name)
        cfg = make_config(
            model=name, dataset="fashion-mnist-embedded", preset=preset, model_config_overrides=over
        )
        model_config = registry.validate_model_config(name, over, quick=preset == "quick")
        recipe = resolve_recipe(preset, card.paper_training, {}, card.quick_training)
        return config_hash(run_identity(cfg, recipe, model_config, scales))

    assert run_hash("cnn", "quick", {}, [0.5, 1.0, 2.0]) == "caa2cbe7dbef"
    assert run_hash("gaussdernet", "quick", {}, [0.5, 1.0, 2.0]) == "1cdd389712b4"
    assert run_hash("unet", "paper", {}, [0.5, 1.0, 2.0]) == "d607d3b70c0b"
    over = {"widths": [8, 8], "pool_after": [0], "dropout": 0.1}
    assert run_hash("cnn", "quick", over, [1.0]) == "532b3e36ea68"
    assert run_hash("gaussdernet", "quick", {"sigma0": 1, "widths": "lindeberg2022"}, [1.0]) == "baebb4367330"


def test_dataset_configs_apply_per_dataset_then_quick_then_overrides(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    card = _card("toy_per_dataset", dataset_configs={"stl10": {"width": 8}, "cifar10": {"bias": False}})

    @register_model(card)
    def toy_per_dataset(
        *, num_classes: int, in_channels: int, width: int = 4, bias: bool = True
    ) -> nn.Module:
        return nn.Conv2d(in_channels, width, 1, bias=bias)

    assert resolve_config("toy_per_dataset")["width"] == 4
    assert resolve_config("toy_per_dataset", dataset="stl10")["width"] == 8
    assert resolve_config("toy_per_dataset", dataset="cifar10") == {"width": 4, "bias": False}
    assert resolve_config("toy_per_dataset", dataset="stl10", quick=True)["width"] == 2  # quick shrinks after
    assert resolve_config("toy_per_dataset", {"width": 5}, dataset="stl10")["width"] == 5
    with pytest.raises(ValueError, match=r"dataset_configs of 'toy_bad'.*unknown: \['depth'\]"):
        register_model(_card("toy_bad", dataset_configs={"stl10": {"depth": 3}}))
    with pytest.raises(ValueError, match="must be one of"):
        register_model(_card("toy_bad", dataset_configs={"imagenet": {}}))


def test_a_card_recipe_is_typed_and_checked_when_the_card_is_made():
    """A card states its recipe in Recipe's own fields and values: a misspelt field, an 'SGD' or an unverified
    name it does not set fails when the card is made, not in a run."""
    from pydantic import ValidationError

    for bad in (
        {"optimizer": "SGD"},
        {"lr_factor": 0.1},
        {"lr": float("nan")},
        {"scale_augmentation": [0.01, 2.0]},
        {"lr": 0.1, "unverified": ["epochs"]},
    ):
        with pytest.raises(ValidationError):
            _card("toy_recipe", paper_training=bad)
    card = _card(
        "toy_recipe",
        paper_training={
            "optimizer": "sgd",
            "lr": 0.1,
            "unverified": ["lr", "grid"],
            "facts": {"grid": [1, 2]},
        },
        quick_training={"micro_batch_size": None, "source": "test"},
    )
    assert card.paper_training.fields() == {"optimizer": "sgd", "lr": 0.1}
    recorded = card.model_dump()
    assert recorded["paper_training"] == {
        "optimizer": "sgd", "lr": 0.1, "unverified": ["lr", "grid"], "facts": {"grid": [1, 2]}
    }  # fmt: skip
    assert recorded["quick_training"] == {"micro_batch_size": None, "source": "test"}
    from scalebench.benchmark.config import resolve_recipe

    assert resolve_recipe("quick", card.paper_training, {}, card.quick_training).micro_batch_size is None
    paper = resolve_recipe("paper", card.paper_training, {}, card.quick_training)
    assert (paper.optimizer, paper.lr, paper.epochs) == ("sgd", 0.1, 40)
