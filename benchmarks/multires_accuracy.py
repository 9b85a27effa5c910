"""Multi-resolution mode at test time: the accuracy of trained full-resolution GaussDer(Res)Nets computed per rule.

The multi-resolution mode is a way of computing the same network (the same weights; ``docs/models.md``), so a
GaussDerNet trained at full resolution can be tested in it without training again. For each finished run
given (its ``results.json`` and ``best.safetensors``, or a store entry's ``seed-N.json`` and
``seed-N.safetensors``) and each ``multires_min_sigma`` tau, this script builds
the run's model with ``multires=true`` and that tau, loads the trained weights strictly, and tests it on every
test scale of the run's build with :func:`scalebench.test` (eval mode, a state check around the test). The
full-resolution network is tested again in the same process as the reference; it must reproduce the recorded
per-scale counts, or the script stops.

This is the test-time half of the speed/accuracy curve over the subsampling rule; the lite-track runs
*trained* in the mode (``sweep launch --model-config multires=true``) are the other half.

Usage:

    .venv/bin/python benchmarks/multires_accuracy.py outputs/sweep-lite/runs/gaussdernet__*/ \\
        [--taus 0.75,1,1.5,2] [--threads 2] [--json out.json]
    .venv/bin/python benchmarks/multires_accuracy.py results/fashion-mnist-lite/gaussderresnet/*/seed-*.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import scalebench
from scalebench.benchmark.checkpoint import load_weights
from scalebench.benchmark.protocol import trained_run
from scalebench.models import create_model


def _model(result, tau: float | None) -> torch.nn.Module:
    extra = {} if tau is None else {"multires": True, "multires_min_sigma": tau}
    return create_model(result.model.name, num_classes=result.dataset.num_classes,
                        in_channels=result.dataset.channels, **result.model.config, **extra)  # fmt: skip


def _test(run: Path, result, best: Path, tau: float | None, out: Path) -> dict:
    model = _model(result, tau)
    load_weights(model, best)
    t0 = time.perf_counter()
    record = scalebench.test(model, dataset=result.dataset.build_id, out=out, device="cpu", progress="none")
    seconds = time.perf_counter() - t0
    return {
        "run": str(run), "tau": tau, "seconds": round(seconds, 1),
        "correct": [p.correct for p in record.per_scale],
        "mean_accuracy": record.summary.mean_accuracy, "generalisation_ratio": record.summary.generalisation_ratio,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path,
                    help="finished run folders, or store entries (seed-N.json), of the GaussDerNet or GaussDerResNet family")  # fmt: skip
    ap.add_argument("--taus", default="0.75,1,1.5,2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    taus = [float(t) for t in args.taus.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in args.runs:
            result, best = trained_run(run)  # the checkpoint must be the one the results record
            recorded = [p.correct for p in result.per_scale]
            for tau in [None, *taus]:
                row = _test(run, result, best, tau, Path(tmp))
                if tau is None and row["correct"] != recorded:
                    sys.exit(f"{run}: the full-resolution test gives {row['correct']}, recorded {recorded}.")
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| rule tau | mean accuracy (mean ± sd over runs) | worst / train | test seconds |")
    print("|---|---|---|---|")
    for tau in [None, *taus]:
        mine = [r for r in rows if r["tau"] == tau]
        acc = [100 * r["mean_accuracy"] for r in mine]
        ratio = [r["generalisation_ratio"] for r in mine]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        print(f"| {'full' if tau is None else tau} | {statistics.mean(acc):.2f} ± {sd(acc):.2f} % | "
              f"{statistics.mean(ratio):.3f} ± {sd(ratio):.3f} | {statistics.mean(r['seconds'] for r in mine):.0f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"taus": taus, "rows": rows, "threads": args.threads}, indent=1))


if __name__ == "__main__":
    main()
