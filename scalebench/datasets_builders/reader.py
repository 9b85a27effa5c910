"""A lazy torch ``Dataset`` over one split of a rescaled HDF5 file (scalebench's or the Lindeberg group's).

Layout read (Jansson & Lindeberg, "Scale-invariant scale-channel networks", ICPR 2020 / JMIV 64(5), 2022,
and the later rescaled sets of Perzanowski & Lindeberg): root datasets ``x_<split>`` and ``y_<split>``;
``x`` as [n, H, W, C] or [n, H, W], uint8 (0..255) or float; ``y`` as (n,) or (n, 1).

Float images are taken to lie in [0, 1] when the first block of the file (up to 256 images) has no value
above 1, and in [0, 255] otherwise (divided by 255). The HDF5 file is opened on first access in each
process, so a DataLoader worker opens its own handle once (never in ``__init__``, never per item).

A read that HDF5 cannot decode (a damaged chunk: a flipped bit fails the deflate checksum) raises one
:class:`~scalebench.checks.ScalebenchError` naming the file and the fix (:func:`damaged_file_error`), not
h5py's bare ``OSError``. Opening a file checks its labels and header only, so damage in the images is found
at the first read of the damaged chunk (``scalebench datasets verify`` decodes everything).
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
        f"{path.parent}) and rerun `scalebench build-datasets` with the same options to rebuild them."
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


class RescaledDataset(Dataset):
    """One split of a rescaled HDF5 file: items are (float32 tensor [C, H, W] in [0, 1], int label).

    Args:
        path: the HDF5 file.
        split: ``"train"``, ``"val"`` or ``"test"`` (reads ``x_<split>``, ``y_<split>``).
        transform: optional callable applied to each image tensor.

    ``labels`` holds all labels (int64 numpy); ``read_batch(indices)`` reads many items at once as a
    [B, C, H, W] tensor and a label tensor, for fast evaluation.
    """

    def __init__(self, path: str | Path, split: str, transform: Callable | None = None) -> None:
        self.path = Path(path)
        self.split = check_split(split)
        self.transform = transform
        if not self.path.is_file():
            raise ScalebenchError(
                f"HDF5 file {self.path} does not exist; build it with `scalebench build-datasets`."
            )
        try:
            with h5py.File(self.path, "r") as f:
                x, y = self._datasets(f)
                self._shape = tuple(x.shape)
                self._dtype = x.dtype
                self.labels = np.asarray(y[()]).reshape(-1).astype(np.int64)
                self._divisor = self._value_scale(x)
        except OSError as err:
            raise ScalebenchError(
                f"{self.path}: cannot be read as HDF5 ({err}); rebuild it (`scalebench datasets verify` "
                "lists the damaged files of a build) or re-download it."
            ) from None
        if len(self.labels) != self._shape[0]:
            raise ScalebenchError(
                f"{self.path}: x_{split} has {self._shape[0]} images but y_{split} has {len(self.labels)} labels."
            )
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def _datasets(self, f: h5py.File) -> tuple[h5py.Dataset, h5py.Dataset]:
        xk, yk = f"x_{self.split}", f"y_{self.split}"
        if xk not in f or yk not in f:
            raise ScalebenchError(
                f"{self.path}: no {xk!r}/{yk!r} datasets (found {sorted(f.keys())}); is this the right split?"
            )
        x = f[xk]
        if x.ndim not in (3, 4):
            raise ScalebenchError(
                f"{self.path}: {xk} has shape {x.shape}; [n, H, W] or [n, H, W, C] expected."
            )
        return x, f[yk]

    @staticmethod
    def _value_scale(x: h5py.Dataset) -> float:
        if x.dtype == np.uint8:
            return 255.0
        head = np.asarray(x[: min(256, x.shape[0])], dtype=np.float64)
        return 255.0 if head.size and float(head.max()) > 1.0 else 1.0

    # --- file handle, opened once per process (DataLoader worker) -----------------------------------------

    def _x(self) -> h5py.Dataset:
        if self._file is None or self._pid != os.getpid():
            try:
                self._file = h5py.File(self.path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES)
            except OSError as err:
                raise damaged_file_error(self.path, "the file", err) from None
            self._pid = os.getpid()
        return self._file[f"x_{self.split}"]

    def _read(self, lo: int, hi: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Images ``lo:hi`` (or ``rows``, sorted and unique) of ``x_<split>``; a decoding failure names the file."""
        x = self._x()
        try:
            return np.asarray(x[lo:hi]) if rows is None else read_rows(x, rows)
        except OSError as err:
            raise damaged_file_error(self.path, f"x_{self.split} rows {lo}-{hi - 1}", err) from None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        return state

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # --- items ----------------------------------------------------------------------------------------------

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one item."""
        if len(self._shape) == 3:
            return (1, self._shape[1], self._shape[2])
        return (self._shape[3], self._shape[1], self._shape[2])

    def __len__(self) -> int:
        return self._shape[0]

    def _to_tensor(self, x: np.ndarray) -> torch.Tensor:
        """[B, H, W(, C)] array -> float32 [B, C, H, W] in [0, 1]."""
        if x.ndim == 3:
            x = x[..., None]
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(torch.float32)
        return t.div_(self._divisor)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self)
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"index {index} out of range for {n} items")
        i %= n
        img = self._to_tensor(self._read(i, i + 1))[0]
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[i])

    def read_batch(self, indices: Sequence[int] | np.ndarray | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Read many items at once: (float32 [B, C, H, W] in [0, 1], int64 labels [B]); transform not applied.

        Indices may come in any order and repeat; a dense range is read as one slice, sparse ones run by
        run (:func:`read_rows`).
        """
        if isinstance(indices, slice):
            indices = np.arange(len(self))[indices]
        idx, uniq, inverse = batch_rows(indices, len(self))
        if idx.size == 0:
            c, h, w = self.image_shape
            return torch.zeros((0, c, h, w)), torch.zeros(0, dtype=torch.int64)
        lo, hi = int(uniq[0]), int(uniq[-1]) + 1
        if hi - lo <= 4 * uniq.size:
            block = self._read(lo, hi)[uniq - lo]
        else:
            block = self._read(lo, hi, uniq)
        images = self._to_tensor(block[inverse])
        return images, torch.from_numpy(self.labels[idx].copy())

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, int]]:
        """Batched fetch used by ``torch.utils.data.DataLoader``: one HDF5 read per batch."""
        images, labels = self.read_batch(indices)
        out = []
        for img, lab in zip(images, labels.tolist(), strict=True):
            out.append((self.transform(img) if self.transform is not None else img, lab))
        return out

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return f"RescaledDataset({self.path.name}, split={self.split!r}, n={len(self)}, {c}x{h}x{w})"
