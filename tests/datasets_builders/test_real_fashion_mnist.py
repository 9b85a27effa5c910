"""The real Fashion-MNIST files (SCALEBENCH_RAW_DIR, set by CI): a --limit 500 build, the lite build and the embedded subset."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from fakes_raw import REAL_RAW_DIR

from scalebench.datasets_builders import DATASETS, build_dataset, open_build, verify_build
from scalebench.datasets_builders.raw import EMBEDDED_DIR, EMBEDDED_FILES, read_idx_gz, write_embedded_subset

pytestmark = pytest.mark.skipif(
    REAL_RAW_DIR is None,
    reason="SCALEBENCH_RAW_DIR is not set: the real Fashion-MNIST files are not available (CI sets it)",
)

#: Manifest sha256 of the --limit 500 build. The pixels are exact integer arithmetic (see rescale.py), so this
#: value is the same on every machine; it changes only with GENERATOR_VERSION or the protocol.
LIMIT500_MANIFEST_SHA256 = "9a12749f29ca6d4e915554b95c06668d511bd51e15ba62fb72f6b81dff66c58a"


def test_limit_500_build_matches_shapes_labels_and_hashes(tmp_path):
    built = build_dataset("fashion-mnist", root=tmp_path, raw_dir=REAL_RAW_DIR, limit=500, progress=False)
    assert built.build_id == "fashion-mnist-limit500" and built.limit == 500
    assert built.split_sizes == {"train": 500, "val": 500, "test": 500} and len(built.test_scales) == 9
    raw = Path(REAL_RAW_DIR) / "FashionMNIST" / "raw"
    x_tr = read_idx_gz(raw / "train-images-idx3-ubyte.gz", 0x803)
    y_tr = read_idx_gz(raw / "train-labels-idx1-ubyte.gz", 0x801)
    y_te = read_idx_gz(raw / "t10k-labels-idx1-ubyte.gz", 0x801)
    with h5py.File(built.path("train"), "r") as f:
        assert f["x_train"].shape == (500, 72, 72, 1) and f["x_val"].shape == (500, 72, 72, 1)
        np.testing.assert_array_equal(f["y_train"][()], y_tr[:500])
        np.testing.assert_array_equal(f["y_val"][()], y_tr[50000:50500])  # val = start of the last 10,000
        np.testing.assert_array_equal(f["x_train"][:, 22:50, 22:50, 0], x_tr[:500])
    for s in built.test_scales:
        ds = built.dataset("test", s)
        assert len(ds) == 500 and ds.image_shape == (1, 72, 72)
        np.testing.assert_array_equal(ds.labels, y_te[:500])
    assert built.manifest["protocol"]["source_md5s"]["train-images-idx3-ubyte.gz"] == (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    )
    assert verify_build("fashion-mnist-limit500", tmp_path) == []
    assert built.manifest_sha256 == LIMIT500_MANIFEST_SHA256 == built.view_sha256()
    assert open_build("fashion-mnist-limit500", tmp_path).manifest_sha256 == LIMIT500_MANIFEST_SHA256


def test_embedded_subset_follows_its_documented_rule(tmp_path):
    write_embedded_subset(Path(REAL_RAW_DIR) / "FashionMNIST" / "raw", tmp_path)
    for name in EMBEDDED_FILES:
        magic = 0x803 if "images" in name else 0x801
        np.testing.assert_array_equal(
            read_idx_gz(tmp_path / name, magic), read_idx_gz(EMBEDDED_DIR / name, magic)
        )
    assert (tmp_path / "subset.json").read_text() == (EMBEDDED_DIR / "subset.json").read_text()


@pytest.mark.slow
def test_full_build_is_the_canonical_one(tmp_path):
    """The full build reproduces the manifest hash recorded in the spec (about 10 s on 2 cores)."""
    built = build_dataset("fashion-mnist", root=tmp_path, raw_dir=REAL_RAW_DIR, progress=False)
    assert built.split_sizes == {"train": 50000, "val": 10000, "test": 10000}
    assert built.manifest_sha256 == DATASETS["fashion-mnist"].known_manifest_sha256
    assert built.is_canonical and open_build("fashion-mnist", tmp_path).is_canonical
    assert built.view_sha256(built.default_train_key, built.test_scales) == built.manifest_sha256


def test_lite_build_is_the_pinned_canonical_one(tmp_path):
    """The lite build: its manifest hash is the one pinned in the spec, its splits are stratified subsets of the
    full build's splits (400 / 100 / 100 images per class), rescaled exactly as the full build."""
    from scalebench.datasets_builders.raw import lite_indices

    built = build_dataset("fashion-mnist", root=tmp_path, raw_dir=REAL_RAW_DIR, lite=True, progress=False)
    spec = DATASETS["fashion-mnist"]
    assert built.build_id == "fashion-mnist-lite" and built.lite and built.is_canonical
    assert built.manifest_sha256 == spec.known_lite_manifest_sha256
    assert built.view_sha256() == spec.known_lite_manifest_sha256  # what a run on the default set records
    assert built.split_sizes == {"train": 4000, "val": 1000, "test": 1000} and len(built.test_scales) == 9
    raw = Path(REAL_RAW_DIR) / "FashionMNIST" / "raw"
    x_tr = read_idx_gz(raw / "train-images-idx3-ubyte.gz", 0x803)
    y_tr = read_idx_gz(raw / "train-labels-idx1-ubyte.gz", 0x801).astype(np.int64)
    y_te = read_idx_gz(raw / "t10k-labels-idx1-ubyte.gz", 0x801).astype(np.int64)
    full_y = {"train": y_tr[:50000], "val": y_tr[50000:], "test": y_te}
    idx = lite_indices(full_y, spec.lite_sizes, spec.lite_seed)
    with h5py.File(built.path("train"), "r") as f:
        np.testing.assert_array_equal(f["y_train"][()], y_tr[idx["train"]])
        np.testing.assert_array_equal(f["y_val"][()], y_tr[50000 + idx["val"]])
        # scale 1 on the 72 x 72 canvas: the 28 x 28 original sits unchanged at rows and columns 22..49
        np.testing.assert_array_equal(f["x_train"][:, 22:50, 22:50, 0], x_tr[idx["train"]])
    assert np.bincount(y_tr[idx["train"]]).tolist() == [400] * 10
    assert np.bincount(y_tr[50000 + idx["val"]]).tolist() == [100] * 10
    for s in built.test_scales:
        np.testing.assert_array_equal(built.dataset("test", s).labels, y_te[idx["test"]])
    assert verify_build("fashion-mnist-lite", tmp_path) == []


#: Manifest sha256 of the segmentation build ``fashion-mnist-seg-limit50`` (real Fashion-MNIST). The canonical
#: full build's hash is ``segmentation.KNOWN_MANIFEST_SHA256`` (69 s to rebuild); this build runs the same code
#: on the real files in about a second.
SEG_LIMIT50_MANIFEST_SHA256 = "cd583d0008144df5c73f29c867b59303e117a84bca14bb58ac489df2e8ebf7f3"


def test_segmentation_limit_50_build_matches_its_hash(tmp_path):
    from scalebench.datasets_builders.segmentation import build_segmentation

    built = build_segmentation(root=tmp_path, raw_dir=REAL_RAW_DIR, limit=50)
    assert built.manifest_sha256 == SEG_LIMIT50_MANIFEST_SHA256
    assert all(built.view_sha256(k) == SEG_LIMIT50_MANIFEST_SHA256 for k in built.train_keys)
    assert open_build("fashion-mnist-seg-limit50", tmp_path).manifest_sha256 == SEG_LIMIT50_MANIFEST_SHA256
    assert verify_build("fashion-mnist-seg-limit50", tmp_path) == []
