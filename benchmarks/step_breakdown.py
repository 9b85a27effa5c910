"""Where one training step of a model spends its time, by kind of operation, with the FLOPs of each kind.

Every ATen operation of a training step (forward, backward, SGD update) is timed on its own while a
``TorchDispatchMode`` is active, and its FLOPs are counted with the formulas of
``torch.utils.flop_counter``, with grouped convolutions' weight gradients corrected
(``timing.FLOP_FORMULAS``: the count ``benchmarks/models.py`` uses for its fraction of peak). The operations
are grouped by kind:

- ``conv 3x3`` (and other dense ``conv kxk``), split into forward and backward (input + weight gradients);
- ``smoothing (k,1)/(1,k)``: the depthwise 1-D Gaussian passes of the Gaussian derivative layers;
- ``conv depthwise kxk``, ``matmul`` (``mm``/``bmm``/``addmm``: matrix-product smoothing, linear layers);
- ``batch norm``, ``ReLU``, ``cat``, and everything else (``other``, its largest operations listed).

Printed per kind: share of the step, milliseconds, GFLOP and GFLOP/s. Two bounds follow:

- **kernel bound**: the fraction of the fp32 matmul peak the step would reach if every operation without
  FLOPs (batch norm, ReLU, copies, concatenation, ...) took no time at all, i.e. the counted FLOPs over the
  time of the FLOP-carrying kernels alone. An implementation that keeps these kernels cannot exceed it;
- the same with the 3x3 (or kxk) convolutions alone, the kernels that hold most of the FLOPs.

The step is timed ``--steps`` times under the mode (one warm-up step first); the figures are those of the
fastest step (the reading least disturbed on a shared machine). The per-operation clock adds a few
microseconds per call, so the step under the mode is slightly slower than ``benchmarks/models.py``'s.

Usage:

    .venv/bin/python benchmarks/step_breakdown.py [--model gaussdernet] [--batch 8] [--steps 5] [--threads 2]
        [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as benchmarks/models.py: see its comment

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from scalebench.models import create_model, get_model_card

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import FLOP_FORMULAS, matmul_peak_gflops, tune_allocator

_BATCH_NORM = {"native_batch_norm", "native_batch_norm_backward", "_native_batch_norm_legit",
               "_native_batch_norm_legit_functional", "_native_batch_norm_legit_no_training"}  # fmt: skip
_RELU = {"relu", "relu_", "threshold_backward", "clamp_min", "clamp_min_"}
_MATMUL = {"mm", "bmm", "addmm", "baddbmm"}


def conv_kind(weight_shape: torch.Size | list[int], groups: int) -> str:
    """The kind of a 2-D convolution from its weight (O, I/groups, kh, kw) and groups.

    Example:
        >>> conv_kind([16, 16, 3, 3], 1), conv_kind([24, 1, 57, 1], 24), conv_kind([24, 1, 3, 3], 24)
        ('conv 3x3', 'smoothing (k,1)/(1,k)', 'conv depthwise 3x3')
    """
    kh, kw = int(weight_shape[-2]), int(weight_shape[-1])
    depthwise = groups > 1 and int(weight_shape[1]) == 1
    if depthwise and (kh == 1) != (kw == 1):
        return "smoothing (k,1)/(1,k)"
    prefix = "conv depthwise" if depthwise else "conv"
    return f"{prefix} {kh}x{kw}"


def op_kind(name: str, args: tuple) -> str:
    """The kind of one ATen operation (``name`` without namespace and overload) for the breakdown table."""
    if name == "convolution":
        return conv_kind(args[1].shape, int(args[8])) + " forward"
    if name == "convolution_backward":
        return conv_kind(args[2].shape, int(args[9])) + " backward"
    if name in _BATCH_NORM:
        return "batch norm"
    if name in _RELU:
        return "ReLU"
    if name in _MATMUL:
        return "matmul"
    if name == "cat":
        return "cat"
    return "other"


class _OpTimer(TorchDispatchMode):
    """Times every ATen call and counts its FLOPs, accumulated per kind (and per name for ``other``)."""

    def __init__(self) -> None:
        super().__init__()
        self.ms: dict[str, float] = defaultdict(float)
        self.flops: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.other_ms: dict[str, float] = defaultdict(float)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        t = time.perf_counter()
        out = func(*args, **kwargs)
        dt = (time.perf_counter() - t) * 1e3
        name = func._overloadpacket.__name__
        kind = op_kind(name, args)
        self.ms[kind] += dt
        self.calls[kind] += 1
        if kind == "other":
            self.other_ms[name] += dt
        counter = FLOP_FORMULAS.get(func._overloadpacket)
        if counter is not None:
            self.flops[kind] += counter(*args, **kwargs, out_val=out)
        return out


def breakdown(model_name: str, *, batch: int, steps: int, quick: bool) -> dict:
    """Per-kind time and FLOPs of the fastest of ``steps`` training steps (SGD, channels_last, 1 x 72 x 72)."""
    torch.manual_seed(0)
    card = get_model_card(model_name)
    model = create_model(model_name, num_classes=10, in_channels=1, quick=quick)
    model = model.to(memory_format=torch.channels_last).train()
    x = torch.randn(batch, *card.input_size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # warm-up: oneDNN primitive creation, allocator
    best: tuple[float, _OpTimer] | None = None
    for _ in range(steps):
        timer = _OpTimer()
        t = time.perf_counter()
        with timer:
            step()
        wall = (time.perf_counter() - t) * 1e3
        if best is None or wall < best[0]:
            best = (wall, timer)
    assert best is not None
    wall, timer = best
    return {
        "model": model_name,
        "batch": batch,
        "quick": quick,
        "step_ms": wall,
        "kinds": {
            k: {"ms": timer.ms[k], "gflop": timer.flops[k] / 1e9, "calls": timer.calls[k]}
            for k in sorted(timer.ms, key=timer.ms.get, reverse=True)  # type: ignore[arg-type]
        },
        "other_top": dict(sorted(timer.other_ms.items(), key=lambda kv: -kv[1])[:6]),
    }


def bounds(result: dict, peak: float) -> dict[str, float]:
    """Achieved fraction of ``peak`` (GFLOP/s) and the two bounds described in the module docstring."""
    kinds = result["kinds"]
    flops = sum(v["gflop"] for v in kinds.values())
    with_flops = sum(v["ms"] for v in kinds.values() if v["gflop"] > 0)
    conv = [v for k, v in kinds.items() if k.startswith("conv ") and "depthwise" not in k]
    conv_flops = sum(v["gflop"] for v in conv)
    conv_ms = sum(v["ms"] for v in conv)
    return {
        "achieved_fraction": flops / (result["step_ms"] / 1e3) / peak,
        "kernel_bound_fraction": flops / (with_flops / 1e3) / peak if with_flops else 0.0,
        "dense_conv_fraction": conv_flops / (conv_ms / 1e3) / peak if conv_ms else 0.0,
    }


def main() -> None:
    tune_allocator()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="gaussdernet")
    ap.add_argument("--batch", type=int, default=8, help="micro-batch (benchmarks/models.py's default)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps; the fastest is reported")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="the model's quick config")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_peak_gflops()
    res = breakdown(args.model, batch=args.batch, steps=args.steps, quick=args.quick)
    peak = max(peak, matmul_peak_gflops())  # best of two readings, before and after
    res["matmul_peak_gflops"] = peak
    res["threads"] = args.threads
    res.update(bounds(res, peak))
    in_ops = sum(v["ms"] for v in res["kinds"].values())
    print(
        f"{args.model} training step, micro-batch {args.batch}, {args.threads} threads: {res['step_ms']:.0f} ms "
        f"({in_ops:.0f} ms inside ATen operations); fp32 matmul peak {peak:.1f} GFLOP/s"
    )
    print(f"  {'kind':34s} {'share':>6s} {'ms':>8s} {'GFLOP':>7s} {'GFLOP/s':>8s} {'calls':>6s}")
    for kind, v in res["kinds"].items():
        rate = f"{v['gflop'] / v['ms'] * 1e3:8.1f}" if v["gflop"] > 0 else f"{'-':>8s}"
        print(
            f"  {kind:34s} {100 * v['ms'] / in_ops:5.1f}% {v['ms']:8.1f} {v['gflop']:7.2f} {rate} {v['calls']:6d}"
        )
    print(
        "  largest 'other' operations (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in res["other_top"].items())
    )
    print(
        f"achieved {100 * res['achieved_fraction']:.1f} % of peak; kernel bound (every operation without FLOPs "
        f"free) {100 * res['kernel_bound_fraction']:.1f} %; dense convolutions alone "
        f"{100 * res['dense_conv_fraction']:.1f} %"
    )
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
