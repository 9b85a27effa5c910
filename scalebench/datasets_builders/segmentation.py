"""The multi-object, multi-scale Fashion-MNIST segmentation set (build id ``fashion-mnist-seg``).

Pintea, Tomen, Goes, Loog & van Gemert (2021), "Resolution learning in deep convolutional networks using
scale-space theory", IEEE TIP 30: 8342-8353 (arXiv 2106.03412), Experiment 1.1(B):

- each image holds four Fashion-MNIST objects, one per quadrant (top-left, top-right, bottom-left,
  bottom-right); each object is upsampled by its scale s with bilinear interpolation (``torch`` bilinear,
  ``align_corners=False``, output size 28 s) and placed at a uniformly random integer position inside its
  quadrant, fully inside it;
- the mask comes from the grey value h = x / 255 in [0, 1] of the stored uint8 image: the object's class
  label 1..10 (Fashion-MNIST label + 1) where h >= 0.2, background 0 where h = 0, and the ignore index 255
  where 0 < h < 0.2 (since 0.2 * 255 = 51 exactly: x >= 51, x = 0, 0 < x < 51);
- training sets (keys are their scales joined by ``+``): three homogeneous sets ``1``, ``2``, ``4``
  (P(s)=1) and the mixed set ``1+2+3+4`` (each object draws s uniformly from {1, 2, 3, 4}); each comes
  with a validation set drawn the same way;
- one test set per scale s (all four objects at s), so that mIoU can be plotted against s.

Sources of the objects: the training composites use Fashion-MNIST's 60,000 training images; validation and
test composites use its test images (first half for validation, second half for test, so that they share no
object). The embedded subset (``--embedded``) uses its 2,000 train+val images and its 1,000 test images.

Choices the paper leaves open (see ``docs/segmentation.md``): canvas 224 x 224 (quadrants of 112 = 28 * 4,
so four objects fit at s = 4), split sizes (10,000 / 1,000 / 1,000 composites; ``--limit`` caps each),
objects drawn with replacement by a seeded ``numpy.random.default_rng``.

Storage (same conventions as the classification sets: HDF5 written atomically, deterministic manifest
written last): one file per training set with ``x_train``, ``y_train``, ``x_val``, ``y_val`` and one file per
test scale with ``x_test``, ``y_test``; ``x`` is [n, H, W, 1] uint8, ``y`` is the mask [n, H, W] uint8,
and ``objects_<split>`` [n, 4, 4] int64 holds, per quadrant, (class label 1..10, scale, top, left).

Faults (as for the classification builds, ``build.py``): builds of one id hold the build folder's lock; a
killed build's temporary files are removed by the next one; an unreadable manifest is rebuilt from the set
files whose stored protocol matches and whose arrays re-hash to their stored hashes; an operating-system error
while writing is one error naming the path; a damaged chunk met by the reader names the file and the fix.

Not implemented: objects of different scales inside one quadrant, and non-square objects.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from scalebench.checks import ScalebenchError, check_choice, parse_float_list
from scalebench.datasets_builders.build import (
    array_sha256,
    arrays_intact,
    build_id_for,
    build_lock,
    check_stored_hashes,
    manifest_digest,
    os_write_error,
)
from scalebench.datasets_builders.raw import RawSplits, load_raw
from scalebench.datasets_builders.reader import batch_rows, damaged_file_error, read_rows
from scalebench.datasets_builders.specs import DATASETS, scale_tag
from scalebench.fileio import atomic_path, write_json_atomic
from scalebench.paths import datasets_dir

NAME = "fashion-mnist-seg"
MANIFEST_FORMAT = "scalebench.multiscale-segmentation/1"
GENERATOR_VERSION = "1.0.0"
IGNORE_INDEX = 255
THRESHOLD = 0.2
NUM_CLASSES = 11  # background + the 10 Fashion-MNIST classes
OBJECT_SIZE = 28
DEFAULT_CANVAS = (224, 224)
DEFAULT_TEST_SCALES: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
#: The paper's four training sets: three homogeneous ones and the mixed one.
TRAIN_SETS: tuple[tuple[int, ...], ...] = ((1,), (2,), (4,), (1, 2, 3, 4))
FULL_SIZES = {"train": 10000, "val": 1000, "test": 1000}
EMBEDDED_SIZES = {"train": 1000, "val": 200, "test": 200}
CLASS_NAMES = ("background", *DATASETS["fashion-mnist"].class_names)
SEED = 0
#: Manifest sha256 of the canonical full build (real Fashion-MNIST, default canvas and scales, no --limit) at
#: GENERATOR_VERSION; the leaderboard accepts segmentation results of this build only. Measured 2026-11-23
#: (`scalebench build-datasets --dataset fashion-mnist-seg`, 69 s wall on 2 shared cores).
KNOWN_MANIFEST_SHA256 = "fa460df4540e33a673dd08c87507e8061e8e0c1c1ef066d7cd20b7382b5a538e"


def train_set_key(scales: Iterable[float]) -> str:
    """The key of a training set from its scales: sorted integers joined by ``+``.

    Example:
        >>> train_set_key([4]), train_set_key([3, 1, 2, 4.0])
        ('4', '1+2+3+4')
    """
    values = sorted({float(s) for s in scales})
    if not values or any(s != int(s) or s < 1 for s in values):
        raise ScalebenchError(
            f"--train-scales must be positive integers (object upsampling factors), got {values}; "
            f"built training sets: {', '.join(train_set_key(t) for t in TRAIN_SETS)}."
        )
    return "+".join(str(int(s)) for s in values)


def grey_to_mask(h: np.ndarray, label: int) -> np.ndarray:
    """Mask of one object from its grey values h in [0, 1]: ``label`` where h >= 0.2, 0 where h == 0, else 255.

    Example:
        >>> grey_to_mask(np.array([0.0, 0.1, 0.19999, 0.2, 1.0]), 7).tolist()
        [0, 255, 255, 7, 7]
    """
    out = np.full(h.shape, IGNORE_INDEX, dtype=np.uint8)
    out[h == 0] = 0
    out[h >= THRESHOLD] = label
    return out


def upsample_object(image: np.ndarray, scale: int) -> np.ndarray:
    """Bilinear upsampling of a 28 x 28 uint8 image by an integer ``scale`` to (28 s, 28 s), rounded to uint8.

    Example:
        >>> upsample_object(np.full((28, 28), 200, np.uint8), 2).shape
        (56, 56)
    """
    if scale == 1:
        return image.copy()
    t = torch.from_numpy(image.astype(np.float32))[None, None]
    size = (image.shape[0] * scale, image.shape[1] * scale)
    up = F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0]
    return np.clip(np.rint(up.numpy()), 0, 255).astype(np.uint8)


def compose(
    objects: Sequence[np.ndarray],
    labels: Sequence[int],
    scales: Sequence[int],
    rng: np.random.Generator,
    canvas: tuple[int, int] = DEFAULT_CANVAS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One composite: four 28 x 28 objects, one per quadrant, upsampled and placed at random.

    Returns the image [H, W] uint8, the mask [H, W] uint8 and the object table [4, 4]
    (label 1..10, scale, top, left) in canvas coordinates.
    """
    H, W = canvas
    qh, qw = H // 2, W // 2
    img = np.zeros((H, W), np.uint8)
    mask = np.zeros((H, W), np.uint8)
    table = np.zeros((4, 4), np.int64)
    for q, (obj, label, s) in enumerate(zip(objects, labels, scales, strict=True)):
        up = upsample_object(obj, int(s))
        oh, ow = up.shape
        if oh > qh or ow > qw:
            raise ScalebenchError(
                f"An object at scale {s} is {oh}x{ow} px but the quadrants are {qh}x{qw} px; "
                f"use a canvas of at least {2 * oh}x{2 * ow}."
            )
        top = (q // 2) * qh + int(rng.integers(0, qh - oh + 1))
        left = (q % 2) * qw + int(rng.integers(0, qw - ow + 1))
        img[top : top + oh, left : left + ow] = up
        mask[top : top + oh, left : left + ow] = grey_to_mask(up.astype(np.float64) / 255.0, int(label))
        table[q] = (label, s, top, left)
    return img, mask, table


def make_split(
    pool_x: np.ndarray,
    pool_y: np.ndarray,
    n: int,
    scale_choices: Sequence[int],
    seed: Sequence[int],
    canvas: tuple[int, int] = DEFAULT_CANVAS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` composites from a pool of raw images [m, 28, 28(, 1)] and labels 0..9; deterministic in ``seed``.

    Objects are drawn with replacement; each object's scale is drawn uniformly from ``scale_choices``.
    Returns x [n, H, W, 1], masks [n, H, W] and object tables [n, 4, 4].
    """
    rng = np.random.default_rng(list(seed))
    H, W = canvas
    x = np.zeros((n, H, W, 1), np.uint8)
    masks = np.zeros((n, H, W), np.uint8)
    tables = np.zeros((n, 4, 4), np.int64)
    pool = pool_x.reshape(len(pool_x), OBJECT_SIZE, OBJECT_SIZE)
    for i in range(n):
        idx = rng.integers(0, len(pool), size=4)
        scales = [int(scale_choices[j]) for j in rng.integers(0, len(scale_choices), size=4)]
        img, mask, table = compose(
            [pool[j] for j in idx], [int(pool_y[j]) + 1 for j in idx], scales, rng, canvas
        )
        x[i, :, :, 0], masks[i], tables[i] = img, mask, table
    return x, masks, tables


# --- building --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegSetPlan:
    """One HDF5 file: role ``train_val`` (a training set) or ``test`` (one scale)."""

    role: str
    key: str
    scales: tuple[int, ...]
    filename: str
    sizes: dict[str, int]


def seg_build_id(
    *, limit: int | None = None, embedded: bool = False, canvas: tuple[int, int] = DEFAULT_CANVAS
) -> str:
    """Build id: ``fashion-mnist-seg[-embedded][-limit<N>][-canvas<H>x<W>]``.

    Example:
        >>> seg_build_id(embedded=True, limit=8, canvas=(112, 112))
        'fashion-mnist-seg-embedded-limit8-canvas112x112'
    """
    out = build_id_for(NAME, limit=limit, embedded=embedded)
    return out + (f"-canvas{canvas[0]}x{canvas[1]}" if tuple(canvas) != DEFAULT_CANVAS else "")


def _plans(sizes: dict[str, int], test_scales: Sequence[float], canvas: tuple[int, int]) -> list[SegSetPlan]:
    H, W = canvas
    plans = []
    for t in TRAIN_SETS:
        key = train_set_key(t)
        plans.append(
            SegSetPlan(
                "train_val",
                key,
                tuple(t),
                f"fmnistseg_tr{sizes['train']}_vl{sizes['val']}_outsize{H}-{W}_sctr{key.replace('+', '-')}.h5",
                {"train": sizes["train"], "val": sizes["val"]},
            )
        )
    for s in test_scales:
        plans.append(
            SegSetPlan(
                "test",
                scale_tag(s),
                (int(s),),
                f"fmnistseg_te{sizes['test']}_outsize{H}-{W}_scte{scale_tag(s)}.h5",
                {"test": sizes["test"]},
            )
        )
    return plans


def _pools(raw: RawSplits) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Object pools: train from the training images; val / test from the two halves of the test images."""
    xtr = np.concatenate([raw.x["train"], raw.x["val"]])
    ytr = np.concatenate([raw.y["train"], raw.y["val"]])
    half = len(raw.x["test"]) // 2
    return {
        "train": (xtr, ytr),
        "val": (raw.x["test"][:half], raw.y["test"][:half]),
        "test": (raw.x["test"][half:], raw.y["test"][half:]),
    }


_ROLE_CODE = {"train": 1, "val": 2, "test": 3}


def _stored_arrays(path: Path, protocol: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The array hashes a complete set file carries (written last), or None if it is missing or unreadable
    (or, with ``protocol``, was written with another protocol)."""
    try:
        with h5py.File(path, "r") as f:
            if protocol is not None and f.attrs["protocol"] != json.dumps(protocol, sort_keys=True):
                return None
            return json.loads(f.attrs["array_sha256"])
    except (OSError, KeyError, ValueError):
        return None


def _file_record(plan: SegSetPlan, arrays: dict[str, Any]) -> dict[str, Any]:
    return {"role": plan.role, "key": plan.key, "scales": list(plan.scales), "arrays": arrays}


def _write(plan: SegSetPlan, pools: dict, protocol: dict[str, Any], out_dir: Path) -> dict[str, dict]:
    canvas = tuple(protocol["canvas"])
    arrays: dict[str, dict[str, Any]] = {}
    with atomic_path(out_dir / plan.filename, suffix=".h5") as tmp:
        with h5py.File(tmp, "w", libver="earliest") as f:
            for split, n in plan.sizes.items():
                px, py = pools[split]
                seed = (protocol["seed"], _ROLE_CODE[split], *plan.scales)
                x, m, tab = make_split(px, py, n, plan.scales, seed, canvas)  # type: ignore[arg-type]
                for key, arr in ((f"x_{split}", x), (f"y_{split}", m), (f"objects_{split}", tab)):
                    kw = {"chunks": (1, *arr.shape[1:]), "compression": "gzip", "compression_opts": 1}
                    f.create_dataset(key, data=arr, **(kw if n and key[0] in "xy" else {}))
                    arrays[key] = {
                        "dtype": str(arr.dtype),
                        "shape": list(arr.shape),
                        "sha256": array_sha256(arr),
                    }
            f.attrs["dataset"] = NAME
            f.attrs["role"] = plan.role
            f.attrs["key"] = plan.key
            f.attrs["scales"] = json.dumps(list(plan.scales))
            f.attrs["protocol"] = json.dumps(protocol, sort_keys=True)
            f.attrs["array_sha256"] = json.dumps(arrays, sort_keys=True)
        os.chmod(tmp, 0o644)
    return arrays


def build_segmentation(
    *,
    root: str | Path | None = None,
    raw_dir: str | Path | None = None,
    scales: Iterable[float] | str | None = None,
    limit: int | None = None,
    embedded: bool = False,
    download: bool = False,
    canvas: tuple[int, int] = DEFAULT_CANVAS,
    sizes: dict[str, int] | None = None,
    raw: RawSplits | None = None,
) -> SegmentationBuild:
    """Build the multi-scale segmentation set; a complete build with the same protocol is left as is, and a
    missing, truncated or replaced file of it is rewritten (the files are deterministic).

    Args:
        root: scalebench home; raw_dir: offline raw mirror (``$SCALEBENCH_RAW_DIR``); download: fetch raw files.
        scales: test scales (integers, default 1, 2, 3, 4).
        limit: at most ``limit`` composites per split (build id ``...-limit<N>``).
        embedded: build from the embedded Fashion-MNIST subset (``fashion-mnist-seg-embedded``).
        canvas: (H, W), even; quadrants must hold 28 s pixels for the largest scale.
        sizes, raw: overrides for tests (split sizes; decoded raw splits).
    """
    test_scales = sorted(
        {
            float(s)
            for s in (parse_float_list(scales, "--scales") if scales is not None else DEFAULT_TEST_SCALES)
        }
    )
    for s in test_scales:
        if s != int(s) or s < 1:
            raise ScalebenchError(
                f"--scales: segmentation scales are integer upsampling factors >= 1, got {s:g}."
            )
    canvas = (int(canvas[0]), int(canvas[1]))
    need = 2 * OBJECT_SIZE * int(max([*test_scales, *[max(t) for t in TRAIN_SETS]]))
    if canvas[0] % 2 or canvas[1] % 2 or min(canvas) < need:
        raise ScalebenchError(
            f"canvas {canvas[0]}x{canvas[1]}: must be even and at least {need}x{need} so that an object at the "
            f"largest scale fits its quadrant; use --canvas {need} or larger."
        )
    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise ScalebenchError(f"--limit must be a positive integer, got {limit!r}.")
    base = dict(sizes or (EMBEDDED_SIZES if embedded else FULL_SIZES))
    sizes_ = {k: min(v, limit) if limit is not None else v for k, v in base.items()}
    build_id = seg_build_id(limit=limit, embedded=embedded, canvas=canvas)
    out_dir = datasets_dir(root) / build_id
    t0 = time.perf_counter()
    if raw is None:
        raw = load_raw(
            DATASETS["fashion-mnist"], root=root, raw_dir=raw_dir, download=download, embedded=embedded
        )
    protocol = {
        "dataset": NAME,
        "generator_version": GENERATOR_VERSION,
        "canvas": list(canvas),
        "object_size": OBJECT_SIZE,
        "interpolation": "bilinear (torch, align_corners=False), rounded half to even, uint8",
        "placement": "uniform integer offset inside the quadrant, object fully inside",
        "mask": f"label where x/255 >= {THRESHOLD}, 0 where x == 0, {IGNORE_INDEX} otherwise",
        "ignore_index": IGNORE_INDEX,
        "threshold": THRESHOLD,
        "train_sets": [train_set_key(t) for t in TRAIN_SETS],
        "test_scales": test_scales,
        "split_sizes": sizes_,
        "object_pools": "train: training images; val: first half of the test images; test: second half",
        "seed": SEED,
        "limit": limit,
        "embedded": embedded,
        "class_names": list(CLASS_NAMES),
        "source_md5s": dict(sorted(raw.source_md5s.items())),
    }
    plans = _plans(sizes_, test_scales, canvas)
    manifest_path = out_dir / "manifest.json"
    with build_lock(out_dir):
        # Files of an earlier build with this protocol that are intact: not rewritten.
        kept: dict[str, dict] = {}
        old = None
        if manifest_path.exists():
            try:
                old = json.loads(manifest_path.read_text())
                if old["protocol"] == protocol:
                    kept = {
                        p.filename: old["files"][p.filename]
                        for p in plans
                        if _stored_arrays(out_dir / p.filename) == old["files"][p.filename]["arrays"]
                    }
            except (OSError, ValueError, KeyError, TypeError):
                # Unreadable: keep the set files written with this protocol whose arrays re-hash to their record.
                old = None
                for p in plans:
                    arrays = _stored_arrays(out_dir / p.filename, protocol)
                    if arrays is not None and arrays_intact(out_dir / p.filename, arrays):
                        kept[p.filename] = _file_record(p, arrays)
            if old is not None and len(kept) == len(plans):
                return SegmentationBuild(out_dir, old)
        pools = _pools(raw)
        files = {}
        for p in plans:
            if p.filename in kept:
                files[p.filename] = kept[p.filename]
                continue
            try:
                files[p.filename] = _file_record(p, _write(p, pools, protocol, out_dir))
            except OSError as err:
                raise os_write_error(out_dir / p.filename, err) from None
        manifest = {
            "format": MANIFEST_FORMAT,
            "build_id": build_id,
            "dataset": NAME,
            "generator_version": GENERATOR_VERSION,
            "protocol": protocol,
            "files": files,
        }
        info = {
            "manifest_sha256": manifest_digest(manifest),
            "seconds": round(time.perf_counter() - t0, 3),
            "host": platform.node(),
        }
        for path, obj in ((manifest_path, manifest), (out_dir / "build_info.json", info)):
            try:
                write_json_atomic(path, obj)
            except OSError as err:
                raise os_write_error(path, err) from None
    return SegmentationBuild(out_dir, manifest)


# --- reading ---------------------------------------------------------------------------------------------


class SegmentationDataset(torch.utils.data.Dataset):
    """One split of a segmentation HDF5 file: items are (float32 image [1, H, W] in [0, 1], int64 mask [H, W])."""

    def __init__(self, path: str | Path, split: str) -> None:
        self.path = Path(path)
        self.split = check_choice(split, "split", ["train", "val", "test"])
        if not self.path.is_file():
            raise ScalebenchError(
                f"{self.path} does not exist; build it with `scalebench build-datasets --dataset {NAME}`."
            )
        try:
            with h5py.File(self.path, "r") as f:
                if f"x_{split}" not in f or f"y_{split}" not in f:
                    raise ScalebenchError(f"{self.path}: no x_{split}/y_{split} (found {sorted(f.keys())}).")
                self._n = int(f[f"x_{split}"].shape[0])
                self.canvas = tuple(f[f"x_{split}"].shape[1:3])
                self.objects = np.asarray(f[f"objects_{split}"][()])
        except (OSError, KeyError) as err:
            raise damaged_file_error(self.path, f"the header and objects_{split}", err) from None

    def __len__(self) -> int:
        return self._n

    def read_batch(self, indices: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Images [B, 1, H, W] float32 in [0, 1] and masks [B, H, W] int64 (255 = ignore).

        Indices may come in any order and repeat; negative ones count from the end, as in a list.
        """
        _, uniq, inverse = batch_rows(indices, len(self), f" of {self.path.name} ({self.split})")
        try:
            with h5py.File(self.path, "r") as f:
                x = read_rows(f[f"x_{self.split}"], uniq)[inverse]
                y = read_rows(f[f"y_{self.split}"], uniq)[inverse]
        except (OSError, KeyError) as err:
            what = f"x_{self.split}/y_{self.split} rows {uniq[0]}-{uniq[-1]}" if uniq.size else "the file"
            raise damaged_file_error(self.path, what, err) from None
        images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).float().div_(255.0)
        return images, torch.from_numpy(y.astype(np.int64))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.read_batch([i])
        return x[0], y[0]

    def __repr__(self) -> str:
        return f"SegmentationDataset({self.path.name}, split={self.split!r}, n={len(self)}, {self.canvas[0]}x{self.canvas[1]})"


class SegmentationBuild:
    """A built segmentation set: manifest, training sets by key, test sets by scale."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self.manifest_sha256 = manifest_digest(manifest)
        proto = manifest["protocol"]
        self.build_id: str = manifest["build_id"]
        self.name = NAME
        self.version: str = manifest["generator_version"]
        self.canvas = (int(proto["canvas"][0]), int(proto["canvas"][1]))
        self.channels = 1
        self.num_classes = NUM_CLASSES
        self.class_names = list(proto["class_names"])
        self.test_scales = [float(s) for s in proto["test_scales"]]
        self.train_sets = list(proto["train_sets"])
        self.split_sizes = dict(proto["split_sizes"])
        self.embedded = bool(proto["embedded"])
        self.limit = proto["limit"]

    def _file(self, role: str, key: str) -> Path:
        for fname, rec in self.manifest["files"].items():
            if rec["role"] == role and rec["key"] == key:
                return self.root / fname
        raise KeyError(key)

    def dataset(
        self, split: str, *, train_scales: Iterable[float] = (1,), scale: float | None = None
    ) -> SegmentationDataset:
        """``train``/``val`` of the training set with ``train_scales``, or ``test`` at ``scale``."""
        if split == "test":
            if scale is None:
                raise ScalebenchError("the test split needs a scale")
            try:
                return SegmentationDataset(self._file("test", scale_tag(scale)), "test")
            except KeyError:
                raise ScalebenchError(
                    f"{self.build_id}: no test set at scale {scale:g}; built: {', '.join(f'{s:g}' for s in self.test_scales)}. "
                    f"Rebuild with --scales to add it."
                ) from None
        key = train_set_key(train_scales)
        try:
            return SegmentationDataset(self._file("train_val", key), split)
        except KeyError:
            raise ScalebenchError(
                f"{self.build_id}: no training set with scales {key}; built training sets: "
                f"{', '.join(self.train_sets)} (give --train-scales as one of them, e.g. 1,2,3,4)."
            ) from None

    def files(self) -> list[Path]:
        return [self.root / f for f in sorted(self.manifest["files"])]

    def __repr__(self) -> str:
        return f"SegmentationBuild({self.build_id!r}, {self.canvas[0]}x{self.canvas[1]}, train sets {self.train_sets}, test scales {self.test_scales})"


def is_segmentation_build(build_id: str) -> bool:
    """True for build ids of the segmentation set (``fashion-mnist-seg...``)."""
    return build_id == NAME or build_id.startswith(NAME + "-")


def load_segmentation(build_id: str, root: str | Path | None = None) -> SegmentationBuild:
    """Open a segmentation build by id, checking that each listed file exists and carries the manifest's hashes."""
    folder = datasets_dir(root) / build_id
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        raise ScalebenchError(
            f"Dataset {build_id!r} has not been built under {datasets_dir(root)}; run "
            f"`scalebench build-datasets --dataset {NAME}` (add --embedded / --limit N as in the id)."
        )
    try:
        manifest = json.loads(mpath.read_text())
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, {MANIFEST_FORMAT!r} expected")
        built = SegmentationBuild(folder, manifest)
    except (ValueError, KeyError, TypeError) as err:
        raise ScalebenchError(
            f"{mpath}: not a valid segmentation manifest ({err}); delete {folder} and rebuild."
        ) from None
    check_stored_hashes(folder, manifest, mpath, fix=f"delete {folder} and rebuild")
    return built
