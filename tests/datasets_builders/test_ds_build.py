"""Builder: HDF5 round-trip, attributes, manifest hashes, verify, interrupted builds, re-runs, open_build."""

from __future__ import annotations

import errno
import hashlib
import json

import h5py
import numpy as np
import pytest
from fakes_raw import patched_spec, write_cifar, write_fmnist, write_stl

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders import build as build_mod
from scalebench.datasets_builders import (
    build_dataset,
    describe_builds,
    manifest_digest,
    open_build,
    rescale_batch,
    verify_build,
    verify_datasets,
)
from scalebench.datasets_builders import manifest as manifest_mod
from scalebench.datasets_builders.raw import read_idx_gz

SCALES = [0.5, 1.0, 2**0.5]


@pytest.fixture
def fmnist(tmp_path):
    raw = tmp_path / "raw"
    folder = write_fmnist(raw, n_train=60, n_test=20)
    spec = patched_spec("fashion-mnist", folder, split_sizes={"train": 40, "val": 20, "test": 20})
    return raw, folder, spec


def _build(tmp_path, raw, spec, **kw):
    return build_dataset(
        "fashion-mnist",
        root=tmp_path / "home",
        raw_dir=raw,
        spec=spec,
        progress=False,
        **{"scales": SCALES, **kw},
    )


def test_hdf5_round_trip_attributes_and_manifest(tmp_path, fmnist):
    raw, folder, spec = fmnist
    built = _build(tmp_path, raw, spec)
    assert (
        built.build_id == "fashion-mnist" and built.root == tmp_path / "home" / "datasets" / "fashion-mnist"
    )
    assert built.test_scales == sorted(SCALES) and built.train_scale == 1.0
    assert (built.canvas, built.channels, built.num_classes) == ((72, 72), 1, 10)
    x_train = read_idx_gz(folder / "train-images-idx3-ubyte.gz", 0x803)
    y_train = read_idx_gz(folder / "train-labels-idx1-ubyte.gz", 0x801)
    x_test = read_idx_gz(folder / "t10k-images-idx3-ubyte.gz", 0x803)
    with h5py.File(built.path("train"), "r") as f:
        assert set(f.keys()) == {"x_train", "y_train", "x_val", "y_val"}
        assert f["x_train"].shape == (40, 72, 72, 1) and f["x_train"].dtype == np.uint8
        assert f["y_train"].dtype == np.int64
        np.testing.assert_array_equal(f["x_train"][:, 22:50, 22:50, 0], x_train[:40])
        np.testing.assert_array_equal(f["x_val"][:, 22:50, 22:50, 0], x_train[40:60])  # last 20 = val
        np.testing.assert_array_equal(f["y_val"][()], y_train[40:60])
        assert f.attrs["padding"] == "zero" and f.attrs["interpolation"] == "bicubic"
        assert bool(f.attrs["antialias"]) and f.attrs["generator_version"] == built.version
        assert json.loads(f.attrs["source_md5s"]) == {r.filename: r.md5 for r in spec.resources}
    path = built.path("test", 2**0.5)
    assert path.name == "fashionmnist_with_scale_variations_te20_outsize72-72_scte1p414.h5"
    with h5py.File(path, "r") as f:
        assert f.attrs["scale"] == pytest.approx(2**0.5) and f.attrs["scale_tag"] == "1p414"
        assert list(f.attrs["canvas"]) == [72, 72] and f.attrs["seed"] == 0
        np.testing.assert_array_equal(f["x_test"][()], rescale_batch(x_test[..., None], 2**0.5, (72, 72)))
    # The manifest: deterministic content, sha256 of every decoded array, and its own digest.
    manifest = json.loads((built.root / "manifest.json").read_text())
    assert manifest == built.manifest and built.manifest_sha256 == manifest_digest(manifest)
    text = json.dumps(manifest)
    assert str(tmp_path) not in text and "time" not in text.lower().replace("timing", "")
    for fname, rec in manifest["files"].items():
        with h5py.File(built.root / fname, "r") as f:
            for key, arr in rec["arrays"].items():
                data = np.ascontiguousarray(f[key][()])
                assert hashlib.sha256(data.tobytes()).hexdigest() == arr["sha256"]
                assert list(data.shape) == arr["shape"]
    assert open_build("fashion-mnist", root=tmp_path / "home").manifest_sha256 == built.manifest_sha256
    # The same build elsewhere gives the same manifest hash (no paths, no times).
    again = build_dataset(
        "fashion-mnist", root=tmp_path / "other", raw_dir=raw, spec=spec, progress=False, scales=SCALES
    )
    assert again.manifest_sha256 == built.manifest_sha256
    assert "fashion-mnist" in describe_builds(root=tmp_path / "home")


