"""Model registry: ``register_model``, ``create_model(name, **config)``, ``list_models(pattern)``, model cards.

Follows torchvision's ``@register_model`` (a duplicate name is an error, not a silent overwrite) and timm's
``create_model`` / ``list_models`` (fnmatch filter, sorted). Every registered builder carries a
:class:`ModelCard`: the card is data, and ``tests/models/test_zoo.py`` rebuilds each model and checks the
card against it (parameter count, input size, forward pass).

A builder has the signature ``builder(*, num_classes: int, in_channels: int, **config) -> nn.Module``.
``card.default_config`` holds every config key with its default; ``create_model`` rejects unknown keys
with the list of valid ones. ``card.quick_config`` is a small override set for CPU demos and tests.
"""

from __future__ import annotations

import fnmatch
import inspect
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from scalebench.checks import ScalebenchError

ModelBuilder = Callable[..., Any]


class ModelCard(BaseModel):
    """What a model is, where it comes from and what it claims. One card per registered name."""

    model_config = ConfigDict(extra="forbid")

    name: str
    display_name: str | None = Field(
        default=None, description="the name figures and the leaderboard show (default: the registered name)"
    )
    family: str = Field(description="e.g. 'gaussdernet', 'njet', 'cnn', 'resnet', 'unet'")
    task: str = Field(default="classification", description="'classification' or 'segmentation'")
    paper: str = Field(description="full citation: authors, year, title, venue")
    bibtex_key: str
    arxiv: str | None = None
    bibtex: str | None = Field(default=None, description="the full BibTeX entry of the paper")
    code_url: str | None = Field(
        default=None,
        description="the authors' public code, if any (scalebench's own implementation is linked too)",
    )
    default_config: dict[str, Any] = Field(description="every config key of the builder with its default")
    quick_config: dict[str, Any] = Field(
        default_factory=dict, description="small overrides for CPU demos/tests"
    )
    input_size: tuple[int, int, int] = Field(description="(C, H, W) the defaults are meant for")
    num_classes: int = 10
    num_params: int = Field(description="parameter count of the default config at input_size / num_classes")
    scale_covariant: bool
    scale_invariant: bool = False
    reports_scale_selection: bool = Field(
        description="forward_with_selection() returns the winning scale channel"
    )
    quick_training: dict[str, Any] = Field(
        default_factory=dict,
        description="recipe fields the 'quick' preset (the lite track) changes for this model, with 'source'",
    )
    paper_training: dict[str, Any] = Field(
        default_factory=dict,
        description="training recipe of the 'paper' preset; keys marked in 'unverified' are documented defaults",
    )
    notes: str = ""


_REGISTRY: dict[str, tuple[ModelBuilder, ModelCard]] = {}


def register_model(card: ModelCard) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator registering ``builder`` under ``card.name``. A duplicate name raises ``ValueError``."""

    def wrap(builder: ModelBuilder) -> ModelBuilder:
        if card.name in _REGISTRY:
            raise ValueError(
                f"Model {card.name!r} is already registered (by {_REGISTRY[card.name][0].__module__})."
            )
        _REGISTRY[card.name] = (builder, card)
        return builder

    return wrap


def _ensure_loaded() -> None:
    """Import the model modules so that their ``@register_model`` decorators run."""
    import scalebench.models.zoo  # noqa: F401  (registers every model)


def list_models(pattern: str = "*", *, task: str | None = None) -> list[str]:
    """Registered model names matching the fnmatch ``pattern`` (and ``task`` if given), sorted.

    Example:
        >>> "gaussdernet" in list_models("gauss*")
        True
    """
    _ensure_loaded()
    return sorted(
        n
        for n, (_, c) in _REGISTRY.items()
        if fnmatch.fnmatch(n, pattern) and (task is None or c.task == task)
    )


def get_model_card(name: str) -> ModelCard:
    """The card of a registered model; an unknown name raises with the closest registered names."""
    _ensure_loaded()
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ScalebenchError(
            f"Unknown model {name!r}.{hint} Registered models: {', '.join(sorted(_REGISTRY))}. "
            "Models are registered with @register_model in scalebench/models/ (see `scalebench models list`)."
        )
    return _REGISTRY[name][1]


def resolve_config(name: str, config: dict[str, Any] | None = None, *, quick: bool = False) -> dict[str, Any]:
    """The full config of ``name``: the card's defaults, then its quick overrides (if ``quick``), then ``config``.

    Unknown keys raise a ScalebenchError that lists the valid keys; a value of another kind than a boolean,
    integer or float default (true/false, an integer, a number) raises a ScalebenchError naming the key.
    """
    card = get_model_card(name)
    merged = dict(card.default_config)
    if quick:
        merged.update(card.quick_config)
    for key, value in (config or {}).items():
        if key not in card.default_config:
            raise ScalebenchError(
                f"Unknown config key {key!r} for model {name!r}. Valid keys: {', '.join(sorted(card.default_config))}."
            )
        kind = _kind_mismatch(card.default_config[key], value)
        if kind:
            default = card.default_config[key]
            raise ScalebenchError(
                f"Config value {key}={value!r} for model {name!r}: expected {kind}, like the default "
                f"{json.dumps(default)} (e.g. --model-config {key}={json.dumps(default)})."
            )
        merged[key] = value
    return merged


def _kind_mismatch(default: Any, value: Any) -> str | None:
    """What ``value`` should be when it does not match the kind of a boolean, integer or float default."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if isinstance(default, float):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    return None


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
    quick: bool = False,
    **config: Any,
):
    """Build a registered model. ``num_classes`` and ``in_channels`` default to the card's input.

    Example:
        >>> m = create_model("cnn", num_classes=10, in_channels=1)
        >>> m(__import__("torch").zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    card = get_model_card(name)
    builder = _REGISTRY[name][0]
    full = resolve_config(name, config, quick=quick)
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
    _ensure_loaded()
    return inspect.signature(_REGISTRY[name][0])
