"""The builds under a scalebench home, whatever their format: build, open, list, verify and describe them.

:func:`build_datasets` is the one way to build by name (``scalebench datasets build``): it dispatches on the
dataset to its builder (``build.py`` for the classification datasets of ``specs.py``, ``segmentation.py`` for
the segmentation set). :func:`open_build` is the one way to open a build: the handle of the manifest's
``format`` (:data:`FORMATS`), after a cheap check of the files' stored hashes. Tests stand a fake build in by patching
``scalebench.datasets_builders.open_build`` (callers outside this package look it up there at call time).
:func:`verify_build` re-decodes and re-hashes every array; :func:`describe_builds` also reports interrupted
builds (set files, no manifest) and broken ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scalebench.checks import ScalebenchError, check_choice
from scalebench.datasets_builders.build import ClassificationBuild, build_dataset
from scalebench.datasets_builders.builds import Build, key_text, parse_train_key
from scalebench.datasets_builders.manifest import (
    MANIFEST_NAME,
    array_problems,
    build_command,
    build_running,
    check_stored_hashes,
    stale_temp_files,
)
from scalebench.datasets_builders.segmentation import SegmentationBuild, build_segmentation
from scalebench.datasets_builders.specs import BUILD_CHOICES, DATASETS, SEGMENTATION_DATASET
from scalebench.paths import datasets_dir
from scalebench.progress import Progress

#: The handle of each manifest format; a manifest without ``format`` is a classification one (version 1).
FORMATS: dict[str, type[Build]] = {cls.format: cls for cls in (ClassificationBuild, SegmentationBuild)}


def build_datasets(
    dataset: str = "fashion-mnist",
    *,
    train_scale: str | Iterable[float] | float | None = None,
    lite: bool = False,
    **options: Any,
) -> list[Build]:
    """Build (or complete) ``dataset``: a classification dataset, ``all`` three, or the segmentation set.

    Args:
        dataset: one of :data:`~scalebench.datasets_builders.specs.BUILD_CHOICES`.
        train_scale: the training set to add (``--train-scale``): a scale (``2``), or a mixed set of the
            segmentation build (``1+2+3+4``); None: the build's default set.
        lite: the canonical lite build of a classification dataset.
        options: ``root``, ``raw_dir``, ``scales``, ``limit``, ``embedded``, ``download``, ``progress``, as
            :func:`~scalebench.datasets_builders.build.build_dataset` and
            :func:`~scalebench.datasets_builders.segmentation.build_segmentation` take them.

    Returns:
        The handle of each build.
    """
    check_choice(dataset, "--dataset", BUILD_CHOICES)
    key = parse_train_key(train_scale) if train_scale is not None else None
    if dataset == SEGMENTATION_DATASET:
        if lite:
            raise ScalebenchError(
                f"--lite exists for the classification datasets; drop --lite for {dataset}."
            )
        return [build_segmentation(train_scales=[key] if key else None, **options)]
    if key is not None and len(key) != 1:
        raise ScalebenchError(
            f"--train-scale takes one scale for a classification build (one training set per scale), got "
            f"{key_text(key)}."
        )
    if dataset == "all" and options.get("embedded"):
        raise ScalebenchError(
            "--embedded exists for fashion-mnist only; use --dataset fashion-mnist --embedded."
        )
    names = list(DATASETS) if dataset == "all" else [dataset]
    return [build_dataset(n, train_scales=key, lite=lite, **options) for n in names]


def open_build(build_id: str, root: str | Path | None = None, *, task: str | None = None) -> Build:
    """Open a build by id (under ``root``, the scalebench home): the handle of its manifest's format, after a
    cheap check that every listed file carries the manifest's array hashes. A ScalebenchError when the build does
    not exist (with the command to build it), its manifest is not valid, it is not of ``task`` (when given), or
    a file is missing or was replaced."""
    base = datasets_dir(root)
    folder = base / build_id
    path = folder / MANIFEST_NAME
    fix = f"rebuild with `{build_command(build_id)}`"
    if not path.is_file():
        raise ScalebenchError(
            f"Dataset {build_id!r} has not been built under {base}; run `{build_command(build_id)}` "
            "(add --root DIR if you keep data elsewhere)."
        )
    try:
        manifest = json.loads(path.read_text())
        fmt = manifest.get("format", ClassificationBuild.format)
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
        cls = FORMATS[fmt]
        if task is not None and cls.task != task:
            raise ScalebenchError(
                f"{build_id!r} is a {fmt} build, not a {task} build; this command takes {task} builds only "
                "(`scalebench datasets info` lists the builds)."
            )
        built = cls(folder, manifest)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise ScalebenchError(
            f"{path}: not a valid scalebench manifest ({err}); delete {folder} and {fix}."
        ) from None
    check_stored_hashes(folder, manifest, path, fix=fix)
    return built


def build_task(build_id: str, root: str | Path | None = None) -> str | None:
    """The task of a build read from its manifest's format, without opening its files; None when unreadable."""
    try:
        manifest = json.loads((datasets_dir(root) / build_id / MANIFEST_NAME).read_text())
        return FORMATS[manifest.get("format", ClassificationBuild.format)].task
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None


def _of_dataset(ids: Iterable[str], dataset: str | None) -> list[str]:
    if dataset is None or dataset == "all":
        return sorted(ids)
    pattern = re.escape(dataset) + r"(-embedded)?(-lite)?(-limit\d+)?(-canvas\d+x\d+)?"
    return sorted(b for b in ids if b == dataset or re.fullmatch(pattern, b))


