"""RescaledDataset: items, batched reads, DataLoader workers, and the published Lindeberg-group layouts."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders import RescaledDataset


def _write(path, x, y, split="test", extra=None):
    with h5py.File(path, "w") as f:
        f.create_dataset(f"x_{split}", data=x, chunks=(4, *x.shape[1:]), compression="gzip")
        f.create_dataset(f"y_{split}", data=y)
        for k, v in (extra or {}).items():
            f.create_dataset(k, data=v)


@pytest.fixture
def uint8_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    y = np.arange(10, dtype=np.int64) % 4
    path = tmp_path / "set.h5"
    _write(path, x, y)
    return path, x, y


def test_items_are_float_chw_in_unit_range(uint8_file):
    path, x, y = uint8_file
    ds = RescaledDataset(path, "test")
    assert len(ds) == 10 and ds.labels.dtype == np.int64 and ds.labels.tolist() == y.tolist()
    img, label = ds[3]
    assert img.dtype == torch.float32 and img.shape == (3, 8, 8) and isinstance(label, int) and label == 3
    np.testing.assert_allclose(img.numpy(), x[3].transpose(2, 0, 1) / 255.0, rtol=0, atol=1e-7)
    assert torch.equal(ds[-1][0], ds[9][0])
    with pytest.raises(IndexError):
        ds[10]
    assert ds._file is not None  # opened on first access, not in __init__
    ds2 = RescaledDataset(path, "test", transform=lambda t: t * 2)
    assert ds2._file is None
    assert float(ds2[0][0].max()) == pytest.approx(2 * int(x[0].max()) / 255)


def test_read_batch_any_order_and_getitems(uint8_file):
    path, x, y = uint8_file
    ds = RescaledDataset(path, "test")
    idx = [7, 2, 2, 9, 0]
    images, labels = ds.read_batch(idx)
    assert images.shape == (5, 3, 8, 8) and labels.tolist() == y[idx].tolist()
    np.testing.assert_allclose(images.numpy(), x[idx].transpose(0, 3, 1, 2) / 255.0, atol=1e-7)
    sparse, _ = ds.read_batch([0, 9])  # sparse: one sorted HDF5 selection
    assert torch.equal(sparse[1], ds[9][0])
    items = ds.__getitems__([1, 5])
    assert [lab for _, lab in items] == [1, 1] and torch.equal(items[0][0], ds[1][0])


def test_dataloader_with_workers_opens_the_file_per_worker(uint8_file):
    path, x, y = uint8_file
    ds = RescaledDataset(path, "test")
    ds[0]  # the parent has an open handle; pickling must drop it
    state = pickle.loads(pickle.dumps(ds))
    assert state._file is None
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    got = torch.cat([b[0] for b in loader])
    labels = torch.cat([b[1] for b in loader])
    assert got.shape == (10, 3, 8, 8) and labels.tolist() == y.tolist()
    np.testing.assert_allclose(got.numpy(), x.transpose(0, 3, 1, 2) / 255.0, atol=1e-7)


def test_reads_lindeberg_layouts(tmp_path):
    rng = np.random.default_rng(1)
    # MNIST Large Scale style: float images in [0, 1], [n, H, W] without a channel axis, y as (n, 1).
    x = rng.random((6, 12, 12)).astype(np.float32)
    path = tmp_path / "mnist_large_scale_te6_outsize12-12_scte1p000.h5"
    _write(
        path,
        x,
        np.arange(6, dtype=np.float64)[:, None],
        extra={"x_train": x[:1], "y_train": np.zeros((1, 1))},
    )
    ds = RescaledDataset(path, "test")
    img, label = ds[2]
    assert img.shape == (1, 12, 12) and label == 2
    np.testing.assert_allclose(img[0].numpy(), x[2], atol=1e-7)
    # float images stored in 0..255, [n, H, W, 1]
    x255 = (rng.random((5, 12, 12, 1)) * 255).astype(np.float32)
    path2 = tmp_path / "float255.h5"
    _write(path2, x255, np.arange(5))
    img, _ = RescaledDataset(path2, "test")[1]
    np.testing.assert_allclose(img.numpy(), x255[1].transpose(2, 0, 1) / 255.0, atol=1e-6)
    assert float(img.max()) <= 1.0


def test_reader_errors(tmp_path, uint8_file):
    path, _, _ = uint8_file
    with pytest.raises(ScalebenchError, match="x_train"):
        RescaledDataset(path, "train")
    with pytest.raises(ScalebenchError, match="Unknown split"):
        RescaledDataset(path, "validation")
    with pytest.raises(ScalebenchError, match="does not exist"):
        RescaledDataset(tmp_path / "none.h5", "test")
    bad = tmp_path / "bad.h5"
    _write(bad, np.zeros((5, 4, 4), np.uint8), np.zeros(2))
    with pytest.raises(ScalebenchError, match="5 images but y_test has 2 labels"):
        RescaledDataset(bad, "test")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ScalebenchError, match="cannot be read as HDF5"):
        RescaledDataset(junk, "test")


def test_damaged_chunk_is_one_error_naming_the_file_and_the_fix(uint8_file):
    """D12: a chunk that no longer decodes gives one ScalebenchError (file, `datasets verify`, rebuild), not h5py's
    bare OSError, for single items and batches alike."""
    path, _, _ = uint8_file
    with h5py.File(path, "r") as f:
        info = f["x_test"].id.get_chunk_info(1)  # rows 4-7
    blob = bytearray(path.read_bytes())
    blob[info.byte_offset + info.size // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    ds = RescaledDataset(path, "test")  # opening reads the labels only
    assert ds.read_batch([0, 1])[0].shape == (2, 3, 8, 8)  # undamaged chunk
    for read in (lambda: ds[5], lambda: ds.read_batch([9, 5]), lambda: ds.read_batch([0, 5])):
        with pytest.raises(ScalebenchError) as err:
            read()
        msg = str(err.value)
        assert msg.startswith(f"{path}: reading x_test rows") and "scalebench datasets verify" in msg
        assert "rerun `scalebench datasets build`" in msg
