"""What every builder shares: build ids, hashes, the manifest, chunked HDF5 writes, the build lock.

A build lives in ``datasets_dir(root) / build_id /`` (:func:`run_build`; the sets of each format: ``build.py``,
``segmentation.py``): HDF5 set files, each written to a temporary name and renamed when complete, storing the
config it was written with (:attr:`SetPlan.config`) and the sha256 of its arrays (``array_sha256``); then
``manifest.json``: the format, the build id, the protocol and, per file, its role, scale(s) and the sha256 of
every decoded array (its C-order bytes), deterministic (no times, no paths), so that its sha256
(:func:`manifest_digest`) is reproducible anywhere; ``build_info.json``: times, host and library versions.

Faults a build survives: concurrent builds of one id (each holds an exclusive ``fcntl.flock`` on
``<build>/.lock``, :func:`build_lock`, and re-reads the manifest under it, so that it keeps the scales another
one added; a folder that cannot be written, a read-only ``--root``, is read without a lock); a killed build (the
next build of that id removes its temporary files, ``.<name>.<random>.tmp.h5``, and reuses its complete set
files, :func:`reuse_sets`); an unreadable ``manifest.json`` (rebuilt from the set files whose config matches and
whose arrays re-hash to the hashes they store; a damaged set is rewritten); an operating-system error while
writing (one :class:`ScalebenchError` naming the path and the error, :func:`os_write_error`; a failed build
leaves no empty build folder).

Not handled: a set file damaged after a build whose manifest is intact is found by ``datasets verify`` only;
a re-run trusts it (delete it and rerun). File systems without ``flock`` build without a lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import hashlib
import json
import os
import platform
import re
import sys
import time
import traceback
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from scalebench.checks import ScalebenchError
from scalebench.fileio import atomic_path, is_finite_number, new_file_mode, write_json_atomic
from scalebench.progress import Progress

MANIFEST_NAME = "manifest.json"
INFO_NAME = "build_info.json"
LOCK_NAME = ".lock"
GZIP_LEVEL = 1
CHUNK_BYTES = 256 << 10
BLOCK_BYTES = 2 << 20
#: Sets written at once, one torch thread each (numpy, zlib and hashlib release the GIL).
WORKERS = 2
#: Temporary files of :func:`scalebench.fileio.atomic_path`: ``.<name>.<8 random characters>.tmp[.h5]``.
_TEMP_RE = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp(\.h5)?")
_ID_RE = re.compile(r"(.+?)(-embedded)?(-lite)?(?:-limit(\d+))?(?:-canvas(\d+)x(\d+))?")


# --- build ids ---------------------------------------------------------------------------------------------


def build_id_for(name: str, *, limit: int | None = None, embedded: bool = False, lite: bool = False) -> str:
    """The build id: ``name``, ``name-lite``, ``name-embedded``, ``name-limit<N>`` (or ``name-embedded-limit<N>``).

    Example:
        >>> build_id_for("fashion-mnist", limit=500), build_id_for("fashion-mnist", embedded=True)
        ('fashion-mnist-limit500', 'fashion-mnist-embedded')
        >>> build_id_for("fashion-mnist", lite=True)
        'fashion-mnist-lite'
    """
    out = name + ("-embedded" if embedded else "") + ("-lite" if lite else "")
    return out + (f"-limit{limit}" if limit is not None else "")


def check_limit(limit: Any) -> int | None:
    """``--limit`` as an ``int`` (None: no limit). Anything but a positive integer (a bool, a float, a string) is
    an error.

    Example:
        >>> check_limit(np.int64(500)), check_limit(None)
        (500, None)
    """
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ScalebenchError(f"--limit must be a positive integer, got {limit!r}.")
    return int(limit)


def cap_sizes(sizes: dict[str, int], limit: int | None) -> dict[str, int]:
    """``sizes`` with each split cut to at most ``limit`` images (None: no limit).

    Example:
        >>> cap_sizes({"train": 50000, "test": 10}, 500)
        {'train': 500, 'test': 10}
    """
    return {k: min(v, limit) if limit is not None else v for k, v in sizes.items()}


def build_command(build_id: str) -> str:
    """The command that builds ``build_id`` (for a canvas other than the default, the Python call that does).

    Example:
        >>> build_command("fashion-mnist-seg-embedded-limit8")
        'scalebench datasets build --dataset fashion-mnist-seg --embedded --limit 8'
    """
    m = _ID_RE.fullmatch(build_id)
    if m is None:  # the empty id
        return "scalebench datasets build"
    name, embedded, lite, limit, h, w = m.groups()
    if h is not None:
        args = (", embedded=True" if embedded else "") + (f", limit={limit}" if limit else "")
        return f"build_segmentation(canvas=({h}, {w}){args})"
    flags = (" --embedded" if embedded else "") + (" --lite" if lite else "")
    return f"scalebench datasets build --dataset {name}{flags}" + (f" --limit {limit}" if limit else "")


# --- hashes and the manifest ---------------------------------------------------------------------------------


def array_sha256(a: np.ndarray) -> str:
    """sha256 of an array's C-order bytes (int64 little-endian for labels)."""
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def array_record(a: np.ndarray) -> dict[str, Any]:
    """The manifest record of an array: dtype, shape and :func:`array_sha256`."""
    return {"dtype": str(a.dtype), "shape": list(a.shape), "sha256": array_sha256(a)}


