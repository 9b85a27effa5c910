"""``make demo``: the protocol end to end, offline, on the embedded Fashion-MNIST subset, in minutes on a CPU.

Builds ``fashion-mnist-embedded`` (1,600 train / 400 val images at scale 1, 1,000 test images at each of the
9 scales 2^(k/4), k = -4..4, shipped with scalebench) when it is missing, then runs the ``quick`` preset of a
small GaussDerNet (Lindeberg, 2022, JMIV 64(3)) and of the plain CNN baseline, trained at scale 1 and tested
at every scale. It prints each run's summary, draws both generalisation curves in one figure, and its closing
lines say where the results and figures are.

This is a demonstration of the pipeline, not a measurement: it uses the whole embedded subset with 5 epochs
of the quick preset, far from the papers' setting, so the numbers carry no claim either way. Measured on 2
idle cores: 4.0 minutes (the embedded build adds seconds). ``--limit 400 --epochs 3`` runs in about 1 minute
(a smoke run, marked as such in the results).

Usage: ``python -m scalebench.demo [--out DIR] [--root DIR] [--epochs N] [--limit N] [--models gaussdernet,cnn]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from scalebench.allocator import tune_cpu_allocator
from scalebench.benchmark.config import make_config
from scalebench.benchmark.figures import plot_comparison
from scalebench.benchmark.protocol import format_summary, run_evaluation
from scalebench.checks import ScalebenchError

DEMO_DATASET = "fashion-mnist-embedded"
DEMO_MODELS = ("gaussdernet", "cnn")
#: Images per split (None: the whole embedded subset, 1,600 / 400 / 1,000 per test scale) and epochs of the
#: demo. With the GaussDerNet quick config at about 45 images/s training and 40 images/s testing on 2 idle
#: cores, the whole demo takes about 4 minutes (measured 4.0 min).
DEMO_LIMIT: int | None = None
DEMO_EPOCHS = 5


def ensure_embedded(root: Path | None) -> None:
    """Build the embedded Fashion-MNIST subset unless it is built already (offline: no download)."""
    from scalebench.benchmark.protocol import _load_built
    from scalebench.datasets_builders import build_dataset

    try:
        _load_built(DEMO_DATASET, root)
    except ScalebenchError:
        print(f"Building {DEMO_DATASET} (offline, from the subset shipped with scalebench) ...", flush=True)
        build_dataset("fashion-mnist", embedded=True, root=root, progress=sys.stderr.isatty())


def run_demo(
    out: Path = Path("outputs/demo"),
    *,
    root: Path | None = None,
    models: tuple[str, ...] = DEMO_MODELS,
    epochs: int | None = DEMO_EPOCHS,
    progress: str = "auto",
    dataset: str = DEMO_DATASET,
    limit: int | None = DEMO_LIMIT,
) -> dict[str, Path]:
    """Run the demo; return the paths of the comparison figure and its CSV, plus every run's results file."""
    t0 = time.perf_counter()
    if dataset == DEMO_DATASET:
        ensure_embedded(root)
    results, files = [], {}
    for name in models:
        print(f"\n== {name}: quick preset, trained at scale 1, tested at 9 scales ==", flush=True)
        config = make_config(
            model=name,
            dataset=dataset,
            preset="quick",
            device="cpu",
            out=out,
            root=root,
            resume=True,
            limit=limit,
            progress=progress,
            recipe_overrides={"epochs": epochs} if epochs else {},
        )
        outcome = run_evaluation(config)
        print(format_summary(outcome), flush=True)
        results.append(outcome.result)
        files[f"{name}_results"] = outcome.files["results"]
    comparison = plot_comparison({r.model.name: [r] for r in results}, out / "demo-curves")
    files.update(curves_png=comparison[0], curves_svg=comparison[1], curves_csv=comparison[2])
    minutes = (time.perf_counter() - t0) / 60
    print(f"\nDemo finished in {minutes:.1f} min. Results and figures are in {out}/:")
    for result in results:
        beside = "curve.png and selection.png" if result.scale_selection is not None else "curve.png"
        print(f"  {result.model.name}: {files[f'{result.model.name}_results']} ({beside} beside it)")
    print(f"  both generalisation curves: {files['curves_png']} (data: {files['curves_csv']})")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scalebench.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--root", type=Path, default=None, help="scalebench home (default $SCALEBENCH_HOME)")
    parser.add_argument("--epochs", type=int, default=DEMO_EPOCHS, help="epochs (default %(default)s)")
    parser.add_argument("--models", default=",".join(DEMO_MODELS))
    parser.add_argument(
        "--limit", type=int, default=DEMO_LIMIT or 0, help="images per split; 0 for all (default)"
    )
    parser.add_argument("--progress", default="auto", choices=["auto", "rich", "plain", "none"])
    args = parser.parse_args(argv)
    tune_cpu_allocator()  # large maps stay in the heap (scalebench/allocator.py)
    try:
        run_demo(
            args.out,
            root=args.root,
            models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
            epochs=args.epochs,
            progress=args.progress,
            limit=args.limit or None,
        )
    except ScalebenchError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
