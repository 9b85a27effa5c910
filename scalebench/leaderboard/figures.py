"""Comparison figures for papers: overlaid generalisation curves and side-by-side scale-selection heatmaps.

``scalebench plot curves RESULTS... | --store results/ --dataset D`` and ``scalebench plot selection RESULTS...``.

- Curves (one dataset, one training scale): accuracy against test scale on a log2 axis, one line per model
  configuration with its mean over seeds and, with two or more seeds, a ± 1 sample-std band
  (:func:`scalebench.benchmark.figures.curve_rows`), the training scale dashed, the y axis fixed to [0, 1] so
  that figures compare. Drawn by :func:`scalebench.benchmark.figures.curve_figure`, as the figures of one run:
  same scale ticks, legend outside the axes.
- Selection: one heatmap per model configuration, side by side on one colour scale: rows are test scales,
  columns the σ0 of the scale channels, each cell the fraction of that scale's test images (pooled over seeds)
  whose winning channel it was; the panel title gives Spearman's ρ of the pooled counts
  (:func:`scalebench.results.metrics.selection_spearman`). A scale-covariant network shows a diagonal
  (Lindeberg, 2022, "Scale-covariant and scale-invariant Gaussian derivative networks", JMIV 64(3): 223-242;
  Jansson & Lindeberg, 2022, JMIV 64(5): 506-536).

Legends and panel titles name models by their card's display name, several configurations of one model by how
they differ from the card's defaults (:func:`scalebench.benchmark.figures.legend_labels`; ``labels`` overrides
them), and titles name the dataset build (:func:`scalebench.benchmark.figures.build_label`). Every model keeps
one colour from the Okabe & Ito (2008) colour-blind-safe palette
(:func:`scalebench.benchmark.figures.model_colour`, also used on the leaderboard site); when two models of
one figure share a colour, the later one is dashed, then dotted. Each figure is written as PDF, SVG and
300-dpi PNG beside the CSV it was drawn from, with fixed metadata (no dates, no software versions, a fixed
SVG hash salt), so that the same results give byte-identical files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from scalebench.benchmark.figures import (
    _RC,
    DPI,
    SELECTION_COLOURBAR_LABEL,
    Curve,
    _builds_label,
    curve_figure,
    curve_rows,
    legend_labels,
    model_colour,
    save_figure,
    seeds_note,
    seeds_suffix,
    selection_axes,
    write_csv,
)
from scalebench.checks import ScalebenchError
from scalebench.leaderboard.validate import run_config_hash
from scalebench.results import RunResult, load_results, metrics

FORMATS = ("pdf", "svg", "png")


def group_runs(
    results: Sequence[RunResult], *, labels: Mapping[str, str] | None = None
) -> dict[str, list[RunResult]]:
    """Group runs by model configuration (seeds together), keyed by their legend label
    (:func:`scalebench.benchmark.figures.legend_labels`: display name, and how the config differs from the
    card's defaults when one model appears with several configurations; ``labels`` overrides). Order: by
    model name, then config hash.

    Raises when one configuration holds the same seed twice.
    """
    if not results:
        raise ScalebenchError("No results to plot; give results files or a --store with runs.")
    by_key: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        by_key.setdefault((r.model.name, run_config_hash(r)), []).append(r)
    ordered = []
    for (model, h), runs in sorted(by_key.items()):
        seeds = [r.seed for r in runs]
        if len(set(seeds)) != len(seeds):
            raise ScalebenchError(
                f"{model} (config {h[:8]}) has seed {max(seeds, key=seeds.count)} twice; give each run once."
            )
        ordered.append(sorted(runs, key=lambda r: r.seed))
    names = legend_labels(ordered, labels=labels)
    if len(set(names)) != len(names):
        raise ScalebenchError(
            f"Two curves would share a legend label ({names}); give distinct --label names."
        )
    return dict(zip(names, ordered, strict=True))


def _one(values: set, what: str, fix: str) -> object:
    if len(values) != 1:
        raise ScalebenchError(f"The runs have several {what} {sorted(values)}; {fix}")
    return next(iter(values))


def _checked(
    results: Sequence[RunResult], labels: Mapping[str, str] | None
) -> tuple[dict[str, list[RunResult]], str, float]:
    """The groups (:func:`group_runs`), the one dataset and the one training scale of a curve figure."""
    groups = group_runs(results, labels=labels)
    dataset = _one({r.dataset.name for r in results}, "datasets", "plot one dataset at a time (--dataset).")
    train_scale = _one(
        {r.dataset.train_scale for r in results}, "training scales", "plot one training scale at a time."
    )
    return groups, dataset, float(train_scale)


def _curves_figure(
    results: Sequence[RunResult], *, title: str | None = None, labels: Mapping[str, str] | None = None
) -> Figure:
    groups, _, train_scale = _checked(results, labels)
    curves = [
        Curve(label, curve_rows(runs), model_colour(runs[0].model.name)) for label, runs in groups.items()
    ]
    counts = [len(runs) for runs in groups.values()]
    title = title or (
        f"Scale generalisation, {_builds_label(results)}\ntrained at s = {train_scale:g}; {seeds_note(counts)}"
    )
    return curve_figure(curves, title=title, train_scale=train_scale)


def plot_curves(
    results: Sequence[RunResult],
    stem: str | Path,
    *,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Path]:
    """Overlay the generalisation curves of several model configurations (see the module docstring).

    ``labels`` overrides legend labels: ``{model name or config hash (or a prefix of one): shown name}``.
    Writes ``<stem>.pdf``, ``.svg``, ``.png`` and ``.csv`` (model, config hash, dataset, training scale, scale,
    mean, std, n seeds, legend label); returns their paths. All runs must share the dataset and the training
    scale.
    """
    groups, dataset, train_scale = _checked(results, labels)
    fig = _curves_figure(results, title=title, labels=labels)
    stem = Path(stem)
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
            "label",
        ],
        [
            (runs[0].model.name, run_config_hash(runs[0]), dataset, train_scale, *row, label)
            for label, runs in groups.items()
            for row in curve_rows(runs)
        ],
    )
    return [*save_figure(fig, stem, formats=FORMATS, dpi=DPI), csv_path]


def _selection_panels(groups: Mapping[str, list[RunResult]]) -> list[tuple]:
    """(label, first selection, pooled counts, fractions, ρ, n seeds) per configuration."""
    panels = []
    for label, runs in groups.items():
        sels = [r.scale_selection for r in runs]  # all set: checked by the caller
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
        panels.append((label, sel, counts, frac, rho, len(runs)))
    return panels


def _selection_groups(
    results: Sequence[RunResult], labels: Mapping[str, str] | None
) -> dict[str, list[RunResult]]:
    groups = group_runs(results, labels=labels)
    missing = sorted({r.model.name for r in results if r.scale_selection is None})
    if missing:
        raise ScalebenchError(
            f"No scale selection in the results of {', '.join(missing)} (only scale-channel models report one); "
            "leave them out of `scalebench plot selection`."
        )
    return groups


def _selection_figure(
    results: Sequence[RunResult], *, title: str | None = None, labels: Mapping[str, str] | None = None
) -> Figure:
    panels = _selection_panels(_selection_groups(results, labels))
    with matplotlib.rc_context(_RC):
        n = len(panels)
        fig = Figure(figsize=(2.6 * n + 1.2, 3.4), layout="constrained")
        axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
        im = None
        for ax, (label, sel, _, frac, rho, n_seeds) in zip(axes, panels, strict=True):
            im = selection_axes(ax, frac, sel.test_scales, sel.channel_sigmas)
            rho_text = "n/a" if rho is None or math.isnan(rho) else f"{rho:.2f}"
            ax.set_title(f"{label}\nρ = {rho_text}{seeds_suffix(n_seeds)}", fontsize=8)
        axes[0].set_ylabel("test scale s")
        fig.colorbar(im, ax=list(axes), label=SELECTION_COLOURBAR_LABEL, shrink=0.9)
        counts = [p[5] for p in panels]
        pooled = "counts pooled over seeds" if any(c > 1 for c in counts) else seeds_note(counts)
        fig.suptitle(title or f"Scale selection, {_builds_label(results)} ({pooled})", fontsize=9)
    return fig


def plot_selection(
    results: Sequence[RunResult],
    stem: str | Path,
    *,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Path]:
    """Scale-selection heatmaps of several model configurations side by side (see the module docstring).

    ``labels`` overrides panel labels as in :func:`plot_curves`. Writes ``<stem>.pdf``, ``.svg``, ``.png`` and
    ``.csv`` (model, config hash, test scale, channel, σ0, pooled count, fraction); returns their paths. Runs
    without scale selection are an error naming them.
    """
    groups = _selection_groups(results, labels)
    fig = _selection_figure(results, title=title, labels=labels)
    csv_rows: list[tuple[object, ...]] = []
    for (_, sel, counts, frac, _, _), runs in zip(_selection_panels(groups), groups.values(), strict=True):
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
    return [*save_figure(fig, stem, formats=FORMATS, dpi=DPI), csv_path]


def load_for_plot(
    paths: Sequence[str | Path] = (),
    *,
    store: str | Path | None = None,
    dataset: str | None = None,
    train_scale: float | None = None,
    selection: bool = False,
) -> list[RunResult]:
    """The runs to plot: the given results files, or every run of ``dataset`` in a validated store, where
    ``dataset`` names a board: ``fashion-mnist`` (the full track) or ``fashion-mnist-lite`` (the lite track).

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

    stored = [r for r in load_store(store) if r.result.task == "classification"]  # not segmentation

    def board(run: Any) -> str:  # the dataset on the full track, <dataset>-<track> on the others
        return run.result.dataset.name + ("" if run.track == "full" else f"-{run.track}")

    chosen = [
        r.result
        for r in stored
        if board(r) == dataset
        and (train_scale is None or math.isclose(r.result.dataset.train_scale, train_scale, rel_tol=1e-9))
        and (not selection or r.result.scale_selection is not None)
    ]
    if not chosen:
        have = sorted({(board(r), r.result.dataset.train_scale) for r in stored})
        raise ScalebenchError(
            f"No runs {'with scale selection ' if selection else ''}of dataset {dataset!r}"
            + (f" at training scale {train_scale:g}" if train_scale is not None else "")
            + f" in {store}; the store holds (dataset, training scale): {have or 'nothing'}."
        )
    return chosen
