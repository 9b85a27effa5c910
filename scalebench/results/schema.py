"""The results file of one run: one base record and a small record per task, strict pydantic models.

One JSON file per run (one model, one config, one dataset build, one training set, one seed). It holds the raw
per-scale counts and everything needed to re-derive or verify the summaries: every summary is recomputed from
the counts by :mod:`scalebench.results.metrics`, and a file whose stated summaries disagree is rejected.

- :class:`RunRecord` declares what every task records once: the schema version, the task, who evaluated,
  when, the model (:class:`ModelInfo`), the seed, ``--limit``, the best checkpoint's sha256, timings, the
  environment and the verification record; it checks the version, the scale order and the verification.
- :class:`ClassificationResult` (task ``classification``): correct / total per scale, the accuracy
  summaries and the scale selection of scale-channel models.
- :class:`SegmentationResult` (task ``segmentation``): per-class intersection and union counts per object
  scale, the mIoU summaries, the learned sigma per N-Jet layer and the encoder's receptive field.

Design (store raw numbers, recompute aggregates in one place, record versions and hashes of data and
weights, mark who evaluated):

- strict: unknown fields are errors (``extra="forbid"``), types are exact (pydantic strict mode on every
  integer, number and boolean field: ``"7"``, ``true`` and ``7.0`` are not the integer 7; an integer is a valid
  number), numbers must be finite, counts non-negative;
- ``schema_version`` is one of :data:`READABLE_SCHEMA_VERSIONS`; files of an older minor version lack only
  optional fields (the documented migration: nothing to convert);
- ``checkpoint_sha256`` is the sha256 of the saved best checkpoint (safetensors), so that verification can
  check that a checkpoint is the one that produced these numbers;
- ``evaluated_by`` is "self-reported" unless the checkpoint was re-evaluated ("verified", with a
  :class:`Verification` record since 1.1).

``RunResult`` and ``SegmentationRunResult`` are the names of the two task records before 1.2 of scalebench's
API, kept as aliases.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

import scalebench.results.metrics as metrics
from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.scales import same_scale, same_scales
from scalebench.fileio import config_hash

#: Bump the major number for changes that old readers cannot read, the minor for added optional fields.
#: 1.1 added ``model.train_flops_per_image``, ``model.inference_flops_per_image`` and ``verification``;
#: 1.2 added ``model.source`` (where the model's code comes from, with its sha256) and
#: ``model.structure_sha256``; 1.3 added ``equivariance`` (the scale-equivariance error measured on the
#: build's test images at initialisation and after training).
SCHEMA_VERSION = "1.3"
#: Versions this reader accepts: files of an older minor version lack only optional fields.
READABLE_SCHEMA_VERSIONS = ("1.0", "1.1", "1.2", "1.3")

_HEX64 = r"^[0-9a-f]{64}$"

#: Exact JSON types (pydantic strict mode, field by field): an integer field takes only an integer (never a
#: string, a boolean or a float such as ``6000.0``), a number field takes an integer or a float (never a
#: string or a boolean), a boolean field takes only ``true`` or ``false``.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
PosInt = Annotated[int, Strict(), Field(gt=0)]
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)


def _check_finite_tree(value: Any, where: str) -> None:
    """Reject NaN / inf anywhere inside a free-form JSON value (config, card, recipe)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} holds a non-finite number ({value!r}); only finite numbers are allowed")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where} has a non-string key {k!r}")
            _check_finite_tree(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_finite_tree(v, f"{where}[{i}]")


class _Strict(BaseModel):
    model_config = _STRICT


class ModelSourceInfo(_Strict):
    """Where a model's code comes from (:class:`scalebench.models.external.ModelSource`): ``zoo`` (scalebench's
    own), ``file`` (``FILE.py:factory``), ``module`` (``module:factory``) or ``entry_point`` (an installed
    package); ``reference`` imports it again, ``sha256`` is the sha256 of its source, ``distribution`` and
    ``version`` name an installed package (scalebench itself for the zoo)."""

    kind: Literal["zoo", "file", "module", "entry_point"]
    reference: str = Field(min_length=1, max_length=1000)
    sha256: str | None = Field(default=None, pattern=_HEX64)
    distribution: str | None = Field(default=None, max_length=200)
    version: str | None = Field(default=None, max_length=100)


class ModelInfo(_Strict):
    """The evaluated network: registered name, full resolved config, its card and its parameter count."""

    name: str = Field(
        min_length=1, max_length=100, description="registered model name (scalebench models list)"
    )
    config: dict[str, Any] = Field(description="full resolved builder config (card defaults + overrides)")
    config_hash: str = Field(pattern=r"^[0-9a-f]{12,64}$", description="config_hash() of the full run config")
    card: dict[str, Any] = Field(description="the model card (ModelCard.model_dump()) at evaluation time")
    num_params: Int = Field(ge=0, description="trainable parameters of the evaluated model")
    train_flops_per_image: Int | None = Field(
        default=None,
        ge=0,
        description="FLOPs of one training step (forward + backward) per image at the build's canvas "
        "(scalebench.models.flops; since schema 1.1)",
    )
    inference_flops_per_image: Int | None = Field(
        default=None, ge=0, description="FLOPs of one forward pass per image in eval mode (since schema 1.1)"
    )
    source: ModelSourceInfo | None = Field(default=None, description="where the code comes from (since 1.2)")
    structure_sha256: str | None = Field(
        default=None,
        pattern=_HEX64,
        description="sha256 of the parameter and buffer names and shapes (since 1.2)",
    )

    @field_validator("config", "card")
    @classmethod
    def _finite(cls, v: dict[str, Any], info: Any) -> dict[str, Any]:
        _check_finite_tree(v, info.field_name)
        return v


class _BuildInfo(_Strict):
    """The dataset build a run used (``scalebench build-datasets``): the fields both tasks record."""

    name: str = Field(min_length=1, max_length=100, description="dataset name, e.g. 'fashion-mnist'")
    build_id: str = Field(min_length=1, max_length=120, description="build id, e.g. 'fashion-mnist-limit200'")
    version: str = Field(min_length=1, max_length=40, description="dataset version of the builder")
    manifest_sha256: str = Field(pattern=_HEX64, description="sha256 of the build's manifest")
    canvas: tuple[PosInt, PosInt] = Field(description="image height and width in pixels")
    channels: Int = Field(gt=0)
    num_classes: Int = Field(gt=0)
    train_size: Int = Field(ge=0, description="training images used")
    val_size: Int = Field(ge=0, description="validation images used (training scale only)")
    embedded: Bool = Field(default=False, description="the offline embedded subset (demo data)")


class DatasetInfo(_BuildInfo):
    """The dataset build the run used (``scalebench build-datasets``) and the protocol's scales."""

    train_scale: Float = Field(gt=0, description="the single scale the model was trained and selected at")


class EpochRecord(_Strict):
    """One training epoch: loss and accuracy on the training data, accuracy on validation at the training scale."""

    epoch: Int = Field(ge=1)
    lr: Float = Field(ge=0)
    train_loss: Float
    train_accuracy: Float = Field(ge=0, le=1)
    val_accuracy: Float = Field(ge=0, le=1)
    seconds: Float = Field(ge=0)


class CallableInfo(_Strict):
    """A callable of a non-standard training (a loss, an optimizer or a scheduler factory): its qualified name
    and the sha256 of its source (None when Python cannot show the source, e.g. a builtin)."""

    name: str = Field(min_length=1, max_length=300)
    sha256: str | None = Field(default=None, pattern=_HEX64)


class CustomTraining(_Strict):
    """The callables a non-standard training replaced (Python API: ``loss_fn``, ``optimizer_factory``,
    ``scheduler_factory``); the board marks such runs non-standard and never ranks them with standard ones."""

    loss: CallableInfo | None = None
    optimizer: CallableInfo | None = None
    scheduler: CallableInfo | None = None


class TrainingInfo(_Strict):
    """How the model was trained and which checkpoint was selected (best validation accuracy, first on ties).

    ``preset`` ``external`` (since 1.2): the model was trained elsewhere and only tested here
    (``scalebench.test``); it then has no recipe, no history and no selected epoch.
    """

    preset: Literal["quick", "paper", "external"]
    recipe: dict[str, Any] = Field(description="the resolved training recipe (optimizer, lr, schedule, ...)")
    best_epoch: Int | None = Field(default=None, ge=1)
    best_val_accuracy: Float | None = Field(default=None, ge=0, le=1)
    history: list[EpochRecord]
    custom: CustomTraining | None = Field(default=None, description="non-standard training (since 1.2)")

    @field_validator("recipe")
    @classmethod
    def _finite(cls, v: dict[str, Any]) -> dict[str, Any]:
        _check_finite_tree(v, "recipe")
        return v

    @model_validator(mode="after")
    def _external_or_trained(self) -> TrainingInfo:
        if self.preset == "external":
            if self.history or self.best_epoch is not None or self.recipe or self.custom is not None:
                raise ValueError(
                    "an external training (preset 'external') has no recipe, history or best epoch"
                )
        elif self.best_epoch is None or self.best_val_accuracy is None:
            raise ValueError(f"a {self.preset!r} training records its best_epoch and best_val_accuracy")
        return self


class ClassificationScaleResult(_Strict):
    """Classification counts at one test scale. ``accuracy`` must equal ``correct / total``."""

    scale: Float = Field(gt=0)
    correct: Int = Field(ge=0)
    total: Int = Field(gt=0)
    accuracy: Float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _consistent(self) -> ClassificationScaleResult:
        if self.correct > self.total:
            raise ValueError(f"scale {self.scale:g}: correct ({self.correct}) exceeds total ({self.total})")
        expected = self.correct / self.total
        if not metrics.close(self.accuracy, expected):
            raise ValueError(
                f"scale {self.scale:g}: accuracy {self.accuracy!r} != correct/total = {expected!r}"
            )
        return self

    @property
    def score(self) -> float:
        """The per-scale score the summaries are computed from (accuracy)."""
        return self.accuracy


class Summary(_Strict):
    """Summaries recomputed from the per-scale scores (formulas in :mod:`scalebench.results.metrics`)."""

    train_scale_accuracy: Float = Field(ge=0, le=1)
    mean_accuracy: Float = Field(ge=0, le=1)
    worst_accuracy: Float = Field(ge=0, le=1)
    worst_scale: Float = Field(gt=0)
    generalisation_ratio: Float | None = Field(ge=0, description="worst / training-scale accuracy")


class ScaleSelection(_Strict):
    """Which scale channel won, per test scale, for models that report it (card.reports_scale_selection).

    ``counts[i][j]``: test images at ``test_scales[i]`` whose maximal logit came from channel ``j``
    (σ0 = ``channel_sigmas[j]``). ``spearman_rho`` and ``slope_per_octave`` are recomputed from the counts.
    """

    test_scales: list[Float] = Field(min_length=1)
    channel_sigmas: list[Float] = Field(min_length=1, description="σ0 of each scale channel, in pixels")
    counts: list[list[Int]]
    spearman_rho: Float | None = Field(ge=-1, le=1)
    slope_per_octave: Float | None
    ripple: Float | None = Field(
        default=None,
        description="accuracy ripple between on- and off-grid test scales of the trained channel grid "
        "(metrics.scale_ripple; since 1.3)",
    )

    @field_validator("channel_sigmas", "test_scales")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(x <= 0 for x in v):
            raise ValueError("scales and sigmas must be positive")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ScaleSelection:
        rows, cols = len(self.test_scales), len(self.channel_sigmas)
        if len(self.counts) != rows or any(len(r) != cols for r in self.counts):
            raise ValueError(f"counts must be a {rows} x {cols} matrix (test scales x channels)")
        if any(c < 0 for r in self.counts for c in r):
            raise ValueError("selection counts must be non-negative")
        rho = metrics.selection_spearman(self.test_scales, self.channel_sigmas, self.counts)
        slope = metrics.selection_slope(self.test_scales, self.counts)
        if not metrics.close(self.spearman_rho, rho):
            raise ValueError(f"spearman_rho {self.spearman_rho!r} != recomputed {rho!r}")
        if not metrics.close(self.slope_per_octave, slope):
            raise ValueError(f"slope_per_octave {self.slope_per_octave!r} != recomputed {slope!r}")
        return self


class Timings(_Strict):
    """Wall-clock seconds of the phases, and the throughputs they imply."""

    train_seconds: Float = Field(ge=0, description="training, including the validation after each epoch")
    eval_seconds: Float = Field(ge=0, description="testing at every scale")
    total_seconds: Float = Field(ge=0)
    train_images_per_second: Float = Field(ge=0, description="training images seen / train_seconds")
    eval_images_per_second: Float = Field(ge=0)


class Environment(_Strict):
    """Where the run happened. ``git_commit`` is None outside a git checkout."""

    scalebench_version: str
    torch_version: str
    python_version: str
    platform: str
    device: str = Field(description="'cpu' or 'cuda'")
    device_name: str
    num_threads: Int = Field(ge=1)
    amp: Bool
    deterministic: Bool
    git_commit: str | None = None


class Verification(_Strict):
    """Who re-evaluated a run's checkpoint, when, and where (``scalebench evaluate --verify``; schema 1.1)."""

    verified_by: str = Field(
        min_length=1, max_length=200, description="the verifier: $SCALEBENCH_VERIFIER, else user@host"
    )
    verified_at: str = Field(description="UTC time of the verification, ISO 8601")
    environment: Environment = Field(description="where the checkpoint was re-evaluated")
    source_results_sha256: str = Field(pattern=_HEX64, description="sha256 of the self-reported results file")


class RunRecord(_Strict):
    """What a run of any task records: the fields declared once here, ``dataset``, ``training``,
    ``per_scale`` (records with ``scale`` and ``score``) and ``summary`` declared by each task's record.

    Checks on validation (each failure names the field): the schema version, scales sorted and unique, a
    verification record only on a verified run, then the task's own checks (:meth:`_check_task`).
    """

    schema_version: Literal["1.0", "1.1", "1.2", "1.3"] = SCHEMA_VERSION
    evaluated_by: Literal["self-reported", "verified"] = "self-reported"
    created_at: str = Field(description="UTC time the results were written, ISO 8601")
    model: ModelInfo
    seed: Int = Field(ge=0)
    limit: Int | None = Field(default=None, ge=1, description="--limit N used (a smoke run) or None")
    checkpoint_sha256: str = Field(pattern=_HEX64, description="sha256 of the best checkpoint's weights file")
    timings: Timings
    environment: Environment
    verification: Verification | None = None

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        if v not in READABLE_SCHEMA_VERSIONS:
            raise ValueError(
                f"schema_version {v!r} is not supported by this scalebench (reads "
                f"{', '.join(map(repr, READABLE_SCHEMA_VERSIONS))}); "
                "re-run `scalebench evaluate` with this version or install the matching scalebench"
            )
        return v

    @model_validator(mode="after")
    def _record_checks(self) -> RunRecord:
        if self.verification is not None and self.evaluated_by != "verified":
            raise ValueError("verification is recorded, but evaluated_by is 'self-reported'")
        scales = self.scales
        if any(b <= a or same_scale(a, b) for a, b in itertools.pairwise(scales)):
            raise ValueError(
                f"per_scale must be sorted by scale with no repeats (two scales with one 3-decimal tag are one "
                f"scale), got {scales}"
            )
        self._check_task()
        return self

    def _check_task(self) -> None:  # pragma: no cover - every task record defines its checks
        raise NotImplementedError

    @property
    def scales(self) -> list[float]:
        """The test scales, ascending."""
        return [r.scale for r in self.per_scale]  # type: ignore[attr-defined]

    def score_by_scale(self) -> dict[float, float]:
        """Scale -> per-scale score (accuracy, or mIoU for segmentation)."""
        return {r.scale: r.score for r in self.per_scale}  # type: ignore[attr-defined]

    def _check_summary(self, stated: BaseModel, expected: BaseModel) -> None:
        for field in type(stated).model_fields:
            have, want = getattr(stated, field), getattr(expected, field)
            if not metrics.close(have, want):
                raise ValueError(f"summary.{field} is {have!r} but the per-scale counts give {want!r}")


class DenseChannels(_Strict):
    """A test-time densified evaluation (:mod:`scalebench.models.densify`): the trained weights evaluated on
    a scale-channel grid ``factor`` times finer (the selection counts use that grid); same training, same
    checkpoint as the trained-grid run."""

    factor: Int = Field(ge=2, le=8)
    trained_channel_sigmas: list[Float] = Field(min_length=2, description="σ0 of the trained channels")


class EquivarianceError(_Strict):
    """The scale-equivariance error of one model state on the build's test images
    (:mod:`scalebench.benchmark.equivariance`): means over the test-scale pairs (s, s sqrt(2)) in ``pairs``."""

    images: Int = Field(ge=1, description="test images per scale compared")
    pairs: list[tuple[Float, Float]] = Field(min_length=1, description="the (s, s sqrt(2)) pairs compared")
    invariance: Float = Field(ge=0, description="logit change under rescaling / logit spread between images")
    output: Float | None = Field(
        default=None, ge=0, description="scale-channel class scores: covariance error (channel i vs i + k)"
    )
    per_layer: list[Annotated[float, Strict(), Field(ge=0)]] | None = Field(
        default=None, description="scale-channel maps: covariance error of each layer's responses"
    )


class Equivariance(_Strict):
    """:class:`EquivarianceError` at initialisation (the seeded initial weights) and of the trained model."""

    initial: EquivarianceError | None = None
    trained: EquivarianceError


class ClassificationResult(RunRecord):
    """One run of the protocol on a classification build: train at one scale, select on validation there,
    test at every scale. Its summaries and selection statistics must equal those recomputed from the counts;
    the training scale must be among the test scales."""

    task: Literal["classification"] = "classification"
    dataset: DatasetInfo
    training: TrainingInfo
    per_scale: list[ClassificationScaleResult] = Field(min_length=1)
    summary: Summary
    scale_selection: ScaleSelection | None = None
    equivariance: Equivariance | None = Field(
        default=None, description="scale-equivariance error (since 1.3)"
    )
    test_channels: DenseChannels | None = Field(
        default=None, description="evaluated on a densified scale-channel grid (since 1.3)"
    )

    def _check_task(self) -> None:
        scales = self.scales
        try:
            recomputed = build_summary(self.per_scale, self.dataset.train_scale)
        except ScalebenchError as err:
            raise ValueError(str(err)) from None
        self._check_summary(self.summary, recomputed)
        if self.scale_selection is not None:
            sel = self.scale_selection.test_scales
            if not same_scales(sel, scales):
                raise ValueError(
                    f"scale_selection.test_scales {sel} differ from the per-scale scales {scales}"
                )
            stated = self.scale_selection.ripple
            if stated is not None and not metrics.close(stated, self.ripple()):
                raise ValueError(
                    f"scale_selection.ripple {stated} differs from the recomputed {self.ripple()}"
                )
        if self.test_channels is not None:
            sel = self.scale_selection
            trained, factor = self.test_channels.trained_channel_sigmas, self.test_channels.factor
            if sel is None or len(sel.channel_sigmas) != factor * (len(trained) - 1) + 1:
                raise ValueError(
                    f"test_channels factor {factor} over {len(trained)} trained channels needs a scale "
                    f"selection over {factor * (len(trained) - 1) + 1} channels"
                )
        if self.limit is not None and self.dataset.train_size > self.limit:
            raise ValueError(f"limit {self.limit} but train_size {self.dataset.train_size}")

    def trained_channel_ratio(self) -> float | None:
        r"""The ratio r of neighbouring trained scale channels when they form a geometric grid
        :math:`\sigma_i = \sigma_0 r^i`, :math:`r = \sigma_1 / \sigma_0` (each :math:`\log_r(\sigma_i / \sigma_0)`
        within 1e-3 of i, the tolerance of :func:`~scalebench.results.metrics.on_channel_grid`); None without
        scale selection or for a list of channels that is not geometric (a peer's ``scales``: no single ratio)."""
        sel = self.scale_selection
        if sel is None or len(sel.channel_sigmas) < 2:
            return None
        sigmas = self.test_channels.trained_channel_sigmas if self.test_channels else sel.channel_sigmas
        step = math.log(sigmas[1] / sigmas[0])
        if any(abs(math.log(s / sigmas[0]) - i * step) > 1e-3 * abs(step) for i, s in enumerate(sigmas)):
            return None
        return sigmas[1] / sigmas[0]

    def ripple(self) -> float | None:
        """:func:`scalebench.results.metrics.scale_ripple` of the accuracies on the trained channel grid."""
        ratio = self.trained_channel_ratio()
        if ratio is None or ratio <= 1:
            return None
        accs = [r.accuracy for r in self.per_scale]
        return metrics.scale_ripple(self.scales, accs, self.dataset.train_scale, ratio)


def build_summary(per_scale: list[ClassificationScaleResult], train_scale: float) -> Summary:
    """The :class:`Summary` of per-scale records (the only place a results writer gets its summaries from)."""
    m = metrics.summarize([r.scale for r in per_scale], [r.score for r in per_scale], train_scale)
    return Summary(**m.__dict__)


def build_scale_selection(
    test_scales: list[float], channel_sigmas: list[float], counts: list[list[int]]
) -> ScaleSelection:
    """A :class:`ScaleSelection` with ρ and the slope computed from ``counts``."""
    return ScaleSelection(
        test_scales=test_scales,
        channel_sigmas=channel_sigmas,
        counts=counts,
        spearman_rho=metrics.selection_spearman(test_scales, channel_sigmas, counts),
        slope_per_octave=metrics.selection_slope(test_scales, counts),
    )


# --- segmentation ---------------------------------------------------------------------------------------


class SegmentationScaleResult(_Strict):
    """Segmentation counts at one test scale: per object class (labels 1..C-1) intersection and union pixel
    counts, ignored pixels excluded. ``mean_iou`` must equal :func:`metrics.mean_iou` of the counts."""

    scale: Float = Field(gt=0)
    intersections: list[Int] = Field(min_length=1)
    unions: list[Int] = Field(min_length=1)
    mean_iou: Float = Field(ge=0, le=1)
    pixels: Int = Field(gt=0, description="non-ignored pixels evaluated")
    images: Int = Field(gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> SegmentationScaleResult:
        try:
            expected = metrics.mean_iou(self.intersections, self.unions)
        except ScalebenchError as err:
            raise ValueError(str(err)) from None
        if not metrics.close(self.mean_iou, expected):
            raise ValueError(f"scale {self.scale:g}: mean_iou {self.mean_iou!r} != recomputed {expected!r}")
        return self

    @property
    def score(self) -> float:
        """The per-scale score (mIoU)."""
        return self.mean_iou


class SegmentationDatasetInfo(_BuildInfo):
    """The segmentation build and the training set (its object scales) the run used."""

    train_scales: list[Float] = Field(min_length=1, description="object scales of the training set")
    num_classes: Int = Field(gt=1, description="including the background class 0")
    ignore_index: Int


class SegmentationEpoch(_Strict):
    """One epoch: training loss, validation mIoU (training-set scales) and the learned σ per N-Jet layer."""

    epoch: Int = Field(ge=1)
    lr: Float = Field(ge=0)
    train_loss: Float
    val_mean_iou: Float = Field(ge=0, le=1)
    sigmas: list[Float]
    seconds: Float = Field(ge=0)


class SegmentationTraining(_Strict):
    """How the model was trained; the checkpoint with the best validation mIoU (first on ties) is tested."""

    preset: Literal["quick", "paper"]
    recipe: dict[str, Any]
    class_weights: list[Float] = Field(description="inverse class frequency weights of the loss")
    best_epoch: Int = Field(ge=1)
    best_val_mean_iou: Float = Field(ge=0, le=1)
    history: list[SegmentationEpoch]
    custom: CustomTraining | None = Field(default=None, description="non-standard training (since 1.2)")


class SegmentationSummary(_Strict):
    """Summaries recomputed from the per-scale mIoU."""

    mean_miou: Float = Field(ge=0, le=1)
    worst_miou: Float = Field(ge=0, le=1)
    worst_scale: Float = Field(gt=0)


class SegmentationResult(RunRecord):
    """One segmentation run (task ``segmentation``): train on one training set, test on every object scale.

    Besides mIoU per scale it records the learned σ per N-Jet layer (forward order, empty for fixed-kernel
    models) and the receptive field at the end of the encoder (Pintea et al. 2021, Exp. 1.2(B)).
    """

    task: Literal["segmentation"] = "segmentation"
    dataset: SegmentationDatasetInfo
    training: SegmentationTraining
    per_scale: list[SegmentationScaleResult] = Field(min_length=1)
    summary: SegmentationSummary
    learned_sigmas: list[Float] = Field(description="σ of each N-Jet layer after training, forward order")
    encoder_receptive_field: Int = Field(ge=1, description="pixels, at the end of the encoder")

    def _check_task(self) -> None:
        self._check_summary(self.summary, build_segmentation_summary(self.per_scale))


def build_segmentation_summary(per_scale: list[SegmentationScaleResult]) -> SegmentationSummary:
    """Mean and worst mIoU over the test scales (:func:`scalebench.results.metrics.summarize_scores`)."""
    m = metrics.summarize_scores([r.scale for r in per_scale], [r.mean_iou for r in per_scale])
    return SegmentationSummary(mean_miou=m.mean, worst_miou=m.worst, worst_scale=m.worst_scale)


#: Aliases of the two task records (their names before the one-base-record design).
RunResult = ClassificationResult
SegmentationRunResult = SegmentationResult
AnyRunResult = ClassificationResult | SegmentationResult
#: The results record of each task, by the ``task`` field of a results file.
TASKS: dict[str, type[RunRecord]] = {
    "classification": ClassificationResult,
    "segmentation": SegmentationResult,
}
ALL_TASKS: tuple[str, ...] = tuple(TASKS)


def train_key(result: AnyRunResult) -> tuple[float, ...]:
    """The training set of a run: ``(train_scale,)`` for classification, the object scales for segmentation."""
    if isinstance(result, SegmentationResult):
        return tuple(result.dataset.train_scales)
    return (result.dataset.train_scale,)


def seedless_config_hash(result: AnyRunResult) -> str:
    """Hash of everything that determines a run's results except its seed (16 hex digits).

    Covers the model name and full config, the preset and training recipe, the dataset build (name, version,
    manifest sha256, training scale or, for segmentation, the training set's object scales), the test scales
    and the AMP flag. The seeds of one configuration share it (the results' own ``model.config_hash``
    includes the seed).
    """
    identity: dict[str, Any] = {
        "model": result.model.name,
        "model_config": result.model.config,
        "preset": result.training.preset,
        "recipe": result.training.recipe,
        "dataset": result.dataset.name,
        "dataset_version": result.dataset.version,
        "manifest_sha256": result.dataset.manifest_sha256,
        "scales": result.scales,
        "amp": result.environment.amp,
    }
    custom = getattr(result.training, "custom", None)
    if custom is not None:  # a non-standard training is another configuration (older files have none)
        identity["custom_training"] = custom.model_dump(mode="json")
    if isinstance(result, SegmentationResult):
        identity["train_scales"] = list(result.dataset.train_scales)
    else:
        identity["train_scale"] = result.dataset.train_scale
        dense = getattr(result, "test_channels", None)
        if dense is not None:  # the same training tested on a finer channel grid is another configuration
            identity["test_channels"] = dense.factor
    return config_hash(identity, length=16)
