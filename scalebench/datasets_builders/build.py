"""Build, load, verify and describe the rescaled datasets (raw files -> rescaling -> HDF5 + manifest).

A build lives in ``datasets_dir(root) / build_id /``:

- one train/val file at the training scale, ``<prefix>_tr<n>_vl<n>_outsize<H>-<W>_sctr<tag>.h5`` with
  ``x_train``, ``y_train``, ``x_val``, ``y_val``;
- one test file per test scale, ``<prefix>_te<n>_outsize<H>-<W>_scte<tag>.h5`` with ``x_test``, ``y_test``
  (file naming of Jansson & Lindeberg's MNIST Large Scale files; ``x`` is [n, H, W, C] uint8, ``y`` int64);
- ``manifest.json``: protocol parameters, source md5s, generator version and the sha256 of every decoded
  array (its C-order bytes), deterministic (no times, no paths), so its sha256 is reproducible anywhere;
- ``build_info.json``: times, host and library versions (not part of the manifest).

Files are written to a temporary name and renamed when complete, and the manifest is written last, so an
interrupted build leaves nothing that looks complete; a re-run skips the sets whose file exists with the
expected parameters. Compression: HDF5's standard gzip (deflate) filter at level 1, in chunks of about
256 KiB of images; the chunks are deflated by scalebench with zlib (in two threads) and stored with
``write_direct_chunk``, so any HDF5 reader (h5py, MATLAB, HDFView) decodes them.

Faults a build survives:

- concurrent builds of one build id: each holds an exclusive ``fcntl.flock`` on ``<build>/.lock``
  (:func:`build_lock`) and re-reads the manifest under it, so a build that adds scales keeps the scales
  another one added; a folder that cannot be written (a read-only ``--root``) is read without a lock;
- a killed build: its temporary files (``.<name>.<random>.tmp.h5``) are removed by the next build of that id,
  under the lock; ``describe_builds`` reports an interrupted first build (set files, no manifest);
- an unreadable ``manifest.json`` (truncated, hand-edited): rebuilt from the set files whose ``set_config``
  matches the protocol and whose arrays re-hash to the ``array_sha256`` they store; a damaged set is rewritten;
- an operating-system error while writing (read-only file system, full disk): one :class:`ScalebenchError`
  naming the path and the error (:func:`os_write_error`); a failed build leaves no empty build folder.

Not handled: a set file damaged after a build whose manifest is intact is found by ``datasets verify`` only;
a re-run trusts it (delete it and rerun). File systems without ``flock`` build without a lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import platform
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import torch

from scalebench.checks import ScalebenchError, check_choice, check_positive, parse_float_list
from scalebench.datasets_builders.raw import (
    EMBEDDED_DIR,
    EMBEDDED_FILES,
    LITE_RULE,
    RawSplits,
    lite_indices,
    load_raw,
    select_splits,
)
from scalebench.datasets_builders.reader import RescaledDataset
from scalebench.datasets_builders.rescale import FRAC_BITS, rescale_batch
from scalebench.datasets_builders.specs import (
    DATASETS,
    GENERATOR_VERSION,
    DatasetSpec,
    check_split,
    embedded_sizes,
    scale_tag,
)
from scalebench.fileio import atomic_path, file_digest, is_finite_number, new_file_mode, write_json_atomic
from scalebench.paths import datasets_dir

if TYPE_CHECKING:
    from scalebench.datasets_builders.segmentation import SegmentationBuild

MANIFEST_FORMAT = "scalebench.rescaled-classification/1"
GZIP_LEVEL = 1
CHUNK_BYTES = 256 << 10
BLOCK_BYTES = 2 << 20
WORKERS = 2
LOCK_NAME = ".lock"
#: Temporary files of :func:`scalebench.fileio.atomic_path`: ``.<name>.<8 random characters>.tmp[.h5]``.
_TEMP_RE = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp(\.h5)?")
_UMASK = os.umask(0o022)
os.umask(_UMASK)


# --- build ids -------------------------------------------------------------------------------------------


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


def _build_command(build_id: str) -> str:
    m = re.fullmatch(r"(.+?)(-embedded)?(-lite)?(?:-limit(\d+))?", build_id)
    assert m is not None
    cmd = f"scalebench build-datasets --dataset {m.group(1)}"
    if m.group(2):
        cmd += " --embedded"
    if m.group(3):
        cmd += " --lite"
    if m.group(4):
        cmd += f" --limit {m.group(4)}"
    return cmd


# --- planning --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetPlan:
    """One HDF5 file of a build: its role (``train_val`` or ``test``), scale, name and split sizes."""

    role: str
    scale: float
    filename: str
    sizes: dict[str, int]


def _sizes(spec: DatasetSpec, limit: int | None, embedded: bool, lite: bool = False) -> dict[str, int]:
    full = embedded_sizes() if embedded else dict(spec.lite_sizes) if lite else dict(spec.split_sizes)
    return {k: min(v, limit) if limit is not None else v for k, v in full.items()}


def plan_sets(
    spec: DatasetSpec, sizes: dict[str, int], train_scale: float, test_scales: Iterable[float]
) -> list[SetPlan]:
    """The files of a build: the train/val file first, then one test file per scale (sorted)."""
    H, W = spec.canvas
    plans = [
        SetPlan(
            "train_val",
            train_scale,
            f"{spec.file_prefix}_tr{sizes['train']}_vl{sizes['val']}_outsize{H}-{W}_sctr{scale_tag(train_scale)}.h5",
            {"train": sizes["train"], "val": sizes["val"]},
        )
    ]
    for s in sorted(test_scales):
        plans.append(
            SetPlan(
                "test",
                s,
                f"{spec.file_prefix}_te{sizes['test']}_outsize{H}-{W}_scte{scale_tag(s)}.h5",
                {"test": sizes["test"]},
            )
        )
    return plans


def max_scale(spec: DatasetSpec) -> float:
    """The largest scale a build of ``spec`` takes: its smaller canvas side, in pixels.

    Above it, one source pixel covers the whole canvas, so every image is a blur of a few pixels of the
    object's centre (measuring nothing about scale), and a typo such as ``--scales 1e9`` is refused.

    Example:
        >>> max_scale(DATASETS["fashion-mnist"])
        72.0
    """
    return float(min(spec.canvas))


def _check_scale_range(values: Iterable[float], name: str, spec: DatasetSpec) -> None:
    top = max_scale(spec)
    for s in values:
        if s > top:
            raise ScalebenchError(
                f"{name}: {s:g} is above {top:g}, the largest scale of a {spec.name} build (at scales above "
                f"its {spec.canvas[0]}x{spec.canvas[1]} canvas one source pixel covers the whole canvas); "
                f"give scales between 0.001 and {top:g}."
            )


def _normalise_scales(
    scales: Iterable[float] | str | None, default: Iterable[float], spec: DatasetSpec | None = None
) -> list[float]:
    """Scales sorted and deduplicated by their 3-decimal tag; with ``spec``, bounded by :func:`max_scale`."""
    values = parse_float_list(scales, "--scales") if scales is not None else list(default)
    if spec is not None:
        _check_scale_range(values, "--scales", spec)
    by_tag: dict[str, float] = {}
    for s in values:
        by_tag.setdefault(scale_tag(s), float(s))
    for tag in by_tag:
        if tag == "0p000":
            raise ScalebenchError("--scales: a scale rounds to 0.000; give scales >= 0.001.")
    return sorted(by_tag.values())


def _protocol(
    spec: DatasetSpec,
    *,
    sizes: dict[str, int],
    train_scale: float,
    limit: int | None,
    embedded: bool,
    source_md5s: dict[str, str],
    lite: bool = False,
) -> dict[str, Any]:
    """Protocol parameters shared by every file of a build (test scales excluded).

    A lite build adds ``subset`` (its rule and seed); other builds have no such key, so their manifests
    (and the canonical full build's sha256) are those of earlier versions.
    """
    subset = {
        "subset": {
            "name": "lite",
            "rule": LITE_RULE,
            "seed": spec.lite_seed,
        }
    }
    return {
        "dataset": spec.name,
        "generator_version": GENERATOR_VERSION,
        "canvas": list(spec.canvas),
        "channels": spec.channels,
        "source_size": list(spec.source_size),
        "padding": spec.padding,
        "interpolation": spec.interpolation,
        "kernel": "Keys cubic convolution, a = -0.5 (PIL BICUBIC)",
        "antialias": spec.antialias,
        "antialias_rule": "kernel stretched by 1/s when s < 1",
        "centring": "u_j = (j + 1/2 - N_out/2)/s + n_in/2 - 1/2 (object centre at canvas centre)",
        "weights": f"integers over 2^{FRAC_BITS}, rows summing to 2^{FRAC_BITS}; float64 products exact",
        "rounding": "round half to even, clipped to [0, 255], uint8",
        "train_scale": train_scale,
        "split_rule": (
            "embedded Fashion-MNIST subset: see scalebench/datasets_builders/embedded/subset.json"
            if embedded
            else spec.split_rule
        )
        + (f"; each split truncated to its first {limit} images" if limit is not None else ""),
        "split_sizes": dict(sizes),
        "seed": spec.seed,
        "limit": limit,
        "embedded": embedded,
        "class_names": list(spec.class_names),
        "source_md5s": dict(sorted(source_md5s.items())),
        "array_hash": "sha256 of the C-order bytes of each decoded array (x uint8, y int64 little-endian)",
        **(subset if lite else {}),
    }


def _expected_source_md5s(spec: DatasetSpec, embedded: bool) -> dict[str, str]:
    if embedded:
        return {
            f"embedded/{n}": file_digest(EMBEDDED_DIR / n, "md5")
            for n in EMBEDDED_FILES
            if (EMBEDDED_DIR / n).is_file()
        }
    return {r.filename: r.md5 for r in spec.resources}


def _set_config(protocol: dict[str, Any], plan: SetPlan) -> str:
    return json.dumps(
        {"protocol": protocol, "role": plan.role, "scale": plan.scale, "sizes": plan.sizes},
        sort_keys=True,
        separators=(",", ":"),
    )


# --- writing one set -----------------------------------------------------------------------------------------


def _chunk_images(spec: DatasetSpec) -> int:
    H, W = spec.canvas
    return max(1, CHUNK_BYTES // (H * W * spec.channels))


def _write_array_chunked(
    ds: h5py.Dataset,
    n: int,
    produce: Callable[[int, int], np.ndarray],
    chunk: int,
    tick: Callable[[int], None],
) -> str:
    """Fill ``ds`` block by block with ``produce(start, stop)``; deflate and store whole chunks; return sha256."""
    sha = hashlib.sha256()
    item_bytes = int(np.prod(ds.shape[1:]))
    block = chunk * max(1, BLOCK_BYTES // (chunk * item_bytes))
    zeros = np.zeros(ds.chunks, dtype=np.uint8)
    for start in range(0, n, block):
        stop = min(n, start + block)
        data = np.ascontiguousarray(produce(start, stop))
        sha.update(memoryview(data).cast("B"))
        for c0 in range(0, stop - start, chunk):
            part = data[c0 : c0 + chunk]
            if part.shape[0] < chunk:
                full = zeros.copy()
                full[: part.shape[0]] = part
                part = full
            payload = zlib.compress(memoryview(part).cast("B"), GZIP_LEVEL)
            ds.id.write_direct_chunk((start + c0, 0, 0, 0), payload, 0)
        tick(stop - start)
    return sha.hexdigest()


def array_sha256(a: np.ndarray) -> str:
    """sha256 of an array's C-order bytes (int64 little-endian for labels)."""
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _write_set(
    plan: SetPlan,
    spec: DatasetSpec,
    raw: RawSplits,
    protocol: dict[str, Any],
    out_dir: Path,
    tick: Callable[[int], None],
) -> dict[str, dict[str, Any]]:
    """Write one HDF5 file atomically; return the hash record of its arrays."""
    arrays: dict[str, dict[str, Any]] = {}
    with atomic_path(out_dir / plan.filename, suffix=".h5") as tmp:
        _fill_set(tmp, plan, spec, raw, protocol, tick, arrays)
        os.chmod(tmp, 0o666 & ~_UMASK)
    return arrays


def _fill_set(
    tmp: Path,
    plan: SetPlan,
    spec: DatasetSpec,
    raw: RawSplits,
    protocol: dict[str, Any],
    tick: Callable[[int], None],
    arrays: dict[str, dict[str, Any]],
) -> None:
    H, W = spec.canvas
    C = spec.channels
    chunk = _chunk_images(spec)
    with h5py.File(tmp, "w", libver="earliest") as f:
        for split, n in plan.sizes.items():
            src = raw.x[split]

            def produce(a: int, b: int, src: np.ndarray = src) -> np.ndarray:
                return rescale_batch(src[a:b], plan.scale, (H, W), spec.padding)

            ds = f.create_dataset(
                f"x_{split}",
                shape=(n, H, W, C),
                dtype=np.uint8,
                chunks=(min(chunk, max(n, 1)), H, W, C),
                compression="gzip",
                compression_opts=GZIP_LEVEL,
            )
            x_sha = (
                _write_array_chunked(ds, n, produce, ds.chunks[0], tick)
                if n
                else array_sha256(np.zeros((0, H, W, C), np.uint8))
            )
            y = np.ascontiguousarray(raw.y[split][:n], dtype="<i8")
            f.create_dataset(f"y_{split}", data=y)
            arrays[f"x_{split}"] = {"dtype": "uint8", "shape": [n, H, W, C], "sha256": x_sha}
            arrays[f"y_{split}"] = {"dtype": "int64", "shape": [n], "sha256": array_sha256(y)}
        attrs = {
            "dataset": spec.name,
            "role": plan.role,
            "scale": float(plan.scale),
            "scale_tag": scale_tag(plan.scale),
            "canvas": list(spec.canvas),
            "channels": C,
            "interpolation": spec.interpolation,
            "antialias": spec.antialias,
            "padding": spec.padding,
            "source_md5s": json.dumps(protocol["source_md5s"], sort_keys=True),
            "generator_version": GENERATOR_VERSION,
            "seed": spec.seed,
            "class_names": json.dumps(list(spec.class_names)),
            "protocol": json.dumps(protocol, sort_keys=True),
            "set_config": _set_config(protocol, plan),
            "array_sha256": json.dumps(arrays, sort_keys=True),
        }
        for key, value in attrs.items():
            f.attrs[key] = value


def _existing_set(path: Path, expected_config: str) -> dict[str, dict[str, Any]] | None:
    """The array record of a complete set file with the expected parameters, or None (rebuild it)."""
    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("set_config") != expected_config:
                return None
            arrays = json.loads(f.attrs["array_sha256"])
            for key, rec in arrays.items():
                if key not in f or list(f[key].shape) != rec["shape"]:
                    return None
            return arrays
    except (OSError, KeyError, ValueError):
        return None


def arrays_intact(path: Path, arrays: dict[str, dict[str, Any]]) -> bool:
    """True when every array of ``path`` decodes and re-hashes to its record (the full check of ``verify``)."""
    try:
        with h5py.File(path, "r") as f:
            for key, want in arrays.items():
                ds = f[key]
                if str(ds.dtype) != want["dtype"] or _hash_dataset(ds) != want["sha256"]:
                    return False
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return True


def _recover_test_scales(folder: Path, protocol: dict[str, Any]) -> list[float]:
    """Scales of the test sets in ``folder`` that were built with ``protocol`` (read from their ``set_config``).

    Used when the manifest is unreadable, so that a repaired manifest lists every scale the build had.
    """
    scales = []
    for path in sorted(folder.glob("*.h5")):
        if path.name.startswith("."):
            continue
        try:
            with h5py.File(path, "r") as f:
                config = json.loads(f.attrs["set_config"])
            if config["role"] == "test" and config["protocol"] == protocol:
                scales.append(float(config["scale"]))
        except (OSError, KeyError, TypeError, ValueError):
            continue
    return scales


def _read_manifest(path: Path) -> tuple[dict[str, Any] | None, bool]:
    """(the manifest, False), (None, False) when there is none, or (None, True) when it is unreadable."""
    if not path.exists():
        return None, False
    try:
        manifest = json.loads(path.read_text())
        scales = manifest["protocol"]["test_scales"]
        if not isinstance(manifest["files"], dict) or not isinstance(scales, list):
            raise TypeError("files must be an object and test_scales a list")
        if not all(is_finite_number(v) and v > 0 for v in scales):
            raise TypeError("test_scales must be positive numbers")
    except (OSError, ValueError, KeyError, TypeError):
        return None, True
    return manifest, False


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

    Under the lock, no other build of this id runs, so the temporary files of killed builds are removed
    first. When the block fails, a folder left empty (the lock apart) is removed with the parents this call
    created: a failed build (bad raw files, unwritable root) leaves nothing behind.

    Raises:
        ScalebenchError: when the folder cannot be created (naming it and the OS error).
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


# --- the built dataset ---------------------------------------------------------------------------------------


def check_stored_hashes(folder: Path, manifest: dict[str, Any], manifest_path: Path, *, fix: str) -> None:
    """Every HDF5 file listed in ``manifest["files"]`` opens and carries, in its ``array_sha256`` attribute,
    the array hashes the manifest records for it; otherwise a ScalebenchError naming the file and ``fix``.
    Shared by the classification and the segmentation builds."""
    for fname, rec in manifest["files"].items():
        path = folder / fname
        try:
            with h5py.File(path, "r") as f:
                stored = json.loads(f.attrs["array_sha256"])
        except (OSError, KeyError, ValueError):
            raise ScalebenchError(f"{path}: missing or unreadable; {fix}.") from None
        if stored != rec["arrays"]:
            raise ScalebenchError(f"{path}: its array hashes differ from {manifest_path}; {fix}.")


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the canonical manifest content: JSON with sorted keys and no whitespace."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


class BuiltDataset:
    """A built rescaled dataset: its manifest, its files, and torch datasets over them.

    Attributes:
        build_id, name, version, manifest, manifest_sha256, train_scale, test_scales (sorted), canvas,
        channels, num_classes, class_names, limit, embedded, root (the build folder).
    """

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        proto = manifest["protocol"]
        self.root = Path(root)
        self.manifest = manifest
        self.manifest_sha256 = manifest_digest(manifest)
        self.build_id: str = manifest["build_id"]
        self.name: str = manifest["dataset"]
        self.version: str = manifest["generator_version"]
        self.train_scale = float(proto["train_scale"])
        self.test_scales = sorted(float(s) for s in proto["test_scales"])
        self.canvas = (int(proto["canvas"][0]), int(proto["canvas"][1]))
        self.channels = int(proto["channels"])
        self.class_names = list(proto["class_names"])
        self.num_classes = len(self.class_names)
        self.limit = proto["limit"]
        self.embedded = bool(proto["embedded"])
        self.lite = (proto.get("subset") or {}).get("name") == "lite"
        self.split_sizes = dict(proto["split_sizes"])

    @property
    def is_canonical(self) -> bool:
        """True when the manifest hash equals the spec's recorded hash of the canonical full or lite build."""
        spec = DATASETS.get(self.name)
        known = (
            None
            if spec is None
            else spec.known_lite_manifest_sha256
            if self.lite
            else spec.known_manifest_sha256
        )
        return known is not None and known == self.manifest_sha256

    def _file_for(self, role: str, scale: float) -> Path:
        tag = scale_tag(scale)
        for fname, rec in self.manifest["files"].items():
            if rec["role"] == role and rec["scale_tag"] == tag:
                return self.root / fname
        raise KeyError(tag)

    def path(self, split: str, scale: float | None = None) -> Path:
        """The HDF5 file holding ``split`` at ``scale`` (train/val: the training scale; test: default 1)."""
        check_split(split)
        if split in ("train", "val"):
            if scale is not None and scale_tag(scale) != scale_tag(self.train_scale):
                raise ScalebenchError(
                    f"{self.build_id}: {split} was built at scale {self.train_scale:.3f} only, not {scale}; "
                    "rebuild with --train-scale to change it."
                )
            return self._file_for("train_val", self.train_scale)
        s = self.train_scale if scale is None else float(scale)
        try:
            return self._file_for("test", s)
        except KeyError:
            built = ", ".join(f"{v:.3f}" for v in self.test_scales)
            raise ScalebenchError(
                f"{self.build_id}: no test set at scale {s:.3f}; built test scales are {built}. Fix: "
                f"rebuild with `{_build_command(self.build_id)} --scales {s:.3f}` to add it."
            ) from None

    def dataset(
        self, split: str, scale: float | None = None, transform: Callable | None = None
    ) -> RescaledDataset:
        """A lazy torch Dataset over ``split`` at ``scale``."""
        return RescaledDataset(self.path(split, scale), split, transform=transform)

    def files(self) -> list[Path]:
        return [self.root / f for f in sorted(self.manifest["files"])]

    def __repr__(self) -> str:
        scales = ",".join(f"{s:.3f}" for s in self.test_scales)
        return (
            f"BuiltDataset({self.build_id!r}, {self.canvas[0]}x{self.canvas[1]}x{self.channels}, "
            f"sizes={self.split_sizes}, test_scales=[{scales}], sha256={self.manifest_sha256[:12]})"
        )


def load_built(build_id: str, root: str | Path | None = None) -> BuiltDataset:
    """Open a build by id; cheap check that every listed file exists and carries the manifest's hashes.

    Raises:
        ScalebenchError: when the build does not exist (with the command to build it) or a file is missing
            or was replaced.
    """
    base = datasets_dir(root)
    folder = base / build_id
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise ScalebenchError(
            f"Dataset {build_id!r} has not been built under {base}; run `{_build_command(build_id)}` "
            "(add --root DIR if you keep data elsewhere)."
        )
    try:
        manifest = json.loads(manifest_path.read_text())
        fmt = manifest.get("format", MANIFEST_FORMAT)
        if fmt != MANIFEST_FORMAT:
            raise ScalebenchError(
                f"{build_id!r} is a {fmt} build, not a rescaled classification build ({MANIFEST_FORMAT}); this "
                "command takes classification builds only."
            )
        built = BuiltDataset(folder, manifest)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ScalebenchError(
            f"{manifest_path}: not a valid scalebench manifest ({err}); delete {folder} and rebuild with "
            f"`{_build_command(build_id)}`."
        ) from None
    check_stored_hashes(folder, manifest, manifest_path, fix=f"rebuild with `{_build_command(build_id)}`")
    return built


# --- building --------------------------------------------------------------------------------------------


def _progress(enabled: bool, total: int, label: str):
    """A (context manager, tick) pair: a rich progress bar on stderr, or a no-op."""
    import contextlib

    if not enabled or total == 0:
        return contextlib.nullcontext(), lambda n: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = prog.add_task(label, total=total)
    lock = threading.Lock()

    def tick(n: int) -> None:
        with lock:
            prog.advance(task, n)

    return prog, tick


def build_dataset(
    name: str,
    *,
    root: str | Path | None = None,
    raw_dir: str | Path | None = None,
    scales: Iterable[float] | str | None = None,
    train_scale: float = 1.0,
    limit: int | None = None,
    embedded: bool = False,
    lite: bool = False,
    download: bool = False,
    progress: bool = True,
    spec: DatasetSpec | None = None,
) -> BuiltDataset:
    """Build (or complete) the rescaled dataset ``name``; sets that are complete and valid are skipped.

    Args:
        name: ``fashion-mnist``, ``cifar10`` or ``stl10``.
        root: scalebench home (default ``$SCALEBENCH_HOME`` or ``~/.cache/scalebench``).
        raw_dir: offline raw mirror in torchvision's layout (default ``$SCALEBENCH_RAW_DIR``), read-only.
        scales: test scales (default s = 2^(k/4), k = -4..4); scales are matched by their 3-decimal tag.
            Building more scales into an existing build adds them.
        train_scale: scale of the training and validation sets.
        limit: keep only the first ``limit`` images of each split (build id ``<name>-limit<N>``).
        embedded: use the Fashion-MNIST subset shipped with scalebench (build id ``fashion-mnist-embedded``).
        lite: the canonical small build (build id ``<name>-lite``): a seeded, stratified subset of the full
            build's splits (``spec.lite_sizes``; :func:`~scalebench.datasets_builders.raw.lite_indices`),
            rescaled exactly as the full build.
        download: download missing raw files into ``<home>/raw`` (md5-checked).
        progress: show a progress bar on stderr.
        spec: override the dataset spec (tests and benchmarks on synthetic raw files only).

    Returns:
        The :class:`BuiltDataset`.
    """
    check_choice(name, "dataset", list(DATASETS))
    spec = spec or DATASETS[name]
    if embedded and name != "fashion-mnist":
        raise ScalebenchError(f"--embedded exists for fashion-mnist only, not {name!r}; drop --embedded.")
    if lite and (embedded or limit is not None):
        raise ScalebenchError(
            "--lite is a fixed subset of the full raw files; it takes neither --embedded nor --limit."
        )
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
            raise ScalebenchError(f"--limit must be a positive integer, got {limit!r}.")
        limit = int(limit)
    train_scale = check_positive(train_scale, "--train-scale")
    _check_scale_range([train_scale], "--train-scale", spec)
    test_scales = _normalise_scales(scales, spec.test_scales, spec if scales is not None else None)
    build_id = build_id_for(name, limit=limit, embedded=embedded, lite=lite)
    out_dir = datasets_dir(root) / build_id
    sizes = _sizes(spec, limit, embedded, lite)
    source_md5s = _expected_source_md5s(spec, embedded)
    protocol = _protocol(
        spec, sizes=sizes, train_scale=train_scale, limit=limit, embedded=embedded, source_md5s=source_md5s,
        lite=lite,
    )  # fmt: skip
    manifest_path = out_dir / "manifest.json"
    with build_lock(out_dir):
        # Under the lock no other build of this id runs: the manifest read here is the one to extend.
        old, unreadable = _read_manifest(manifest_path)
        if old is not None:
            # An existing build with the same protocol: add its test scales (a build only grows).
            old_proto = {k: v for k, v in old["protocol"].items() if k != "test_scales"}
            if old_proto == protocol:
                test_scales = _normalise_scales(list(old["protocol"]["test_scales"]) + test_scales, ())
            elif old_proto.get("train_scale") != protocol["train_scale"]:
                raise ScalebenchError(
                    f"{out_dir} holds a build at train scale {old_proto.get('train_scale')}, not {train_scale}. "
                    f"Fix: delete {out_dir} or use another --root."
                )
        elif unreadable:
            # Truncated or edited: rebuilt below from the set files, each re-hashed, keeping every scale built.
            test_scales = _normalise_scales(_recover_test_scales(out_dir, protocol) + test_scales, ())

        plans = plan_sets(spec, sizes, train_scale, test_scales)
        records: dict[str, dict[str, Any]] = {}
        todo: list[SetPlan] = []
        for plan in plans:
            path = out_dir / plan.filename
            rec = _existing_set(path, _set_config(protocol, plan))
            if rec is not None and unreadable and not arrays_intact(path, rec):
                rec = None  # damaged: rewritten
            if rec is None:
                todo.append(plan)
            else:
                records[plan.filename] = rec

        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        if todo:
            raw = load_raw(spec, root=root, raw_dir=raw_dir, download=download, embedded=embedded)
            if lite:
                raw = select_splits(raw, lite_indices(raw.y, sizes, spec.lite_seed))
            if raw.source_md5s != source_md5s:
                raise ScalebenchError(
                    f"Raw sources of {name} have md5s {raw.source_md5s}, {source_md5s} expected; reinstall "
                    "scalebench."
                )
            timings["load_raw_s"] = time.perf_counter() - t0
            total = sum(sum(p.sizes.values()) for p in todo)
            bar, tick = _progress(progress, total, f"{build_id}: {len(todo)} sets")

            def run(plan: SetPlan) -> tuple[str, dict[str, Any], float]:
                t = time.perf_counter()
                try:
                    rec = _write_set(plan, spec, raw, protocol, out_dir, tick)
                except OSError as err:
                    raise os_write_error(out_dir / plan.filename, err) from None
                return plan.filename, rec, time.perf_counter() - t

            threads = torch.get_num_threads()
            with bar:
                # Two sets at once, one torch thread each (numpy, zlib and hashlib release the GIL).
                torch.set_num_threads(1 if len(todo) > 1 and WORKERS > 1 else threads)
                try:
                    results = _run_all(todo, run)
                finally:
                    torch.set_num_threads(threads)
            for fname, rec, secs in results:
                records[fname] = rec
                timings[fname] = round(secs, 3)

        manifest = {
            "format": MANIFEST_FORMAT,
            "build_id": build_id,
            "dataset": name,
            "generator_version": GENERATOR_VERSION,
            "protocol": {**protocol, "test_scales": test_scales},
            "files": {
                p.filename: {
                    "role": p.role,
                    "scale": p.scale,
                    "scale_tag": scale_tag(p.scale),
                    "arrays": records[p.filename],
                }
                for p in plans
            },
        }
        if todo or old != manifest:
            _write_json(manifest_path, manifest)
            _write_json(
                out_dir / "build_info.json",
                {
                    "manifest_sha256": manifest_digest(manifest),
                    "built_sets": [p.filename for p in todo],
                    "seconds": round(time.perf_counter() - t0, 3),
                    "timings_s": timings,
                    "host": platform.node(),
                    "platform": platform.platform(),
                    "cpu_count": os.cpu_count(),
                    "versions": _versions(),
                    "compression": f"gzip level {GZIP_LEVEL}, chunks of {_chunk_images(spec)} images",
                },
            )
    return BuiltDataset(out_dir, manifest)


def _write_json(path: Path, obj: Any) -> None:
    """:func:`write_json_atomic`, with an operating-system error turned into :func:`os_write_error`."""
    try:
        write_json_atomic(path, obj)
    except OSError as err:
        raise os_write_error(path, err) from None


def _run_all(todo: list[SetPlan], run: Callable[[SetPlan], Any]) -> list[Any]:
    """Run ``run`` over the sets, in WORKERS threads (the largest set, train/val, is submitted first)."""
    if len(todo) == 1 or WORKERS == 1:
        return [run(p) for p in todo]
    ex = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="scalebench-build")
    try:
        futures = [ex.submit(run, p) for p in todo]
        return [fut.result() for fut in futures]
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _versions() -> dict[str, str]:
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


