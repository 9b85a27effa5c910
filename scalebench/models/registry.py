"""Model registry: ``register_model``, ``create_model(name, **config)``, ``list_models(pattern)``, model cards.

Follows torchvision's ``@register_model`` (a duplicate name is an error, not a silent overwrite) and timm's
``create_model`` / ``list_models`` (fnmatch filter, sorted). Every registered builder carries a
:class:`ModelCard`: the card is data, and ``tests/models/test_zoo.py`` rebuilds each model and checks the
card against it (parameter count, input size, forward pass).

A builder has the signature ``builder(*, num_classes: int, in_channels: int, **config) -> nn.Module``.
``card.default_config`` holds every config key with its default; ``create_model`` rejects unknown keys
with the list of valid ones. ``card.quick_config`` is a small override set for CPU demos and tests.

Config values are checked before anything is built, hashed or written (:func:`resolve_config`,
:func:`validate_model_config`), by one set of rules shared by ``scalebench evaluate``, verification and the
leaderboard:

- kind: a value has the kind of its default (true/false, an integer, a finite number, a string, a list of
  integers or of finite numbers); an integer key never takes 8.7 or 8.0, NaN and Infinity are never accepted;
- range: each model registers a :class:`ConfigRule` per key (``register_model(card, rules=...)``), in its own
  module: the range of a number or of every item of a list, the number of items, the valid strings;
- size: the model is then built on the ``meta`` device (shapes only, no memory) and its parameter count must
  not exceed :data:`MAX_PARAMETERS`; widths are bounded by :data:`MAX_CHANNELS` and list lengths (layers) by
  :data:`MAX_LAYERS`. Activation memory is not estimated: it is bounded only through the widths.

Each failure is one :class:`~scalebench.checks.ScalebenchError` naming the key, the value and what is valid.
"""

from __future__ import annotations

import fnmatch
import inspect
import json
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scalebench.checks import ScalebenchError
from scalebench.models.bibtex import BIBTEX
from scalebench.results.recipe import CardRecipe

ModelBuilder = Callable[..., Any]

#: Most trainable parameters a model config may have (100 million: 400 MB of float32 weights, about 1.6 GB with
#: gradients and Adam's moments). The largest default of the zoo has 7.8 million (``unet-l5-w32``).
MAX_PARAMETERS = 100_000_000
#: Most channels of one layer that a width in a config may ask for (the zoo's defaults use at most 192).
MAX_CHANNELS = 4096
#: Most items of a list-valued config (one per layer, e.g. ``widths``): far above any network of the zoo.
MAX_LAYERS = 512


