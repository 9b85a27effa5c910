"""Raw sources: locate, verify (md5), download and decode Fashion-MNIST, CIFAR-10 and STL-10.

Where raw files are looked for, in order:

1. the offline mirror ``--raw-dir`` / ``$SCALEBENCH_RAW_DIR`` (torchvision's layout: ``FashionMNIST/raw/*.gz``,
   ``cifar-10-batches-py/``, ``stl10_binary/``), read-only: scalebench never writes into it;
2. the download cache ``<home>/raw`` (same layout), filled by ``download=True`` with torchvision's
   ``download_url`` (which checks the md5 after downloading) from the addresses of torchvision 0.29.

Every file read is checked against the md5 of torchvision's dataset classes before it is decoded, and every
failure is one :class:`ScalebenchError` naming the file, the expected and the found md5, and the fix.

Decoders (no torchvision at read time: its classes write into the raw folder or demand files we do not use):

- Fashion-MNIST: gzip'ed IDX files (big-endian header: magic 0x00000803 for images, 0x00000801 for labels,
  then the sizes), read straight from the ``.gz`` files (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747).
- CIFAR-10: the "python version" batches, pickled dicts with ``data`` (n, 3072) uint8 in channel-major order
  and ``labels``; ``batches.meta`` holds ``label_names`` (Krizhevsky 2009). They are unpickled with an
  allow-list that only admits numpy's array reconstruction, so a tampered file cannot run code.
- STL-10: the labelled binary files: ``*_X.bin`` uint8 images stored (n, 3, 96, 96) column-major (W before H),
  ``*_y.bin`` uint8 labels 1..10 (Coates, Lee & Ng 2011). torchvision's STL10 refuses to load without the
  2.7 GB unlabelled file, so scalebench reads the four labelled files itself.

The embedded subset (``embedded/``) is a fixed part of Fashion-MNIST stored in the same gzip'ed IDX format.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import shutil
import struct
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.specs import DatasetSpec, Resource
from scalebench.fileio import atomic_path, file_digest
from scalebench.paths import raw_cache_dir, raw_mirror_dir

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
EMBEDDED_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@dataclass
class RawSplits:
    """Decoded raw images [n, h, w, C] uint8 and labels int64 (0-based) for each split, plus provenance."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    source_md5s: dict[str, str]


def expected_source_md5s(spec: DatasetSpec, embedded: bool) -> dict[str, str]:
    """The ``source_md5s`` that :func:`load_raw` returns for ``spec`` (known before decoding anything)."""
    if embedded:
        return {
            f"embedded/{n}": file_digest(EMBEDDED_DIR / n, "md5")
            for n in EMBEDDED_FILES
            if (EMBEDDED_DIR / n).is_file()
        }
    return {r.filename: r.md5 for r in spec.resources}


# --- locating and verifying ----------------------------------------------------------------------------


def _fix_hint(spec: DatasetSpec, path: Path, *, cache: Path | None = None) -> str:
    """The fix for a bad raw file ``path``: replace it in the mirror (``cache`` given: ``path`` is in the
    read-only mirror, which scalebench reads before the cache), or delete it from the cache."""
    if cache is not None:
        return (
            f"replace it in the read-only mirror with the original file (scalebench never writes there), or "
            f"build without --raw-dir / SCALEBENCH_RAW_DIR and with --download (into {cache})"
        )
    return (
        f"delete it and rerun with --download (into {path.parent}), or point --raw-dir / SCALEBENCH_RAW_DIR "
        f"at a folder holding {spec.raw_folder}/ in torchvision's layout"
    )


def locate_raw_folder(
    spec: DatasetSpec, *, root: str | Path | None, raw_dir: str | Path | None, download: bool
) -> Path:
    """Return the folder holding ``spec``'s raw files (mirror first, then cache), downloading if asked.

    Raises:
        ScalebenchError: when a raw file is missing (naming it, its md5 and the fix) or a download fails.
    """
    mirror = raw_mirror_dir(raw_dir)
    candidates = []
    if mirror is not None:
        candidates.append(mirror / spec.raw_folder)
    cache = raw_cache_dir(root) / spec.raw_folder
    candidates.append(cache)
    for folder in candidates:
        if all((folder / r.filename).is_file() for r in spec.resources):
            return folder
    if download:
        download_raw(spec, root=root)
        return cache
    folder = candidates[0]
    missing = next(r for r in spec.resources if not (folder / r.filename).is_file())
    where = " or ".join(str(c) for c in candidates)
    raise ScalebenchError(
        f"Raw file {missing.filename} (md5 {missing.md5}) of {spec.name} not found in {where}. Fix: rerun "
        f"with --download to fetch it into {cache}, or pass --raw-dir DIR / set SCALEBENCH_RAW_DIR to a "
        f"folder holding {spec.raw_folder}/ in torchvision's layout."
    )


