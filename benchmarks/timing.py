"""Timing helpers shared by the benchmark scripts (``python benchmarks/<script>.py`` puts this folder on the path).

Every figure is the best (minimum) wall time over ``repeats`` interleaved rounds (A, B, A, B, ...) after one
warm-up call of each function: on a shared machine the minimum is the reading least disturbed by other
jobs, and interleaving exposes both sides of a ratio to the same conditions. On a CUDA device the clock is
read only after ``torch.cuda.synchronize()``: kernel launches return before the kernels finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from scalebench.models.flops import (  # noqa: F401  (re-exported for the scripts)
    FLOP_CORRECTIONS,
    FLOP_FORMULAS,
    conv_backward_flops,
    flop_counter_mode,
)


def device_problem(device: str) -> str | None:
    """Why ``--device device`` cannot run on this machine (for ``parser.error``), or None if it can."""
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        return f"--device {device}: no CUDA GPU here (torch.cuda.is_available() is False); use --device cpu"
    return None


def device_sync(device: torch.device | str) -> Callable[[], None]:
    """A function that waits for the device's queued work (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def best_times(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    *,
    device: torch.device | str = "cpu",
    cpu: dict[str, float] | None = None,
) -> dict[str, float]:
    """Best wall time (s) of each function over ``repeats`` interleaved rounds, after one warm-up call each.

    With ``cpu``, also store there each function's best process CPU time (s, all threads), which other jobs
    on a shared machine disturb less than wall time (meaningless for GPU work, where the host mostly waits).
    """
    sync = device_sync(device)
    for f in fns.values():
        f()
    sync()
    best = {k: float("inf") for k in fns}
    best_cpu = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            c = time.process_time()
            t = time.perf_counter()
            f()
            sync()
            best[k] = min(best[k], time.perf_counter() - t)
            best_cpu[k] = min(best_cpu[k], time.process_time() - c)
    if cpu is not None:
        cpu.update(best_cpu)
    return best


def matmul_peak_gflops(
    n: int = 2048, repeats: int = 5, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> float:
    """Best GFLOP/s of an n x n x n ``torch.mm`` on random data (never zeros) on ``device`` in ``dtype``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    t = best_times({"mm": lambda: torch.mm(a, b)}, repeats, device=device)["mm"]
    return 2 * n**3 / t / 1e9


def tune_allocator() -> None:
    """Apply :func:`scalebench.allocator.tune_cpu_allocator` and print what it did (every benchmark's start)."""
    from scalebench.allocator import tune_cpu_allocator

    print(f"allocator: {tune_cpu_allocator()}  (scalebench.allocator: large blocks stay in the heap)")
