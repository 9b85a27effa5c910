"""Lazy torch ``Dataset`` readers over one split of an HDF5 set file: classification and segmentation.

:class:`HDF5Split` holds what both share: the file is opened on first access in each process (a DataLoader
worker opens its own handle once, never per item); a batch is one read per array (a dense range as one slice,
sparse rows run by run: :func:`read_rows`); negative indices count from the end. A chunk HDF5 cannot decode (a
flipped bit fails the deflate checksum) raises one :class:`~scalebench.checks.ScalebenchError` naming the file
and the fix (:func:`damaged_file_error`); it is found at its first read (``scalebench datasets verify`` decodes
everything), as opening a file reads its header and labels only.

- :class:`RescaledDataset`: items (float32 image [C, H, W] in [0, 1], int label). It also reads the published
  files of the Lindeberg group (Jansson & Lindeberg, "Scale-invariant scale-channel networks", ICPR 2020 /
  JMIV 64(5), 2022, and the later rescaled sets of Perzanowski & Lindeberg): ``x`` as [n, H, W, C] or
  [n, H, W], uint8 (0..255) or float; ``y`` as (n,) or (n, 1). Float images are taken to lie in [0, 1] when
  the first block of the file (up to 256 images) has no value above 1, and in [0, 255] otherwise.
- :class:`SegmentationDataset`: items (float32 image [1, H, W] in [0, 1], int64 mask [H, W], 255 = ignore);
  ``objects`` holds the object table of every composite (``segmentation.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.specs import check_split

CHUNK_CACHE_BYTES = 32 << 20


def damaged_file_error(path: Path, what: str, err: Exception) -> ScalebenchError:
    """The error for an HDF5 file that cannot be read: names it, what failed, and the fix.

    Example:
        >>> str(damaged_file_error(Path("/b/te.h5"), "x_test rows 0-63", OSError("filter failed")))[:59]
        '/b/te.h5: reading x_test rows 0-63 failed (filter failed); '
    """
    return ScalebenchError(
        f"{path}: reading {what} failed ({err}); the file is damaged or was replaced. Fix: run `scalebench "
        f"datasets verify` to list the damaged files of the build, delete them (or the whole build folder "
        f"{path.parent}) and rerun `scalebench datasets build` with the same options to rebuild them."
    )


def read_rows(ds: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (sorted, unique) of an HDF5 dataset, each run of consecutive rows read as one slice.

    h5py's list ("fancy") selection is slow: measured here, 9.0 ms for 8 sparse rows of a chunked
    72 x 72 image set against 0.2 ms as 8 slices (63 against 22 ms for 64 rows), and 91 against 4 ms for
    8 rows of a 224 x 224 segmentation set.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryFile() as fh, h5py.File(fh, "w") as f:
        ...     d = f.create_dataset("x", data=np.arange(10) * 10)
        ...     read_rows(d, np.array([1, 2, 3, 7])).tolist()
        [10, 20, 30, 70]
    """
    out = np.empty((rows.size, *ds.shape[1:]), dtype=ds.dtype)
    if rows.size == 0:
        return out
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for a, b in zip(np.r_[0, breaks], np.r_[breaks, rows.size], strict=True):
        ds.read_direct(out, np.s_[int(rows[a]) : int(rows[b - 1]) + 1], np.s_[int(a) : int(b)])
    return out


