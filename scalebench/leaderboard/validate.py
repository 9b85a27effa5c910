"""Submission checks beyond the results schema: what a run must satisfy to enter the leaderboard.

The results schema (:mod:`scalebench.results`) already rejects malformed JSON, NaN and inf, unknown
fields, negative counts, counts above totals, files above its size limit, and summaries that disagree with
the ones recomputed from the per-scale counts (:mod:`scalebench.results.metrics`). This module adds the
rules of the leaderboard, following the lessons of RobustBench, WILDS and MTEB (``research/ecosystem.md``
§2 B, E, F and §3.2):

- the JSON nests at most :data:`MAX_DEPTH` levels and repeats no key inside one object (``json.loads`` would
  silently keep the last of two ``"seed"`` keys);
- the dataset build is known to this scalebench: the pair (dataset version, manifest sha256) is a canonical
  build recorded in :data:`scalebench.datasets_builders.DATASETS` (:func:`known_builds`);
- the per-scale results cover exactly that build's canonical test scales, and the training scale is its one
  (segmentation: the training set's object scales are one of the build's training sets);
- no ``--limit`` smoke run and no run on the embedded demo subset;
- ``evaluated_by`` is "self-reported": only re-evaluating the checkpoint (``scalebench submit --checkpoint`` or
  ``scalebench verify``) can make an entry "verified";
- the model name and dataset name are slugs, so that the store's file names are built only from checked text;
- ``dataset.build_id`` is the canonical build's id (``fashion-mnist``, ``fashion-mnist-lite``,
  ``fashion-mnist-seg``), and ``dataset.train_size`` / ``val_size`` are that build's split sizes;
- every count is bounded by the build: each per-scale ``total`` (segmentation: ``images``) is the build's test
  split size, and each row of the scale-selection counts sums to that scale's ``total`` (segmentation: each
  union is at most ``pixels``, which is at most ``images`` times the canvas);
- the seed is an integer from 0 to :data:`MAX_SEED`;
- the model is registered in this scalebench, or it comes from outside (``model.source``: a file, a module or an
  installed package; never imported here, and its name must not be a registered one) (looked up by name in
  :func:`scalebench.models.list_models`,
  never imported from the file), its task is the run's, ``model.config`` passes the same checks as
  ``scalebench evaluate``'s model config (:func:`check_model_config`) and ``training.recipe`` is a valid
  :class:`scalebench.results.recipe.Recipe` (:func:`check_recipe`).

The store path of a run is ``<dataset>/<model>/<config-hash>/seed-<n>.json``, where the config hash
(:func:`run_config_hash`) covers everything that determines the results except the seed, so that the seeds of
one configuration share a folder and are aggregated together. The results schema's own ``config_hash``
includes the seed, so it cannot serve here.

Both tasks are accepted: classification results (:class:`~scalebench.results.RunResult`) and
segmentation results (:class:`~scalebench.results.SegmentationRunResult`, dataset
``fashion-mnist-seg``), each validated by the schema its ``task`` field names, under the same rules.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.scales import find_scale, same_scales
from scalebench.results import (
    ALL_TASKS,
    MAX_RESULTS_BYTES,
    AnyRunResult,
    parse_results,
    seedless_config_hash,
    train_key,
)

#: Deepest nesting of JSON arrays and objects accepted in a submission (a results file nests about 6 deep;
#: a model config a few more). Deeper input is rejected before it reaches a recursive parser or validator.
MAX_DEPTH = 32

#: A name that may become a path component: lowercase letters, digits, ``_``, ``-`` and ``.``, not starting
#: with a dot, at most 100 characters.
SLUG_PATTERN = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,99}")

#: Largest seed a submission may carry (seeds are 0 .. 2**31 - 1, the range every framework's RNG accepts).
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class KnownBuild:
    """A canonical dataset build that this scalebench accepts on the leaderboard.

    ``train_scale`` is the one training scale of a classification build; ``train_sets``, when given, lists
    the accepted training sets instead (a segmentation build: the object scales of each training set).
    ``track`` is ``full`` (the canonical full build) or ``lite`` (the canonical lite build, a fixed subset
    for 2-core laptops): runs of the two tracks are stored, ranked and shown apart.
    ``build_id`` is the build's id (default: :attr:`board`, which is the id of every canonical build:
    ``fashion-mnist``, ``fashion-mnist-lite``, ``fashion-mnist-seg``). ``train_size``, ``val_size`` and
    ``test_size`` are its split sizes (images per split; the test size is per scale); ``None`` leaves that
    count unchecked (builds made up by tests; :func:`known_builds` sets all three).
    """

    dataset: str
    version: str
    manifest_sha256: str
    test_scales: tuple[float, ...]
    train_scale: float
    train_sets: tuple[tuple[float, ...], ...] = ()
    track: str = "full"
    build_id: str = ""
    train_size: int | None = None
    val_size: int | None = None
    test_size: int | None = None

    @property
    def accepted_train_sets(self) -> tuple[tuple[float, ...], ...]:
        return self.train_sets or ((self.train_scale,),)

    @property
    def canonical_build_id(self) -> str:
        """The ``dataset.build_id`` a run on this build records."""
        return self.build_id or self.board

    @property
    def board(self) -> str:
        """The board this build's runs go to: the dataset name, ``-lite`` appended for the lite track."""
        return self.dataset if self.track == "full" else f"{self.dataset}-{self.track}"


