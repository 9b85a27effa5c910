"""The training recipe a run records (``training.recipe`` of every results file) and its checks.

:class:`Recipe` is what ``scalebench evaluate`` resolves its presets and options to (the benchmark's config
module imports it from here), and what a results file records; :func:`validate_recipe` checks a recorded or
submitted recipe by the same rules, so that the leaderboard checks recipes without importing the benchmark.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from scalebench.checks import ScalebenchError


class Recipe(BaseModel):
    """How to train: optimizer, schedule, batch sizes, regularisation, augmentation.

    ``schedule``: ``constant``; ``cosine`` (per step, to 0, after ``warmup_epochs`` of linear warm-up;
    Loshchilov & Hutter, 2017, "SGDR", ICLR); ``step`` (multiply by ``lr_gamma`` at each epoch in
    ``lr_milestones``). ``augmentation``: ``none``, ``hflip`` (random horizontal flips), ``translate``
    (random shifts of up to ``translate_pixels`` with zero fill) or ``hflip+translate`` (a segmentation mask is
    flipped and shifted with its image). A rescaling of the training images would defeat the single-scale
    protocol, so it exists only as ``scale_augmentation`` ([min, max] factor, drawn log-uniformly per image,
    about the image centre, interpolated with ``scale_augmentation_interpolation``, anti-aliased when shrinking,
    zero fill; :func:`scalebench.models.rescaling_peers.zoom_keep_size`), and a run that records it is ranked on
    the board's **augmented** track, never the standard one (SESN's and DISCO's "+" setting, Sosnovik et al.
    2020, trains with random scaling U(0.5, 2)).
    ``micro_batch_size`` splits each optimizer batch into chunks whose gradients are accumulated (batch-norm
    statistics are then per micro-batch).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    micro_batch_size: int | None = Field(default=None, ge=1, description="None: the whole batch at once")
    eval_batch_size: int = Field(default=64, ge=1)
    optimizer: Literal["sgd", "adam", "adamw"] = "adamw"
    lr: float = Field(gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(default=0.0, ge=0)
    schedule: Literal["constant", "cosine", "step"] = "cosine"
    warmup_epochs: int = Field(default=0, ge=0)
    lr_milestones: list[int] = Field(default_factory=list)
    lr_gamma: float = Field(default=0.1, gt=0)
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    augmentation: Literal["none", "hflip", "translate", "hflip+translate"] = "none"
    translate_pixels: int = Field(default=4, ge=0)
    scale_augmentation: list[float] | None = Field(
        default=None, min_length=2, max_length=2, description="[min, max] factor of random rescaling in training (the augmented track)"
    )
    scale_augmentation_interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"

    @field_validator("scale_augmentation")
    @classmethod
    def _scale_range(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not (MIN_AUG_SCALE <= value[0] <= value[1] <= MAX_AUG_SCALE):
            raise PydanticCustomError(
                "scale_range",
                "must be [min, max] with {low} <= min <= max <= {high}",
                {"low": MIN_AUG_SCALE, "high": MAX_AUG_SCALE},
            )
        return value

    def record(self) -> dict[str, Any]:
        """The recipe as results files record it (JSON). The scale-augmentation fields appear only when used,
        so runs without them keep the identity and the record they had before those fields existed."""
        unused = (
            {"scale_augmentation", "scale_augmentation_interpolation"}
            if self.scale_augmentation is None
            else set()
        )
        return self.model_dump(mode="json", exclude=unused)


#: Bounds of a ``scale_augmentation`` range (a factor of 8 either way; the test range is 1/2 .. 2).
MIN_AUG_SCALE, MAX_AUG_SCALE = 0.125, 8.0


def format_validation_error(err: ValidationError, what: str) -> str:
    """The problems of a pydantic error, each ``<what> '<field>': <message> (got <value>)``, joined by ``;``."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        parts.append(f"{what} {loc!r}: {e['msg']} (got {e.get('input')!r})")
    return "; ".join(parts)


def validate_recipe(recipe: Any, *, source: str = "recipe") -> Recipe:
    """A recorded or submitted recipe (a results file's ``training.recipe``) checked by :class:`Recipe`'s rules.

    The same rules as ``scalebench evaluate`` applies to its options: every field known, every number finite and
    in range (``eval_batch_size`` and ``micro_batch_size`` >= 1, ...). ``source`` names the file or field in the
    error.

    Raises:
        ScalebenchError: one message naming every invalid field, its value and ``source``.

    Example:
        >>> validate_recipe({"epochs": 1, "batch_size": 8, "lr": 0.1}).eval_batch_size
        64
    """
    if not isinstance(recipe, dict):
        raise ScalebenchError(
            f"{source} must be a JSON object of training options (epochs, batch_size, lr, ...), "
            f"got {type(recipe).__name__}."
        )
    try:
        return Recipe.model_validate(recipe)
    except ValidationError as err:
        raise ScalebenchError(
            f"{format_validation_error(err, f'{source} field')}. Valid values are those `scalebench evaluate` "
            "accepts (see scalebench.results.recipe.Recipe)."
        ) from None