def verify_md5(path: Path, resource: Resource, spec: DatasetSpec, *, mirror_of: Path | None = None) -> str:
    """Check a raw file's md5; return it. The error names the file, both md5s and the fix. ``mirror_of``: the
    download cache folder, given when ``path`` is in the read-only ``--raw-dir`` mirror (the fix is then to
    replace the file there, as scalebench never writes into it)."""
    try:
        found = file_digest(path, "md5")
    except OSError as err:
        raise ScalebenchError(
            f"{path}: cannot be read ({err.strerror or err}). Fix: "
            + _fix_hint(spec, path, cache=mirror_of)
            + "."
        ) from None
    if found != resource.md5:
        raise ScalebenchError(
            f"{path}: md5 {resource.md5} expected, {found} found (corrupt or wrong file). Fix: "
            + _fix_hint(spec, path, cache=mirror_of)
            + "."
        )
    return found


def download_raw(spec: DatasetSpec, *, root: str | Path | None) -> Path:
    """Download ``spec``'s raw files into the cache ``<home>/raw/<raw_folder>`` with md5 checks.

    Fashion-MNIST: the four ``.gz`` files; CIFAR-10: the tarball, extracted; STL-10: the tarball, of which only
    the four labelled files are extracted (the 2.7 GB unlabelled file is skipped). A tarball is deleted once
    its files are extracted.
    """
    from torchvision.datasets.utils import download_url

    cache_root = raw_cache_dir(root)
    folder = cache_root / spec.raw_folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ScalebenchError(
            f"Cannot create the download cache {folder}: {err.strerror or err}. Fix: pass --root to a writable "
            "folder, or --raw-dir to a folder holding the raw files."
        ) from None
    try:
        if spec.archive is None:
            for r in spec.resources:
                if not (folder / r.filename).is_file():
                    download_url(spec.urls[0] + r.filename, str(folder), r.filename, r.md5)
        else:
            download_url(spec.urls[0], str(cache_root), spec.archive.filename, spec.archive.md5)
            _extract(cache_root / spec.archive.filename, spec, cache_root)
            (cache_root / spec.archive.filename).unlink()  # the labelled files are extracted: free the disk
    except ScalebenchError:
        raise
    except Exception as err:  # network, HTTP or md5 failures from torchvision
        raise ScalebenchError(
            f"Downloading {spec.name} from {spec.urls[0]} failed ({type(err).__name__}: {err}). Fix: check the "
            f"connection, or copy the raw files into {folder} or a folder given by --raw-dir."
        ) from None
    return folder


def _extract(archive: Path, spec: DatasetSpec, dest_root: Path) -> None:
    wanted = {f"{spec.raw_folder}/{r.filename}": r for r in spec.resources}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            if member.name in wanted and member.isfile():
                src = tar.extractfile(member)
                assert src is not None
                with atomic_path(dest_root / member.name) as tmp, open(tmp, "wb") as fh:
                    shutil.copyfileobj(src, fh)


# --- decoders --------------------------------------------------------------------------------------------