@dataclass(frozen=True)
class ConfigRule:
    """The valid values of one config key, beyond the kind of its default (see the module docstring).

    ``low`` / ``high`` bound a number, or every item of a list (``low_open`` / ``high_open`` exclude the bound
    itself); ``min_items`` / ``max_items`` bound the length of a list; ``choices`` are the valid strings of a
    string key, or the names a list key also accepts (e.g. ``widths="lindeberg2022"``); ``limit`` names the
    constant a bound comes from, for the error message.

    Example:
        >>> ConfigRule(low=0, high=1, high_open=True).describe()
        'in [0, 1)'
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    min_items: int = 1
    max_items: int = MAX_LAYERS
    choices: tuple[str, ...] = ()
    limit: str = ""

    def describe(self) -> str:
        """The range in interval notation, e.g. ``in [1, 4096]`` or ``> 0``."""
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return "any value"

    def admits(self, x: float) -> bool:
        """Whether the number ``x`` lies in the range."""
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return not (self.high is not None and (x >= self.high if self.high_open else x > self.high))


def channels_rule(**kwargs: Any) -> ConfigRule:
    """The rule of a width (a number of channels, or a list of them, one per layer): 1 .. :data:`MAX_CHANNELS`."""
    return ConfigRule(low=1, high=MAX_CHANNELS, limit="scalebench.models.registry.MAX_CHANNELS", **kwargs)


#: The rule of a dropout probability.
PROBABILITY = ConfigRule(low=0, high=1, high_open=True)


class ModelCard(BaseModel):
    """What a model is, where it comes from and what it claims. One card per registered name."""

    model_config = ConfigDict(extra="forbid")

    name: str
    display_name: str | None = Field(
        default=None, description="the name figures and the leaderboard show (default: the registered name)"
    )
    family: str = Field(
        default="external", description="e.g. 'gaussdernet', 'njet', 'cnn', 'resnet', 'unet'; 'external'"
    )
    task: str = Field(default="classification", description="'classification' or 'segmentation'")
    paper: str | None = Field(default=None, description="full citation: authors, year, title, venue")
    bibtex_key: str | None = None
    arxiv: str | None = None
    bibtex: str | None = Field(
        default=None,
        description="the full BibTeX entry of the paper (default: the entry of bibtex_key in scalebench's "
        "references, if it has one)",
    )
    code_url: str | None = Field(
        default=None,
        description="the authors' public code, if any (scalebench's own implementation is linked too)",
    )
    default_config: dict[str, Any] = Field(description="every config key of the builder with its default")
    quick_config: dict[str, Any] = Field(
        default_factory=dict, description="small overrides for CPU demos/tests"
    )
    dataset_configs: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="config overrides per dataset (keys 'fashion-mnist' 72x72 grey, 'cifar10' 64x64 RGB, "
        "'stl10' 96x96 RGB), applied over default_config when a run uses that dataset",
    )
    licence: str | None = Field(default=None, description="the licence of the model's code, if stated")
    identity_optional: list[str] = Field(
        default_factory=list,
        description="config keys added after runs were recorded: left out of the resolved config (so of the "
        "run identity and the results) while at their default, so that earlier runs keep their identity",
    )
    input_size: tuple[int, int, int] = Field(
        default=(1, 72, 72), description="(C, H, W) the defaults are meant for (a run takes the dataset's)"
    )
    num_classes: int = 10
    num_params: int | None = Field(
        default=None,
        description="parameter count of the default config at input_size / num_classes (None: computed when "
        "the model is built; a run records the count it measured)",
    )
    scale_covariant: bool = False
    scale_invariant: bool = False
    reports_scale_selection: bool = Field(
        default=False, description="forward_with_selection() returns the winning scale channel"
    )
    channel_grid: str | None = Field(
        default=None,
        description="the config key listing the scale channels a_0 < a_1 < ... of a network with weights shared "
        "over them, which test-time densification refines (scalebench.models.densify; the GaussDer models' grid "
        "is num_scale_channels and scale_ratio)",
    )
    densify_refusal: str | None = Field(
        default=None,
        description="why the scale channels cannot be densified at test time, and what to do instead",
    )
    quick_training: CardRecipe = Field(
        default_factory=CardRecipe,
        description="recipe fields the 'quick' preset (the lite track) changes for this model, with 'source'",
    )
    paper_training: CardRecipe = Field(
        default_factory=CardRecipe,
        description="training recipe of the 'paper' preset; fields named in 'unverified' are documented defaults",
    )
    notes: str = ""

    @model_validator(mode="after")
    def _bibtex_of_key(self) -> ModelCard:
        if self.bibtex is None and self.bibtex_key in BIBTEX:
            self.bibtex = BIBTEX[self.bibtex_key]
        return self


#: The datasets a card's ``dataset_configs`` may name (the dataset names of the builds).
DATASET_CONFIG_KEYS = ("fashion-mnist", "cifar10", "stl10")
#: ``dataset_configs`` of a model whose default config suits every dataset as it is.
EVERY_DATASET_AS_IS: dict[str, dict[str, Any]] = {key: {} for key in DATASET_CONFIG_KEYS}

_REGISTRY: dict[str, tuple[ModelBuilder, ModelCard]] = {}
_RULES: dict[str, dict[str, ConfigRule]] = {}


def register_model(
    card: ModelCard, *, rules: Mapping[str, ConfigRule] | None = None
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator registering ``builder`` under ``card.name``. A duplicate name raises ``ValueError``.

    ``rules`` maps config keys to their :class:`ConfigRule` (a key without one is checked for its kind only);
    a rule for a key the card does not have raises ``ValueError``.
    """
    unknown = sorted(set(rules or {}) - set(card.default_config))
    if unknown:
        raise ValueError(f"Config rules for {card.name!r} name keys its card does not have: {unknown}.")
    grid = card.default_config.get(card.channel_grid or "")
    if card.channel_grid is not None and not isinstance(grid, list | tuple):
        raise ValueError(f"channel_grid of {card.name!r} must name a list-valued key of its default_config.")
    for dataset, overrides in card.dataset_configs.items():
        bad = sorted(set(overrides) - set(card.default_config))
        if dataset not in DATASET_CONFIG_KEYS or bad:
            raise ValueError(
                f"dataset_configs of {card.name!r}: {dataset!r} must be one of {DATASET_CONFIG_KEYS} and name "
                f"only keys of the card's default_config (unknown: {bad})."
            )

    def wrap(builder: ModelBuilder) -> ModelBuilder:
        if card.name in _REGISTRY:
            raise ValueError(
                f"Model {card.name!r} is already registered (by {_REGISTRY[card.name][0].__module__})."
            )
        _REGISTRY[card.name] = (builder, card)
        if rules:
            _RULES[card.name] = dict(rules)
        return builder

    return wrap