def list_builds(root: str | Path | None = None, dataset: str | None = None) -> list[str]:
    """Build ids found under ``datasets_dir(root)`` (those with a manifest), optionally of one dataset/build."""
    base = datasets_dir(root)
    if not base.is_dir():
        return []
    return _of_dataset((p.name for p in base.iterdir() if (p / MANIFEST_NAME).is_file()), dataset)


def interrupted_builds(root: str | Path | None = None, dataset: str | None = None) -> dict[str, str]:
    """Build folders without a manifest that hold set or temporary files (a first build that was killed, failed
    or is running now): build id -> a one-line state."""
    base = datasets_dir(root)
    if not base.is_dir():
        return {}
    out = {}
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not (p / MANIFEST_NAME).exists()):
        if folder.name not in _of_dataset([folder.name], dataset):
            continue
        sets, temps = [p for p in folder.glob("*.h5") if not p.name.startswith(".")], stale_temp_files(folder)
        if not sets and not temps:
            continue
        size = sum(p.stat().st_size for p in (*sets, *temps)) / 2**20
        done = f"{len(sets)} complete set file(s) and {len(temps)} temporary file(s) ({size:.1f} MiB)"
        if build_running(folder):
            out[folder.name] = f"BUILDING: a build of this id is running ({done} so far)."
        else:
            out[folder.name] = (
                f"INTERRUPTED: no manifest; a killed or failed build left {done} in {folder}. Fix: rerun "
                f"`{build_command(folder.name)}` with the same options (it reuses the complete sets and "
                f"removes the temporary files), or delete {folder}."
            )
    return out


def verify_build(
    build_id: str, root: str | Path | None = None, *, progress: bool | str = "none"
) -> list[str]:
    """Re-decode and re-hash every array of a build against its manifest; return one line per mismatch.
    ``progress``: a ``--progress`` mode (one step per set file)."""
    folder = datasets_dir(root) / build_id
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        return [f"{manifest_path}: missing; run `{build_command(build_id)}`"]
    try:
        files = sorted(json.loads(manifest_path.read_text())["files"].items())
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        return [f"{manifest_path}: unreadable ({err})"]
    problems: list[str] = []
    with Progress(progress) as bar:
        bar.start(f"{build_id}: verify {len(files)} files", len(files))
        for fname, rec in files:
            path = folder / fname
            problems += array_problems(path, rec["arrays"]) if path.is_file() else [f"{path}: missing"]
            bar.advance()
        bar.end(f"{len(problems)} mismatch(es)")
    return problems


def no_build_error(root: str | Path | None, dataset: str | None) -> ScalebenchError:
    """The error of a command that found no build (of ``dataset``) to work on, naming interrupted ones."""
    what, partial = f"of {dataset!r} " if dataset else "", ", ".join(interrupted_builds(root, dataset))
    hint = f" ({partial}: an interrupted build without a manifest; `scalebench datasets info` says how to finish it)"
    return ScalebenchError(
        f"No built dataset {what}under {datasets_dir(root)}{hint if partial else ''}; run `scalebench datasets "
        "build` first."
    )


def verify_datasets(
    dataset: str | None = None, root: str | Path | None = None, *, progress: bool | str = "none"
) -> dict[str, list[str]]:
    """Verify every build (or those of ``dataset``, a name or a build id); map build id -> mismatches.

    Raises:
        ScalebenchError: when nothing matching is built.
    """
    ids = list_builds(root, dataset)
    if not ids:
        raise no_build_error(root, dataset)
    return {b: verify_build(b, root, progress=progress) for b in ids}


def format_verify_datasets(report: dict[str, list[str]]) -> str:
    """What ``scalebench datasets verify`` prints for :func:`verify_datasets`' report: a line per build (``OK``
    or its mismatches), and how to fix them."""
    lines = []
    for build_id, problems in report.items():
        lines += [f"{build_id}: {'OK' if not problems else f'{len(problems)} mismatch(es)'}"]
        lines += [f"  {line}" for line in problems]
    if any(report.values()):
        lines.append(
            "Fix: delete the files listed and rerun `scalebench datasets build` (same options) to rebuild them."
        )
    return "\n".join(lines)


def describe_builds(dataset: str | None = None, root: str | Path | None = None) -> str:
    """A text table of the builds: sizes, scales, disk use, manifest hash and folder."""
    ids = list_builds(root, dataset)
    partial = interrupted_builds(root, dataset)
    if not ids and not partial:
        return f"No built datasets under {datasets_dir(root)}; run `scalebench datasets build --embedded` to start."
    lines = []
    for b in sorted([*ids, *partial]):
        if b in partial:
            lines.append(f"{b}: {partial[b]}")
            continue
        try:
            lines += open_build(b, root).describe()
        except ScalebenchError as err:
            lines.append(f"{b}: BROKEN: {err}")
        temps = stale_temp_files(datasets_dir(root) / b)
        if temps and not build_running(datasets_dir(root) / b):
            size = sum(p.stat().st_size for p in temps) / 2**20
            lines.append(
                f"  {len(temps)} temporary file(s) of an interrupted build ({size:.1f} MiB); the next "
                "`scalebench datasets build` of this build removes them"
            )
    return "\n".join(lines)
