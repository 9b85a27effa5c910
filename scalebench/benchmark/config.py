"""The configuration of one evaluation run, its presets, and the training recipe they resolve to.

A run is fully described by :class:`EvalConfig` (what the CLI parses into) and, after resolution, by
:class:`Recipe` plus the model's full config: their canonical JSON is hashed to name the run directory
(DomainBed's sweep convention: ``Job`` hashes the sorted-key JSON of its arguments; Gulrajani & Lopez-Paz, 2021,
"In search of lost domain generalization", ICLR).

Presets:

- ``quick``: sized for a 2-core CPU (a few epochs of AdamW with a cosine schedule, micro-batches of 8), the
  recipe of the ``lite`` track. Uses the model card's ``quick_config`` and its ``quick_training`` (the few
  recipe fields a model family changes, e.g. the learning rate of the Gaussian derivative networks).
- ``paper``: the generic defaults below, overridden by the fields the model card's ``paper_training`` sets (a
  :class:`~scalebench.results.recipe.CardRecipe`: typed :class:`Recipe` fields, plus their source, the ones
  left unverified and published facts the protocol does not apply). Meant for a GPU.

Every recipe field can then be overridden one by one (``--epochs``, ``--lr``, ...).

The training set is ``train_scale`` (``--train-scale``): the key of one of the build's training sets (a
classification build's training scale, or a segmentation set such as ``1+2+3+4``); ``None`` is the build's
default set. It enters the run hash only when it is not the default, so a run on a build's default set keeps
the hash it had before builds carried several sets.

Checks: ``--dataset`` must be a build id (:data:`scalebench.checks.BUILD_ID_PATTERN`), never a path; a recipe
recorded in a results file or submitted to the leaderboard is checked by the same rules as the options, with
:func:`validate_recipe`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from scalebench.checks import BUILD_ID_PATTERN, ScalebenchError, parse_float_list, parse_int_list
from scalebench.datasets_builders.builds import parse_train_key
from scalebench.results.recipe import CardRecipe, Recipe, format_validation_error, validate_recipe

__all__ = [
    "PAPER_DEFAULTS",
    "QUICK_RECIPE",
    "EvalConfig",
    "Recipe",
    "config_from_options",
    "make_config",
    "parse_model_config",
    "resolve_recipe",
    "run_identity",
    "validate_recipe",
]

Preset = Literal["quick", "paper"]
Device = Literal["auto", "cpu", "cuda"]


#: The quick preset, the recipe of the lite track (4,000 training images): 6 epochs keep one seed of every
#: classification model of the zoo within 30 minutes on 2 CPU cores (measured per model in docs/leaderboard.md).
QUICK_RECIPE: dict[str, Any] = {
    "epochs": 6,
    "batch_size": 32,
    "micro_batch_size": 8,
    "eval_batch_size": 64,
    "optimizer": "adamw",
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "schedule": "cosine",
    "warmup_epochs": 0,
    "label_smoothing": 0.0,
    "augmentation": "none",
}

PAPER_DEFAULTS: dict[str, Any] = {
    "epochs": 40,
    "batch_size": 64,
    "micro_batch_size": None,
    "eval_batch_size": 256,
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "schedule": "cosine",
    "warmup_epochs": 0,
    "label_smoothing": 0.0,
    "augmentation": "none",
}


class EvalConfig(BaseModel):
    """Everything ``scalebench evaluate`` accepts. Fields set to None take the preset's value.

    Fields that change results go into the run hash (see :func:`run_identity`); ``out``, ``root``, ``resume``,
    ``num_workers``, ``progress`` and ``distributed`` do not.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str = Field(
        description="a registered model, or a model of your own: FILE.py:FACTORY or MODULE:FACTORY"
    )
    model_name: str | None = Field(
        default=None, description="the name a model of your own is registered and shown under (--name)"
    )
    dataset: str = "fashion-mnist"
    preset: Preset = "quick"
    seed: int = Field(default=0, ge=0)
    device: Device = "auto"
    amp: bool = False
    limit: int | None = Field(default=None, ge=1, description="use at most N images per split (smoke run)")
    scales: list[float] | None = Field(default=None, description="test scales; None = every built scale")
    train_scale: list[float] | None = Field(
        default=None,
        description="the training set (its scales, e.g. [2.0] or [1, 2, 3, 4]); None = the default",
    )
    model_config_overrides: dict[str, Any] = Field(default_factory=dict)
    recipe_overrides: dict[str, Any] = Field(default_factory=dict)
    out: Path = Path("outputs/runs")
    root: Path | None = None
    resume: bool = False
    num_workers: int | None = Field(default=None, ge=0, description="DataLoader workers; None = automatic")
    progress: Literal["auto", "rich", "plain", "none"] = "auto"
    test_channels: str | None = Field(
        default=None,
        description="'dense' or 'dense:F': test the trained weights on an F times finer scale-channel grid "
        "(a run of its own next to the trained-grid run, which it reuses or trains)",
    )
    tensorboard: Path | None = Field(
        default=None, description="write per-epoch metrics to DIR/<run id> for TensorBoard (optional extra)"
    )
    stop_after_epoch: int | None = Field(
        default=None, ge=1, description="stop after this epoch, leaving a resumable run (tests, preemption)"
    )
    distributed: bool = Field(
        default=False,
        description="data-parallel under torchrun (results equal one process up to fp tolerance)",
    )

    @field_validator("dataset")
    @classmethod
    def _build_id(cls, value: str) -> str:
        """A build id, never a path: the build is looked up under the datasets home by this name."""
        if not BUILD_ID_PATTERN.fullmatch(value):
            raise PydanticCustomError(
                "build_id",
                "must be a dataset build id such as 'fashion-mnist' or 'fashion-mnist-embedded' (1-100 lowercase "
                "letters, digits, '_', '-' or '.', not starting with '.'), not a path; builds live under "
                "$SCALEBENCH_HOME/datasets (choose another home with --root)",
            )
        return value


