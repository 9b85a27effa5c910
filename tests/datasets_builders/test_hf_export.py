"""Hugging Face export: one configuration per test scale plus train and val, identical pixels on read-back."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders import build_dataset, export_datasets, export_hf


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    built = build_dataset(
        "fashion-mnist", root=root, embedded=True, limit=12, scales=[0.5, 2.0], progress=False
    )
    return root, built


def test_export_reads_back_identical(small_build, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    root, built = small_build
    dest = export_hf(built.build_id, tmp_path / "out", root=root)
    assert dest == tmp_path / "out" / "fashion-mnist-embedded-limit12"
    assert sorted(p.name for p in dest.iterdir()) == ["README.md", "test_0p500", "test_2p000", "train", "val"]
    card = (dest / "README.md").read_text()
    assert card.startswith("---\nlicense: mit") and "config_name: test_2p000" in card
    assert built.manifest_sha256 in card and "Perzanowski" in card and "Zalando" in card
    cache = str(tmp_path / "hf-cache")
    # Through the dataset card's configurations...
    ds = datasets.load_dataset(str(dest), "test_2p000", split="test", cache_dir=cache)
    assert ds.features["label"].names[9] == "Ankle boot"
    with h5py.File(built.path("test", 2.0), "r") as f:
        x, y = f["x_test"][()], f["y_test"][()]
    assert len(ds) == 12 and ds["label"] == y.tolist()
    for i in range(12):
        np.testing.assert_array_equal(np.asarray(ds[i]["image"]), x[i, :, :, 0])
    # ...with no configuration at all: every split and scale of the default configuration...
    everything = datasets.load_dataset(str(dest), cache_dir=cache)
    assert sorted(everything) == ["test_0p500", "test_2p000", "train", "validation"]
    assert everything["test_2p000"]["label"] == y.tolist() and len(everything["train"]) == 12
    from scalebench import __version__

    assert f"Built by scalebench {__version__} (dataset generator version {built.version})" in card
    # ...and as plain Parquet files.
    files = sorted(str(p) for p in (dest / "val").glob("*.parquet"))
    val = datasets.load_dataset(
        "parquet", data_files={"validation": files}, split="validation", cache_dir=cache
    )
    with h5py.File(built.path("val"), "r") as f:
        xv = f["x_val"][()]
    np.testing.assert_array_equal(np.stack([np.asarray(im) for im in val["image"]]), xv[..., 0])


def test_push_to_hub_offline_is_a_clear_error(small_build, tmp_path, monkeypatch):
    root, built = small_build
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ScalebenchError, match=r"Cannot push .*'me/rescaled'.*offline"):
        export_hf(built.build_id, tmp_path / "o1", root=root, push_to_hub="me/rescaled")
    assert (tmp_path / "o1" / built.build_id / "README.md").is_file()  # the export itself is kept
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: like being offline
    monkeypatch.setenv("HF_TOKEN", "hf_dummy")
    with pytest.raises(ScalebenchError, match=r"Pushing .* failed.*online"):
        export_hf(built.build_id, tmp_path / "o2", root=root, push_to_hub="me/rescaled")


def test_export_errors(tmp_path):
    with pytest.raises(ScalebenchError, match="No built dataset"):
        export_datasets(None, tmp_path / "out", root=tmp_path)
    with pytest.raises(ScalebenchError, match="--format"):
        export_datasets(None, tmp_path / "out", format="tfds", root=tmp_path)


def test_export_of_every_build_leaves_out_segmentation_builds(small_build, tmp_path):
    import shutil

    from scalebench.datasets_builders.segmentation import build_segmentation

    root, built = small_build
    shutil.copytree(root / "datasets", tmp_path / "datasets")
    seg = build_segmentation(root=tmp_path, embedded=True, limit=2)
    assert [p.name for p in export_datasets(None, tmp_path / "out", root=tmp_path)] == [built.build_id]
    with pytest.raises(
        ScalebenchError, match=f"'{seg.build_id}' is a scalebench.multiscale-segmentation/1 build"
    ):
        export_datasets(seg.build_id, tmp_path / "out2", root=tmp_path)