@dataclass(frozen=True)
class ResolvedModel:
    """A model named on the command line or in Python, resolved: its registered ``name``, ``card``, ``builder``
    and the :class:`~scalebench.models.external.ModelSource` of its code."""

    name: str
    card: ModelCard
    builder: ModelBuilder
    source: Any


_PLUGINS: list[str] | None = None
#: Model references resolved in this process: reference -> (name, source sha256).
_EXTERNAL: dict[str, tuple[str, str | None]] = {}


def _load_plugins() -> None:
    """Register the models of installed packages (entry-point group ``scalebench.models``), once."""
    global _PLUGINS
    if _PLUGINS is None:
        from scalebench.models.external import load_entry_points

        _PLUGINS = []  # set first: a plugin that looks models up while it loads must not recurse
        _PLUGINS = load_entry_points()


def _source_of(builder: ModelBuilder) -> Any:
    """The code source of a registered builder: the zoo's, or the module (and distribution) it lives in."""
    from scalebench.models import external

    while hasattr(builder, "func"):  # a functools.partial of a builder
        builder = builder.func
    module = inspect.getmodule(builder)
    name = module.__name__ if module is not None else ""
    if name.startswith("scalebench.models."):
        return external.zoo_source(builder)
    return external.module_source(builder)


def is_zoo_model(name: str) -> bool:
    """``name`` is one of scalebench's own models (its builder lives in ``scalebench.models``). Loads no plugin
    and imports nothing: the leaderboard asks it of names in results files.

    Example:
        >>> is_zoo_model("gaussdernet"), is_zoo_model("my_net")
        (True, False)
    """
    if name not in _REGISTRY:
        return False
    builder = _REGISTRY[name][0]
    while hasattr(builder, "func"):
        builder = builder.func
    module = inspect.getmodule(builder)
    return module is not None and module.__name__.startswith("scalebench.models.")


def _external_name(factory: ModelBuilder, name: str | None) -> str:
    import re

    chosen = name or getattr(factory, "__name__", "") or "model"
    if not re.fullmatch(r"[a-z0-9_][a-z0-9_.-]{0,99}", chosen):
        raise ScalebenchError(
            f"Model name {chosen!r} cannot name runs and leaderboard folders: give --name with 1-100 lowercase "
            "letters, digits, '_', '-' or '.'."
        )
    return chosen


def external_card(name: str, factory: ModelBuilder, *, task: str = "classification") -> ModelCard:
    """The card of a model from outside the zoo, made from what the factory states.

    Its config is the factory's keyword defaults; parameters are counted when it is built; input size and
    class count come from the dataset. A factory may add a dict ``scalebench_card`` (``display_name``,
    ``paper``, ``arxiv``, ``bibtex``, ``code_url``, ``licence``, ``notes``, ``scale_covariant``, ``task``).
    """
    extra = dict(getattr(factory, "scalebench_card", None) or {})
    allowed = {"display_name", "paper", "arxiv", "bibtex", "code_url", "licence", "notes", "scale_covariant",
               "scale_invariant", "task"}  # fmt: skip
    unknown = sorted(set(extra) - allowed)
    if unknown:
        raise ScalebenchError(
            f"{name}: scalebench_card has unknown keys {unknown}; valid: {', '.join(sorted(allowed))}."
        )
    task = extra.pop("task", task)
    return ModelCard(
        name=name, family="external", task=task, default_config=builder_defaults(factory), **extra
    )