def batch_rows(indices: Sequence[int] | np.ndarray, n: int, where: str = "") -> tuple[np.ndarray, ...]:
    """Indices of a batch over ``n`` items: (indices with negatives counted from the end, their sorted unique
    rows, the position of each index among those rows). Out-of-range indices are an IndexError.

    Example:
        >>> [a.tolist() for a in batch_rows([3, -1, 3], 5)]
        [[3, 4, 3], [3, 4], [0, 1, 0]]
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"indices out of range for {n} items{where}")
    idx = idx % max(n, 1)
    uniq, inverse = np.unique(idx, return_inverse=True)
    return idx, uniq, inverse.reshape(-1)


def _to_tensor(x: np.ndarray, divisor: float) -> torch.Tensor:
    """[B, H, W(, C)] array -> float32 [B, C, H, W] divided by ``divisor``."""
    if x.ndim == 3:
        x = x[..., None]
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(torch.float32).div_(divisor)


class HDF5Split(Dataset):
    """One split of an HDF5 set file (``x_<split>``, ``y_<split>``): the per-process handle and the row reads.
    Subclasses read their header in :meth:`_read_header` and set ``_n`` and ``image_shape`` (C, H, W)."""

    def __init__(self, path: str | Path, split: str) -> None:
        self.path = Path(path)
        self.split = check_split(split)
        self.keys = (f"x_{split}", f"y_{split}")
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._n = 0
        if not self.path.is_file():
            raise ScalebenchError(
                f"HDF5 file {self.path} does not exist; build it with `scalebench datasets build` "
                "(`scalebench datasets info` lists the builds and their state)."
            )
        try:
            with h5py.File(self.path, "r") as f:
                if any(k not in f for k in self.keys):
                    raise ScalebenchError(
                        f"{self.path}: no {self.keys[0]!r}/{self.keys[1]!r} datasets (found {sorted(f.keys())}); "
                        "is this the right split?"
                    )
                self._read_header(f)
        except OSError as err:
            raise ScalebenchError(
                f"{self.path}: cannot be read as HDF5 ({err}); rebuild it (`scalebench datasets verify` "
                "lists the damaged files of a build) or re-download it."
            ) from None

    def _read_header(self, f: h5py.File) -> None:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        shape = "x".join(str(v) for v in self.image_shape)
        return f"{type(self).__name__}({self.path.name}, split={self.split!r}, n={len(self)}, {shape})"

    def _rows(self, keys: Sequence[str], rows: np.ndarray) -> list[np.ndarray]:
        """Rows ``rows`` (sorted, unique, not empty) of each of ``keys``: a dense range as one slice, sparse rows
        run by run (:func:`read_rows`); a decoding failure names the file and the rows."""
        if self._file is None or self._pid != os.getpid():
            try:
                self._file = h5py.File(self.path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
            except OSError as err:
                raise damaged_file_error(self.path, "the file", err) from None
            self._pid = os.getpid()
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        try:
            if hi - lo <= 4 * rows.size:
                return [np.asarray(self._file[k][lo:hi])[rows - lo] for k in keys]
            return [read_rows(self._file[k], rows) for k in keys]
        except OSError as err:
            raise damaged_file_error(self.path, f"{'/'.join(keys)} rows {lo}-{hi - 1}", err) from None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_pid": None}  # a worker opens its own handle

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class RescaledDataset(HDF5Split):
    """One split (``train``, ``val``, ``test``) of a rescaled HDF5 file: items are (float32 tensor [C, H, W] in
    [0, 1], int label), ``transform`` applied to each image. ``labels`` holds all labels (int64 numpy);
    ``read_batch(indices)`` reads many items at once ([B, C, H, W] images, labels), for fast evaluation."""

    def __init__(self, path: str | Path, split: str, transform: Callable | None = None) -> None:
        self.transform = transform
        super().__init__(path, split)
        if len(self.labels) != self._n:
            raise ScalebenchError(
                f"{self.path}: x_{split} has {self._n} images but y_{split} has {len(self.labels)} labels."
            )

    def _read_header(self, f: h5py.File) -> None:
        x, y = f[self.keys[0]], f[self.keys[1]]
        if x.ndim not in (3, 4):
            raise ScalebenchError(
                f"{self.path}: {self.keys[0]} has shape {x.shape}; [n, H, W] or [n, H, W, C] expected."
            )
        self._n = int(x.shape[0])
        self.image_shape = (x.shape[3] if x.ndim == 4 else 1, x.shape[1], x.shape[2])  # (C, H, W) of one item
        self.labels = np.asarray(y[()]).reshape(-1).astype(np.int64)
        head = np.asarray(x[: min(256, x.shape[0])], dtype=np.float64) if x.dtype != np.uint8 else None
        self._divisor = 255.0 if head is None or (head.size and float(head.max()) > 1.0) else 1.0

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        images, labels = self.read_batch([int(index)])
        img = images[0] if self.transform is None else self.transform(images[0])
        return img, int(labels[0])

    def read_batch(self, indices: Sequence[int] | np.ndarray | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Read many items at once, indices in any order: (float32 [B, C, H, W] in [0, 1], int64 labels [B]);
        the transform is not applied."""
        if isinstance(indices, slice):
            indices = np.arange(len(self))[indices]
        idx, uniq, inverse = batch_rows(indices, len(self))
        if idx.size == 0:
            c, h, w = self.image_shape
            return torch.zeros((0, c, h, w)), torch.zeros(0, dtype=torch.int64)
        (block,) = self._rows(self.keys[:1], uniq)
        return _to_tensor(block[inverse], self._divisor), torch.from_numpy(self.labels[idx].copy())

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, int]]:
        """Batched fetch used by ``torch.utils.data.DataLoader``: one HDF5 read per batch."""
        images, labels = self.read_batch(indices)
        out = []
        for img, lab in zip(images, labels.tolist(), strict=True):
            out.append((self.transform(img) if self.transform is not None else img, lab))
        return out


class SegmentationDataset(HDF5Split):
    """One split of a segmentation HDF5 file: items are (float32 image [1, H, W] in [0, 1], int64 mask [H, W])."""

    def _read_header(self, f: h5py.File) -> None:
        try:
            self._n = int(f[self.keys[0]].shape[0])
            self.canvas = tuple(f[self.keys[0]].shape[1:3])
            self.image_shape = (1, *self.canvas)
            self.objects = np.asarray(f[f"objects_{self.split}"][()])
        except (OSError, KeyError) as err:
            raise damaged_file_error(self.path, f"the header and objects_{self.split}", err) from None

    def read_batch(self, indices: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Images [B, 1, H, W] float32 in [0, 1] and masks [B, H, W] int64 (255 = ignore), indices in any order."""
        idx, uniq, inverse = batch_rows(indices, len(self), f" of {self.path.name} ({self.split})")
        if idx.size == 0:
            return torch.zeros((0, 1, *self.canvas)), torch.zeros((0, *self.canvas), dtype=torch.int64)
        x, y = self._rows(self.keys, uniq)
        return _to_tensor(x[inverse], 255.0), torch.from_numpy(y[inverse].astype(np.int64))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.read_batch([i])
        return x[0], y[0]
