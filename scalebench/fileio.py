"""Atomic file writes and hashing, shared by every layer (imports nothing of scalebench but checks).

Writes go to a temporary file in the destination folder, are flushed and fsync'd, then renamed over the
destination, so a reader never sees a half-written file and an interrupted write leaves no file that
looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_UMASK = os.umask(0o022)  # read once (setting it is the only way); restored on the next line
os.umask(_UMASK)


def new_file_mode() -> int:
    """The permissions ``open()`` would give a new file here (0o666 less the umask; 0o644 for umask 022).

    ``tempfile.mkstemp`` creates its files 0o600, so a file renamed from one would stay private to its
    owner: a results store, a leaderboard site or a dataset build that collaborators cannot read.
    """
    return 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_path(dest: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it to ``dest``, on error delete it.

    Use this for writers that need a path (h5py, safetensors, matplotlib). The temporary name ends in
    ``.tmp`` plus ``suffix`` so that it never looks like a finished file. The file gets the permissions of
    :func:`new_file_mode`, as if written by ``open()``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{suffix}", dir=dest.parent)
    os.fchmod(fd, new_file_mode())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(dest: str | Path, text: str) -> None:
    """Write ``text`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(dest: str | Path, data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(dest: str | Path, obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` as strict JSON (no NaN or inf) to ``dest`` atomically, keys sorted for reproducibility."""
    text = json.dumps(obj, indent=indent, sort_keys=True, allow_nan=False) + "\n"
    write_text_atomic(dest, text)


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (md5 with ``usedforsecurity=False`` for FIPS machines)."""
    h = hashlib.new(algorithm, usedforsecurity=False) if algorithm == "md5" else hashlib.new(algorithm)
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, lambda: h).hexdigest()


def config_hash(config: dict[str, Any], length: int = 12) -> str:
    """Short sha256 of a config dict in canonical JSON (sorted keys, no whitespace): names job folders.

    Example:
        >>> config_hash({"b": 1, "a": [1, 2]}) == config_hash({"a": [1, 2], "b": 1})
        True
    """
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def is_finite_number(x: Any) -> bool:
    """True for int/float values that are not NaN or infinite (bools excluded)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
