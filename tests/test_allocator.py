"""scalebench.allocator: large blocks stay in the heap (no page faults on reuse), and the opt-outs hold."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scalebench import allocator

# Allocates, touches and frees a 64 MiB block three times, then prints the minor page faults of the last
# round and what tune_cpu_allocator() returned. Without tuning each round maps fresh pages (16,384 faults of
# 4 KiB); with mmap off, the block is reused from the heap.
_PROBE = """
import ctypes, resource, sys
from scalebench.allocator import tune_cpu_allocator
applied = tune_cpu_allocator() if sys.argv[1] == "tune" else "not called"
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
n = 64 << 20
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    libc.free(p)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults, applied)
"""


def _probe(mode: str, **env: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"GLIBC_TUNABLES", allocator.OPT_OUT}}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout.split(maxsplit=1)
    return int(out[0]), out[1].strip()


needs_glibc = pytest.mark.skipif(allocator._glibc() is None, reason="mallopt needs glibc")


@needs_glibc
def test_tuning_keeps_a_large_block_in_the_heap():
    untuned, _ = _probe("plain")
    tuned, applied = _probe("tune")
    assert applied == str({"mmap_max": 0, "trim_threshold": 1 << 30, "top_pad": 256 << 20})
    if untuned < 1_000:  # transparent huge pages ("always") back the block: 2 MiB faults, nothing to see
        pytest.skip(f"only {untuned} faults for a fresh 64 MiB block: huge pages back it here")
    assert tuned < untuned / 20  # 64 MiB of fresh 4 KiB pages is 16,384 faults


@needs_glibc
def test_the_users_settings_and_the_opt_out_win():
    untuned, _ = _probe("plain")
    faults, applied = _probe("tune", GLIBC_TUNABLES="glibc.malloc.mmap_threshold=33554432")
    assert applied == "GLIBC_TUNABLES sets glibc.malloc options"
    if untuned >= 1_000:  # 4 KiB pages (see above): the user's threshold holds, the block is mapped afresh
        assert faults > untuned / 2
    _, applied = _probe("tune", **{allocator.OPT_OUT: "0"})
    assert applied == f"{allocator.OPT_OUT}=0 is set"


def test_without_glibc_nothing_is_set(monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.delenv(allocator.OPT_OUT, raising=False)
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    assert allocator.tune_cpu_allocator() == "the C library is not glibc"
