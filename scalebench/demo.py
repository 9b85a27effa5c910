"""``make demo``: the protocol end to end, offline, on the embedded Fashion-MNIST subset, in under 3 minutes on a CPU.

Builds ``fashion-mnist-embedded`` (1,600 train / 400 val images at scale 1, 1,000 test images at each of the
9 scales 2^(k/4), k = -4..4, shipped with scalebench) when it is missing, then runs the ``quick`` preset of the
GaussDerNet (Lindeberg, 2022, JMIV 64(3); 8 scale channels sigma0 = 0.71..8, narrow layers) and of the plain
CNN baseline, trained at scale 1 and tested at every scale. It prints each run's summary; its closing lines
give both models' per-scale accuracies and a verdict computed from them (:func:`verdict`), and say where the
results and the comparison figure are.

Epochs (:data:`DEMO_EPOCHS`): 1 for the GaussDerNet, 5 for the CNN, which costs about 1/40 as much per
image; with them both models reach similar accuracy at the training scale (about 0.6), so the curves compare
how each keeps it away from that scale. A demonstration on a small subset with short training, not a
measurement: the lite track (``fashion-mnist-lite``, 3 seeds, docs/leaderboard) holds the measured numbers.
Measured on 2 idle cores: see docs/protocol.md, "make demo".

Usage: ``python -m scalebench.demo [--out DIR] [--root DIR] [--epochs N] [--limit N] [--models gaussdernet,cnn]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from scalebench.allocator import tune_cpu_allocator
from scalebench.benchmark.config import make_config
from scalebench.benchmark.protocol import format_summary, run
from scalebench.checks import ScalebenchError
from scalebench.figures.curves import DEMO_CURVE_COLUMNS, plot_curves
from scalebench.figures.style import RUN_FORMATS
from scalebench.progress import PROGRESS_MODES
from scalebench.results import RunResult

DEMO_DATASET = "fashion-mnist-embedded"
DEMO_MODELS = ("gaussdernet", "cnn")
#: Images per split (None: the whole embedded subset, 1,600 / 400 / 1,000 per test scale).
DEMO_LIMIT: int | None = None
#: Epochs of each demo model (others: the quick preset's). The GaussDerNet trains at about 30 images/s on 2
#: cores and tests at about 175 images/s (quick config, docs/models.md), so one epoch and the 9 test sets take
#: about 2 minutes; the CNN's 5 epochs take seconds.
DEMO_EPOCHS: dict[str, int] = {"gaussdernet": 1, "cnn": 5}
#: The verdict calls a network scale-generalising when it keeps at least this fraction of its training-scale
#: accuracy at every test scale (worst / training-scale accuracy; issue "results a newcomer can trust").
GENERALISES = 0.85


def ensure_embedded(root: Path | None, progress: str = "auto") -> None:
    """Build the embedded Fashion-MNIST subset unless it is built already (offline: no download), showing
    ``progress`` (a ``--progress`` mode)."""
    from scalebench.datasets_builders import build_dataset, open_build

    try:
        open_build(DEMO_DATASET, root)
    except ScalebenchError:
        print(f"Building {DEMO_DATASET} (offline, from the subset shipped with scalebench) ...", flush=True)
        build_dataset("fashion-mnist", embedded=True, root=root, progress=progress)


def run_demo(
    out: Path = Path("outputs/demo"),
    *,
    root: Path | None = None,
    models: tuple[str, ...] = DEMO_MODELS,
    epochs: int | None = None,
    progress: str = "auto",
    dataset: str = DEMO_DATASET,
    limit: int | None = DEMO_LIMIT,
) -> dict[str, Path]:
    """Run the demo; return the paths of the comparison figure and its CSV, plus every run's results file.

    ``epochs``: the same number for every model; None takes :data:`DEMO_EPOCHS` (or the quick preset's).
    """
    t0 = time.perf_counter()
    if dataset == DEMO_DATASET:
        ensure_embedded(root, progress)
    results, files = [], {}
    for name in models:
        n_epochs = epochs or DEMO_EPOCHS.get(name)
        print(f"\n== {name}: quick preset, {n_epochs or 'default'} epoch(s), trained at scale 1, tested at every "
              "scale ==", flush=True)  # fmt: skip
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
            recipe_overrides={"epochs": n_epochs} if n_epochs else {},
        )
        outcome = run(config)
        print(format_summary(outcome), flush=True)
        results.append(outcome.result)
        files[f"{name}_results"] = outcome.files["results.json"]
    comparison = plot_curves(
        {r.model.name: [r] for r in results},
        out / "demo-curves",
        columns=DEMO_CURVE_COLUMNS,
        formats=RUN_FORMATS,
    )
    files.update(curves_png=comparison[0], curves_svg=comparison[1], curves_csv=comparison[2])
    minutes = (time.perf_counter() - t0) / 60
    print("\n" + per_scale_table(results))
    print("\n" + verdict(results))
    print(f"\nDemo finished in {minutes:.1f} min. Results and figures are in {out}/:")
    for result in results:
        beside = "curve.png and selection.png" if result.scale_selection is not None else "curve.png"
        print(f"  {result.model.name}: {files[f'{result.model.name}_results']} ({beside} beside it)")
    print(f"  both generalisation curves: {files['curves_png']} (data: {files['curves_csv']})")
    return files


def _name(result: RunResult) -> str:
    return result.model.card.get("display_name") or result.model.name


def per_scale_table(results: Sequence[RunResult]) -> str:
    """Accuracy per test scale of each run, one row per model, plus worst / training-scale accuracy."""
    scales = results[0].scales
    width = max(len(_name(r)) for r in results) + 2
    head = "test scale".ljust(width) + " ".join(f"{s:>6.3g}" for s in scales) + "   worst/train"
    lines = [head]
    for r in results:
        by_scale = r.score_by_scale()
        cells = " ".join(f"{by_scale[s]:>6.3f}" if s in by_scale else f"{'-':>6}" for s in scales)
        ratio = r.summary.generalisation_ratio
        lines.append(_name(r).ljust(width) + cells + f"   {'n/a' if ratio is None else f'{ratio:.3f}':>11}")
    return "\n".join(lines)


def verdict(results: Sequence[RunResult], threshold: float = GENERALISES) -> str:
    """One sentence saying which networks keep their training-scale accuracy over the test range, from the numbers.

    A network generalises over scale here when worst / training-scale accuracy >= ``threshold``.

    Example:
        >>> verdict([])
        'No results.'
    """
    if not results:
        return "No results."
    span = f"{min(results[0].scales):g} to {max(results[0].scales):g}"
    parts, good, bad = [], [], []
    for r in results:
        ratio = r.summary.generalisation_ratio
        kept = "an undefined share" if ratio is None else f"{100 * ratio:.0f} %"
        parts.append(
            f"{_name(r)} keeps {kept} of its training-scale accuracy ({r.summary.train_scale_accuracy:.3f}) at its "
            f"worst test scale ({r.summary.worst_scale:.3g})"
        )
        (good if ratio is not None and ratio >= threshold else bad).append(_name(r))
    if good and bad:
        end = f"{' and '.join(good)} generalise{'s' if len(good) == 1 else ''} over scales {span}; " + (
            f"{' and '.join(bad)} do{'es' if len(bad) == 1 else ''} not."
        )
    elif good:
        end = f"every model keeps at least {100 * threshold:.0f} % over scales {span}."
    else:
        end = f"no model keeps {100 * threshold:.0f} % of its accuracy over scales {span}."
    return "Verdict: " + "; ".join(parts) + ". So " + end


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scalebench.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--root", type=Path, default=None, help="scalebench home (default $SCALEBENCH_HOME)")
    parser.add_argument(
        "--epochs", type=int, default=0, help="epochs of every model (default: GaussDerNet 1, CNN 5)"
    )
    parser.add_argument("--models", default=",".join(DEMO_MODELS))
    parser.add_argument(
        "--limit", type=int, default=DEMO_LIMIT or 0, help="images per split; 0 for all (default)"
    )
    parser.add_argument("--progress", default="auto", choices=PROGRESS_MODES)
    args = parser.parse_args(argv)
    tune_cpu_allocator()  # large maps stay in the heap (scalebench/allocator.py)
    try:
        run_demo(
            args.out,
            root=args.root,
            models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
            epochs=args.epochs or None,
            progress=args.progress,
            limit=args.limit or None,
        )
    except ScalebenchError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