def read_idx_gz(path: Path, expected_magic: int) -> np.ndarray:
    """Decode a gzip'ed IDX file (uint8 data) into a numpy array; clear error on a bad or truncated file."""
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ScalebenchError(
            f"{path}: cannot be decompressed ({err}); the gzip file is truncated or corrupt. Fix: replace it "
            "with the original file (md5 listed in docs/datasets.md)."
        ) from None
    if len(data) < 8:
        raise ScalebenchError(f"{path}: {len(data)} bytes after decompression, too short for an IDX header.")
    magic = struct.unpack(">I", data[:4])[0]
    if magic != expected_magic:
        raise ScalebenchError(f"{path}: IDX magic {magic:#010x} found, {expected_magic:#010x} expected.")
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(data) - offset != count:
        raise ScalebenchError(
            f"{path}: {len(data) - offset} data bytes found, {count} expected for shape {dims}; the file is "
            "truncated or corrupt."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def write_idx_gz(path: Path, array: np.ndarray, *, level: int = 9) -> None:
    """Write a uint8 array as a gzip'ed IDX file (the Fashion-MNIST format), atomically and reproducibly."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0) as fh:
            fh.write(header + array.tobytes())


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler admitting only what CIFAR batches hold: builtins containers and numpy arrays."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        if module == "_codecs":
            import codecs

            return codecs.encode
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct  # type: ignore[import-not-found]

            return _reconstruct
        return getattr(np, name)


def read_cifar_batch(path: Path) -> dict:
    """Unpickle one CIFAR-10 python batch (``encoding="latin1"`` as for the original Python 2 pickles)."""
    try:
        with open(path, "rb") as fh:
            return _ArrayOnlyUnpickler(io.BytesIO(fh.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ScalebenchError(
            f"{path}: not a valid CIFAR-10 python batch ({err}). Fix: replace it with the original file."
        ) from None


def _cifar_images(batch: dict, path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (KeyError, TypeError) as err:
        raise ScalebenchError(f"{path}: CIFAR batch lacks 'data' or 'labels' ({err}).") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ScalebenchError(
            f"{path}: data of shape {data.shape} with {len(labels)} labels; (n, 3072) with n labels expected."
        )
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_stl_images(path: Path, size: int = 96) -> np.ndarray:
    """Decode an STL-10 ``*_X.bin`` file into [n, H, W, 3] uint8 (the file is column-major per channel)."""
    data = np.fromfile(path, dtype=np.uint8)
    per = 3 * size * size
    if data.size % per:
        raise ScalebenchError(
            f"{path}: {data.size} bytes is not a multiple of {per} (one 3x{size}x{size} image)."
        )
    return np.ascontiguousarray(data.reshape(-1, 3, size, size).transpose(0, 3, 2, 1))


def read_stl_labels(path: Path) -> np.ndarray:
    """Decode an STL-10 ``*_y.bin`` file (uint8, 1..10) into 0-based int64 labels."""
    y = np.fromfile(path, dtype=np.uint8).astype(np.int64)
    if y.size and (y.min() < 1 or y.max() > 10):
        raise ScalebenchError(f"{path}: labels in [{y.min()}, {y.max()}] found, 1..10 expected.")
    return y - 1


def stratified_split(labels: np.ndarray, n_val_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split: for each class, a permutation (``default_rng(seed)``) picks n_val as val.

    Returns the train and val indices, each in increasing (file) order.

    Example:
        >>> tr, va = stratified_split(np.array([0, 0, 1, 1, 0, 1]), 1, seed=0)
        >>> len(tr), len(va), sorted(np.array([0, 0, 1, 1, 0, 1])[va].tolist())
        (4, 2, [0, 1])
    """
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        val.append(idx[rng.permutation(idx.size)[:n_val_per_class]])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(labels.size), val_idx)
    return train_idx, val_idx


#: The rule of a lite build, recorded in its manifest: part of the build's identity (editing this text changes
#: the canonical lite manifest sha256, so it is written once, here, and implemented by :func:`lite_indices`).
LITE_RULE = (
    "for each split in the order train, val, test and each class c in increasing order, one generator "
    "numpy.random.default_rng(seed), shared in that order, permutes the full build's images of class c in that "
    "split and keeps the first size/num_classes of the permutation; kept indices are sorted (file order)"
)


def lite_indices(labels: dict[str, np.ndarray], sizes: dict[str, int], seed: int) -> dict[str, np.ndarray]:
    """The indices of a *lite* build into the full build's splits: a seeded, stratified subset (:data:`LITE_RULE`).

    Every class is equally represented; a split needs ``sizes[split]`` divisible by the number of classes and
    enough images of each class.

    Example:
        >>> y = {"train": np.array([0, 1, 0, 1, 0, 1]), "val": np.array([1, 0]), "test": np.array([0, 1, 1, 0])}
        >>> {k: v.tolist() for k, v in lite_indices(y, {"train": 2, "val": 2, "test": 2}, seed=0).items()}
        {'train': [4, 5], 'val': [0, 1], 'test': [0, 2]}
    """
    rng = np.random.default_rng(seed)
    classes = np.unique(np.concatenate([labels[s] for s in ("train", "val", "test")]))
    out: dict[str, np.ndarray] = {}
    for split in ("train", "val", "test"):
        y = labels[split]
        per_class, rest = divmod(sizes[split], len(classes))
        if rest:
            raise ScalebenchError(
                f"lite {split} size {sizes[split]} is not a multiple of the {len(classes)} classes."
            )
        kept = []
        for c in classes:
            idx = np.flatnonzero(y == c)
            if idx.size < per_class:
                raise ScalebenchError(
                    f"lite {split}: class {c} has {idx.size} images, {per_class} needed; the raw files are "
                    "not the full dataset."
                )
            kept.append(idx[rng.permutation(idx.size)[:per_class]])
        out[split] = np.sort(np.concatenate(kept))
    return out