def resolve_model(model: str, *, name: str | None = None) -> ResolvedModel:
    """A zoo name, a name an installed package registered, or a model reference (``FILE.py:factory``,
    ``module:factory``; see :mod:`scalebench.models.external`), resolved to its registered name, card,
    builder and code source.

    A reference is imported (this runs its code) and registered under ``name`` (default: the factory's
    name); a name the zoo already uses is an error. Resolving the same reference again with changed code
    registers the new code under the same name (a long-lived sweep worker sees the file as it is now).
    """
    from scalebench.models import external

    if not external.is_reference(model):
        if name is not None and name != model:
            raise ScalebenchError(
                f"--name renames a model from outside the zoo only; {model!r} is registered."
            )
        get_model_card(model)
        builder, card = _REGISTRY[model]
        return ResolvedModel(model, card, builder, _source_of(builder))
    factory, source = external.load_factory(model)
    chosen = _external_name(factory, name)
    known = _EXTERNAL.get(model)
    if chosen in _REGISTRY and (known is None or known[0] != chosen):
        raise ScalebenchError(
            f"Model name {chosen!r} of {model} is already registered; give another with --name."
        )
    if known is None or known != (chosen, source.sha256):
        _REGISTRY.pop(chosen, None)
        _RULES.pop(chosen, None)
        register_model(external_card(chosen, factory))(factory)
        _EXTERNAL[model] = (chosen, source.sha256)
    builder, card = _REGISTRY[chosen]
    return ResolvedModel(chosen, card, builder, source)


def register_callable(factory: ModelBuilder, *, name: str | None = None) -> str:
    """Register a factory given from Python (``scalebench.evaluate(build)``) under ``name`` (default: its own
    name) and return the name. Its source is the file it is defined in (:func:`_source_of`); registering the
    same factory again is a no-op, another one under a taken name an error."""
    if not callable(factory):
        raise ScalebenchError(f"A model factory must be callable, got a {type(factory).__name__}.")
    chosen = _external_name(factory, name)
    if chosen in _REGISTRY:
        if _REGISTRY[chosen][0] is factory:
            return chosen
        raise ScalebenchError(f"Model name {chosen!r} is already registered; give another with name=...")
    register_model(external_card(chosen, factory))(factory)
    return chosen


def registered_with(name: str, sha256: str | None) -> bool:
    """``name`` is registered in this process from code with that source sha256 (so nothing needs importing)."""
    if sha256 is None or name not in _REGISTRY:
        return False
    return _source_of(_REGISTRY[name][0]).sha256 == sha256


def config_rules(name: str) -> dict[str, ConfigRule]:
    """The :class:`ConfigRule` of every config key of ``name`` that registered one."""
    get_model_card(name)
    return dict(_RULES.get(name, {}))


def list_models(pattern: str = "*", *, task: str | None = None) -> list[str]:
    """Registered model names matching the fnmatch ``pattern`` (and ``task`` if given), sorted.

    Example:
        >>> "gaussdernet" in list_models("gauss*")
        True
    """
    _load_plugins()
    return sorted(
        n
        for n, (_, c) in _REGISTRY.items()
        if fnmatch.fnmatch(n, pattern) and (task is None or c.task == task)
    )


def get_model_card(name: str) -> ModelCard:
    """The card of a registered model; an unknown name raises with the closest registered names."""
    if name not in _REGISTRY:
        _load_plugins()
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ScalebenchError(
            f"Unknown model {name!r}.{hint} Registered models: {', '.join(sorted(_REGISTRY))}. A model of your "
            "own: give FILE.py:FACTORY or MODULE:FACTORY, or register it in the 'scalebench.models' entry-point "
            "group of your package (docs/own-model.md)."
        )
    return _REGISTRY[name][1]