def known_builds() -> tuple[KnownBuild, ...]:
    """The canonical builds recorded by the datasets package (specs whose ``known_manifest_sha256`` is set).

    A spec's ``known_lite_manifest_sha256`` is its canonical lite build (track ``lite``).
    The segmentation set's canonical build is ``KNOWN_MANIFEST_SHA256`` of
    :mod:`scalebench.datasets_builders.segmentation` (with its four training sets and test scales 1..4).
    """
    from scalebench.datasets_builders import DATASETS, GENERATOR_VERSION, build_id_for
    from scalebench.datasets_builders import segmentation as seg

    def sizes(split_sizes: dict[str, int]) -> dict[str, int]:
        return {f"{k}_size": int(split_sizes[k]) for k in ("train", "val", "test")}

    out: list[KnownBuild] = []
    for name, spec in sorted(DATASETS.items()):
        scales = tuple(float(s) for s in spec.test_scales)
        if spec.known_manifest_sha256:
            out.append(KnownBuild(name, GENERATOR_VERSION, spec.known_manifest_sha256, scales,
                                  float(spec.train_scale), build_id=build_id_for(name),
                                  **sizes(spec.split_sizes)))  # fmt: skip
        lite = spec.known_lite_manifest_sha256
        if lite:
            out.append(KnownBuild(name, GENERATOR_VERSION, lite, scales, float(spec.train_scale),
                                  track="lite", build_id=build_id_for(name, lite=True),
                                  **sizes(spec.lite_sizes)))  # fmt: skip
    seg_sha = seg.KNOWN_MANIFEST_SHA256
    if seg_sha:
        train_sets = tuple(tuple(float(s) for s in t) for t in seg.TRAIN_SETS)
        scales = tuple(float(s) for s in seg.DEFAULT_TEST_SCALES)
        out.append(KnownBuild(seg.NAME, seg.GENERATOR_VERSION, seg_sha, scales, 1.0, train_sets,
                              build_id=seg.seg_build_id(), **sizes(seg.FULL_SIZES)))  # fmt: skip
    return tuple(out)


def slug(value: str, what: str, source: str | None = None) -> str:
    """``value`` itself if it is a safe path component (see :data:`SLUG_PATTERN`), else a ScalebenchError.

    Example:
        >>> slug("gaussdernet", "model name")
        'gaussdernet'
    """
    if not isinstance(value, str) or not SLUG_PATTERN.fullmatch(value):
        where = f"{source}: " if source else ""
        raise ScalebenchError(
            f"{where}{what} {value!r} cannot name a leaderboard folder: use 1-100 lowercase letters, digits, '_', '-' "
            "or '.', not starting with '.' (rename the registered model or dataset)."
        )
    return value


