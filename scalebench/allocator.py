r"""Keep large CPU tensors in the heap: glibc's allocator settings for training on the CPU.

glibc's ``malloc`` serves every request of at least ``M_MMAP_THRESHOLD`` bytes with a fresh ``mmap`` and
returns it to the kernel on ``free``. A CPU training step allocates and frees feature maps of tens of MB many
times, so each of them is page-faulted in again (4 KiB at a time) at every step. Measured on this project's
2-core CPU (``docs/performance.md``, "Allocator"; one training step of 8 images, 72 x 72):

- ``gaussderresnet_dw``: its 64-channel maps are 85 MB. There were 300,706 minor page faults and 1.1 s of
  system time per step, and the step took 2.27 s. With mmap off: 1 fault, 27 ms system time, 1.61 s.
- ``gaussdernet``, with no settings at all: 128,691 faults per step.

:func:`tune_cpu_allocator` sets what ``GLIBC_TUNABLES`` would set before Python starts, through
``mallopt(3)`` at run time:

- ``M_MMAP_MAX = 0``: no ``mmap`` for large blocks; they come from the heap and are reused;
- ``M_TRIM_THRESHOLD = 1 GiB``: freed memory at the top of the heap is kept, not returned and refaulted;
- ``M_TOP_PAD = 256 MiB``: the heap grows in large steps.

The peak resident memory stays the same: 1.63 against 1.66 GB for ``gaussdernet`` and 3.45 against
3.34 GB for ``gaussderresnet_dw``. The command line and the demo call it at start. It does nothing when:

- the C library is not glibc (macOS, musl);
- ``GLIBC_TUNABLES`` already sets a ``glibc.malloc`` option: the user's choice wins;
- ``SCALEBENCH_MALLOC_TUNING=0`` is set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4
"""``mallopt`` parameter numbers (glibc ``malloc.h``)."""

SETTINGS: dict[str, tuple[int, int]] = {
    "mmap_max": (M_MMAP_MAX, 0),
    "trim_threshold": (M_TRIM_THRESHOLD, 1 << 30),
    "top_pad": (M_TOP_PAD, 256 << 20),
}
"""What :func:`tune_cpu_allocator` sets: name -> (mallopt parameter, value)."""

OPT_OUT = "SCALEBENCH_MALLOC_TUNING"


def tune_cpu_allocator() -> dict[str, int] | str:
    """Apply :data:`SETTINGS` with ``mallopt``; returns what was set, or why nothing was (a sentence).

    Safe to call more than once and from any process; it never raises.
    """
    if os.environ.get(OPT_OUT, "1").strip().lower() in {"0", "false", "no", "off"}:
        return f"{OPT_OUT}={os.environ[OPT_OUT]} is set"
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES sets glibc.malloc options"
    libc = _glibc()
    if libc is None:
        return "the C library is not glibc"
    done = {}
    for name, (param, value) in SETTINGS.items():
        if libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1:  # 1 on success
            done[name] = value
    return done


def _glibc() -> ctypes.CDLL | None:
    """glibc, if this process runs on it (``gnu_get_libc_version`` exists only there)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    return libc