def build_datasets(
    dataset: str = "fashion-mnist",
    **kwargs: Any,
) -> list[BuiltDataset]:
    """Build one dataset, or all three with ``dataset="all"``; keyword arguments as :func:`build_dataset`."""
    names = list(DATASETS) if dataset == "all" else [check_choice(dataset, "--dataset", [*DATASETS, "all"])]
    if dataset == "all" and kwargs.get("embedded"):
        raise ScalebenchError(
            "--embedded exists for fashion-mnist only; use --dataset fashion-mnist --embedded."
        )
    return [build_dataset(n, **kwargs) for n in names]


# --- verify and describe -----------------------------------------------------------------------------------


def _of_dataset(ids: Iterable[str], dataset: str | None) -> list[str]:
    if dataset is None or dataset == "all":
        return sorted(ids)
    pattern = re.escape(dataset) + r"(-embedded)?(-lite)?(-limit\d+)?"
    return sorted(b for b in ids if b == dataset or re.fullmatch(pattern, b))


def list_builds(root: str | Path | None = None, dataset: str | None = None) -> list[str]:
    """Build ids found under ``datasets_dir(root)`` (those with a manifest), optionally of one dataset/build."""
    base = datasets_dir(root)
    if not base.is_dir():
        return []
    return _of_dataset((p.name for p in base.iterdir() if (p / "manifest.json").is_file()), dataset)


