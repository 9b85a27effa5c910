"""The multi-object segmentation builder: quadrants, exact mask thresholds, determinism, manifest checks."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import torch

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders import describe_builds, open_build
from scalebench.datasets_builders.segmentation import (
    IGNORE_INDEX,
    SegmentationBuild,
    build_segmentation,
    compose,
    grey_to_mask,
    train_set_key,
    upsample_object,
)


def test_mask_thresholds_are_exact_on_constructed_values():
    h = np.array([0.0, 1e-12, 1 / 255, 50 / 255, np.nextafter(0.2, 0.0), 0.2, 51 / 255, 0.5, 1.0])
    assert grey_to_mask(h, 3).tolist() == [0, 255, 255, 255, 255, 3, 3, 3, 3]


def test_composite_masks_follow_the_stored_grey_values():
    # one object whose pixels take every uint8 value: the mask must follow x/255 >= 0.2 (x >= 51), x == 0
    obj = np.arange(28 * 28, dtype=np.int64).reshape(28, 28) % 256
    obj = obj.astype(np.uint8)
    zeros = np.zeros((28, 28), np.uint8)
    img, mask, table = compose(
        [obj, zeros, zeros, zeros], [5, 1, 2, 3], [1, 1, 1, 1], np.random.default_rng(0)
    )
    top, left = table[0, 2], table[0, 3]
    x = img[top : top + 28, left : left + 28].astype(int)
    m = mask[top : top + 28, left : left + 28]
    np.testing.assert_array_equal(x, obj)
    assert (m[x >= 51] == 5).all() and (m[x == 0] == 0).all()
    assert (m[(x > 0) & (x < 51)] == IGNORE_INDEX).all()
    assert set(np.unique(mask[img == 0])) == {0}


def test_objects_lie_fully_inside_their_quadrants(seg_home):
    _, built = seg_home
    H, W = built.canvas
    for key in built.train_sets:
        ds = built.dataset("train", train_scale=[int(s) for s in key.split("+")])
        x, y = ds.read_batch(list(range(len(ds))))
        for i in range(len(ds)):
            covered = np.zeros((H, W), bool)
            for q, (label, s, top, left) in enumerate(ds.objects[i]):
                size = 28 * s
                qt, ql = (q // 2) * H // 2, (q % 2) * W // 2
                assert qt <= top and top + size <= qt + H // 2 and ql <= left and left + size <= ql + W // 2
                assert s in [int(v) for v in key.split("+")]
                box = y[i, top : top + size, left : left + size].numpy()
                assert set(np.unique(box)) <= {0, int(label), IGNORE_INDEX} and (box == label).any()
                covered[top : top + size, left : left + size] = True
            assert (y[i].numpy()[~covered] == 0).all() and (x[i, 0].numpy()[~covered] == 0).all()


def test_upsampling_is_bilinear_and_keeps_a_constant():
    up = upsample_object(np.full((28, 28), 200, np.uint8), 3)
    assert up.shape == (84, 84) and (up == 200).all()
    ramp = np.tile(np.arange(28, dtype=np.uint8) * 9, (28, 1))
    assert np.all(np.diff(upsample_object(ramp, 2)[0].astype(int)[2:-2]) >= 0)


def test_same_seed_gives_the_same_files(tmp_path, seg_home):
    _, first = seg_home
    again = build_segmentation(root=tmp_path, embedded=True, limit=4)
    assert again.manifest_sha256 == first.manifest_sha256
    for a, b in zip(first.files(), again.files(), strict=True):
        with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
            assert sorted(fa) == sorted(fb)
            for k in fa:
                np.testing.assert_array_equal(fa[k][()], fb[k][()])


def test_train_val_test_draw_different_composites(seg_home):
    _, built = seg_home
    tr = built.dataset("train", train_scale=[1]).read_batch([0, 1])[0]
    va = built.dataset("val", train_scale=[1]).read_batch([0, 1])[0]
    te = built.dataset("test", scale=1).read_batch([0, 1])[0]
    assert not np.array_equal(tr, va) and not np.array_equal(va, te)


def test_a_replaced_file_is_detected_and_bad_arguments_are_clear(tmp_path):
    built = build_segmentation(root=tmp_path, embedded=True, limit=2)
    path = built.files()[0]
    with h5py.File(path, "a") as f:
        f.attrs["array_sha256"] = json.dumps({})
    with pytest.raises(ScalebenchError, match="hashes differ"):
        open_build(built.build_id, tmp_path)
    with pytest.raises(ScalebenchError, match="has not been built"):
        open_build("fashion-mnist-seg-limit9", tmp_path)
    with pytest.raises(ScalebenchError, match="at least 224x224"):
        build_segmentation(root=tmp_path, embedded=True, limit=2, canvas=(112, 112))
    with pytest.raises(ScalebenchError, match="integer upsampling factors"):
        build_segmentation(root=tmp_path, embedded=True, limit=2, scales="1.5")
    with pytest.raises(ScalebenchError, match="built training sets"):
        train_set_key([0.5])


def test_missing_training_set_lists_the_built_ones(seg_home):
    _, built = seg_home
    with pytest.raises(ScalebenchError, match=r"no training set with scales 3.*1\+2\+3\+4"):
        built.dataset("train", train_scale=[3])


def test_a_rebuild_rewrites_a_truncated_file_and_keeps_the_intact_ones(tmp_path):
    built = build_segmentation(root=tmp_path, embedded=True, limit=2)
    broken, intact = built.files()[0], built.files()[1]
    before, mtime = broken.read_bytes(), intact.stat().st_mtime_ns
    with open(broken, "r+b") as f:
        f.truncate(len(before) // 2)
    with pytest.raises(ScalebenchError, match="missing or unreadable"):
        open_build(built.build_id, tmp_path)
    again = build_segmentation(root=tmp_path, embedded=True, limit=2)
    assert again.manifest_sha256 == built.manifest_sha256 and broken.read_bytes() == before
    assert intact.stat().st_mtime_ns == mtime
    open_build(built.build_id, tmp_path)


def test_datasets_info_describes_a_segmentation_build(seg_home):
    root, built = seg_home
    text = describe_builds(built.build_id, root=root)
    assert "BROKEN" not in text, text
    assert f"{built.build_id}: fashion-mnist-seg v1.0.0, 224x224x1, 11 classes, train/val/test 4/4/4" in text
    assert "training sets 1, 2, 4, 1+2+3+4; test object scales 1, 2, 3, 4" in text
    assert f"manifest sha256 {built.manifest_sha256}\n" in text + "\n"


def test_items_index_like_a_list(seg_home):
    _, built = seg_home
    ds = built.dataset("test", scale=2)
    n = len(ds)
    x, y = ds.read_batch([n - 1, 0, n - 1])
    assert torch.equal(ds[-1][0], x[0]) and torch.equal(ds[-n][1], y[1]) and torch.equal(x[0], x[2])
    assert len(list(ds)) == n  # iteration stops at the end (IndexError), as for any sequence
    with pytest.raises(IndexError, match=f"out of range for {n} items"):
        ds.read_batch([0, n])


def test_the_embedded_build_manifest_is_pinned(seg_home):
    """Measured before the builders shared ``manifest.py``; the canonical full build's hash is
    ``KNOWN_MANIFEST_SHA256`` (real Fashion-MNIST only)."""
    _, built = seg_home
    assert built.manifest_sha256 == "206e6e42f5232e0f3e3fd608748ba973dc26e270c1942bc7ce339d3fff12f564"
    # the view a run records: the four training sets are one protocol, so every set's view of every test
    # scale is the manifest digest (the canonical build stays canonical for any run on it); fewer scales differ
    for key in built.train_keys:
        assert built.view_sha256(key, built.test_scales) == built.manifest_sha256
    assert built.view_sha256((4,), [1.0, 2.0]) == built.view_sha256(None, [2.0, 1.0]) != built.manifest_sha256


def test_open_build_dispatches_on_the_manifest_format(seg_home, tmp_path):
    """The format field of the manifest decides the handle, never the build id."""
    root, built = seg_home
    opened = open_build(built.build_id, root)
    assert isinstance(opened, SegmentationBuild) and opened.task == "segmentation"
    assert opened.manifest_sha256 == built.manifest_sha256 and not opened.is_canonical
    assert opened.dataset("train", train_scale=4).path == opened.dataset("val", train_scale=[4.0]).path
    assert opened.dataset("train").path.name.endswith("sctr1.h5")  # the default training set: 1
    copy = tmp_path / "datasets" / "my-own-name"
    shutil.copytree(root / "datasets" / built.build_id, copy)
    assert open_build("my-own-name", tmp_path).task == "segmentation"
    with pytest.raises(
        ScalebenchError, match=r"is a scalebench.multiscale-segmentation/1 build, not a classifi"
    ):
        open_build("my-own-name", tmp_path, task="classification")
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format": "other/1"}))
    with pytest.raises(ScalebenchError, match=r"not a valid scalebench manifest \(unknown format 'other/1'"):
        open_build("my-own-name", tmp_path)