#: Hash of everything that determines a run's results except its seed (16 hex digits); see
#: :func:`scalebench.results.seedless_config_hash`. Seeds of one configuration share it.
run_config_hash = seedless_config_hash


def entry_path(result: AnyRunResult, track: str = "full") -> PurePosixPath:
    """The store path of a run, relative to the store root: ``<board>/<model>/<config-hash>/seed-<n>.json``,
    where the board is the dataset name (``full`` track) or the dataset name and ``-<track>`` (``lite``).

    Built only from checked parts: two slugs, a hex hash and an integer.
    """
    dataset = slug(result.dataset.name, "dataset name") + (
        "" if track == "full" else f"-{slug(track, 'track')}"
    )
    model = slug(result.model.name, "model name")
    return PurePosixPath(dataset, model, run_config_hash(result), f"seed-{int(result.seed)}.json")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def _depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value, computed without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, d = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in item)
    return deepest


def _precheck_json(text: str | bytes, source: str) -> None:
    """Reject what the schema parser lets through: oversize text, repeated keys, extreme nesting."""
    if len(text) > MAX_RESULTS_BYTES:
        raise ScalebenchError(
            f"{source} is {len(text)} bytes, above the {MAX_RESULTS_BYTES}-byte limit for a results file; "
            "submit the file `scalebench evaluate` wrote."
        )
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_no_constant)
    except RecursionError:
        raise ScalebenchError(
            f"{source} nests JSON too deep to parse (limit {MAX_DEPTH} levels); a results file is shallow."
        ) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ScalebenchError(f"{source} is not valid JSON ({err}); a results file is strict JSON.") from None
    depth = _depth(data)
    if depth > MAX_DEPTH:
        raise ScalebenchError(
            f"{source} nests JSON {depth} levels deep, above the limit of {MAX_DEPTH}; a results file is shallow."
        )


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} (NaN and Infinity are not JSON)")


def _fmt_scales(scales: Iterable[float]) -> str:
    return "[" + ", ".join(f"{s:g}" for s in scales) + "]"


#: The build fields a run must match, in order: (KnownBuild field, the run's dataset field, message). A
#: message is formatted with ``value`` (the run's), ``name``, ``version`` and ``known`` (the candidates').
_BUILD_FIELDS = (
    ("dataset", "name", "dataset {value!r} has no canonical build known to this scalebench (known: {known}). "
     "Evaluate on a canonical build, or upgrade scalebench if the build is newer."),
    ("version", "version", "dataset version {value!r} of {name!r} is not known to this scalebench (known "
     "versions: {known}). Rebuild the dataset with this scalebench and re-run the evaluation."),
    ("manifest_sha256", "manifest_sha256", "manifest sha256 {value} of {name!r} {version} is not a canonical "
     "build (expected one of {known}); the test sets differ. Rebuild with `scalebench datasets build "
     "--dataset {name}` (default scales, no --limit) and re-run."),
)  # fmt: skip


def _canonical_build(result: AnyRunResult, known: Sequence[KnownBuild], source: str) -> KnownBuild:
    """The known build of ``result`` (same dataset, version and manifest), or an error naming the first
    field that matches no candidate."""
    ds = result.dataset
    candidates = list(known)
    for field, own, message in _BUILD_FIELDS:
        value = getattr(ds, own)
        narrowed = [k for k in candidates if getattr(k, field) == value]
        if not narrowed:
            names = sorted({getattr(k, field) for k in candidates})
            raise ScalebenchError(
                f"{source}: "
                + message.format(
                    value=value, name=ds.name, version=ds.version, known=names or "none recorded yet"
                )
            )
        candidates = narrowed
    return candidates[0]