def select_splits(raw: RawSplits, indices: dict[str, np.ndarray]) -> RawSplits:
    """The images and labels of ``raw`` at ``indices`` (per split), with the same provenance."""
    return RawSplits(
        x={k: raw.x[k][indices[k]] for k in indices},
        y={k: raw.y[k][indices[k]] for k in indices},
        source_md5s=raw.source_md5s,
    )


# --- per-dataset loading -----------------------------------------------------------------------------------


def _check_count(spec: DatasetSpec, split: str, n: int, path: Path, needed: int) -> None:
    if n < needed:
        raise ScalebenchError(f"{path}: {n} images for {spec.name} {split}, at least {needed} expected.")


def load_raw(
    spec: DatasetSpec,
    *,
    root: str | Path | None = None,
    raw_dir: str | Path | None = None,
    download: bool = False,
    embedded: bool = False,
) -> RawSplits:
    """Locate, verify and decode the raw files of ``spec`` into train / val / test splits (full size)."""
    if embedded:
        return load_embedded()
    folder = locate_raw_folder(spec, root=root, raw_dir=raw_dir, download=download)
    mirror = raw_mirror_dir(raw_dir)
    cache = raw_cache_dir(root) / spec.raw_folder
    mirror_of = cache if mirror is not None and folder == mirror / spec.raw_folder else None
    md5s = {r.filename: verify_md5(folder / r.filename, r, spec, mirror_of=mirror_of) for r in spec.resources}
    loader = {"fashion-mnist": _load_fmnist, "cifar10": _load_cifar10, "stl10": _load_stl10}[spec.name]
    x, y = loader(spec, folder)
    return RawSplits(x=x, y=y, source_md5s=md5s)


def _load_fmnist(spec: DatasetSpec, folder: Path) -> tuple[dict, dict]:
    xtr = read_idx_gz(folder / "train-images-idx3-ubyte.gz", 0x803)
    ytr = read_idx_gz(folder / "train-labels-idx1-ubyte.gz", 0x801).astype(np.int64)
    xte = read_idx_gz(folder / "t10k-images-idx3-ubyte.gz", 0x803)
    yte = read_idx_gz(folder / "t10k-labels-idx1-ubyte.gz", 0x801).astype(np.int64)
    n_train = spec.split_sizes["train"]
    n_val = spec.split_sizes["val"]
    _check_count(spec, "train+val", len(xtr), folder / "train-images-idx3-ubyte.gz", n_train + n_val)
    if len(ytr) != len(xtr) or len(yte) != len(xte):
        raise ScalebenchError(f"{folder}: image and label files of Fashion-MNIST have different lengths.")
    x = {"train": xtr[:n_train], "val": xtr[len(xtr) - n_val :], "test": xte}
    y = {"train": ytr[:n_train], "val": ytr[len(ytr) - n_val :], "test": yte}
    return {k: v[..., None] for k, v in x.items()}, y


def _load_cifar10(spec: DatasetSpec, folder: Path) -> tuple[dict, dict]:
    meta = read_cifar_batch(folder / "batches.meta")
    names = tuple(meta.get("label_names", ()))
    if names != spec.class_names:
        raise ScalebenchError(
            f"{folder / 'batches.meta'}: label_names {names} found, {spec.class_names} expected."
        )
    parts = {}
    for name in (
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ):
        parts[name] = _cifar_images(read_cifar_batch(folder / name), folder / name)
    train_x = np.concatenate([parts[f"data_batch_{i}"][0] for i in range(1, 5)])
    train_y = np.concatenate([parts[f"data_batch_{i}"][1] for i in range(1, 5)])
    x = {"train": train_x, "val": parts["data_batch_5"][0], "test": parts["test_batch"][0]}
    y = {"train": train_y, "val": parts["data_batch_5"][1], "test": parts["test_batch"][1]}
    return x, y


