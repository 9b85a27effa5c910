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

Storage (written as every build is, ``manifest.py``): one file per training set with ``x_train``, ``y_train``,
``x_val``, ``y_val`` and one per test scale with ``x_test``, ``y_test``; ``x`` is [n, H, W, 1] uint8, ``y`` the
mask [n, H, W] uint8, ``objects_<split>`` [n, 4, 4] int64 holds, per quadrant, (class label 1..10, scale, top,
left). :class:`SegmentationBuild` is the handle: ``dataset("train", train_scale=(1, 2, 3, 4))``.

Not implemented: objects of different scales inside one quadrant, and non-square objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from scalebench.checks import ScalebenchError, parse_float_list
from scalebench.datasets_builders.builds import Build, TrainKey
from scalebench.datasets_builders.manifest import (
    GZIP_LEVEL,
    SetPlan,
    array_record,
    build_id_for,
    cap_sizes,
    check_limit,
    run_build,
    write_set,
)
from scalebench.datasets_builders.raw import RawSplits, expected_source_md5s, load_raw
from scalebench.datasets_builders.readers import SegmentationDataset
from scalebench.datasets_builders.scales import scale_tag, unique_scales
from scalebench.datasets_builders.specs import DATASETS, SEGMENTATION_DATASET, check_split
from scalebench.paths import datasets_dir

NAME = SEGMENTATION_DATASET
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
#: (`scalebench datasets build --dataset fashion-mnist-seg`, 69 s wall on 2 shared cores).
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
            f"--train-scale: segmentation object scales are positive integers, got {values}; "
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


def _plans(
    sizes: dict[str, int], test_scales: Sequence[float], canvas: tuple[int, int], config: str
) -> list[SetPlan]:
    """The files of a build: the four training sets (each with its validation set), then one test file per scale."""
    H, W = canvas
    tr, vl, te = sizes["train"], sizes["val"], sizes["test"]
    plans = []
    for t in TRAIN_SETS:
        key = train_set_key(t)
        name = f"fmnistseg_tr{tr}_vl{vl}_outsize{H}-{W}_sctr{key.replace('+', '-')}.h5"
        plans.append(SetPlan(name, {"train": tr, "val": vl}, config,
                             {"role": "train_val", "key": key, "scales": list(t)}))  # fmt: skip
    for s in test_scales:
        name = f"fmnistseg_te{te}_outsize{H}-{W}_scte{scale_tag(s)}.h5"
        plans.append(SetPlan(name, {"test": te}, config,
                             {"role": "test", "key": scale_tag(s), "scales": [int(s)]}))  # fmt: skip
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


def _write(plan: SetPlan, pools: dict, protocol: dict[str, Any], out_dir: Path, tick: Any) -> dict[str, dict]:
    """Write one set file (composites drawn by :func:`make_split`, seeded by role and scales); its array records.
    ``tick(n)`` counts the ``n`` composites of each split written."""
    canvas = (int(protocol["canvas"][0]), int(protocol["canvas"][1]))
    scales = plan.entry["scales"]

    def fill(f: h5py.File, arrays: dict[str, Any]) -> dict[str, Any]:
        for split, n in plan.sizes.items():
            px, py = pools[split]
            x, m, tab = make_split(px, py, n, scales, (protocol["seed"], _ROLE_CODE[split], *scales), canvas)
            for key, arr in ((f"x_{split}", x), (f"y_{split}", m), (f"objects_{split}", tab)):
                kw = {"chunks": (1, *arr.shape[1:]), "compression": "gzip", "compression_opts": GZIP_LEVEL}
                f.create_dataset(key, data=arr, **(kw if n and key[0] in "xy" else {}))
                arrays[key] = array_record(arr)
            tick(n)
        return {
            "dataset": NAME,
            "role": plan.entry["role"],
            "key": plan.entry["key"],
            "scales": json.dumps(scales),
        }

    return write_set(out_dir, plan, "protocol", fill)