def check_run(
    result: AnyRunResult,
    source: str,
    *,
    known: Sequence[KnownBuild] | None = None,
    allow_verified: bool = False,
) -> PurePosixPath:
    """Apply the leaderboard rules to a schema-valid run; return its store path (see the module docstring).

    Args:
        result: a run that passed the results schema.
        source: the file name used in messages.
        known: the accepted canonical builds (default :func:`known_builds`).
        allow_verified: accept ``evaluated_by == "verified"`` (only the store's own verification sets it).

    Raises:
        ScalebenchError: naming ``source``, the rule broken, what was found and the fix.
    """
    known = known_builds() if known is None else tuple(known)
    ds = result.dataset
    if result.limit is not None:
        raise ScalebenchError(
            f"{source} is a smoke run (--limit {result.limit}); the leaderboard takes full runs only. "
            "Re-run `scalebench evaluate` without --limit."
        )
    if ds.embedded:
        raise ScalebenchError(
            f"{source} ran on the embedded demo subset ({ds.build_id}); the leaderboard takes the full "
            f"dataset. Build it with `scalebench datasets build --dataset {ds.name}` and re-run."
        )
    if result.evaluated_by != "self-reported" and not allow_verified:
        raise ScalebenchError(
            f"{source} claims evaluated_by={result.evaluated_by!r}; a submission is self-reported. To have it "
            "verified, submit it with --checkpoint BEST.safetensors so the checkpoint is re-evaluated."
        )
    slug(ds.name, "dataset name", source)
    slug(result.model.name, "model name", source)
    match = _canonical_build(result, known, source)
    train = train_key(result)
    if not any(same_scales(t, train) for t in match.accepted_train_sets):
        accepted = ", ".join("+".join(f"{s:g}" for s in t) for t in match.accepted_train_sets)
        raise ScalebenchError(
            f"{source}: training scale {'+'.join(f'{s:g}' for s in train)} is not a canonical training set of "
            f"{ds.name} (accepted: {accepted})."
        )
    scales = result.scales
    missing = [s for s in match.test_scales if find_scale(scales, s) is None]
    extra = [r for r in scales if find_scale(match.test_scales, r) is None]
    if missing or extra:
        raise ScalebenchError(
            f"{source}: test scales {_fmt_scales(scales)} are not the canonical {_fmt_scales(match.test_scales)} "
            f"of {ds.name} (missing {_fmt_scales(missing)}, extra {_fmt_scales(extra)}). Re-run "
            "`scalebench evaluate` without --scales."
        )
    _check_identity(result, match, source)
    _check_counts(result, match, source)
    if _from_outside(result):
        check_outside_model(result.model.name, source)
    else:
        check_model_config(result.model.name, result.model.config, source, task=result.task,
                           num_classes=ds.num_classes, in_channels=ds.channels)  # fmt: skip
    if training_track(result) != "external":  # trained elsewhere: the schema holds its recipe empty
        check_recipe(result.training.recipe, source)
    return entry_path(result, match.track)


def _check_identity(result: AnyRunResult, match: KnownBuild, source: str) -> None:
    """The build id is the canonical build's, and the seed is within 0 .. MAX_SEED."""
    ds = result.dataset
    if ds.build_id != match.canonical_build_id:
        raise ScalebenchError(
            f"{source}: dataset.build_id {ds.build_id!r} is not the id of the canonical build it claims "
            f"({match.canonical_build_id!r}); submit the file `scalebench evaluate` wrote on that build."
        )
    if not 0 <= result.seed <= MAX_SEED:
        raise ScalebenchError(
            f"{source}: seed {result.seed} is outside 0..{MAX_SEED} (2**31 - 1); re-run with a smaller --seed."
        )


