"""Test-time densification measured on finished runs: ripple, accuracy, selection slope and inference cost.

For each run given (a finished ``scalebench evaluate`` run folder of a scale-channel network, with its
``results.json`` and ``best.safetensors``, or a store entry's ``seed-N.json`` beside ``seed-N.safetensors``:
:func:`scalebench.benchmark.protocol.trained_run`), the trained weights are tested on every recorded test scale
twice, in one process, with the classification task's own evaluation (:mod:`scalebench.benchmark.tasks`):

- on the trained channel grid (the reference; its counts must equal the recorded ones, checked);
- on the grid densified ``--factor`` times (:func:`scalebench.models.densify.densify`).

Printed per run and as the mean over runs: the ripple (:func:`scalebench.results.metrics.scale_ripple`, on
the trained grid), the mean accuracy over scales, the worst / train-scale ratio, the winning-channel slope
in trained-channel units per octave (ideal: log(2) / log(r), 2 for r = sqrt 2), and the inference time ratio
dense / trained (process CPU time, robust to other load on the machine).

Usage (no training; the build of the runs must be present):

    .venv/bin/python benchmarks/densify.py outputs/sweep-lite/runs/gaussdernet__*/ [--factor 2] [--json out.json]
    .venv/bin/python benchmarks/densify.py results/fashion-mnist-lite/gaussdernet/*/seed-*.json --threads 1
    .venv/bin/python benchmarks/densify.py results/fashion-mnist-lite/gaussdernet/*/seed-0.json --speed 64  # timing only

``--speed BATCH`` skips the accuracy pass and times inference only: the trained and the dense model on the same
BATCH test images per test scale, best of ``--repeats`` interleaved rounds, wall and process CPU time.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from scalebench.benchmark.checkpoint import load_weights
from scalebench.benchmark.engine import Loop
from scalebench.benchmark.protocol import trained_run
from scalebench.benchmark.tasks import task_of
from scalebench.datasets_builders import open_build
from scalebench.models import create_model, get_model_card
from scalebench.models.densify import densify
from scalebench.results import build_scale_selection, build_summary
from scalebench.results.metrics import scale_ripple, selection_slope
from scalebench.results.recipe import validate_recipe

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/timing.py
from timing import best_times


def _test(model: torch.nn.Module, result, built, task, loop: Loop):
    """Per-scale records, selection counts and process CPU seconds of ``model`` on the recorded test sets."""
    extras = task.extras(model, get_model_card(result.model.name))
    records, counts = [], []
    t0 = time.process_time()
    for scale, row in zip(result.scales, result.per_scale, strict=True):
        record, aux = task.evaluate(model, built.dataset("test", scale), scale, n=row.total, loop=loop,
                                    build=built, extras=extras)  # fmt: skip
        records.append(record)
        counts.append(aux)
    return records, counts, extras["sigmas"], time.process_time() - t0


def _models(run_dir: Path, factor: int):
    """The run's record, its trained model (best weights, eval mode) and the model densified ``factor`` times."""
    result, best = trained_run(run_dir)  # a run folder or a store entry, its checkpoint checked
    trained = create_model(result.model.name, num_classes=result.dataset.num_classes,
                           in_channels=result.dataset.channels, **result.model.config)  # fmt: skip
    load_weights(trained, best)
    trained.eval()
    dense = densify(result.model.name, result.model.config, trained, factor,
                    num_classes=result.dataset.num_classes, in_channels=result.dataset.channels)  # fmt: skip
    return result, trained, dense