def _check_scales_and_canvas(
    scales: Iterable[float] | str | None, canvas: tuple[int, int]
) -> tuple[list[float], tuple[int, int]]:
    test_scales = unique_scales(
        parse_float_list(scales, "--scales") if scales is not None else DEFAULT_TEST_SCALES
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
    return test_scales, canvas


def _protocol(canvas: tuple[int, int], test_scales: list[float], sizes: dict[str, int], limit: int | None,
              embedded: bool, source_md5s: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    return {
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
        "split_sizes": sizes,
        "object_pools": "train: training images; val: first half of the test images; test: second half",
        "seed": SEED,
        "limit": limit,
        "embedded": embedded,
        "class_names": list(CLASS_NAMES),
        "source_md5s": dict(sorted(source_md5s.items())),
    }


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
    train_scales: Iterable[Iterable[float]] | None = None,
    progress: bool | str = "auto",
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
        train_scales: training sets asked for (``datasets build --train-scale``); each must be one of the four
            of the protocol (:data:`TRAIN_SETS`), which every build holds.
        progress: the display on stderr, a ``--progress`` mode (:data:`scalebench.progress.PROGRESS_MODES`).
    """
    for key in train_scales or ():
        if train_set_key(key) not in [train_set_key(t) for t in TRAIN_SETS]:
            raise ScalebenchError(
                f"--train-scale {train_set_key(key)}: a {NAME} build holds the training sets "
                f"{', '.join(train_set_key(t) for t in TRAIN_SETS)} of the protocol, and no other."
            )
    test_scales, canvas = _check_scales_and_canvas(scales, canvas)
    limit = check_limit(limit)
    sizes_ = cap_sizes(sizes or (EMBEDDED_SIZES if embedded else FULL_SIZES), limit)
    build_id = seg_build_id(limit=limit, embedded=embedded, canvas=canvas)
    out_dir = datasets_dir(root) / build_id
    spec = DATASETS["fashion-mnist"]
    md5s = raw.source_md5s if raw is not None else expected_source_md5s(spec, embedded)
    protocol = _protocol(canvas, test_scales, sizes_, limit, embedded, md5s)
    plans = _plans(sizes_, test_scales, canvas, json.dumps(protocol, sort_keys=True))

    def writer(protocol: dict[str, Any]) -> Callable[[SetPlan, Any], dict[str, Any]]:
        pools = _pools(
            raw or load_raw(spec, root=root, raw_dir=raw_dir, download=download, embedded=embedded)
        )
        return lambda plan, tick: _write(plan, pools, protocol, out_dir, tick)

    manifest = run_build(out_dir, MANIFEST_FORMAT, lambda old, unreadable: (protocol, plans), writer,
                         attr="protocol", progress=progress)  # fmt: skip
    return SegmentationBuild(out_dir, manifest)


# --- the build handle ------------------------------------------------------------------------------------------


class SegmentationBuild(Build):
    """A built segmentation set (:class:`~scalebench.datasets_builders.builds.Build`): its four training sets
    (``train_sets``: keys ``1``, ``2``, ``4``, ``1+2+3+4``), each with a validation set, and a test set per scale."""

    task = "segmentation"
    format = MANIFEST_FORMAT
    _sizes_note = " per set"
    _train_fix = "give --train-scale as one of them, e.g. 1+2+3+4"

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        super().__init__(root, manifest)
        self.train_sets = list(manifest["protocol"]["train_sets"])
        self.train_keys = [tuple(float(s) for s in key.split("+")) for key in self.train_sets]
        self.default_train_key = self.train_keys[0]
        self.canonical_sha256 = KNOWN_MANIFEST_SHA256

    def _view_train_keys(self, key: TrainKey) -> list[TrainKey]:
        """The four training sets are one protocol (``protocol.train_sets``): a view keeps them all, so any
        run on the canonical build records its canonical digest."""
        return [*self.train_keys, key]

    def train_key(self, train_scale: float | Iterable[float] | None = None) -> TrainKey:
        key = super().train_key(train_scale)
        train_set_key(key)  # object scales are positive integers
        return key

    def dataset(
        self, split: str, scale: float | None = None, *, train_scale: Any = None
    ) -> SegmentationDataset:
        """``train``/``val`` of the training set with object scales ``train_scale`` (e.g. ``4`` or
        ``(1, 2, 3, 4)``; default ``1``), or ``test`` at ``scale``."""
        if check_split(split) != "test":
            return SegmentationDataset(self.train_path(train_scale), split)
        if scale is None:
            raise ScalebenchError(f"{self.build_id}: the test split needs a scale ({self._scales_line()}).")
        return SegmentationDataset(self.test_path(scale), "test")

    def _scales_line(self) -> str:
        scales = ", ".join(f"{s:g}" for s in self.test_scales)
        return f"training sets {', '.join(self.train_sets)}; test object scales {scales}"
