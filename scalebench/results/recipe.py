"""The training recipe a run records (``training.recipe`` of every results file) and its checks.

:class:`Recipe` is what ``scalebench evaluate`` resolves its presets and options to (the benchmark's config
module imports it from here), and what a results file records; :func:`validate_recipe` checks a recorded or
submitted recipe by the same rules, so that the leaderboard checks recipes without importing the benchmark.
:class:`CardRecipe` is a recipe as a model card states it: the :class:`Recipe` fields it sets, typed and checked
by the same rules when the card is made, and where they come from.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)
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
        default=None,
        min_length=2,
        max_length=2,
        description="[min, max] factor of random rescaling in training (the augmented track)",
    )
    scale_augmentation_interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"

    @field_validator("scale_augmentation")
    @classmethod
    def _scale_range(cls, value: list[float] | None) -> list[float] | None:
        return _check_scale_range(value)

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


def _check_scale_range(value: list[float] | None) -> list[float] | None:
    if value is not None and not (MIN_AUG_SCALE <= value[0] <= value[1] <= MAX_AUG_SCALE):
        raise PydanticCustomError(
            "scale_range",
            "must be [min, max] with {low} <= min <= max <= {high}",
            {"low": MIN_AUG_SCALE, "high": MAX_AUG_SCALE},
        )
    return value


def _optional(name: str) -> tuple[Any, None]:
    """Recipe field ``name``'s type and constraints, made optional (unset = the preset's value)."""
    field = Recipe.model_fields[name]
    typ = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return typ | None, None


#: Every :class:`Recipe` field, optional, with its type and constraints: the base of :class:`CardRecipe`.
_RecipeFields: type[BaseModel] = create_model(
    "_RecipeFields",
    __config__=ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True),
    __validators__={"_scale_range": field_validator("scale_augmentation")(
        classmethod(lambda cls, v: _check_scale_range(v)))},
    **{name: _optional(name) for name in Recipe.model_fields},
)  # fmt: skip


class CardRecipe(_RecipeFields):  # type: ignore[misc, valid-type]
    """A training recipe as a model card states it (``paper_training``, ``quick_training``).

    It sets some :class:`Recipe` fields (checked by Recipe's rules: ``optimizer="SGD"`` or an unknown key fails
    when the card is made); the preset supplies the others. ``source`` names the paper, code or reasoning they
    come from; ``unverified`` lists the fields (or facts) that are documented choices, not read from the paper
    or its code; ``facts`` holds published settings the protocol does not apply (normalisation constants, an
    iteration count it converted to epochs, a learning-rate grid), kept so that a reader sees them.

    It records (``model_dump``) only what it sets, so a results file shows the card's recipe as written.

    Example:
        >>> r = CardRecipe(optimizer="sgd", lr=0.1, lr_milestones=[30, 60], source="x", unverified=["lr"])
        >>> r.fields()
        {'optimizer': 'sgd', 'lr': 0.1, 'lr_milestones': [30, 60]}
        >>> r.model_dump()["unverified"]
        ['lr']
    """

    source: str = ""
    unverified: list[str] = Field(default_factory=list)
    facts: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unverified_named(self) -> CardRecipe:
        named = set(self.fields()) | set(self.facts)
        unknown = [name for name in self.unverified if name not in named]
        if unknown:
            raise ValueError(f"unverified names {unknown}, which this recipe neither sets nor lists in facts")
        return self

    def fields(self) -> dict[str, Any]:
        """The :class:`Recipe` fields this recipe sets (an explicit None included), in Recipe's order."""
        return {name: getattr(self, name) for name in Recipe.model_fields if name in self.model_fields_set}

    @model_serializer(mode="wrap")
    def _set_only(self, handler: Any) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if key in self.model_fields_set}


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
