"""Submission checks beyond the results schema: what a run must satisfy to enter the leaderboard.

The results schema (:mod:`scalebench.benchmark.results`) already rejects malformed JSON, NaN and inf, unknown
fields, negative counts, counts above totals, files above its size limit, and summaries that disagree with
the ones recomputed from the per-scale counts (:mod:`scalebench.benchmark.metrics`). This module adds the
rules of the leaderboard, following the lessons of RobustBench, WILDS and MTEB (``research/ecosystem.md``
§2 B, E, F and §3.2):

- the JSON nests at most :data:`MAX_DEPTH` levels and repeats no key inside one object (``json.loads`` would
  silently keep the last of two ``"seed"`` keys);
- the dataset build is known to this scalebench: the pair (dataset version, manifest sha256) is a canonical
  build recorded in :data:`scalebench.datasets_builders.DATASETS` (:func:`known_builds`);
- the per-scale results cover exactly that build's canonical test scales, and the training scale is its one;
- no ``--limit`` smoke run and no run on the embedded demo subset;
- ``evaluated_by`` is "self-reported": only re-evaluating the checkpoint (``scalebench submit --checkpoint`` or
  ``scalebench evaluate --verify``) can make an entry "verified";
- the model name and dataset name are slugs, so that the store's file names are built only from checked text.

The store path of a run is ``<dataset>/<model>/<config-hash>/seed-<n>.json``, where the config hash
(:func:`run_config_hash`) covers everything that determines the results except the seed, so that the seeds of
one configuration share a folder and are aggregated together. The results schema's own ``config_hash``
includes the seed, so it cannot serve here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from scalebench.benchmark.results import MAX_RESULTS_BYTES, RunResult, parse_results
from scalebench.checks import ScalebenchError
from scalebench.fileio import config_hash

#: Deepest nesting of JSON arrays and objects accepted in a submission (a results file nests about 6 deep;
#: a model config a few more). Deeper input is rejected before it reaches a recursive parser or validator.
MAX_DEPTH = 32

#: A name that may become a path component: lowercase letters, digits, ``_``, ``-`` and ``.``, not starting
#: with a dot, at most 100 characters.
SLUG_PATTERN = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,99}")

#: Relative tolerance when a run's test scale is matched to a canonical scale (scales are stored to 6 decimals).
SCALE_RTOL = 1e-6


@dataclass(frozen=True)
class KnownBuild:
    """A canonical dataset build that this scalebench accepts on the leaderboard."""

    dataset: str
    version: str
    manifest_sha256: str
    test_scales: tuple[float, ...]
    train_scale: float


def known_builds() -> tuple[KnownBuild, ...]:
    """The canonical builds recorded by the datasets package (specs whose ``known_manifest_sha256`` is set).

    A spec may also list older accepted builds as ``known_manifests``: a mapping version -> manifest sha256.
    """
    from scalebench.datasets_builders import DATASETS, GENERATOR_VERSION

    out: list[KnownBuild] = []
    for name, spec in sorted(DATASETS.items()):
        pairs: dict[str, str] = {}
        if getattr(spec, "known_manifest_sha256", None):
            pairs[GENERATOR_VERSION] = spec.known_manifest_sha256
        pairs.update(dict(getattr(spec, "known_manifests", None) or {}))
        for version, sha in sorted(pairs.items()):
            out.append(
                KnownBuild(
                    name, version, sha, tuple(float(s) for s in spec.test_scales), float(spec.train_scale)
                )
            )
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


def run_config_hash(result: RunResult) -> str:
    """Hash of everything that determines a run's results except its seed (16 hex digits).

    Covers the model name and full config, the preset and training recipe, the dataset build (name, version,
    manifest sha256, training scale), the test scales and the AMP flag. Seeds of one configuration share it.
    """
    identity: dict[str, Any] = {
        "model": result.model.name,
        "model_config": result.model.config,
        "preset": result.training.preset,
        "recipe": result.training.recipe,
        "dataset": result.dataset.name,
        "dataset_version": result.dataset.version,
        "manifest_sha256": result.dataset.manifest_sha256,
        "train_scale": result.dataset.train_scale,
        "scales": result.scales,
        "amp": result.environment.amp,
    }
    return config_hash(identity, length=16)


def entry_path(result: RunResult) -> PurePosixPath:
    """The store path of a run, relative to the store root: ``<dataset>/<model>/<config-hash>/seed-<n>.json``.

    Built only from checked parts: two slugs, a hex hash and an integer.
    """
    dataset = slug(result.dataset.name, "dataset name")
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


def check_run(
    result: RunResult,
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
            f"dataset. Build it with `scalebench build-datasets --dataset {ds.name}` and re-run."
        )
    if result.evaluated_by != "self-reported" and not allow_verified:
        raise ScalebenchError(
            f"{source} claims evaluated_by={result.evaluated_by!r}; a submission is self-reported. To have it "
            "verified, submit it with --checkpoint BEST.safetensors so the checkpoint is re-evaluated."
        )
    slug(ds.name, "dataset name", source)
    slug(result.model.name, "model name", source)
    same_dataset = [k for k in known if k.dataset == ds.name]
    if not same_dataset:
        names = sorted({k.dataset for k in known})
        raise ScalebenchError(
            f"{source}: dataset {ds.name!r} has no canonical build known to this scalebench "
            f"(known: {names or 'none recorded yet'}). Evaluate on a canonical build, or upgrade scalebench "
            "if the build is newer."
        )
    same_version = [k for k in same_dataset if k.version == ds.version]
    if not same_version:
        versions = sorted({k.version for k in same_dataset})
        raise ScalebenchError(
            f"{source}: dataset version {ds.version!r} of {ds.name!r} is not known to this scalebench "
            f"(known versions: {versions}). Rebuild the dataset with this scalebench and re-run the evaluation."
        )
    match = next((k for k in same_version if k.manifest_sha256 == ds.manifest_sha256), None)
    if match is None:
        raise ScalebenchError(
            f"{source}: manifest sha256 {ds.manifest_sha256} of {ds.name!r} {ds.version} is not a canonical "
            f"build (expected {same_version[0].manifest_sha256}); the test sets differ. Rebuild with "
            f"`scalebench build-datasets --dataset {ds.name}` (default scales, no --limit) and re-run."
        )
    if not math.isclose(ds.train_scale, match.train_scale, rel_tol=SCALE_RTOL):
        raise ScalebenchError(
            f"{source}: training scale {ds.train_scale:g} differs from the canonical build's {match.train_scale:g}."
        )
    scales = result.scales
    missing = [
        s for s in match.test_scales if not any(math.isclose(s, r, rel_tol=SCALE_RTOL) for r in scales)
    ]
    extra = [r for r in scales if not any(math.isclose(s, r, rel_tol=SCALE_RTOL) for s in match.test_scales)]
    if missing or extra:
        raise ScalebenchError(
            f"{source}: test scales {_fmt_scales(scales)} are not the canonical {_fmt_scales(match.test_scales)} "
            f"of {ds.name} (missing {_fmt_scales(missing)}, extra {_fmt_scales(extra)}). Re-run "
            "`scalebench evaluate` without --scales."
        )
    return entry_path(result)


def validate_submission(
    text: str | bytes,
    source: str = "submission",
    *,
    known: Sequence[KnownBuild] | None = None,
    allow_verified: bool = False,
) -> tuple[RunResult, PurePosixPath]:
    """Validate the text of one results file for the leaderboard; return the run and its store path.

    In memory, with no file-system access: the JSON pre-checks, the results schema (which recomputes every
    summary from the per-scale counts with :mod:`scalebench.benchmark.metrics`), then :func:`check_run`.
    """
    _precheck_json(text, source)
    result = parse_results(text, source=source)
    return result, check_run(result, source, known=known, allow_verified=allow_verified)