def speed(run_dir: Path, factor: int, batch: int, repeats: int) -> dict:
    """Inference time dense / trained on one batch of the run's test images at each test scale: best of
    ``repeats`` interleaved rounds (wall and process CPU seconds), no accuracy pass (``--speed``)."""
    result, trained, dense = _models(run_dir, factor)
    built = open_build(result.dataset.build_id)
    images = [built.dataset("test", s).read_batch(list(range(batch)))[0].float() for s in result.scales]

    def infer(model):
        def go():
            with torch.no_grad():
                for x in images:
                    model(x)

        return go

    cpu: dict[str, float] = {}
    wall = best_times({"trained": infer(trained), "dense": infer(dense)}, repeats, cpu=cpu)
    channels = [len(m.channel_sigmas) for m in (trained, dense)]
    return {"run": str(run_dir), "channels": channels, "images": batch * len(images), "wall": wall, "cpu": cpu,
            "wall_ratio": wall["dense"] / wall["trained"], "cpu_ratio": cpu["dense"] / cpu["trained"]}  # fmt: skip


def measure(run_dir: Path, factor: int) -> dict:
    result, trained, dense = _models(run_dir, factor)
    built = open_build(result.dataset.build_id)
    task = task_of(result.task)
    loop = Loop(validate_recipe(result.training.recipe), torch.device("cpu"))
    out = {"run": str(run_dir)}
    ratio = trained.channel_sigmas[1] / trained.channel_sigmas[0]
    for label, model in (("trained", trained), ("dense", dense)):
        records, counts, sigmas, seconds = _test(model, result, built, task, loop)
        if label == "trained":
            assert [r.correct for r in records] == [r.correct for r in result.per_scale], "counts differ"
        summary = build_summary(records, result.dataset.train_scale)
        accs = [r.accuracy for r in records]
        sel = build_scale_selection(result.scales, sigmas, counts)
        per_octave = selection_slope(result.scales, sel.counts)
        step = math.log(model.channel_sigmas[1] / model.channel_sigmas[0]) / math.log(ratio)
        out[label] = {
            "accuracy": accs, "mean": summary.mean_accuracy, "ratio": summary.generalisation_ratio,
            "ripple": scale_ripple(result.scales, accs, result.dataset.train_scale, ratio),
            "slope_trained_channels_per_octave": None if per_octave is None else per_octave * step,
            "seconds": seconds,
        }  # fmt: skip
    out["ideal_slope"] = math.log(2) / math.log(ratio)
    out["cost_ratio"] = out["dense"]["seconds"] / out["trained"]["seconds"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--factor", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--speed", type=int, metavar="BATCH", default=None,
                        help="only time inference, dense against trained, on BATCH test images per scale")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds with --speed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.speed is not None:
        rows = [speed(run, args.factor, args.speed, args.repeats) for run in args.runs]
        for r in rows:
            print(f"{r['run']}: channels {r['channels'][0]} -> {r['channels'][1]}, {r['images']} images: "
                  f"dense / trained wall {r['wall_ratio']:.2f}x, CPU {r['cpu_ratio']:.2f}x "
                  f"(trained {r['images'] / r['wall']['trained']:.1f} img/s)")  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return
    rows = [measure(run, args.factor) for run in args.runs]
    print(f"{'run':60s} {'grid':8s} {'mean':>6s} {'ratio':>6s} {'ripple':>7s} {'slope':>6s}")
    for r in rows:
        for label in ("trained", "dense"):
            m = r[label]
            slope = m["slope_trained_channels_per_octave"]
            print(f"{r['run'][:60]:60s} {label:8s} {m['mean']:6.4f} {m['ratio']:6.3f} "
                  f"{(m['ripple'] or 0) * 100:6.2f}p {slope if slope is None else round(slope, 2)!s:>6s}")  # fmt: skip
        print(
            f"{'':60s} dense/trained inference CPU time {r['cost_ratio']:.2f}; ideal slope {r['ideal_slope']:.2f}"
        )
    for label in ("trained", "dense"):
        ripple = statistics.fmean(r[label]["ripple"] or 0 for r in rows) * 100
        mean = statistics.fmean(r[label]["mean"] for r in rows)
        print(f"mean over {len(rows)} runs, {label}: mean accuracy {mean:.4f}, ripple {ripple:.2f} points")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
