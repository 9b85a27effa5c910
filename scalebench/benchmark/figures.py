"""Figures of one configuration: the generalisation curve and the scale-selection heatmap.

Each figure is written as PNG and SVG beside the CSV it was drawn from, through matplotlib's object API
(no pyplot, no global backend switch) with fixed metadata: no creation date or software version in the files
and a fixed SVG id salt, so that the same numbers give byte-identical files.

- Generalisation curve: accuracy against test scale on a log2 axis, the training scale marked by a dashed
  line, mean ± sample std over seeds as a band when there are several seeds.
- Scale-selection heatmap: rows are test scales, columns the σ0 of the scale channels, each cell the fraction
  of that scale's test images whose winning channel it was. A scale-covariant network shows a diagonal
  (Lindeberg, 2022, JMIV 64(3); Jansson & Lindeberg, 2022, JMIV 64(5)).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from scalebench.benchmark import metrics
from scalebench.benchmark.results import RunResult
from scalebench.checks import ScalebenchError
from scalebench.fileio import write_bytes_atomic, write_text_atomic

#: Okabe & Ito (2008) colour-blind-safe palette, in a fixed order.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

_RC = {
    "svg.hashsalt": "scalebench",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

#: Metadata that would differ between runs (dates, software versions), blanked in every format.
_METADATA = {
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
    "svg": {"Date": None, "Creator": None},
    "png": {"Software": None},
}


def model_colour(name: str) -> str:
    """A fixed colour per model name (stable across runs and figures).

    Example:
        >>> model_colour("cnn") == model_colour("cnn")
        True
    """
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return OKABE_ITO[digest % len(OKABE_ITO)]


def save_figure(
    fig: Figure, stem: str | Path, *, formats: Sequence[str] = ("png", "svg"), dpi: int = 150
) -> list[Path]:
    """Write ``fig`` as ``<stem>.<format>`` for each of ``formats`` (png, svg, pdf; raster at ``dpi``),
    atomically, with fixed metadata and SVG hash salt, so that the same figure gives byte-identical files.

    The format is appended to the name (``a.v2`` -> ``a.v2.png``). Used by the figures of one configuration
    here (150-dpi PNG and SVG) and by the paper figures of :mod:`scalebench.leaderboard.figures` (PDF, SVG
    and 300-dpi PNG).
    """
    stem = Path(stem)
    paths = []
    for fmt in formats:
        buf = io.BytesIO()
        with matplotlib.rc_context(_RC):
            fig.savefig(buf, format=fmt, dpi=dpi, metadata=_METADATA[fmt], bbox_inches="tight")
        path = stem.parent / f"{stem.name}.{fmt}"
        write_bytes_atomic(path, buf.getvalue())
        paths.append(path)
    return paths


def _save(fig: Figure, stem: Path) -> list[Path]:
    """150-dpi PNG and SVG at ``stem`` with its suffix replaced (as the CSV: ``stem.with_suffix(".csv")``)."""
    return save_figure(fig, stem.with_suffix(""))


def scale_axis(ax: Axes, scales: Sequence[float], *, tick_format: str = ".2g") -> None:
    """The test-scale axis shared by the accuracy-curve figures: log2 x axis ticked at ``scales``, accuracy
    in [0, 1] on y, a light grid."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(scales, [format(s, tick_format) for s in scales])
    ax.minorticks_off()
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("test scale (log2 axis)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3, lw=0.5)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write a CSV (header + rows, '\\n' line ends) atomically; the data file beside every figure."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())
    return path


def curve_rows(results: Sequence[RunResult]) -> list[tuple[float, float, float, int]]:
    """(scale, mean accuracy, sample std, n seeds) per test scale over runs of one configuration."""
    if not results:
        raise ScalebenchError("No results to draw a generalisation curve from.")
    scales = results[0].scales
    for r in results[1:]:
        if len(r.scales) != len(scales) or any(
            not math.isclose(a, b) for a, b in zip(r.scales, scales, strict=True)
        ):
            raise ScalebenchError(
                f"Runs have different test scales ({scales} vs {r.scales}); a curve needs the same scales per seed."
            )
    rows = []
    for i, s in enumerate(scales):
        mean, std = metrics.mean_std([r.per_scale[i].score for r in results])
        rows.append((s, mean, std, len(results)))
    return rows