def hash_dataset(ds: h5py.Dataset) -> str:
    """:func:`array_sha256` of an HDF5 dataset, decoded block by block (whole chunks, about 2 MiB)."""
    sha = hashlib.sha256()
    if ds.ndim == 1:
        return array_sha256(np.asarray(ds[()]).astype("<i8" if ds.dtype.kind == "i" else ds.dtype))
    step = max(1, (BLOCK_BYTES // max(1, int(np.prod(ds.shape[1:])))))
    if ds.chunks:
        step = max(ds.chunks[0], step - step % ds.chunks[0])
    for start in range(0, ds.shape[0], step):
        sha.update(np.ascontiguousarray(ds[start : start + step]).tobytes())
    return sha.hexdigest()


def array_problems(path: Path, arrays: dict[str, dict[str, Any]]) -> list[str]:
    """One line per array of ``path`` that is missing, has another dtype or shape, does not decode, or re-hashes
    to another sha256 than its record in ``arrays`` (the full check of ``scalebench datasets verify``)."""
    out = []
    try:
        with h5py.File(path, "r") as f:
            for key, want in sorted(arrays.items()):
                ds = f.get(key)
                if ds is None or list(ds.shape) != want["shape"] or str(ds.dtype) != want["dtype"]:
                    found = "missing" if ds is None else f"{ds.dtype} {list(ds.shape)}"
                    out.append(f"{path}: {key} is {found}, {want['dtype']} {want['shape']} expected")
                    continue
                try:
                    got = hash_dataset(ds)
                except OSError as err:
                    out.append(f"{path}: {key} cannot be decoded ({err})")
                    continue
                if got != want["sha256"]:
                    out.append(f"{path}: {key} sha256 {got} found, {want['sha256']} expected")
    except OSError as err:
        out.append(f"{path}: cannot be opened as HDF5 ({err})")
    return out


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the canonical manifest content: JSON with sorted keys and no whitespace."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def read_manifest(path: Path) -> tuple[dict[str, Any] | None, bool]:
    """(the manifest, False), (None, False) when there is none, or (None, True) when it is unreadable."""
    if not path.exists():
        return None, False
    try:
        manifest = json.loads(path.read_text())
        proto, files = manifest["protocol"], manifest["files"]
        if not isinstance(files, dict) or not isinstance(proto, dict):
            raise TypeError("files and protocol must be objects")
        for key in ("test_scales", *(["train_scales"] if "train_scales" in proto else [])):
            scales = proto[key]
            if not isinstance(scales, list) or not all(is_finite_number(v) and v > 0 for v in scales):
                raise TypeError(f"{key} must be a list of positive numbers")
    except (OSError, ValueError, KeyError, TypeError):
        return None, True
    return manifest, False


def check_stored_hashes(folder: Path, manifest: dict[str, Any], manifest_path: Path, *, fix: str) -> None:
    """Every HDF5 file listed in ``manifest["files"]`` opens and carries, in its ``array_sha256`` attribute,
    the array hashes the manifest records for it; otherwise a ScalebenchError naming the file and ``fix``."""
    for fname, rec in manifest["files"].items():
        path = folder / fname
        try:
            with h5py.File(path, "r") as f:
                stored = json.loads(f.attrs["array_sha256"])
        except (OSError, KeyError, ValueError):
            raise ScalebenchError(f"{path}: missing or unreadable; {fix}.") from None
        if stored != rec["arrays"]:
            raise ScalebenchError(f"{path}: its array hashes differ from {manifest_path}; {fix}.")


# --- set files -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetPlan:
    """One HDF5 file of a build: its name, images per split, ``config`` (the JSON text it stores and a re-run
    compares) and ``entry`` (its fields in the manifest besides ``arrays``: ``role`` (``train_val``: a training
    set and its validation set; ``test``), scale or key and scales)."""

    filename: str
    sizes: dict[str, int]
    config: str
    entry: dict[str, Any]


def stored_arrays(path: Path, attr: str, config: str) -> dict[str, dict[str, Any]] | None:
    """The array record of a complete set file written with ``config`` (in attribute ``attr``), or None."""
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get(attr) != config:
                return None
            arrays = json.loads(f.attrs["array_sha256"])
            fields = {"dtype", "shape", "sha256"}
            whole = all(
                k in f and set(r) == fields and list(f[k].shape) == r["shape"] for k, r in arrays.items()
            )
            return arrays if whole else None
    except (OSError, KeyError, TypeError, ValueError):
        return None


def reuse_sets(
    folder: Path, plans: Iterable[SetPlan], attr: str, old: dict[str, Any] | None, repair: bool
) -> tuple[dict[str, dict[str, Any]], list[SetPlan]]:
    """(array records of the set files kept, the plans to write). A file is kept when it is complete, was written
    with its plan's config, carries the hashes the old manifest (if any) records for it and, with ``repair``
    (the manifest was unreadable), when its arrays re-hash to the hashes it stores."""
    records, todo = {}, []
    old_files = (old or {}).get("files", {})
    for plan in plans:
        path = folder / plan.filename
        rec = stored_arrays(path, attr, plan.config)
        if rec is not None and plan.filename in old_files and old_files[plan.filename].get("arrays") != rec:
            rec = None
        if rec is not None and repair and array_problems(path, rec):
            rec = None  # damaged: rewritten
        if rec is None:
            todo.append(plan)
        else:
            records[plan.filename] = rec
    return records, todo


def write_set(
    folder: Path, plan: SetPlan, attr: str, fill: Callable[[h5py.File, dict[str, Any]], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Write the set file of ``plan`` atomically and return the records of its arrays.

    ``fill(f, arrays)`` writes the arrays into the open file, records each in ``arrays`` and returns the file's
    attributes; the plan's config (as ``attr``) and ``array_sha256`` are stored last.
    """
    arrays: dict[str, dict[str, Any]] = {}
    try:
        with (
            atomic_path(folder / plan.filename, suffix=".h5") as tmp,
            h5py.File(tmp, "w", libver="earliest") as f,
        ):
            attrs = {**fill(f, arrays), attr: plan.config, "array_sha256": json.dumps(arrays, sort_keys=True)}
            for key, value in attrs.items():
                f.attrs[key] = value
    except OSError as err:  # e.g. a full disk: free the HDF5 objects now, quietly (their close fails too)
        f = None  # drops this frame's handle; _release_quietly clears the deeper frames'
        _release_quietly(err)
        raise
    return arrays


def _release_quietly(err: BaseException) -> None:
    """Drop the local variables of ``err``'s frames (HDF5 handles of a failed write) and collect them now, with
    the "Exception ignored in ..." reports of their failing deallocation silenced: the error itself is reported
    once, by the caller, instead of a traceback printed whenever the garbage collector happens to run."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _unraisable: None
    try:
        traceback.clear_frames(err.__traceback__)
        gc.collect()
    finally:
        sys.unraisablehook = hook


def write_array_chunked(
    f: h5py.File,
    key: str,
    shape: tuple[int, ...],
    produce: Callable[[int, int], np.ndarray],
    chunk: int,
    tick: Any,
) -> dict[str, Any]:
    """Create the uint8 array ``key`` (gzip chunks of ``chunk`` items) and fill it block by block with
    ``produce(start, stop)``, deflating whole chunks here (zlib releases the GIL); return its record."""
    n = shape[0]
    chunks = (min(chunk, max(n, 1)), *shape[1:])
    ds = f.create_dataset(
        key, shape=shape, dtype=np.uint8, chunks=chunks, compression="gzip", compression_opts=GZIP_LEVEL
    )
    sha = hashlib.sha256()
    chunk = chunks[0]
    block = chunk * max(1, BLOCK_BYTES // (chunk * int(np.prod(shape[1:]))))
    for start in range(0, n, block):
        stop = min(n, start + block)
        data = np.ascontiguousarray(produce(start, stop))
        sha.update(memoryview(data).cast("B"))
        for c0 in range(0, stop - start, chunk):
            part = data[c0 : c0 + chunk]
            if part.shape[0] < chunk:
                part = np.concatenate([part, np.zeros((chunk - part.shape[0], *shape[1:]), np.uint8)])
            payload = zlib.compress(memoryview(part).cast("B"), GZIP_LEVEL)
            ds.id.write_direct_chunk((start + c0,) + (0,) * (len(shape) - 1), payload, 0)
        tick(stop - start)
    return {"dtype": "uint8", "shape": list(shape), "sha256": sha.hexdigest()}


def write_sets(
    folder: Path,
    todo: list[SetPlan],
    write: Callable[[SetPlan, Callable[[int], None]], dict],
    progress: bool | str = "none",
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Write the sets of ``todo`` (largest first) with ``write(plan, tick)``, :data:`WORKERS` at once, one torch
    thread each (one set: in this thread, so that Ctrl-C stops it at once); return their array records and
    seconds. ``tick(n)`` counts ``n`` images written in the ``progress`` display (:mod:`scalebench.progress`:
    a bar, or dated plain lines at most every 10 s). An OS error is :func:`os_write_error` naming the file."""

    def run(plan: SetPlan) -> tuple[str, dict[str, Any], float]:
        t = time.perf_counter()
        try:
            return plan.filename, write(plan, bar.advance), round(time.perf_counter() - t, 3)
        except OSError as err:
            raise os_write_error(folder / plan.filename, err) from None

    threads, workers = torch.get_num_threads(), min(WORKERS, len(todo))
    ex = ThreadPoolExecutor(workers, thread_name_prefix="scalebench-build")
    with Progress(progress) as bar:
        bar.start(f"{folder.name}: {len(todo)} sets", sum(sum(p.sizes.values()) for p in todo))
        torch.set_num_threads(1 if workers > 1 else threads)
        try:
            results = list(ex.map(run, todo)) if workers > 1 else [run(p) for p in todo]
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
            torch.set_num_threads(threads)
        bar.end()
    return {f: rec for f, rec, _ in results}, {f: secs for f, _, secs in results}


def run_build(
    folder: Path,
    fmt: str,
    plan: Callable[[dict[str, Any] | None, bool], tuple[dict[str, Any], list[SetPlan]]],
    writer: Callable[[dict[str, Any]], Callable[[SetPlan, Callable[[int], None]], dict]],
    *,
    attr: str,
    progress: bool | str = "none",
    **info: Any,
) -> dict[str, Any]:
    """Build or complete the build in ``folder`` under its lock; return its manifest (written last).

    ``plan(old, unreadable)`` gives the manifest's protocol and the set files from the manifest found (None when
    there is none or, with ``unreadable``, when it cannot be read); the set files that can be kept are kept
    (:func:`reuse_sets`, their config stored as ``attr``), and ``writer(protocol)``, called only when one is
    missing (a builder loads its raw files then), gives the function that writes one. ``progress``: a
    ``--progress`` mode (:func:`write_sets`). ``info``: for ``build_info.json``."""
    t0 = time.perf_counter()
    with build_lock(folder):
        # Under the lock no other build of this id runs: the manifest read here is the one to extend.
        old, unreadable = read_manifest(folder / MANIFEST_NAME)
        protocol, plans = plan(old, unreadable)
        records, todo = reuse_sets(folder, plans, attr, old, unreadable)
        timings: dict[str, float] = {}
        if todo:
            written, timings = write_sets(folder, todo, writer(protocol), progress)
            records.update(written)
        manifest = {
            "format": fmt,
            "build_id": folder.name,
            "dataset": protocol["dataset"],
            "generator_version": protocol["generator_version"],
            "protocol": protocol,
            "files": {p.filename: {**p.entry, "arrays": records[p.filename]} for p in plans},
        }
        if todo or old != manifest:
            write_json(folder / MANIFEST_NAME, manifest)
            built, seconds = [p.filename for p in todo], round(time.perf_counter() - t0, 3)
            write_json(
                folder / INFO_NAME,
                {"manifest_sha256": manifest_digest(manifest), "built_sets": built, "seconds": seconds,
                 "timings_s": timings, "host": platform.node(), "platform": platform.platform(),
                 "cpu_count": os.cpu_count(), "versions": versions(), **info},
            )  # fmt: skip
    return manifest


def write_json(path: Path, obj: Any) -> None:
    """:func:`write_json_atomic`, with an operating-system error turned into :func:`os_write_error`."""
    try:
        write_json_atomic(path, obj)
    except OSError as err:
        raise os_write_error(path, err) from None


def versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour a build depends on (recorded in ``build_info.json``)."""
    import PIL

    from scalebench import __version__

    return {
        "scalebench": __version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "torch": torch.__version__,
        "pillow": PIL.__version__,
    }


# --- the build folder: lock, stale temporary files, write errors ------------------------------------------


def os_write_error(path: Path, err: OSError) -> ScalebenchError:
    """The one-line error for an operating-system error while writing ``path`` (read-only, disk full, ...).

    HDF5 errors carry the errno only in their text (``errno = 28``); it is parsed from there.

    Example:
        >>> str(os_write_error(Path("/d/x.h5"), OSError(errno.ENOSPC, "No space left on device")))[:58]
        'Cannot write /d/x.h5: No space left on device (ENOSPC); no'
    """
    code = err.errno
    if code is None:
        m = re.search(r"errno = (\d+)", str(err))
        code = int(m.group(1)) if m else None
    reason = f"{os.strerror(code)} ({errno.errorcode.get(code, code)})" if code else str(err)
    if code in (errno.ENOSPC, errno.EDQUOT):
        fix = f"free space on the disk of {path.parent} or pass another --root"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = f"make {path.parent} writable or pass another --root"
    else:
        fix = "remove the cause"
    return ScalebenchError(
        f"Cannot write {path}: {reason}; nothing half-written was kept. Fix: {fix}, then rerun the same "
        "command (it reuses the complete sets)."
    )


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _lock_fd(folder: Path) -> int | None:
    """An fd of ``<folder>/.lock`` holding an exclusive flock; None when the folder cannot be written (a
    build there can only read, and fails on its first write) or its file system has no flock."""
    path = folder / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, new_file_mode())
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise ScalebenchError(
                    f"{path} is a symbolic link; scalebench does not follow it. Fix: delete {path}."
                ) from None
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EBADF):
                return None
            raise os_write_error(path, err) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        # A failed build removed the folder and its lock while we waited: lock the new one.
        os.close(fd)
        folder.mkdir(parents=True, exist_ok=True)


def stale_temp_files(folder: Path) -> list[Path]:
    """Temporary files (``.<name>.<random>.tmp[.h5]``) in a build folder, left there by killed builds."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _TEMP_RE.fullmatch(p.name) and p.is_file())


def build_running(folder: Path) -> bool:
    """True when a build of this folder holds its lock now."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


@contextlib.contextmanager
def build_lock(folder: str | Path) -> Iterator[Path]:
    """Create the build folder and hold an exclusive lock on ``<folder>/.lock`` for the block.

    Under the lock no other build of this id runs, so the temporary files of killed builds are removed first.
    When the block fails, a folder left empty (the lock apart) is removed with the parents this call created: a
    failed build (bad raw files, unwritable root) leaves nothing behind. A folder that cannot be created is a
    ScalebenchError naming it and the OS error.
    """
    folder = Path(folder)
    created = _missing_folders(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise os_write_error(Path(err.filename) if err.filename else folder, err) from None
    fd = _lock_fd(folder)
    try:
        if fd is not None:
            for tmp in stale_temp_files(folder):
                with contextlib.suppress(OSError):
                    tmp.unlink()
        yield folder
    except BaseException:
        if fd is not None or created:  # never a folder that another build may hold now
            _remove_if_empty(folder, created)
        raise
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _remove_if_empty(folder: Path, created: list[Path]) -> None:
    """Remove ``folder`` if it holds nothing but the lock, then the parents in ``created`` left empty."""
    with contextlib.suppress(OSError):
        if {p.name for p in folder.iterdir()} <= {LOCK_NAME}:
            (folder / LOCK_NAME).unlink(missing_ok=True)
            folder.rmdir()
            for parent in created[1:]:
                parent.rmdir()
