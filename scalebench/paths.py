"""Where scalebench keeps data and outputs.

Default home: ``$XDG_CACHE_HOME/scalebench`` when ``XDG_CACHE_HOME`` is set to an absolute path (the XDG Base
Directory specification ignores a relative one), else ``~/.cache/scalebench``; override with the environment
variable ``SCALEBENCH_HOME`` or the ``--root`` option of the CLI. Raw datasets may come from a read-only
offline mirror given by ``--raw-dir`` or ``SCALEBENCH_RAW_DIR`` (torchvision's layout); scalebench never
writes into that mirror.
"""

from __future__ import annotations

import os
from pathlib import Path

from scalebench.checks import ScalebenchError


def scalebench_home(root: str | Path | None = None) -> Path:
    """The root folder for built datasets and caches: ``root``, else ``$SCALEBENCH_HOME``, else
    ``$XDG_CACHE_HOME/scalebench`` (an absolute ``XDG_CACHE_HOME`` only), else ``~/.cache/scalebench``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("SCALEBENCH_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    cache = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return cache / "scalebench"


def datasets_dir(root: str | Path | None = None) -> Path:
    """Folder holding the built (rescaled) datasets: ``<home>/datasets``."""
    return scalebench_home(root) / "datasets"


def raw_cache_dir(root: str | Path | None = None) -> Path:
    """Writable folder for raw downloads: ``<home>/raw`` (torchvision's layout)."""
    return scalebench_home(root) / "raw"


def raw_mirror_dir(raw_dir: str | Path | None = None) -> Path | None:
    """The offline raw-data mirror: ``raw_dir``, else ``$SCALEBENCH_RAW_DIR``, else None.

    Raises:
        ScalebenchError: when the given folder does not exist.
    """
    value = raw_dir if raw_dir is not None else os.environ.get("SCALEBENCH_RAW_DIR") or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        source = "--raw-dir" if raw_dir is not None else "SCALEBENCH_RAW_DIR"
        raise ScalebenchError(
            f"Raw data folder {str(path)!r} (from {source}) does not exist. Point it at a folder in torchvision's "
            "layout (FashionMNIST/raw/*.gz, cifar-10-batches-py/, stl10_binary/) or unset it to download."
        )
    return path