def _check_counts(result: AnyRunResult, match: KnownBuild, source: str) -> None:
    """Every count bounded by the build: split sizes, per-scale totals, selection rows, segmentation pixels."""
    ds = result.dataset
    external = training_track(result) == "external"  # trained elsewhere: no training or validation split here
    for field, expected in (("train_size", match.train_size), ("val_size", match.val_size)):
        if external and getattr(ds, field) != 0:
            raise ScalebenchError(
                f"{source}: dataset.{field} is {getattr(ds, field)}, but a model trained elsewhere (preset "
                "'external') uses no training or validation split here and records 0; submit the file "
                "scalebench.test wrote."
            )
        if not external and expected is not None and getattr(ds, field) != expected:
            raise ScalebenchError(
                f"{source}: dataset.{field} is {getattr(ds, field)}, but the canonical {match.canonical_build_id} "
                f"build has {expected}; a canonical run uses every image of the split."
            )
    size_field = "images" if result.task == "segmentation" else "total"
    for row in result.per_scale:
        n = getattr(row, size_field)
        if match.test_size is not None and n != match.test_size:
            raise ScalebenchError(
                f"{source}: per_scale {size_field} at scale {row.scale:g} is {n}, but the canonical "
                f"{match.canonical_build_id} build has {match.test_size} test images per scale."
            )
    if result.task == "segmentation":
        height, width = ds.canvas
        for row in result.per_scale:
            if row.pixels > row.images * height * width or any(u > row.pixels for u in row.unions):
                raise ScalebenchError(
                    f"{source}: at scale {row.scale:g} the pixel counts exceed the images "
                    f"({row.images} of {height}x{width}: at most {row.images * height * width} pixels, every "
                    "union at most `pixels`); submit the file `scalebench evaluate` wrote."
                )
    elif result.scale_selection is not None:
        for row, counts in zip(result.per_scale, result.scale_selection.counts, strict=True):
            if sum(counts) != row.total:
                raise ScalebenchError(
                    f"{source}: scale_selection.counts at scale {row.scale:g} sum to {sum(counts)}, not to that "
                    f"scale's total {row.total} (one winning channel per test image)."
                )


#: The training tracks of the board, decided from what a results file records, never from a claim:
#: ``standard`` (one training scale, no scale augmentation, the protocol's loss and optimizer),
#: ``augmented`` (the recipe records a ``scale_augmentation`` range), ``non-standard`` (a loss, optimizer or
#: scheduler of the user's, ``training.custom``) and ``external`` (trained elsewhere, only tested here:
#: ``training.preset`` external). Precedence in that order from the last: external, augmented, non-standard.
TRAINING_TRACKS = ("standard", "augmented", "non-standard", "external")


def training_track(result: AnyRunResult) -> str:
    """The training track of a run (see :data:`TRAINING_TRACKS`), from what its file records."""
    if result.training.preset == "external":
        return "external"
    recipe = result.training.recipe if isinstance(result.training.recipe, dict) else {}
    if recipe.get("scale_augmentation") is not None:
        return "augmented"
    return "non-standard" if getattr(result.training, "custom", None) is not None else "standard"


def verification_status(verified: int, total: int) -> str:
    """The badge of a group of seeds, from how many of its ``total`` runs are verified: ``verified`` (every
    seed re-evaluated), ``partly verified`` or ``self-reported``.

    Example:
        >>> [verification_status(n, 3) for n in (3, 1, 0)]
        ['verified', 'partly verified', 'self-reported']
    """
    if verified == total:
        return "verified"
    return "partly verified" if verified else "self-reported"


def _from_outside(result: AnyRunResult) -> bool:
    """The run's model lives outside scalebench (a file, a module or an installed package; results 1.2+)."""
    src = getattr(result.model, "source", None)
    return src is not None and src.kind != "zoo"


def check_outside_model(name: str, source: str) -> None:
    """A model from outside scalebench is never imported here: its code stays unverified until a maintainer
    verifies the checkpoint with ``--trust-model-code``. Its name must not pass for a model of the zoo."""
    from scalebench.models import registry

    if registry.is_zoo_model(name):
        raise ScalebenchError(
            f"{source}: model {name!r} comes from outside scalebench but has the name of a model of scalebench's "
            "zoo; re-run it with --name NEW_NAME."
        )