def make_config(**fields: Any) -> EvalConfig:
    """Build an :class:`EvalConfig`, turning validation errors into one ScalebenchError per problem."""
    try:
        return EvalConfig(**fields)
    except ValidationError as err:
        raise ScalebenchError(format_validation_error(err, "evaluate option")) from None


def resolve_recipe(
    preset: Preset,
    paper_training: CardRecipe,
    overrides: dict[str, Any],
    quick_training: CardRecipe | None = None,
) -> Recipe:
    """The recipe of a preset: quick defaults updated by the fields the card's ``quick_training`` sets, or paper
    defaults updated by those of its ``paper_training``; then ``overrides``. Unknown override keys raise with the
    list of valid ones.

    Example:
        >>> resolve_recipe("quick", CardRecipe(), {"epochs": 1}).epochs
        1
        >>> resolve_recipe("paper", CardRecipe(optimizer="sgd", lr=0.1, source="x"), {}).optimizer
        'sgd'
    """
    fields = set(Recipe.model_fields)
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ScalebenchError(
            f"Unknown training option(s) {unknown}. Valid options: {', '.join(sorted(fields))}."
        )
    if preset == "quick":
        base = dict(QUICK_RECIPE)
        base.update(quick_training.fields() if quick_training else {})
    else:
        base = dict(PAPER_DEFAULTS)
        base.update(paper_training.fields())
    base.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Recipe(**base)
    except ValidationError as err:
        raise ScalebenchError(format_validation_error(err, "training option")) from None


def run_identity(
    config: EvalConfig, recipe: Recipe, model_config: dict[str, Any], scales: list[float]
) -> dict[str, Any]:
    """The fields that determine a run's results; their ``config_hash`` names the run directory (the protocol
    adds the digest of the manifest restricted to the run's sets, and the training set when not the default)."""
    return {
        "model": config.model,
        "model_config": model_config,
        "dataset": config.dataset,
        "preset": config.preset,
        "recipe": recipe.record(),
        "seed": config.seed,
        "limit": config.limit,
        "scales": scales,
        "amp": config.amp,
    }


def parse_model_config(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (VALUE parsed as JSON, else kept as a string) into a model-config override dict.

    Example:
        >>> parse_model_config(["width=8", "sigmas=[1, 2]", "pooling=max"])
        {'width': 8, 'sigmas': [1, 2], 'pooling': 'max'}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ScalebenchError(f"--model-config takes KEY=VALUE (VALUE in JSON), got {item!r}.")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def config_from_options(
    *,
    seed: int | None = None,
    seeds: str | None = None,
    scales: str | None = None,
    train_scale: str | None = None,
    model_config: Sequence[str] = (),
    recipe: dict[str, Any] | None = None,
    **fields: Any,
) -> tuple[EvalConfig, list[int]]:
    """Turn command-line options into a config and the list of seeds (``--seed`` and ``--seeds`` exclude each other).

    Example:
        >>> cfg, seeds = config_from_options(model="cnn", seeds="0,1", scales="1,2", recipe={"epochs": 2, "lr": None})
        >>> seeds, cfg.scales, cfg.recipe_overrides, cfg.train_scale
        ([0, 1], [1.0, 2.0], {'epochs': 2}, None)
        >>> config_from_options(model="unet", train_scale="1+2+3+4")[0].train_scale
        [1.0, 2.0, 3.0, 4.0]
    """
    if seed is not None and seeds is not None:
        raise ScalebenchError("Give either --seed N or --seeds 0,1,2, not both.")
    seed_list = parse_int_list(seeds, "--seeds") if seeds is not None else [seed if seed is not None else 0]
    repeated = sorted({s for s in seed_list if seed_list.count(s) > 1})
    if repeated:
        raise ScalebenchError(
            f"--seeds {seeds} repeats seed(s) {', '.join(map(str, repeated))}: the mean ± std over seeds would "
            "count one run twice. Give each seed once."
        )
    if any(s < 0 for s in seed_list):
        raise ScalebenchError(f"Seeds must be non-negative integers, got {seed_list}.")
    config = make_config(
        seed=seed_list[0],
        scales=parse_float_list(scales, "--scales") if scales else None,
        train_scale=list(parse_train_key(train_scale, "--train-scale")) if train_scale is not None else None,
        model_config_overrides=parse_model_config(model_config),
        recipe_overrides={k: v for k, v in (recipe or {}).items() if v is not None},
        **fields,
    )
    return config, seed_list