def interrupted_builds(root: str | Path | None = None, dataset: str | None = None) -> dict[str, str]:
    """Build folders without a manifest that hold set or temporary files: build id -> a one-line state.

    Such a folder is left by a first build that was killed or failed (or one that is running now).
    """
    base = datasets_dir(root)
    if not base.is_dir():
        return {}
    out = {}
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not (p / "manifest.json").exists()):
        if folder.name not in _of_dataset([folder.name], dataset):
            continue
        sets = [p for p in folder.glob("*.h5") if not p.name.startswith(".")]
        temps = stale_temp_files(folder)
        if not sets and not temps:
            continue
        size = sum(p.stat().st_size for p in (*sets, *temps)) / 2**20
        done = f"{len(sets)} complete set file(s) and {len(temps)} temporary file(s) ({size:.1f} MiB)"
        if build_running(folder):
            out[folder.name] = f"BUILDING: a build of this id is running ({done} so far)."
        else:
            out[folder.name] = (
                f"INTERRUPTED: no manifest; a killed or failed build left {done} in {folder}. Fix: rerun "
                f"`{_build_command(folder.name)}` with the same options (it reuses the complete sets and "
                f"removes the temporary files), or delete {folder}."
            )
    return out


def verify_build(build_id: str, root: str | Path | None = None) -> list[str]:
    """Re-decode and re-hash every array of a build against its manifest; return one line per mismatch."""
    folder = datasets_dir(root) / build_id
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return [f"{manifest_path}: missing; run `{_build_command(build_id)}`"]
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError) as err:
        return [f"{manifest_path}: unreadable ({err})"]
    problems: list[str] = []
    for fname, rec in sorted(files.items()):
        path = folder / fname
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        try:
            with h5py.File(path, "r") as f:
                for key, want in sorted(rec["arrays"].items()):
                    if key not in f:
                        problems.append(f"{path}: dataset {key} missing")
                        continue
                    ds = f[key]
                    if list(ds.shape) != want["shape"] or str(ds.dtype) != want["dtype"]:
                        problems.append(
                            f"{path}: {key} is {ds.dtype} {list(ds.shape)}, {want['dtype']} {want['shape']} expected"
                        )
                        continue
                    try:
                        got = _hash_dataset(ds)
                    except OSError as err:
                        problems.append(f"{path}: {key} cannot be decoded ({err})")
                        continue
                    if got != want["sha256"]:
                        problems.append(f"{path}: {key} sha256 {got} found, {want['sha256']} expected")
        except OSError as err:
            problems.append(f"{path}: cannot be opened as HDF5 ({err})")
    return problems