def plot_generalisation_curve(
    results: Sequence[RunResult], stem: str | Path, *, title: str | None = None
) -> list[Path]:
    """Draw accuracy against test scale for runs of one model/config (several seeds -> mean ± std band).

    Writes ``<stem>.png``, ``<stem>.svg`` and ``<stem>.csv``; returns their paths.
    """
    stem = Path(stem)
    rows = curve_rows(results)
    first = results[0]
    csv_path = write_csv(
        stem.with_suffix(".csv"),
        ["model", "dataset", "train_scale", "scale", "mean_accuracy", "std_accuracy", "n_seeds"],
        [(first.model.name, first.dataset.build_id, first.dataset.train_scale, *row) for row in rows],
    )
    scales = np.array([r[0] for r in rows])
    mean = np.array([r[1] for r in rows])
    std = np.array([r[2] for r in rows])
    colour = model_colour(first.model.name)
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(4.2, 3.0))
        ax = fig.add_subplot()
        label = first.model.name + (f" (n={len(results)} seeds)" if len(results) > 1 else "")
        ax.plot(scales, mean, marker="o", ms=3.5, color=colour, label=label)
        if len(results) > 1:
            ax.fill_between(scales, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)
        ax.axvline(first.dataset.train_scale, color="0.4", ls="--", lw=0.8, label="training scale")
        scale_axis(ax, scales)
        ax.legend(frameon=False, loc="lower center")
        ax.set_title(title or f"{first.model.name} on {first.dataset.build_id}", fontsize=9)
    return [*_save(fig, stem), csv_path]


def plot_scale_selection(result: RunResult, stem: str | Path, *, title: str | None = None) -> list[Path]:
    """Heatmap of the winning channel's σ0 per test scale, rows normalised to fractions.

    Writes ``<stem>.png``, ``<stem>.svg`` and ``<stem>.csv`` (one row per test scale and channel with the
    count and the fraction); returns their paths. Raises for a run without scale selection.
    """
    sel = result.scale_selection
    if sel is None:
        raise ScalebenchError(
            f"{result.model.name} reports no scale selection (only scale-channel models do); no heatmap to draw."
        )
    stem = Path(stem)
    counts = np.asarray(sel.counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    frac = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    csv_rows = [
        (s, j, sigma, int(counts[i, j]), float(frac[i, j]))
        for i, s in enumerate(sel.test_scales)
        for j, sigma in enumerate(sel.channel_sigmas)
    ]
    csv_path = write_csv(
        stem.with_suffix(".csv"), ["test_scale", "channel", "sigma", "count", "fraction"], csv_rows
    )
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(4.2, 3.4))
        ax = fig.add_subplot()
        im = ax.imshow(frac, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(sel.channel_sigmas)), [f"{s:.2g}" for s in sel.channel_sigmas])
        ax.set_yticks(range(len(sel.test_scales)), [f"{s:.2g}" for s in sel.test_scales])
        ax.set_xlabel("σ0 of the winning scale channel")
        ax.set_ylabel("test scale")
        rho = "n/a" if sel.spearman_rho is None else f"{sel.spearman_rho:.2f}"
        slope = "n/a" if sel.slope_per_octave is None else f"{sel.slope_per_octave:.2f}"
        ax.set_title(
            title or f"{result.model.name}: Spearman ρ = {rho}, slope = {slope} ch/octave", fontsize=9
        )
        fig.colorbar(im, ax=ax, label="fraction of test images")
    return [*_save(fig, stem), csv_path]


def plot_comparison(
    groups: dict[str, Sequence[RunResult]], stem: str | Path, *, title: str | None = None
) -> list[Path]:
    """Overlay the generalisation curves of several models (label -> runs over seeds) in one figure.

    Each model keeps its :func:`model_colour`; several seeds give a mean ± std band. All runs must share the
    training scale. Writes ``<stem>.png``, ``<stem>.svg`` and ``<stem>.csv`` (one row per model and scale).
    """
    if not groups:
        raise ScalebenchError("No results to compare.")
    stem = Path(stem)
    train_scales = {r.dataset.train_scale for runs in groups.values() for r in runs}
    if len(train_scales) != 1:
        raise ScalebenchError(
            f"Runs have different training scales {sorted(train_scales)}; compare one at a time."
        )
    table = {label: curve_rows(runs) for label, runs in groups.items()}
    csv_path = write_csv(
        stem.with_suffix(".csv"),
        ["model", "scale", "mean_accuracy", "std_accuracy", "n_seeds"],
        [(label, *row) for label, rows in table.items() for row in rows],
    )
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(4.6, 3.2))
        ax = fig.add_subplot()
        all_scales: set[float] = set()
        for label, rows in table.items():
            scales = np.array([r[0] for r in rows])
            mean, std = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
            colour = model_colour(groups[label][0].model.name)
            n = rows[0][3]
            ax.plot(
                scales, mean, marker="o", ms=3.5, color=colour, label=label + (f" (n={n})" if n > 1 else "")
            )
            if n > 1:
                ax.fill_between(scales, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)
            all_scales.update(scales.tolist())
        ax.axvline(train_scales.pop(), color="0.4", ls="--", lw=0.8, label="training scale")
        scale_axis(ax, sorted(all_scales))
        ax.legend(frameon=False, loc="lower center", fontsize=8)
        first = next(iter(groups.values()))[0]
        ax.set_title(title or f"Scale generalisation on {first.dataset.build_id}", fontsize=9)
    return [*_save(fig, stem), csv_path]