def resolve_config(
    name: str, config: dict[str, Any] | None = None, *, quick: bool = False, dataset: str | None = None
) -> dict[str, Any]:
    """The full config of ``name``: the card's defaults, then its ``dataset_configs[dataset]`` (the dataset's
    name, e.g. ``cifar10``), then its quick overrides (if ``quick``), then ``config``.

    Every value is checked (see the module docstring): an unknown key raises a ScalebenchError that lists the
    valid keys; a value of another kind than its default, a non-finite number, or a value outside the key's
    :class:`ConfigRule` raises a ScalebenchError naming the key. Values are returned as given (never converted),
    so the run hash of a valid config does not depend on this check. The model size is checked by
    :func:`validate_model_config`.
    """
    card = get_model_card(name)
    if config is not None and not isinstance(config, Mapping):
        raise ScalebenchError(
            f"The config of model {name!r} must be a JSON object of KEY: VALUE pairs, got {type(config).__name__}."
        )
    merged = dict(card.default_config)
    merged.update(card.dataset_configs.get(dataset or "", {}))
    if quick:
        merged.update(card.quick_config)
    for key, value in (config or {}).items():
        if key not in card.default_config:
            raise ScalebenchError(
                f"Unknown config key {key!r} for model {name!r}. Valid keys: {', '.join(sorted(card.default_config))}."
            )
        merged[key] = value
    rules = _RULES.get(name, {})
    for key, value in merged.items():
        _check_value(name, key, value, card.default_config[key], rules.get(key))
    for key in card.identity_optional:  # later additions at their default: the config earlier runs recorded
        if key in merged and merged[key] == card.default_config[key]:
            del merged[key]
    return merged


def _check_value(name: str, key: str, value: Any, default: Any, rule: ConfigRule | None) -> None:
    """Raise a ScalebenchError naming ``key`` if ``value`` has not the kind of ``default`` or breaks ``rule``."""

    def fail(expected: str) -> None:
        shown = json.dumps(default, separators=(",", ":")) if _is_json(default) else repr(default)
        raise ScalebenchError(
            f"Config value {key}={_show(value)} for model {name!r}: expected {expected}, like the default "
            f"{shown} (e.g. --model-config '{key}={shown}')."
        )

    rule = rule or ConfigRule()
    limit = f" ({rule.limit} = {rule.high:g})" if rule.limit else ""
    names = f" or one of {', '.join(map(repr, rule.choices))}" if rule.choices else ""
    if isinstance(default, (list, tuple)):
        item = _item_kind(default)
        if isinstance(value, str) and value in rule.choices:
            return
        if not isinstance(value, (list, tuple)) or (
            default and any(_kind_mismatch(default[0], v) for v in value)
        ):
            fail(f"{item}{names}")
        if not rule.min_items <= len(value) <= rule.max_items:
            if rule.min_items == rule.max_items:
                fail(f"{item} of exactly {rule.min_items} items")
            most = (
                f" (scalebench.models.registry.MAX_LAYERS = {MAX_LAYERS})"
                if rule.max_items == MAX_LAYERS
                else ""
            )
            fail(f"{item} of {rule.min_items} to {rule.max_items} items{most}")
        if any(isinstance(v, numbers.Real) and not rule.admits(float(v)) for v in value):
            fail(f"{item}, each {rule.describe()}{limit}")
        if not _finite_tree(value):
            fail(f"{item} of finite numbers")
        return
    kind = _kind_mismatch(default, value)
    if kind:
        fail(kind)
    if isinstance(default, str) and rule.choices and value not in rule.choices:
        fail(f"one of {', '.join(map(repr, rule.choices))}")
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not rule.admits(float(value)):
        fail(f"{_kind_mismatch(default, None) or 'a number'} {rule.describe()}{limit}")
    if not _finite_tree(value):
        fail("finite numbers only (no NaN or Infinity)")


