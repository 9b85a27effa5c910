"""Comparison figures for papers: overlaid generalisation curves and side-by-side scale-selection heatmaps.

``scalebench plot curves RESULTS... | --store results/ --dataset D`` and ``scalebench plot selection RESULTS...``.

- Curves (one dataset, one training scale): accuracy against test scale on a log2 axis, one line per model
  configuration with its mean over seeds and a ± 1 sample-std band (:func:`scalebench.benchmark.figures.curve_rows`),
  the training scale dashed, the y axis fixed to [0, 1] so that figures compare.
- Selection: one heatmap per model configuration, side by side on one colour scale: rows are test scales,
  columns the σ0 of the scale channels, each cell the fraction of that scale's test images (pooled over seeds)
  whose winning channel it was; the panel title gives Spearman's ρ of the pooled counts
  (:func:`scalebench.benchmark.metrics.selection_spearman`). A scale-covariant network shows a diagonal
  (Lindeberg, 2022, "Scale-covariant and scale-invariant Gaussian derivative networks", JMIV 64(3): 223-242;
  Jansson & Lindeberg, 2022, JMIV 64(5): 506-536).

Every model keeps one colour from the Okabe & Ito (2008) colour-blind-safe palette
(:func:`scalebench.benchmark.figures.model_colour`, also used on the leaderboard site); when two models of
one figure share a colour, the later one is dashed, then dotted. Each figure is written as PDF, SVG and
300-dpi PNG beside the CSV it was drawn from, with fixed metadata (no dates, no software versions, a fixed
SVG hash salt), so that the same results give byte-identical files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from scalebench.benchmark import metrics
from scalebench.benchmark.figures import _RC, curve_rows, model_colour, save_figure, scale_axis, write_csv
from scalebench.benchmark.results import RunResult, load_results
from scalebench.checks import ScalebenchError
from scalebench.leaderboard.validate import run_config_hash

DPI = 300
FORMATS = ("pdf", "svg", "png")

_LINESTYLES = ("-", "--", ":", "-.")


def group_runs(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    """Group runs by model configuration (seeds together), labelled by model name, plus the config hash
    when one model appears with several configurations. Order: by model name, then config hash.

    Raises when one configuration holds the same seed twice.
    """
    if not results:
        raise ScalebenchError("No results to plot; give results files or a --store with runs.")
    by_key: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        by_key.setdefault((r.model.name, run_config_hash(r)), []).append(r)
    models = [m for m, _ in by_key]
    groups: dict[str, list[RunResult]] = {}
    for (model, h), runs in sorted(by_key.items()):
        seeds = [r.seed for r in runs]
        if len(set(seeds)) != len(seeds):
            raise ScalebenchError(
                f"{model} (config {h[:8]}) has seed {max(seeds, key=seeds.count)} twice; give each run once."
            )
        label = model if models.count(model) == 1 else f"{model} [{h[:8]}]"
        groups[label] = sorted(runs, key=lambda r: r.seed)
    return groups


def _one(values: set, what: str, fix: str) -> object:
    if len(values) != 1:
        raise ScalebenchError(f"The runs have several {what} {sorted(values)}; {fix}")
    return next(iter(values))


def plot_curves(results: Sequence[RunResult], stem: str | Path, *, title: str | None = None) -> list[Path]:
    """Overlay the generalisation curves of several model configurations (see the module docstring).

    Writes ``<stem>.pdf``, ``.svg``, ``.png`` and ``.csv`` (model, config hash, scale, mean, std, n seeds);
    returns their paths. All runs must share the dataset and the training scale.
    """
    groups = group_runs(results)
    dataset = _one({r.dataset.name for r in results}, "datasets", "plot one dataset at a time (--dataset).")
    train_scale = _one(
        {r.dataset.train_scale for r in results}, "training scales", "plot one training scale at a time."
    )
    stem = Path(stem)
    table = {label: curve_rows(runs) for label, runs in groups.items()}
    csv_path = write_csv(
        stem.parent / f"{stem.name}.csv",
        [
            "model",
            "config_hash",
            "dataset",
            "train_scale",
            "scale",
            "mean_accuracy",
            "std_accuracy",
            "n_seeds",
        ],
        [
            (groups[label][0].model.name, run_config_hash(groups[label][0]), dataset, train_scale, *row)
            for label, rows in table.items()
            for row in rows
        ],
    )
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(4.8, 3.3))
        ax = fig.add_subplot()
        used: dict[str, int] = {}
        ticks: set[float] = set()
        for label, rows in table.items():
            colour = model_colour(groups[label][0].model.name)
            style = _LINESTYLES[used.get(colour, 0) % len(_LINESTYLES)]
            used[colour] = used.get(colour, 0) + 1
            scales = np.array([r[0] for r in rows])
            mean, std = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
            n = rows[0][3]
            ax.plot(scales, mean, ls=style, marker="o", ms=3, lw=1.4, color=colour, label=f"{label} (n={n})")
            if n > 1:
                ax.fill_between(scales, mean - std, mean + std, color=colour, alpha=0.18, linewidth=0)
            ticks.update(scales.tolist())
        ax.axvline(float(train_scale), color="0.35", ls="--", lw=0.8, label="training scale")
        scale_axis(ax, sorted(ticks), tick_format=".3g")
        ax.legend(frameon=False, loc="lower center", fontsize=7)
        ax.set_title(title or f"{dataset}, trained at scale {float(train_scale):g}: mean ± std over seeds")
    return [*save_figure(fig, stem, formats=FORMATS, dpi=DPI), csv_path]


def plot_selection(results: Sequence[RunResult], stem: str | Path, *, title: str | None = None) -> list[Path]:
    """Scale-selection heatmaps of several model configurations side by side (see the module docstring).

    Writes ``<stem>.pdf``, ``.svg``, ``.png`` and ``.csv`` (model, config hash, test scale, channel, σ0,
    pooled count, fraction); returns their paths. Runs without scale selection are an error naming them.
    """
    groups = group_runs(results)
    missing = sorted({r.model.name for r in results if r.scale_selection is None})
    if missing:
        raise ScalebenchError(
            f"No scale selection in the results of {', '.join(missing)} (only scale-channel models report one); "
            "leave them out of `scalebench plot selection`."
        )
    panels = []
    csv_rows: list[tuple[object, ...]] = []
    for label, runs in groups.items():
        sels = [r.scale_selection for r in runs]  # all set: checked above
        sel = sels[0]
        for other in sels[1:]:
            if len(other.channel_sigmas) != len(sel.channel_sigmas) or len(other.test_scales) != len(
                sel.test_scales
            ):
                raise ScalebenchError(
                    f"{label}: seeds differ in scale channels or test scales; cannot pool them."
                )
        counts = np.sum([np.asarray(x.counts, dtype=np.int64) for x in sels], axis=0)
        totals = counts.sum(axis=1, keepdims=True)
        frac = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
        rho = metrics.selection_spearman(sel.test_scales, sel.channel_sigmas, counts.tolist())
        panels.append((label, sel, frac, rho, len(runs)))
        h = run_config_hash(runs[0])
        csv_rows += [
            (runs[0].model.name, h, s, j, sigma, int(counts[i, j]), float(frac[i, j]))
            for i, s in enumerate(sel.test_scales)
            for j, sigma in enumerate(sel.channel_sigmas)
        ]
    stem = Path(stem)
    csv_path = write_csv(
        stem.parent / f"{stem.name}.csv",
        ["model", "config_hash", "test_scale", "channel", "sigma", "count", "fraction"],
        csv_rows,
    )
    with matplotlib.rc_context(_RC):
        n = len(panels)
        fig = Figure(figsize=(2.6 * n + 1.2, 3.2), layout="constrained")
        axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
        im = None
        for ax, (label, sel, frac, rho, n_seeds) in zip(axes, panels, strict=True):
            im = ax.imshow(frac, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks(range(len(sel.channel_sigmas)), [f"{s:.2g}" for s in sel.channel_sigmas])
            ax.set_yticks(range(len(sel.test_scales)), [f"{s:.3g}" for s in sel.test_scales])
            ax.set_xlabel("σ0 of the winning channel")
            rho_text = "n/a" if rho is None or math.isnan(rho) else f"{rho:.2f}"
            ax.set_title(f"{label}\nρ = {rho_text} (n={n_seeds})", fontsize=8)
        axes[0].set_ylabel("test scale")
        fig.colorbar(im, ax=list(axes), label="fraction of test images", shrink=0.9)
        if title:
            fig.suptitle(title, fontsize=9)
    return [*save_figure(fig, stem, formats=FORMATS, dpi=DPI), csv_path]


def load_for_plot(
    paths: Sequence[str | Path] = (),
    *,
    store: str | Path | None = None,
    dataset: str | None = None,
    train_scale: float | None = None,
    selection: bool = False,
) -> list[RunResult]:
    """The runs to plot: the given results files, or every run of ``dataset`` in a validated store.

    With ``selection`` (for :func:`plot_selection`), a store's runs without scale selection (the baselines)
    are left out; given files are returned as they are.
    """
    if paths and store is not None:
        raise ScalebenchError("Give results files or --store, not both.")
    if paths:
        return [load_results(p) for p in paths]
    if store is None:
        raise ScalebenchError("Give results files to plot, or --store DIR --dataset NAME.")
    if dataset is None:
        raise ScalebenchError("--store needs --dataset NAME (one dataset per figure).")
    from scalebench.leaderboard.store import load_store

    runs = [r.result for r in load_store(store) if r.result.task == "classification"]  # not segmentation
    chosen = [
        r
        for r in runs
        if r.dataset.name == dataset
        and (train_scale is None or math.isclose(r.dataset.train_scale, train_scale, rel_tol=1e-9))
        and (not selection or r.scale_selection is not None)
    ]
    if not chosen:
        have = sorted({(r.dataset.name, r.dataset.train_scale) for r in runs})
        raise ScalebenchError(
            f"No runs {'with scale selection ' if selection else ''}of dataset {dataset!r}"
            + (f" at training scale {train_scale:g}" if train_scale is not None else "")
            + f" in {store}; the store holds (dataset, training scale): {have or 'nothing'}."
        )
    return chosen
