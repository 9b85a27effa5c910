"""The scale-selection heatmap: which scale channel wins at which test scale, one panel per configuration.

One function, :func:`plot_selection`, draws it for one run (``scalebench evaluate``: ``selection.png``) and for
several configurations side by side (``scalebench plot selection``, ``sweep collect``), on one colour scale.

- Rows are the test scales (the smallest at the bottom), columns the σ0 of the scale channels, each cell the
  fraction of that test scale's images whose winning channel (the channel holding the maximal logit) it was:
  the rows sum to 1 (a test scale with no images is a row of 0). The counts of the seeds of one configuration
  are pooled before the fractions are taken (a pandas group sum of the long table, :func:`selection_table`,
  which is also the CSV); seaborn draws the panels.
- Each panel's title gives Spearman's ρ and the slope (channels per octave) of the pooled counts
  (:func:`scalebench.results.metrics.selection_spearman`, :func:`~scalebench.results.metrics.selection_slope`).
  A scale-covariant network shows a diagonal (Lindeberg, 2022, "Scale-covariant and scale-invariant Gaussian
  derivative networks", JMIV 64(3): 223-242; Jansson & Lindeberg, 2022, JMIV 64(5): 506-536).
- Panel titles name models as legends do (:func:`scalebench.figures.style.legend_labels`), titles name the
  build (:func:`scalebench.figures.style.build_label`); files follow :mod:`scalebench.figures.style`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from scalebench.checks import ScalebenchError
from scalebench.figures.curves import group_runs
from scalebench.figures.style import (
    PAPER_FORMATS,
    RC,
    builds_label,
    save_figure,
    scale_tick_labels,
    seeds_note,
    seeds_suffix,
    write_csv,
)
from scalebench.results import AnyRunResult, RunResult, metrics, seedless_config_hash

#: The colour bar of every scale-selection heatmap.
SELECTION_COLOURBAR_LABEL = "fraction of test images\nper test scale (rows sum to 1)"

#: CSV columns of a run's ``selection.csv``, and of the paper figure's.
RUN_SELECTION_COLUMNS = ("test_scale", "channel", "sigma", "count", "fraction")
PAPER_SELECTION_COLUMNS = ("model", "config_hash", *RUN_SELECTION_COLUMNS)


def _check_selections(groups: Mapping[str, Sequence[AnyRunResult]]) -> None:
    """Every run reports a scale selection, and the seeds of one configuration have the same shape of counts."""
    missing = sorted(
        {
            r.model.name
            for runs in groups.values()
            for r in runs
            if getattr(r, "scale_selection", None) is None
        }
    )
    if missing:
        raise ScalebenchError(
            f"No scale selection in the results of {', '.join(missing)} (only scale-channel models report one); "
            "leave them out of `scalebench plot selection`."
        )
    for label, runs in groups.items():
        shapes = {(len(r.scale_selection.test_scales), len(r.scale_selection.channel_sigmas)) for r in runs}
        if len(shapes) > 1:
            raise ScalebenchError(
                f"{label}: seeds differ in scale channels or test scales; cannot pool them."
            )


def selection_table(groups: Mapping[str, Sequence[RunResult]]) -> pd.DataFrame:
    """One row per configuration (panel), test scale and channel: ``panel``, ``label``, ``model``,
    ``config_hash``, ``test_scale``, ``channel``, ``sigma`` (the first seed's scales and σ0), ``count`` (pooled
    over the seeds) and ``fraction`` (of the test scale's pooled count; 0 where that is 0).

    Raises for a run without scale selection, or seeds whose counts differ in shape.
    """
    _check_selections(groups)
    rows = []
    for panel, (label, runs) in enumerate(groups.items()):
        sel = runs[0].scale_selection
        config = {"panel": panel, "label": label, "model": runs[0].model.name}
        config["config_hash"] = seedless_config_hash(runs[0])
        rows += [
            {**config, "test_scale": s, "channel": j, "sigma": sigma, "count": r.scale_selection.counts[i][j]}
            for r in runs
            for i, s in enumerate(sel.test_scales)
            for j, sigma in enumerate(sel.channel_sigmas)
        ]
    keys = ["panel", "label", "model", "config_hash", "test_scale", "channel", "sigma"]
    table = pd.DataFrame(rows).groupby(keys, sort=False, as_index=False)["count"].sum()
    totals = table.groupby(["panel", "test_scale"], sort=False)["count"].transform("sum")
    table["fraction"] = (table["count"] / totals.where(totals > 0)).fillna(0.0)
    return table


def _panel(ax: Axes, rows: pd.DataFrame) -> tuple[float | None, float | None]:
    """One heatmap on ``ax``; returns Spearman's ρ and the slope of the pooled counts."""
    fractions = rows.pivot(index="test_scale", columns="channel", values="fraction")
    scales = fractions.index.tolist()
    sigmas = rows.groupby("channel", sort=True)["sigma"].first().tolist()
    sns.heatmap(
        fractions,
        ax=ax,
        vmin=0,
        vmax=1,
        cmap="viridis",
        cbar=False,
        xticklabels=[f"{s:.2g}" for s in sigmas],
        yticklabels=scale_tick_labels(scales),
    )
    ax.invert_yaxis()  # the smallest test scale at the bottom
    ax.tick_params(axis="y", labelrotation=0)
    ax.set_xlabel("σ0 of the winning scale channel")
    ax.set_ylabel("")
    counts = rows.pivot(index="test_scale", columns="channel", values="count").to_numpy().tolist()
    return metrics.selection_spearman(scales, sigmas, counts), metrics.selection_slope(scales, counts)


def _stat(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}"


def selection_figure(
    results: Sequence[RunResult], *, title: str | None = None, labels: Mapping[str, str] | None = None
) -> Figure:
    """The figure of :func:`plot_selection` (see there), without writing it."""
    groups = group_runs(results, labels=labels)
    return _draw(groups, selection_table(groups), title)


def _draw(groups: Mapping[str, Sequence[RunResult]], table: pd.DataFrame, title: str | None) -> Figure:
    """One panel per configuration on one colour bar; with one panel, its title names the build."""
    n = len(groups)
    runs = [r for g in groups.values() for r in g]
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(2.6 * n + 1.6, 3.4), layout="constrained")
        axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
        for ax, (label, members), (_, rows) in zip(
            axes, groups.items(), table.groupby("panel", sort=False), strict=True
        ):
            rho, slope = _panel(ax, rows)
            seeds = seeds_suffix(len(members))
            if n == 1:
                stats = f"Spearman ρ = {_stat(rho)}, slope = {_stat(slope)} ch/octave"
                ax.set_title(title or f"{label}, {builds_label(runs)}\n{stats}{seeds}", fontsize=8)
            else:
                ax.set_title(f"{label}\nρ = {_stat(rho)}{seeds}", fontsize=8)
        axes[0].set_ylabel("test scale s")
        fig.colorbar(axes[0].collections[0], ax=list(axes), label=SELECTION_COLOURBAR_LABEL, shrink=0.9)
        if n > 1:
            counts = [len(g) for g in groups.values()]
            pooled = "counts pooled over seeds" if any(c > 1 for c in counts) else seeds_note(counts)
            fig.suptitle(title or f"Scale selection, {builds_label(runs)} ({pooled})", fontsize=9)
    return fig


def plot_selection(
    results: Sequence[AnyRunResult],
    stem: str | Path,
    *,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
    columns: Sequence[str] = PAPER_SELECTION_COLUMNS,
    formats: Sequence[str] = PAPER_FORMATS,
) -> list[Path]:
    """Scale-selection heatmaps, one panel per configuration (see the module docstring).

    Runs are grouped and labelled as by :func:`scalebench.figures.curves.group_runs` (``labels`` overrides);
    runs without scale selection (baselines, segmentation) are an error naming them. Writes
    ``<stem>.<format>`` for each of ``formats`` and ``<stem>.csv`` with ``columns`` of
    :func:`selection_table`; returns their paths in that order.
    """
    groups = group_runs(results, labels=labels)
    table = selection_table(groups)
    fig = _draw(groups, table, title)
    csv_path = write_csv(table[list(columns)], stem)
    return [*save_figure(fig, stem, formats=formats), csv_path]