def _load_stl10(spec: DatasetSpec, folder: Path) -> tuple[dict, dict]:
    xtr = read_stl_images(folder / "train_X.bin")
    ytr = read_stl_labels(folder / "train_y.bin")
    xte = read_stl_images(folder / "test_X.bin")
    yte = read_stl_labels(folder / "test_y.bin")
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ScalebenchError(f"{folder}: STL-10 image and label files have different lengths.")
    n_classes = spec.num_classes
    n_val = spec.split_sizes["val"] * len(ytr) // (spec.split_sizes["train"] + spec.split_sizes["val"])
    tr, va = stratified_split(ytr, max(n_val // n_classes, 1), spec.seed)
    return {"train": xtr[tr], "val": xtr[va], "test": xte}, {"train": ytr[tr], "val": ytr[va], "test": yte}


# --- the embedded Fashion-MNIST subset -----------------------------------------------------------------------


def embedded_indices(train_labels: np.ndarray, test_labels: np.ndarray) -> dict[str, np.ndarray]:
    """The documented rule of the embedded subset, applied to the full Fashion-MNIST label files.

    For each class c = 0..9 in file order: the first 160 training-file images of class c go to train and the
    next 40 to val (all within the first 50,000 images); the first 100 test-file images of class c go to
    test. Indices are returned sorted (file order).
    """
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for c in range(10):
        idx = np.flatnonzero(train_labels == c)[:200]
        out["train"] += idx[:160].tolist()
        out["val"] += idx[160:].tolist()
        out["test"] += np.flatnonzero(test_labels == c)[:100].tolist()
    return {k: np.array(sorted(v), dtype=np.int64) for k, v in out.items()}


def write_embedded_subset(raw_folder: Path, dest: Path = EMBEDDED_DIR) -> dict[str, str]:
    """Regenerate the embedded subset from the full Fashion-MNIST ``.gz`` files in ``raw_folder``.

    Writes train-* (the 2,000 train + val images, train first) and t10k-* IDX ``.gz`` files plus
    ``subset.json`` (rule, original indices, source md5s) into ``dest``; returns the md5 of each written file.
    """
    from scalebench.datasets_builders.specs import DATASETS

    spec = DATASETS["fashion-mnist"]
    md5s = {r.filename: verify_md5(raw_folder / r.filename, r, spec) for r in spec.resources}
    xtr = read_idx_gz(raw_folder / "train-images-idx3-ubyte.gz", 0x803)
    ytr = read_idx_gz(raw_folder / "train-labels-idx1-ubyte.gz", 0x801)
    xte = read_idx_gz(raw_folder / "t10k-images-idx3-ubyte.gz", 0x803)
    yte = read_idx_gz(raw_folder / "t10k-labels-idx1-ubyte.gz", 0x801)
    idx = embedded_indices(ytr, yte)
    tr = np.concatenate([idx["train"], idx["val"]])
    write_idx_gz(dest / "train-images-idx3-ubyte.gz", xtr[tr])
    write_idx_gz(dest / "train-labels-idx1-ubyte.gz", ytr[tr])
    write_idx_gz(dest / "t10k-images-idx3-ubyte.gz", xte[idx["test"]])
    write_idx_gz(dest / "t10k-labels-idx1-ubyte.gz", yte[idx["test"]])
    info = {
        "rule": embedded_indices.__doc__.split("\n\n")[1].strip().replace("\n    ", " "),
        "layout": "train-* files: the 1600 train images then the 400 val images, each in original file order",
        "source_md5s": md5s,
        "indices": {k: v.tolist() for k, v in idx.items()},
        "licence": "MIT, Copyright (c) 2017 Zalando SE (see LICENSE)",
    }
    (dest / "subset.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return {name: file_digest(dest / name, "md5") for name in EMBEDDED_FILES}


def load_embedded() -> RawSplits:
    """Decode the embedded Fashion-MNIST subset (1,600 train, 400 val, 1,000 test images)."""
    files = {name: EMBEDDED_DIR / name for name in EMBEDDED_FILES}
    for path in files.values():
        if not path.is_file():
            raise ScalebenchError(
                f"Embedded file {path} is missing; reinstall scalebench (pip install -e .)."
            )
    xtr = read_idx_gz(files["train-images-idx3-ubyte.gz"], 0x803)[..., None]
    ytr = read_idx_gz(files["train-labels-idx1-ubyte.gz"], 0x801).astype(np.int64)
    xte = read_idx_gz(files["t10k-images-idx3-ubyte.gz"], 0x803)[..., None]
    yte = read_idx_gz(files["t10k-labels-idx1-ubyte.gz"], 0x801).astype(np.int64)
    md5s = {f"embedded/{name}": file_digest(path, "md5") for name, path in files.items()}
    x = {"train": xtr[:1600], "val": xtr[1600:2000], "test": xte}
    y = {"train": ytr[:1600], "val": ytr[1600:2000], "test": yte}
    return RawSplits(x=x, y=y, source_md5s=md5s)
