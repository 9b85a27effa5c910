"""Raw sources: clear errors for bad input, md5 checks, read-only mirror, download path, safe unpickling."""

from __future__ import annotations

import dataclasses
import gzip
import http.server
import os
import pickle
import urllib.error

import numpy as np
import pytest
from fakes_raw import patched_spec, write_cifar, write_fmnist

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders import DATASETS, build_dataset
from scalebench.datasets_builders.raw import read_cifar_batch, read_stl_labels, stratified_split


def _build(tmp_path, raw, spec=None, **kw):
    return build_dataset(
        "fashion-mnist", root=tmp_path / "home", raw_dir=raw, spec=spec, scales=[1.0], progress=False, **kw
    )


def test_missing_raw_file_names_file_md5_and_fix(tmp_path):
    raw = tmp_path / "raw"
    folder = write_fmnist(raw)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ScalebenchError) as err:
        _build(tmp_path, raw)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and "bb300cfdad3c16e7a12a480ee83cd310" in msg
    assert "--download" in msg and "--raw-dir" in msg


def test_wrong_md5_names_both_hashes(tmp_path):
    raw = tmp_path / "raw"
    write_fmnist(raw)  # tiny fake files: their md5s differ from torchvision's
    with pytest.raises(
        ScalebenchError,
        match=r"train-images-idx3-ubyte\.gz: md5 8d4fb7e6c68d591d4c3dfef9ec88bf0d expected, [0-9a-f]{32} found",
    ):
        _build(tmp_path, raw)


def test_truncated_gz_gives_clear_error(tmp_path):
    raw = tmp_path / "raw"
    folder = write_fmnist(raw)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    # With the real md5 table the truncation is caught by the md5 check...
    with pytest.raises(ScalebenchError, match="md5"):
        _build(tmp_path, raw)
    # ...and if the md5 matched (a wrong table), decoding still fails with one clear error.
    spec = patched_spec("fashion-mnist", folder, split_sizes={"train": 40, "val": 20, "test": 20})
    with pytest.raises(
        ScalebenchError, match=r"train-images-idx3-ubyte\.gz: cannot be decompressed.*truncated"
    ):
        _build(tmp_path, raw, spec)
    # A gzip stream that is complete but holds too few bytes for its IDX header's shape.
    with gzip.open(path, "wb") as fh:
        fh.write(
            bytes.fromhex("00000803") + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(100)
        )
    spec = patched_spec("fashion-mnist", folder, split_sizes={"train": 40, "val": 20, "test": 20})
    with pytest.raises(ScalebenchError, match="truncated or corrupt"):
        _build(tmp_path, raw, spec)