def _hash_dataset(ds: h5py.Dataset) -> str:
    sha = hashlib.sha256()
    if ds.ndim == 1:
        return array_sha256(np.asarray(ds[()]).astype("<i8" if ds.dtype.kind == "i" else ds.dtype))
    step = max(1, (BLOCK_BYTES // max(1, int(np.prod(ds.shape[1:])))))
    if ds.chunks:
        step = max(ds.chunks[0], step - step % ds.chunks[0])
    for start in range(0, ds.shape[0], step):
        sha.update(np.ascontiguousarray(ds[start : start + step]).tobytes())
    return sha.hexdigest()


def verify_datasets(dataset: str | None = None, root: str | Path | None = None) -> dict[str, list[str]]:
    """Verify every build (or those of ``dataset``, a name or a build id); map build id -> mismatches.

    Raises:
        ScalebenchError: when nothing matching is built.
    """
    ids = list_builds(root, dataset)
    if not ids:
        what = f"of {dataset!r} " if dataset else ""
        partial = interrupted_builds(root, dataset)
        hint = (
            f" ({', '.join(partial)}: an interrupted build without a manifest; `scalebench datasets info` says "
            "how to finish it)"
            if partial
            else ""
        )
        raise ScalebenchError(
            f"No built dataset {what}under {datasets_dir(root)}{hint}; run `scalebench build-datasets` first."
        )
    return {b: verify_build(b, root) for b in ids}


def describe_builds(dataset: str | None = None, root: str | Path | None = None) -> str:
    """A text table of the builds: sizes, scales, disk use, manifest hash and folder."""
    ids = list_builds(root, dataset)
    partial = interrupted_builds(root, dataset)
    if not ids and not partial:
        return f"No built datasets under {datasets_dir(root)}; run `scalebench build-datasets --embedded` to start."
    from scalebench.datasets_builders import segmentation as seg  # it imports this module

    lines = []
    for b in sorted([*ids, *partial]):
        if b in partial:
            lines.append(f"{b}: {partial[b]}")
            continue
        lines += _describe_one(b, root, seg)
        temps = stale_temp_files(datasets_dir(root) / b)
        if temps and not build_running(datasets_dir(root) / b):
            size = sum(p.stat().st_size for p in temps) / 2**20
            lines.append(
                f"  {len(temps)} temporary file(s) of an interrupted build ({size:.1f} MiB); the next "
                "`scalebench build-datasets` of this build removes them"
            )
    return "\n".join(lines)


def _describe_one(b: str, root: str | Path | None, seg: Any) -> list[str]:
    """The lines of :func:`describe_builds` for the build ``b`` (``seg``: the segmentation module)."""
    try:
        built = seg.load_segmentation(b, root) if seg.is_segmentation_build(b) else load_built(b, root)
    except ScalebenchError as err:
        return [f"{b}: BROKEN: {err}"]
    if isinstance(built, seg.SegmentationBuild):
        return _describe_segmentation(built, seg.KNOWN_MANIFEST_SHA256)
    disk = sum(p.stat().st_size for p in built.files())
    canon = " (canonical)" if built.is_canonical else ""
    return [
        f"{b}: {built.name} v{built.version}, {built.canvas[0]}x{built.canvas[1]}x{built.channels}, "
        f"{built.num_classes} classes, train/val/test {built.split_sizes['train']}/"
        f"{built.split_sizes['val']}/{built.split_sizes['test']}",
        f"  train scale {built.train_scale:.3f}; test scales "
        + ", ".join(f"{s:.3f}" for s in built.test_scales),
        f"  {len(built.files())} files, {disk / 2**20:.1f} MiB in {built.root}",
        f"  manifest sha256 {built.manifest_sha256}{canon}",
    ]


def _describe_segmentation(built: SegmentationBuild, canonical_sha256: str) -> list[str]:
    """The lines of :func:`describe_builds` for a segmentation build (training sets instead of a train scale)."""
    disk = sum(p.stat().st_size for p in built.files())
    sizes = built.split_sizes
    canon = " (canonical)" if built.manifest_sha256 == canonical_sha256 else ""
    return [
        f"{built.build_id}: {built.name} v{built.version}, {built.canvas[0]}x{built.canvas[1]}x{built.channels}, "
        f"{built.num_classes} classes, train/val/test {sizes['train']}/{sizes['val']}/{sizes['test']} per set",
        f"  training sets {', '.join(built.train_sets)}; test object scales "
        + ", ".join(f"{s:g}" for s in built.test_scales),
        f"  {len(built.files())} files, {disk / 2**20:.1f} MiB in {built.root}",
        f"  manifest sha256 {built.manifest_sha256}{canon}",
    ]
