"""The builds under a scalebench home, whatever their format: open, list, verify and describe them.

:func:`open_build` is the one way to open a build: the handle of the manifest's ``format`` (:data:`FORMATS`),
after a cheap check of the files' stored hashes. Tests stand a fake build in by patching
``scalebench.datasets_builders.open_build`` (callers outside this package look it up there at call time).
:func:`verify_build` re-decodes and re-hashes every array; :func:`describe_builds` also reports interrupted
builds (set files, no manifest) and broken ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.build import ClassificationBuild
from scalebench.datasets_builders.builds import Build
from scalebench.datasets_builders.manifest import (
    MANIFEST_NAME,
    array_problems,
    build_command,
    build_running,
    check_stored_hashes,
    stale_temp_files,
)
from scalebench.datasets_builders.segmentation import SegmentationBuild
from scalebench.paths import datasets_dir

#: The handle of each manifest format; a manifest without ``format`` is a classification one (version 1).
FORMATS: dict[str, type[Build]] = {cls.format: cls for cls in (ClassificationBuild, SegmentationBuild)}


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


def verify_build(build_id: str, root: str | Path | None = None) -> list[str]:
    """Re-decode and re-hash every array of a build against its manifest; return one line per mismatch."""
    folder = datasets_dir(root) / build_id
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        return [f"{manifest_path}: missing; run `{build_command(build_id)}`"]
    try:
        files = sorted(json.loads(manifest_path.read_text())["files"].items())
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        return [f"{manifest_path}: unreadable ({err})"]
    problems: list[str] = []
    for fname, rec in files:
        path = folder / fname
        problems += array_problems(path, rec["arrays"]) if path.is_file() else [f"{path}: missing"]
    return problems


def verify_datasets(dataset: str | None = None, root: str | Path | None = None) -> dict[str, list[str]]:
    """Verify every build (or those of ``dataset``, a name or a build id); map build id -> mismatches.

    Raises:
        ScalebenchError: when nothing matching is built.
    """
    ids = list_builds(root, dataset)
    if not ids:
        what, partial = f"of {dataset!r} " if dataset else "", ", ".join(interrupted_builds(root, dataset))
        hint = f" ({partial}: an interrupted build without a manifest; `scalebench datasets info` says how to finish it)"
        raise ScalebenchError(
            f"No built dataset {what}under {datasets_dir(root)}{hint if partial else ''}; run `scalebench "
            "build-datasets` first."
        )
    return {b: verify_build(b, root) for b in ids}


def describe_builds(dataset: str | None = None, root: str | Path | None = None) -> str:
    """A text table of the builds: sizes, scales, disk use, manifest hash and folder."""
    ids = list_builds(root, dataset)
    partial = interrupted_builds(root, dataset)
    if not ids and not partial:
        return f"No built datasets under {datasets_dir(root)}; run `scalebench build-datasets --embedded` to start."
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
                "`scalebench build-datasets` of this build removes them"
            )
    return "\n".join(lines)