def test_raw_dir_that_does_not_exist(tmp_path, monkeypatch):
    with pytest.raises(ScalebenchError, match=r"nowhere. \(from --raw-dir\) does not exist"):
        _build(tmp_path, tmp_path / "nowhere")
    monkeypatch.setenv("SCALEBENCH_RAW_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ScalebenchError, match="SCALEBENCH_RAW_DIR"):
        _build(tmp_path, None)


def test_unknown_dataset_name():
    with pytest.raises(ScalebenchError, match=r"Unknown value 'cifar100'.*Did you mean 'cifar10'"):
        build_dataset("cifar100", progress=False)


def test_read_only_mirror_is_never_written(tmp_path):
    raw = tmp_path / "raw"
    folder = write_fmnist(raw)
    spec = patched_spec("fashion-mnist", folder, split_sizes={"train": 40, "val": 20, "test": 20})
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in raw.rglob("*")}
    os.chmod(folder, 0o555)
    try:
        _build(tmp_path, raw, spec)
    finally:
        os.chmod(folder, 0o755)
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in raw.rglob("*")} == before


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server over tmp_path/server (stands in for the download mirror)."""
    import functools
    import threading

    root = tmp_path / "server"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_fills_the_cache_with_md5_check(tmp_path, http_server):
    root, url = http_server
    served = write_fmnist(root)
    spec = dataclasses.replace(
        patched_spec("fashion-mnist", served, split_sizes={"train": 40, "val": 20, "test": 20}),
        urls=(url + "FashionMNIST/raw/",),
    )
    built = build_dataset(
        "fashion-mnist", root=tmp_path / "home", spec=spec, scales=[1.0], download=True, progress=False
    )
    cache = tmp_path / "home" / "raw" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in cache.glob("*.gz")) == sorted(r.filename for r in spec.resources)
    assert len(built.dataset("train")) == 40
    # A served file whose md5 differs from the table: torchvision's check fails, one clear error.
    bad = dataclasses.replace(spec, resources=(dataclasses.replace(spec.resources[0], md5="0" * 32),))
    with pytest.raises(ScalebenchError, match=r"Downloading fashion-mnist .* failed"):
        build_dataset(
            "fashion-mnist", root=tmp_path / "h2", spec=bad, scales=[1.0], download=True, progress=False
        )


def test_cifar_download_extracts_the_tarball(tmp_path, http_server):
    import tarfile

    root, url = http_server
    folder = write_cifar(tmp_path / "src", per_batch=2)
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    from scalebench.datasets_builders.specs import Resource
    from scalebench.fileio import file_digest

    spec = dataclasses.replace(
        patched_spec("cifar10", folder, split_sizes={"train": 8, "val": 2, "test": 2}),
        urls=(url + "cifar-10-python.tar.gz",),
        archive=Resource("cifar-10-python.tar.gz", file_digest(root / "cifar-10-python.tar.gz", "md5")),
    )
    built = build_dataset(
        "cifar10", root=tmp_path / "home", spec=spec, scales=[1.0], download=True, progress=False
    )
    assert len(built.dataset("train")) == 8
    assert (tmp_path / "home" / "raw" / "cifar-10-batches-py" / "batches.meta").is_file()
    assert not (tmp_path / "home" / "raw" / "cifar-10-python.tar.gz").exists()


def test_download_failure_is_one_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(tvu, "download_url", offline)
    with pytest.raises(
        ScalebenchError, match=r"Downloading cifar10 from https://www\.cs\.toronto\.edu.*failed"
    ):
        build_dataset("cifar10", root=tmp_path, download=True, progress=False)
    with pytest.raises(ScalebenchError, match="not found in"):
        build_dataset("stl10", root=tmp_path, download=False, progress=False)


def test_cifar_unpickler_refuses_code_and_checks_meta(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    bad = tmp_path / "data_batch_1"
    bad.write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(ScalebenchError, match=r"not a valid CIFAR-10 python batch.*not allowed"):
        read_cifar_batch(bad)
    raw = tmp_path / "raw"
    folder = write_cifar(raw, per_batch=2)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": ["a", "b"]}, fh, protocol=2)
    spec = patched_spec("cifar10", folder)
    with pytest.raises(ScalebenchError, match="label_names"):
        build_dataset("cifar10", root=tmp_path, raw_dir=raw, spec=spec, progress=False)


def test_stl_labels_and_stratified_split(tmp_path):
    path = tmp_path / "y.bin"
    np.array([1, 10, 3], np.uint8).tofile(path)
    assert read_stl_labels(path).tolist() == [0, 9, 2]
    np.array([0, 11], np.uint8).tofile(path)
    with pytest.raises(ScalebenchError, match=r"labels in \[0, 11\]"):
        read_stl_labels(path)
    labels = np.repeat(np.arange(10), 500)
    tr, va = stratified_split(labels, 100, seed=DATASETS["stl10"].seed)
    assert len(tr) == 4000 and len(va) == 1000 and not set(tr) & set(va)
    assert np.bincount(labels[va]).tolist() == [100] * 10
    _, va2 = stratified_split(labels, 100, seed=0)
    assert np.array_equal(va, va2) and np.all(np.diff(va) > 0)


def test_md5_error_of_a_mirror_file_says_replace_not_delete(tmp_path):
    """N2: scalebench never writes into the read-only --raw-dir mirror, so the fix is to replace the file there."""
    raw = tmp_path / "raw"
    write_fmnist(raw)  # in the mirror: tiny fake files, whose md5s differ from torchvision's
    with pytest.raises(ScalebenchError) as err:
        _build(tmp_path, raw)
    msg = str(err.value)
    assert "replace it in the read-only mirror" in msg and "delete it" not in msg
    assert "without --raw-dir / SCALEBENCH_RAW_DIR and with --download" in msg
    # The same file in the download cache: delete it and download again.
    cache = tmp_path / "home" / "raw"
    write_fmnist(cache)
    with pytest.raises(
        ScalebenchError,
        match=r"home/raw/FashionMNIST/raw/train-images.*found .*Fix: delete it and rerun with --download \(into \S*home/raw/FashionMNIST/raw\)",
    ):
        _build(tmp_path, None)