def _kind_mismatch(default: Any, value: Any) -> str | None:
    """What ``value`` should be when it does not have the kind of ``default`` (None when it has)."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, numbers.Integral):
        return None if isinstance(value, numbers.Integral) and not isinstance(value, bool) else "an integer"
    if isinstance(default, numbers.Real):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
        return None if ok else "a finite number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "a string"
    return None


def _item_kind(default: list[Any] | tuple[Any, ...]) -> str:
    kind = _kind_mismatch(default[0], None) if default else None
    return {"an integer": "a list of integers", "a finite number": "a list of finite numbers"}.get(
        kind or "", "a list"
    )


def _finite_tree(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_finite_tree(v) for v in value)
    if isinstance(value, dict):
        return all(_finite_tree(v) for v in value.values())
    return True


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _show(value: Any) -> str:
    """``repr(value)``, cut to 80 characters (a config may hold a long list)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _model_on_meta(name: str, full: dict[str, Any], num_classes: int | None, in_channels: int | None) -> Any:
    """Build ``name`` with the checked config ``full`` on the ``meta`` device (shapes, no memory); check its size."""
    import torch

    card = get_model_card(name)
    builder = _REGISTRY[name][0]
    try:
        with torch.device("meta"):
            model = builder(
                num_classes=card.num_classes if num_classes is None else num_classes,
                in_channels=card.input_size[0] if in_channels is None else in_channels,
                **full,
            )
    except ScalebenchError:
        raise
    except Exception as err:  # a builder's own failure on a value no rule covers
        raise ScalebenchError(
            f"Model {name!r} cannot be built with this config ({type(err).__name__}: {err}); check the values "
            f"against `scalebench models info {name}`."
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise ScalebenchError(
            f"The builder of model {name!r} returned a {type(model).__name__}, not a torch.nn.Module."
        )
    n = count_parameters(model)
    if n > MAX_PARAMETERS:
        changed = {k: v for k, v in full.items() if v != card.default_config.get(k)}
        raise ScalebenchError(
            f"Model {name!r} with config {_show(changed)} would have {n:,} parameters, more than the limit of "
            f"{MAX_PARAMETERS:,} (scalebench.models.registry.MAX_PARAMETERS); use smaller widths or fewer layers."
        )
    return model


def validate_model_config(
    name: str,
    config: dict[str, Any] | None,
    *,
    quick: bool = False,
    num_classes: int | None = None,
    in_channels: int | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """The full, checked config of ``name`` (see the module docstring), or one ScalebenchError naming the key.
    ``dataset``: the dataset's name, whose ``dataset_configs`` entry of the card applies.

    Checks every value as :func:`resolve_config` does, then builds the model on the ``meta`` device (no memory
    is allocated) for ``num_classes`` and ``in_channels`` (default: the card's) and checks its parameter count
    against :data:`MAX_PARAMETERS`. ``scalebench evaluate``, verification and the leaderboard validate configs
    with this function, so a config is accepted everywhere or nowhere.

    Example:
        >>> validate_model_config("cnn", {"widths": [8, 8], "pool_after": [0]})["widths"]
        [8, 8]
    """
    full = resolve_config(name, config, quick=quick, dataset=dataset)
    _model_on_meta(name, full, num_classes, in_channels)
    return full


def create_meta_model(
    name: str,
    config: dict[str, Any] | None = None,
    *,
    quick: bool = False,
    num_classes: int | None = None,
    in_channels: int | None = None,
) -> Any:
    """The model of a checked config (:func:`validate_model_config`) on the ``meta`` device: its parameters and
    buffers have shapes and dtypes but no storage. Verification compares a checkpoint's shapes with it before
    anything is allocated."""
    full = resolve_config(name, config, quick=quick)
    return _model_on_meta(name, full, num_classes, in_channels)


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
    quick: bool = False,
    **config: Any,
):
    """Build a registered model. ``num_classes`` and ``in_channels`` default to the card's input.

    The config is checked first (:func:`validate_model_config`: kinds, ranges, and the size on the ``meta``
    device), so an invalid or oversized config allocates nothing. The meta build draws no random numbers: the
    weights are those of the builder called directly after the same ``torch.manual_seed``.

    Example:
        >>> m = create_model("cnn", num_classes=10, in_channels=1)
        >>> m(__import__("torch").zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    card = get_model_card(name)
    builder = _REGISTRY[name][0]
    full = validate_model_config(name, config, quick=quick, num_classes=num_classes, in_channels=in_channels)
    return builder(
        num_classes=card.num_classes if num_classes is None else num_classes,
        in_channels=card.input_size[0] if in_channels is None else in_channels,
        **full,
    )


def count_parameters(model: Any) -> int:
    """Number of trainable parameters (batch-norm running statistics are buffers and do not count)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def builder_defaults(builder: ModelBuilder) -> dict[str, Any]:
    """The keyword defaults of a builder (function or class), except ``num_classes`` and ``in_channels``.

    A card whose ``default_config`` is exactly the builder's defaults takes it from here, so the defaults
    are written once, in the signature.

    Example:
        >>> def build(*, num_classes: int, in_channels: int, width: int = 16, order: int = 2): ...
        >>> builder_defaults(build)
        {'width': 16, 'order': 2}
    """
    return {
        k: p.default
        for k, p in inspect.signature(builder).parameters.items()
        if k not in ("num_classes", "in_channels") and p.default is not inspect.Parameter.empty
    }


def builder_signature(name: str) -> inspect.Signature:
    """The signature of a registered builder (used by tests to check that cards list every config key)."""
    return inspect.signature(_REGISTRY[name][0])
