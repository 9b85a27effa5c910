"""Evaluation overhead: the protocol's test loop over all 9 scales against the model's raw forward throughput.

Both are measured in the same process, on the same model, with the same batch and micro-batch sizes:

- raw: ``forward_with_selection`` (scale-channel models) or ``forward`` on tensors already in memory, in eval
  mode under ``torch.inference_mode``, channels_last;
- pipeline: the classification task's evaluation (:mod:`scalebench.benchmark.tasks.classification`) over the
  test set of every built scale,
  reading the HDF5 files lazily (optionally through DataLoader workers), counting correct predictions and
  winning channels, exactly as ``scalebench evaluate`` does.

Overhead ratio = pipeline time ÷ raw time for the same images (= raw images/s ÷ pipeline images/s); the
target is ≤ 1.2. The machine may be shared, so raw and pipeline alternate scale by scale (both see the same
load), and the ratio is given per repeat and as the median, in wall time and in process CPU time (the latter
is robust to other processes; with ``--workers`` > 0 it misses the workers' reads, so use wall time then).

Usage (builds the embedded Fashion-MNIST subset offline if it is missing):

    .venv/bin/python benchmarks/evaluate.py --model gaussdernet --quick --n-per-scale 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from scalebench.benchmark.engine import Loop, chunks, to_device
from scalebench.benchmark.tasks import TASKS
from scalebench.datasets_builders import build_dataset, open_build
from scalebench.models import create_model, get_model_card
from scalebench.results.recipe import Recipe

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/timing.py
from timing import tune_allocator


def main() -> None:
    tune_allocator()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="gaussdernet")
    p.add_argument("--quick", action="store_true", help="the card's quick config (small model)")
    p.add_argument("--dataset", default="fashion-mnist-embedded")
    p.add_argument("--root", default=None)
    p.add_argument("--n-per-scale", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64, help="images per HDF5 read")
    p.add_argument("--micro-batch-size", type=int, default=8, help="images per forward call")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    try:
        built = open_build(args.dataset, root=args.root, task="classification")
    except Exception:
        built = build_dataset("fashion-mnist", embedded=True, root=args.root, progress=False)
    device = torch.device("cpu")
    card = get_model_card(args.model)
    model = create_model(
        args.model, num_classes=built.num_classes, in_channels=built.channels, quick=args.quick
    )
    model = model.to(device, memory_format=torch.channels_last).eval()
    selection = len(model.channel_sigmas) if card.reports_scale_selection else None
    scales = built.test_scales
    datasets = [built.dataset("test", s) for s in scales]
    n = min(args.n_per_scale, *(len(d) for d in datasets))
    total_images = n * len(scales)

    # Raw: the same number of images, already decoded into one in-memory tensor per scale.
    tensors = [d.read_batch(list(range(n)))[0] for d in datasets]

    @torch.inference_mode()
    def raw(x: torch.Tensor) -> None:
        for part in chunks(len(x), args.micro_batch_size):
            xb = to_device(x[part], device, True)
            out = model.forward_with_selection(xb) if selection else model(xb)
            (out[0] if selection else out).argmax(1)

    recipe = Recipe(epochs=1, batch_size=1, lr=1.0, eval_batch_size=args.batch_size,
                    micro_batch_size=args.micro_batch_size)  # fmt: skip
    loop = Loop(recipe, device, workers=args.workers)
    extras = {"sigmas": list(model.channel_sigmas) if selection else None}

    def pipeline(scale: float) -> None:
        ds = built.dataset("test", scale)  # opened afresh, as the protocol does
        TASKS["classification"].evaluate(model, ds, scale, n=n, loop=loop, build=built, extras=extras)

    def timed(fn, arg) -> tuple[float, float]:
        w, c = time.perf_counter(), time.process_time()
        fn(arg)
        return time.perf_counter() - w, time.process_time() - c

    raw(tensors[0])  # warm-up (allocator, oneDNN primitive caches)
    # Raw and pipeline alternate scale by scale, so that both see the same load on a shared machine.
    ratios_wall, ratios_cpu, raw_rates, pipe_rates = [], [], [], []
    for _ in range(args.repeats):
        rw = rc = pw = pc = 0.0
        for x, s in zip(tensors, scales, strict=True):
            a, b = timed(raw, x)
            c, d = timed(pipeline, s)
            rw, rc, pw, pc = rw + a, rc + b, pw + c, pc + d
        ratios_wall.append(pw / rw)
        ratios_cpu.append(pc / rc)
        raw_rates.append(total_images / rw)
        pipe_rates.append(total_images / pw)
    print(
        f"model {args.model}{' (quick)' if args.quick else ''}, {built.build_id}, {len(scales)} scales x {n} images, "
        f"batch {args.batch_size}, micro-batch {args.micro_batch_size}, workers {args.workers}, "
        f"threads {torch.get_num_threads()}, {args.repeats} repeats"
    )
    print(
        f"raw forward on in-memory tensors: {', '.join(f'{v:.1f}' for v in raw_rates)} img/s (wall, per repeat)"
    )
    print(
        f"evaluation pipeline (9 scales):   {', '.join(f'{v:.1f}' for v in pipe_rates)} img/s (wall, per repeat)"
    )
    print(
        f"overhead ratio pipeline/raw time: wall median {statistics.median(ratios_wall):.3f} "
        f"({', '.join(f'{v:.3f}' for v in ratios_wall)}), CPU-time median {statistics.median(ratios_cpu):.3f} "
        f"({', '.join(f'{v:.3f}' for v in ratios_cpu)})  (target <= 1.2)"
    )


if __name__ == "__main__":
    main()
