"""Writers of tiny raw datasets in the exact original formats, and specs whose md5s match them.

Formats (as torchvision's ``test/test_datasets.py`` fakes them): Fashion-MNIST gzip'ed IDX files; CIFAR-10
python batches (pickled dicts with ``data`` (n, 3072) uint8 channel-major, ``labels``, ``batch_label``,
``filenames``) plus ``batches.meta``; STL-10 ``*_X.bin`` (n, 3, 96, 96) column-major and ``*_y.bin`` 1..10.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path

import numpy as np

from scalebench.datasets_builders.raw import write_idx_gz
from scalebench.datasets_builders.specs import DATASETS, DatasetSpec, Resource
from scalebench.fileio import file_digest

#: The real raw mirror (CI sets SCALEBENCH_RAW_DIR to the shared Fashion-MNIST files), read at import,
#: before the autouse fixture in conftest.py hides the variable from every test.
REAL_RAW_DIR = os.environ.get("SCALEBENCH_RAW_DIR") or None


def blob_images(n: int, size: int, channels: int, seed: int) -> np.ndarray:
    """n uint8 images [n, size, size, C]: a bright blob of random radius on a dark background, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    out = np.empty((n, size, size, channels), np.uint8)
    for i in range(n):
        r = rng.uniform(0.15, 0.35) * size
        base = 220 * np.exp(-(xx**2 + yy**2) / (2 * r * r))
        for c in range(channels):
            out[i, :, :, c] = np.clip(base * rng.uniform(0.6, 1.0) + rng.uniform(0, 20, (size, size)), 0, 255)
    return out


def patched_spec(name: str, folder: Path, **changes) -> DatasetSpec:
    """The real spec of ``name`` with the md5s of the files written into ``folder``."""
    spec = DATASETS[name]
    resources = tuple(Resource(r.filename, file_digest(folder / r.filename, "md5")) for r in spec.resources)
    return dataclasses.replace(spec, resources=resources, **changes)


def write_fmnist(raw_root: Path, n_train: int = 60, n_test: int = 20, seed: int = 0) -> Path:
    folder = raw_root / "FashionMNIST" / "raw"
    x = blob_images(n_train + n_test, 28, 1, seed)[..., 0]
    y = (np.arange(n_train + n_test) % 10).astype(np.uint8)
    write_idx_gz(folder / "train-images-idx3-ubyte.gz", x[:n_train])
    write_idx_gz(folder / "train-labels-idx1-ubyte.gz", y[:n_train])
    write_idx_gz(folder / "t10k-images-idx3-ubyte.gz", x[n_train:])
    write_idx_gz(folder / "t10k-labels-idx1-ubyte.gz", y[n_train:])
    return folder


def write_cifar(raw_root: Path, per_batch: int = 6, seed: int = 0) -> Path:
    folder = raw_root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        x = blob_images(per_batch, 32, 3, seed + k)
        batch = {
            "batch_label": f"batch {k + 1} of 5" if k < 5 else "testing batch 1 of 1",
            "labels": [int(v) for v in (np.arange(per_batch) + k) % 10],
            "data": x.transpose(0, 3, 1, 2).reshape(per_batch, 3072),
            "filenames": [f"img_{k}_{i}.png" for i in range(per_batch)],
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    meta = {
        "num_cases_per_batch": per_batch,
        "label_names": list(DATASETS["cifar10"].class_names),
        "num_vis": 3072,
    }
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump(meta, fh, protocol=2)
    return folder


def write_stl(raw_root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> Path:
    folder = raw_root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        x = blob_images(n, 96, 3, seed + (split == "test"))
        # column-major per channel: stored as (n, 3, W, H)
        x.transpose(0, 3, 2, 1).tofile(folder / f"{split}_X.bin")
        (np.arange(n) % 10 + 1).astype(np.uint8).tofile(folder / f"{split}_y.bin")
    return folder


def tiny_fmnist_build(raw_root: Path, home: Path, scales=(0.5, 1.0, 2.0)):
    """A tiny non-embedded fashion-mnist build from fake raw files: 16 training, 8 validation and 12 test images
    per scale (the home of the sweep tests)."""
    from scalebench.datasets_builders import build_dataset

    spec = patched_spec("fashion-mnist", write_fmnist(raw_root, n_train=24, n_test=12),
                        split_sizes={"train": 16, "val": 8, "test": 12})  # fmt: skip
    return build_dataset(
        "fashion-mnist", root=home, raw_dir=raw_root, spec=spec, scales=list(scales), progress=False
    )