def test_verify_catches_a_flipped_byte_and_a_changed_pixel(tmp_path, fmnist):
    raw, _, spec = fmnist
    built = _build(tmp_path, raw, spec)
    home = tmp_path / "home"
    assert verify_datasets("fashion-mnist", home) == {"fashion-mnist": []}
    # A flipped byte inside the deflated data of the first chunk of x_test.
    path = built.path("test", 0.5)
    with h5py.File(path, "r") as f:
        info = f["x_test"].id.get_chunk_info(0)
    blob = bytearray(path.read_bytes())
    blob[info.byte_offset + info.size // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    problems = verify_build("fashion-mnist", home)
    assert len(problems) == 1 and path.name in problems[0] and "x_test" in problems[0]
    # A changed pixel that still decodes: a hash mismatch.
    other = built.path("test", 1.0)
    with h5py.File(other, "r+") as f:
        f["x_test"][0, 36, 36, 0] ^= 1
    problems = verify_build("fashion-mnist", home)
    assert any(other.name in p and "sha256" in p for p in problems) and len(problems) == 2


def test_interrupted_build_leaves_nothing_complete_looking_then_completes(tmp_path, fmnist, monkeypatch):
    raw, _, spec = fmnist
    real_write = build_mod.write_array_chunked
    calls = {"n": 0}

    def failing(*args):
        calls["n"] += 1
        if calls["n"] == 3:  # mid-way through the build, inside a set
            raise KeyboardInterrupt("simulated interruption")
        return real_write(*args)

    monkeypatch.setattr(build_mod, "write_array_chunked", failing)
    monkeypatch.setattr(manifest_mod, "WORKERS", 1)
    with pytest.raises(KeyboardInterrupt):
        _build(tmp_path, raw, spec)
    folder = tmp_path / "home" / "datasets" / "fashion-mnist"
    names = sorted(p.name for p in folder.iterdir() if p.name != ".lock")  # the build lock stays
    assert "manifest.json" not in names
    assert not [n for n in names if n.startswith(".")]  # no temp file left behind
    for name in names:  # what exists is complete: it opens and carries its hashes
        with h5py.File(folder / name, "r") as f:
            assert "array_sha256" in f.attrs
    with pytest.raises(ScalebenchError, match="has not been built"):
        open_build("fashion-mnist", root=tmp_path / "home")
    monkeypatch.setattr(build_mod, "write_array_chunked", real_write)
    done_before = set(names)
    written = []
    real_write_set = build_mod._write_set
    monkeypatch.setattr(
        build_mod, "_write_set", lambda plan, *a: written.append(plan.filename) or real_write_set(plan, *a)
    )
    built = _build(tmp_path, raw, spec)
    assert not done_before & set(written)  # complete sets were skipped
    assert len(written) + len(done_before) == 1 + len(SCALES)
    assert verify_build("fashion-mnist", tmp_path / "home") == []
    # A third run builds nothing and keeps the manifest.
    written.clear()
    assert _build(tmp_path, raw, spec).manifest_sha256 == built.manifest_sha256 and written == []


def test_more_scales_extend_a_build_and_missing_scale_errors(tmp_path, fmnist):
    raw, _, spec = fmnist
    built = _build(tmp_path, raw, spec, scales=[1.0])
    with pytest.raises(ScalebenchError, match=r"built test scales are 1\.000"):
        built.path("test", 0.5)
    with pytest.raises(
        ScalebenchError,
        match=r"no training set with scales 2; built training sets: 1\. Fix: add "
        r"it with `scalebench datasets build --dataset fashion-mnist --train-scale 2`",
    ):
        built.path("train", train_scale=2.0)
    with pytest.raises(
        ScalebenchError, match=r"scale=2 picks a test set; the train split takes train_scale="
    ):
        built.path("train", 2.0)
    built = _build(tmp_path, raw, spec, scales=[0.5])
    assert built.test_scales == [0.5, 1.0]
    assert built.path("test", 0.5004).name.endswith("scte0p500.h5")  # matched by the 3-decimal tag


def test_open_build_errors_name_the_command(tmp_path):
    with pytest.raises(ScalebenchError, match=r"run `scalebench datasets build --dataset fashion-mnist`"):
        open_build("fashion-mnist", root=tmp_path)
    with pytest.raises(ScalebenchError, match=r"--dataset fashion-mnist --embedded`"):
        open_build("fashion-mnist-embedded", root=tmp_path)
    with pytest.raises(ScalebenchError, match=r"--dataset cifar10 --limit 500`"):
        open_build("cifar10-limit500", root=tmp_path)
    with pytest.raises(ScalebenchError, match="has not been built under"):
        open_build("stl10", root=tmp_path)


def test_limit_and_embedded_build_ids(tmp_path, fmnist):
    raw, _, spec = fmnist
    built = _build(tmp_path, raw, spec, limit=7, scales=[1.0])
    assert built.build_id == "fashion-mnist-limit7" and built.limit == 7
    assert len(built.dataset("train")) == 7 and len(built.dataset("test", 1.0)) == 7
    emb = build_dataset(
        "fashion-mnist", root=tmp_path / "home", embedded=True, scales=[0.5], limit=30, progress=False
    )
    assert emb.build_id == "fashion-mnist-embedded-limit30" and emb.embedded
    with pytest.raises(ScalebenchError, match="fashion-mnist only"):
        build_dataset("cifar10", root=tmp_path, embedded=True, progress=False)
    with pytest.raises(ScalebenchError, match="--limit"):
        build_dataset("fashion-mnist", root=tmp_path, embedded=True, limit=0, progress=False)


def test_embedded_build_sizes_and_labels(tmp_path):
    built = build_dataset("fashion-mnist", root=tmp_path, embedded=True, scales=[0.5, 2.0], progress=False)
    assert built.build_id == "fashion-mnist-embedded"
    assert built.split_sizes == {"train": 1600, "val": 400, "test": 1000}
    for split, per_class in (("train", 160), ("val", 40)):
        assert np.bincount(built.dataset(split).labels, minlength=10).tolist() == [per_class] * 10
    assert np.bincount(built.dataset("test", 2.0).labels).tolist() == [100] * 10
    assert all(k.startswith("embedded/") for k in built.manifest["protocol"]["source_md5s"])


def test_cifar10_end_to_end_on_original_format(tmp_path):
    raw = tmp_path / "raw"
    folder = write_cifar(raw, per_batch=6)
    spec = patched_spec("cifar10", folder, split_sizes={"train": 24, "val": 6, "test": 6})
    built = build_dataset("cifar10", root=tmp_path, raw_dir=raw, spec=spec, scales=[0.5, 1.0], progress=False)
    assert (built.canvas, built.channels) == ((64, 64), 3)
    import pickle

    with open(folder / "data_batch_5", "rb") as fh:
        b5 = pickle.load(fh, encoding="latin1")
    val_src = b5["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    with h5py.File(built.path("val"), "r") as f:
        assert f["x_train"].shape == (24, 64, 64, 3)
        np.testing.assert_array_equal(f["x_val"][:, 16:48, 16:48], val_src)
        np.testing.assert_array_equal(f["y_val"][()], b5["labels"])
        assert f.attrs["padding"] == "reflect"
        np.testing.assert_array_equal(f["x_val"][:, 15, 16:48], val_src[:, 0])  # mirrored border row
    x, _ = built.dataset("test", 0.5)[0]
    assert x.shape == (3, 64, 64) and x.dtype.is_floating_point and 0 <= float(x.min()) <= float(x.max()) <= 1


def test_stl10_end_to_end_on_original_format(tmp_path):
    raw = tmp_path / "raw"
    folder = write_stl(raw, n_train=20, n_test=10)
    spec = patched_spec("stl10", folder, split_sizes={"train": 10, "val": 10, "test": 10})
    built = build_dataset(
        "stl10", root=tmp_path, raw_dir=raw, spec=spec, scales=[0.5, 1.0, 2.0], progress=False
    )
    src = np.fromfile(folder / "test_X.bin", np.uint8).reshape(-1, 3, 96, 96)
    with h5py.File(built.path("test", 1.0), "r") as f:
        # column-major files: pixel (row r, col c) of channel k is src[n, k, c, r]
        np.testing.assert_array_equal(f["x_test"][()], src.transpose(0, 3, 2, 1))
        np.testing.assert_array_equal(f["y_test"][()], np.arange(10) % 10)
    tr, va = built.dataset("train").labels, built.dataset("val").labels
    assert (
        np.bincount(tr, minlength=10).tolist() == [1] * 10
        and np.bincount(va, minlength=10).tolist() == [1] * 10
    )
    with h5py.File(built.path("test", 2.0), "r") as f:
        assert f["x_test"].shape == (10, 96, 96, 3)  # enlarged then centre-cropped


def test_info_reports_a_broken_build_without_failing(tmp_path, fmnist):
    raw, _, spec = fmnist
    built = _build(tmp_path, raw, spec, scales=[1.0])
    built.path("test", 1.0).unlink()
    text = describe_builds(root=tmp_path / "home")
    assert "fashion-mnist: BROKEN" in text and "missing or unreadable" in text
    assert any("missing" in p for p in verify_build("fashion-mnist", tmp_path / "home"))


# --- faults: corrupt manifest, concurrent builds, killed builds, OS errors (docs/reliability.md) ---------------


def _flip_chunk_byte(path, key):
    """Flip one byte inside the deflated data of chunk 0 of ``key``: the chunk no longer decodes."""
    with h5py.File(path, "r") as f:
        info = f[key].id.get_chunk_info(0)
    blob = bytearray(path.read_bytes())
    blob[info.byte_offset + info.size // 2] ^= 0xFF
    path.write_bytes(bytes(blob))


def test_corrupt_manifest_is_rebuilt_from_the_set_files(tmp_path, fmnist):
    """D8: a truncated or emptied manifest is rebuilt from the set files, keeping every built scale."""
    raw, _, spec = fmnist
    _build(tmp_path, raw, spec)
    built = _build(tmp_path, raw, spec, scales=[2.0])  # a scale added later: only the manifest lists it
    manifest_path = built.root / "manifest.json"
    text = manifest_path.read_text()
    for damaged in (text[:300], "{}", "[]", '{"protocol": {"test_scales": ["x"]}, "files": {}}'):
        manifest_path.write_text(damaged)
        again = _build(tmp_path, raw, spec)
        assert again.manifest_sha256 == built.manifest_sha256 and 2.0 in again.test_scales
        info = json.loads((built.root / "build_info.json").read_text())
        assert info["built_sets"] == []  # nothing rebuilt: every set file re-hashed to its stored hashes
    # A damaged set file is rewritten while repairing (its stored hashes no longer match its arrays).
    _flip_chunk_byte(built.path("test", 2.0), "x_test")
    manifest_path.write_text(text[:300])
    again = _build(tmp_path, raw, spec)
    assert again.manifest_sha256 == built.manifest_sha256
    assert json.loads((built.root / "build_info.json").read_text())["built_sets"] == [
        built.path("test", 2.0).name
    ]
    assert verify_build("fashion-mnist", tmp_path / "home") == []


def test_segmentation_corrupt_manifest_is_repaired_without_rewriting(tmp_path, monkeypatch):
    """D8 for the segmentation builder: an unreadable manifest is rebuilt from intact set files."""
    from scalebench.datasets_builders import segmentation as seg

    built = seg.build_segmentation(root=tmp_path, embedded=True, limit=1)
    path = built.root / "manifest.json"
    written = []
    real_write = seg._write
    monkeypatch.setattr(seg, "_write", lambda p, *a: written.append(p.filename) or real_write(p, *a))
    path.write_text(path.read_text()[:200])
    again = seg.build_segmentation(root=tmp_path, embedded=True, limit=1)
    assert again.manifest_sha256 == built.manifest_sha256 and written == []
    # A damaged test set is rewritten.
    victim = built.root / next(f for f in built.manifest["files"] if "scte2p000" in f)
    _flip_chunk_byte(victim, "x_test")
    path.write_text("{")
    again = seg.build_segmentation(root=tmp_path, embedded=True, limit=1)
    assert again.manifest_sha256 == built.manifest_sha256 and written == [victim.name]


def test_segmentation_reader_names_a_damaged_file(tmp_path):
    """D12 for the segmentation reader: one ScalebenchError naming the file and `datasets verify`."""
    from scalebench.datasets_builders import segmentation as seg

    built = seg.build_segmentation(root=tmp_path, embedded=True, limit=1)
    ds = built.dataset("test", scale=1)
    _flip_chunk_byte(ds.path, "x_test")
    with pytest.raises(
        ScalebenchError, match=r"scte1p000\.h5: reading x_test/y_test rows 0-0 failed.*datasets verify"
    ):
        ds.read_batch([0])


@pytest.mark.parametrize("bad", [5.0, "5", True, 0, -3, np.int64(0)])
def test_both_builders_refuse_a_limit_that_is_not_a_positive_integer(tmp_path, fmnist, bad):
    """One check for both builders: a float, a string or a bool is one clear error (the segmentation builder
    used to accept ``5.0`` and ``"5"`` and fail later with a TypeError), before anything is written."""
    from scalebench.datasets_builders import segmentation as seg

    raw, _, spec = fmnist
    message = f"--limit must be a positive integer, got {bad!r}."
    with pytest.raises(ScalebenchError) as seg_err:
        seg.build_segmentation(root=tmp_path / "home", embedded=True, limit=bad, progress=False)
    with pytest.raises(ScalebenchError) as cls_err:
        _build(tmp_path, raw, spec, limit=bad, scales=[1.0])
    assert str(seg_err.value) == str(cls_err.value) == message
    assert not (tmp_path / "home").exists()


def test_both_builders_take_a_numpy_integer_limit(tmp_path, fmnist):
    from scalebench.datasets_builders import segmentation as seg

    raw, _, spec = fmnist
    built = seg.build_segmentation(root=tmp_path / "a", embedded=True, limit=np.int64(1), progress=False)
    same = seg.build_segmentation(root=tmp_path / "b", embedded=True, limit=1, progress=False)
    assert built.build_id == "fashion-mnist-seg-embedded-limit1" and built.manifest["protocol"]["limit"] == 1
    assert built.manifest_sha256 == same.manifest_sha256
    cls = _build(tmp_path, raw, spec, limit=np.int64(7), scales=[1.0])
    assert cls.build_id == "fashion-mnist-limit7" and cls.limit == 7 and len(cls.dataset("train")) == 7


def test_build_lock_serialises_builds_of_one_id(tmp_path, fmnist):
    """D9: a build waits for the lock of its build folder, then re-reads and extends the manifest it finds."""
    import shutil
    import threading
    import time

    raw, _, spec = fmnist
    first = _build(tmp_path, raw, spec, scales=[1.0])
    other = build_dataset(
        "fashion-mnist", root=tmp_path / "other", raw_dir=raw, spec=spec, scales=[0.5, 1.0], progress=False
    )
    result = {}
    with manifest_mod.build_lock(first.root):
        thread = threading.Thread(target=lambda: result.update(b=_build(tmp_path, raw, spec, scales=[2.0])))
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive() and manifest_mod.build_running(first.root)  # waiting for the lock
        # Meanwhile the holder adds scale 0.5 (as a concurrent build would): the waiting build must keep it.
        shutil.copy(other.path("test", 0.5), first.root)
        shutil.copy(other.root / "manifest.json", first.root)
    thread.join(60)
    assert result["b"].test_scales == [0.5, 1.0, 2.0] and not manifest_mod.build_running(first.root)
    assert open_build("fashion-mnist", tmp_path / "home").manifest_sha256 == result["b"].manifest_sha256


def test_stale_temp_files_are_removed_and_an_interrupted_build_is_reported(tmp_path, fmnist):
    """D15 (B12-B15): temporary files of a killed build are removed by the next build; `info` and `verify`
    report an interrupted first build instead of "No built datasets"."""
    raw, _, spec = fmnist
    home = tmp_path / "home"
    built = _build(tmp_path, raw, spec)
    (built.root / "manifest.json").unlink()
    (built.root / "build_info.json").unlink()
    temps = [
        built.root / ".fashionmnist_with_scale_variations_te20_outsize72-72_scte2p000.h5.k3j_x9a1.tmp.h5",
        built.root / ".manifest.json.ab12cd34.tmp",
    ]
    for t in temps:
        t.write_bytes(b"\0" * 96)
    keep = built.root / "notes.tmp"  # not a scalebench temporary file
    keep.write_text("mine")
    text = describe_builds(root=home)
    assert text.startswith("fashion-mnist: INTERRUPTED: no manifest") and "4 complete set file(s)" in text
    assert "2 temporary file(s)" in text and "scalebench datasets build --dataset fashion-mnist" in text
    with pytest.raises(ScalebenchError, match="fashion-mnist: an interrupted build without a manifest"):
        verify_datasets(root=home)
    again = _build(tmp_path, raw, spec)
    assert not any(t.exists() for t in temps) and keep.exists()
    assert again.manifest_sha256 == built.manifest_sha256
    assert json.loads((built.root / "build_info.json").read_text())["built_sets"] == []  # B15
    # A complete build with stale temporary files (killed while adding a scale, B17): info says so.
    temps[0].write_bytes(b"\0" * 96)
    assert "1 temporary file(s) of an interrupted build" in describe_builds(root=home)
    _build(tmp_path, raw, spec)
    assert not temps[0].exists() and "temporary" not in describe_builds(root=home)


def test_os_errors_while_writing_name_the_path_and_leave_nothing_half_written(tmp_path, fmnist, monkeypatch):
    """D11: a full disk or a read-only file system while writing is one ScalebenchError naming the path."""
    raw, _, spec = fmnist
    folder = tmp_path / "home" / "datasets" / "fashion-mnist"

    def disk_full(*args, **kwargs):  # HDF5's error: the errno only in the text
        raise OSError(
            "Can't synchronously write data (file write failed: errno = 28, error message = 'No space')"
        )

    with monkeypatch.context() as m:
        m.setattr(build_mod, "write_array_chunked", disk_full)
        with pytest.raises(
            ScalebenchError,
            match=r"Cannot write .*fashion-mnist/fashionmnist.*No space left on device \(ENOSPC\)",
        ):
            _build(tmp_path, raw, spec)
    assert not folder.exists()  # N3: a failed build leaves no empty build folder

    def read_only(path, obj):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    with monkeypatch.context() as m:
        m.setattr(manifest_mod, "write_json_atomic", read_only)
        with pytest.raises(
            ScalebenchError, match=r"Cannot write .*manifest\.json: Read-only file system \(EROFS\)"
        ):
            _build(tmp_path, raw, spec)
    assert not (folder / "manifest.json").exists()
    assert not [p for p in folder.iterdir() if ".tmp" in p.name]
    assert verify_build("fashion-mnist", tmp_path / "home") == [
        f"{folder / 'manifest.json'}: missing; run `scalebench datasets build --dataset fashion-mnist`"
    ]


def test_failed_build_leaves_no_empty_folder(tmp_path, fmnist):
    """N3: bad raw files: the error, and no datasets/<build-id>/ folder (nor a home folder) created."""
    raw, folder, spec = fmnist
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"junk")
    with pytest.raises(ScalebenchError, match="md5"):
        _build(tmp_path, raw, spec)
    assert not (tmp_path / "home").exists()


def test_scales_beyond_the_canvas_are_refused(tmp_path, fmnist):
    """N6: `--scales 1e9` (and a training scale above the canvas) is refused, with the bound in the message."""
    raw, _, spec = fmnist
    with pytest.raises(
        ScalebenchError, match=r"--scales: 1e\+09 is above 72, the largest scale of a fashion-mnist"
    ):
        _build(tmp_path, raw, spec, scales="1e9")
    with pytest.raises(ScalebenchError, match="--train-scale: 100 is above 72"):
        _build(tmp_path, raw, spec, train_scales=[100])
    assert not (tmp_path / "home").exists()
    assert _build(tmp_path, raw, spec, scales=[1.0, 72.0]).test_scales == [1.0, 72.0]


def test_a_symlinked_lock_is_refused(tmp_path, fmnist):
    """The build lock is never followed through a symbolic link (it would create a file where the link points)."""
    raw, _, spec = fmnist
    folder = tmp_path / "home" / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    (folder / ".lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ScalebenchError, match=r"\.lock is a symbolic link.*Fix: delete"):
        _build(tmp_path, raw, spec)
    assert not (tmp_path / "elsewhere").exists()


# --- training sets keyed by training scale ---------------------------------------------------------------------


def test_training_sets_are_added_per_training_scale(tmp_path, fmnist):
    """A build carries one train/val file per training scale, added on demand; the default stays the first."""
    raw, folder, spec = fmnist
    one = _build(tmp_path, raw, spec, scales=[1.0, 2.0])
    assert "train_scales" not in one.manifest["protocol"] and one.train_scales == [
        1.0
    ]  # the manifest of before
    two = _build(tmp_path, raw, spec, scales=[1.0], train_scales=[2.0])
    assert (two.train_scale, two.train_scales, two.test_scales) == (1.0, [1.0, 2.0], [1.0, 2.0])
    assert two.manifest["protocol"]["train_scales"] == [1.0, 2.0]
    added = "fashionmnist_with_scale_variations_tr40_vl20_outsize72-72_sctr2p000.h5"
    assert json.loads((two.root / "build_info.json").read_text())["built_sets"] == [added]
    assert two.path("val", train_scale=2.0).name == added and two.path("train") == one.path("train")
    x_train = read_idx_gz(folder / "train-images-idx3-ubyte.gz", 0x803)[:2, ..., None]
    with h5py.File(two.path("train", train_scale=2.0), "r") as f:
        np.testing.assert_array_equal(f["x_train"][:2], rescale_batch(x_train, 2.0, (72, 72)))
    x2, _ = two.dataset("train", train_scale=2.0).read_batch([0, 1])
    assert x2.shape == (2, 1, 72, 72) and not np.array_equal(x2, two.dataset("train").read_batch([0, 1])[0])
    assert "train scales 1.000 (default), 2.000; test scales 1.000, 2.000" in describe_builds(
        root=tmp_path / "home"
    )
    # An unreadable manifest is repaired with every training scale, nothing rewritten.
    (two.root / "manifest.json").write_text("{")
    assert _build(tmp_path, raw, spec, scales=[1.0]).manifest_sha256 == two.manifest_sha256
    assert json.loads((two.root / "build_info.json").read_text())["built_sets"] == []
    # A build created at training scale 2 keeps 2 as its default when scale 1 is added.
    first2 = build_dataset("fashion-mnist", root=tmp_path / "other", raw_dir=raw, spec=spec, progress=False,
                           scales=[1.0], train_scales=[2.0, 1.0])  # fmt: skip
    assert (first2.train_scale, first2.train_scales) == (2.0, [1.0, 2.0])
    assert first2.dataset("train").path.name.endswith("sctr2p000.h5")


def test_embedded_build_manifest_is_pinned(tmp_path):
    """The manifest of this small build was measured before the builders shared ``manifest.py``: the core that
    writes every build must not change a byte of it (the full and lite hashes are pinned in ``specs.py``)."""
    built = build_dataset("fashion-mnist", root=tmp_path, embedded=True, limit=20, progress=False)
    assert built.manifest_sha256 == "5d22a204ef80b459482ae9e63cc52cf42e3b374aefc67917c30de27e2e2e6a87"
    again = build_dataset(
        "fashion-mnist", root=tmp_path, embedded=True, limit=20, train_scales=[1.0], progress=False
    )
    assert again.manifest == built.manifest


# --- the digest of what a run used: Build.view_sha256 --------------------------------------------------------


def test_the_view_of_the_default_set_is_the_manifest_digest_and_survives_added_sets(tmp_path):
    """A build used as built: view == manifest sha256 (pinned: the embedded build above, as the canonical
    full and lite builds in specs.py); adding a training or a test scale changes the manifest, not that view."""
    pinned = "5d22a204ef80b459482ae9e63cc52cf42e3b374aefc67917c30de27e2e2e6a87"
    built = build_dataset("fashion-mnist", root=tmp_path, embedded=True, limit=20, progress=False)
    assert (
        built.view_sha256() == built.view_sha256((1.0,), built.test_scales) == built.manifest_sha256 == pinned
    )
    subset = built.view_sha256(1.0, [1.0, 2.0])
    grown = build_dataset("fashion-mnist", root=tmp_path, embedded=True, limit=20, progress=False,
                          scales=[3.0], train_scales=[2.0])  # fmt: skip
    assert grown.manifest_sha256 != pinned and "train_scales" in grown.manifest["protocol"]
    assert len(grown.test_scales) == len(built.test_scales) + 1
    assert grown.view_sha256(None, built.test_scales) == pinned  # the default set, the original test scales
    assert grown.view_sha256(1.0, [2.0, 1.0]) == subset  # any subset too, in any order
    assert grown.view_sha256(2.0, built.test_scales) not in (pinned, grown.manifest_sha256)
    with pytest.raises(ScalebenchError, match=r"no training set with scales 4; .* --train-scale 4"):
        grown.view_sha256(4.0)
    with pytest.raises(ScalebenchError, match=r"no test set at scale 5\.000"):
        grown.view_sha256(None, [5.0])