def check_model_config(
    name: str,
    config: dict[str, Any],
    source: str,
    *,
    task: str | None = None,
    num_classes: int | None = None,
    in_channels: int | None = None,
) -> None:
    """A registered model of ``task`` and a config its builder accepts, by the rules of ``scalebench evaluate``.

    The name is looked up in the registry (:func:`scalebench.models.list_models`); nothing named in a results
    file is imported. The config is checked by ``scalebench.models.registry.validate_model_config`` (unknown
    keys, wrong types, non-finite or out-of-range values). ``num_classes`` and ``in_channels`` (default: the
    card's) are those of the dataset the model ran on.
    """
    from scalebench.models import registry

    if name not in registry.list_models():
        raise ScalebenchError(
            f"{source}: model {name!r} is not registered in this scalebench (`scalebench models list`); the "
            "leaderboard takes registered models only, so that every entry can be verified."
        )
    card = registry.get_model_card(name)
    if task is not None and card.task != task:
        raise ScalebenchError(
            f"{source}: model {name!r} is a {card.task} model, but the file holds {task} results."
        )
    try:
        _validate_config(name, json.dumps(config, sort_keys=True), num_classes, in_channels)
    except ScalebenchError as err:
        raise ScalebenchError(f"{source}: model.config is not a valid config of {name!r}: {err}") from None


@functools.lru_cache(maxsize=256)
def _validate_config(name: str, config_json: str, num_classes: int | None, in_channels: int | None) -> None:
    """:func:`check_model_config`'s check of one config (cached: the seeds of a configuration share it)."""
    from scalebench.models import registry

    registry.validate_model_config(
        name, json.loads(config_json), num_classes=num_classes, in_channels=in_channels
    )


def check_recipe(recipe: dict[str, Any], source: str) -> None:
    """``training.recipe`` is a valid training recipe: the rules of ``scalebench evaluate``
    (:func:`scalebench.results.recipe.validate_recipe`), with exact JSON types (pydantic strict mode, as the
    results schema: ``"6"`` is not the integer 6)."""
    from pydantic import ValidationError

    from scalebench.results.recipe import Recipe, validate_recipe

    try:
        validate_recipe(dict(recipe))
        Recipe.model_validate(dict(recipe), strict=True)
    except ScalebenchError as err:
        raise ScalebenchError(f"{source}: training.recipe is not a valid recipe: {err}") from None
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            for e in err.errors()[:5]
        )
        raise ScalebenchError(
            f"{source}: training.recipe is not a valid recipe ({problems}); submit the file `scalebench evaluate` "
            "wrote."
        ) from None


def track_of(result: AnyRunResult, known: Sequence[KnownBuild] | None = None) -> str:
    """The track of a run (``full`` or ``lite``), from the build it records, never from what it claims; a run
    on no known build is ``full`` (the submission checks reject it anyway)."""
    known = known_builds() if known is None else tuple(known)
    ds = result.dataset
    for k in known:
        if (k.dataset, k.version, k.manifest_sha256) == (ds.name, ds.version, ds.manifest_sha256):
            return k.track
    return "full"


def validate_submission(
    text: str | bytes,
    source: str = "submission",
    *,
    known: Sequence[KnownBuild] | None = None,
    allow_verified: bool = False,
) -> tuple[AnyRunResult, PurePosixPath]:
    """Validate the text of one results file for the leaderboard; return the run and its store path.

    In memory, with no file-system access: the JSON pre-checks, the results schema (which recomputes every
    summary from the per-scale counts with :mod:`scalebench.results.metrics`), then :func:`check_run`.
    """
    _precheck_json(text, source)
    result = parse_results(text, source=source, tasks=ALL_TASKS)
    return result, check_run(result, source, known=known, allow_verified=allow_verified)
