"""Figures of one configuration: the generalisation curve and the scale-selection heatmap, and the pieces that
every figure of scalebench shares (style, labels, scale axis, legend, saving).

Each figure is written as a 300-dpi PNG and an SVG beside the CSV it was drawn from, through matplotlib's
object API (no pyplot, no global backend switch) with fixed metadata: no creation date or software version in
the files and a fixed SVG id salt, so that the same numbers give byte-identical files.

- Generalisation curve: accuracy against test scale on a log2 axis, the training scale marked by a dashed
  line, mean ± sample std over seeds as a band when there are two or more seeds (one seed: no band, and the
  figure says "1 seed").
- Scale-selection heatmap: rows are test scales, columns the σ0 of the scale channels, each cell the fraction
  of that scale's test images whose winning channel it was (rows sum to 1). A scale-covariant network shows a
  diagonal (Lindeberg, 2022, JMIV 64(3); Jansson & Lindeberg, 2022, JMIV 64(5)).

Shared by every figure (here, :mod:`scalebench.leaderboard.figures` and
:mod:`scalebench.benchmark.segmentation_figures`): legends name models by their card's display name
(:func:`legend_labels`; several configurations of one model are told apart by how their config differs from
the card's defaults, never by a hash) and sit outside the axes; titles name the dataset build
(:func:`build_label`); the test-scale axis is :func:`scale_axis`, ticked at the test scales with
:data:`SCALE_FORMAT`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend

from scalebench.checks import ScalebenchError
from scalebench.fileio import write_bytes_atomic, write_text_atomic
from scalebench.results import (
    AnyRunResult,
    DatasetInfo,
    ModelInfo,
    RunResult,
    SegmentationDatasetInfo,
    metrics,
    seedless_config_hash,
)

#: Okabe & Ito (2008) colour-blind-safe palette, in a fixed order.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

#: Resolution of every PNG (per-run, demo, segmentation and paper figures).
DPI = 300

#: Tick labels of every test-scale axis: three significant digits (0.5, 0.595, 0.707, 0.841, 1, 1.19, ...).
SCALE_FORMAT = ".3g"

SCALE_AXIS_LABEL = "test scale s (log2 axis)"

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

_LINESTYLES = ("-", "--", ":", "-.")

#: Human names of the datasets; any other name is shown as it is.
_DATASET_NAMES = {
    "fashion-mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "stl10": "STL-10",
    "fashion-mnist-seg": "Fashion-MNIST segmentation",
}

_BUILD_TOKEN = re.compile(r"embedded|lite|limit\d+|canvas\d+x\d+")


def model_colour(name: str) -> str:
    """A fixed colour per model name (stable across runs and figures).

    Example:
        >>> model_colour("cnn") == model_colour("cnn")
        True
    """
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return OKABE_ITO[digest % len(OKABE_ITO)]


# --- labels: builds, models, seeds ------------------------------------------------------------------------


def _field(info: Any, key: str, default: Any = None) -> Any:
    return info.get(key, default) if isinstance(info, Mapping) else getattr(info, key, default)


def build_label(
    dataset_info: DatasetInfo | SegmentationDatasetInfo | Mapping[str, Any], limit: int | None = None
) -> str:
    """The dataset build as a title names it: human dataset name, kind of build, build id, smoke-run limit.

    The kind comes from the build id (see :func:`scalebench.datasets_builders.build_id_for`): ``embedded`` (or
    ``dataset_info.embedded``) -> "embedded demo subset", ``-lite`` -> "lite", ``-limitN`` -> "subset"
    (with ``-lite``: "lite subset"), none of these -> "full"; a build id of another form gets no kind.
    ``limit`` is the run's ``--limit N`` (a smoke run). ``dataset_info`` is a results file's ``dataset``
    block, as a model or a mapping with ``name``, ``build_id`` and optionally ``embedded``.

    Example:
        >>> build_label({"name": "fashion-mnist", "build_id": "fashion-mnist-lite"})
        'Fashion-MNIST lite (fashion-mnist-lite)'
        >>> build_label({"name": "fashion-mnist", "build_id": "fashion-mnist"})
        'Fashion-MNIST full (fashion-mnist)'
        >>> build_label({"name": "fashion-mnist", "build_id": "fashion-mnist-limit500"}, limit=20)
        'Fashion-MNIST subset (fashion-mnist-limit500), smoke run --limit 20'
        >>> build_label({"name": "cifar10", "build_id": "cifar10-embedded"})
        'CIFAR-10 embedded demo subset (cifar10-embedded)'
    """
    name = str(_field(dataset_info, "name"))
    build_id = str(_field(dataset_info, "build_id", name))
    human = _DATASET_NAMES.get(name, name)
    kind: str | None = None
    if build_id == name or build_id.startswith(name + "-"):
        tokens = [t for t in build_id[len(name) :].split("-") if t]
        if all(_BUILD_TOKEN.fullmatch(t) for t in tokens):
            lite = "lite" in tokens
            subset = any(t.startswith("limit") for t in tokens)
            if "embedded" in tokens or _field(dataset_info, "embedded", False):
                kind = "embedded demo subset"
            elif lite:
                kind = "lite subset" if subset else "lite"
            else:
                kind = "subset" if subset else "full"
    label = f"{human} {kind} ({build_id})" if kind else f"{human} ({build_id})"
    return label + (f", smoke run --limit {limit}" if limit else "")


def _builds_label(results: Sequence[AnyRunResult]) -> str:
    """:func:`build_label` of the runs of a figure; several builds are joined with "; "."""
    seen = dict.fromkeys(build_label(r.dataset, r.limit) for r in results)
    return "; ".join(seen)


def display_name(model: ModelInfo) -> str:
    """The model's human name: its card's ``display_name``, else the registered name (old results files)."""
    return str(model.card.get("display_name") or model.name)


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples -> lists), so that a config compares with a stored one."""
    return json.loads(json.dumps(value))


def _short(value: Any) -> str:
    if isinstance(value, float):
        return format(value, ".4g")
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def _keys_note(config: Mapping[str, Any], keys: Sequence[str], most: int = 3) -> str:
    shown = ", ".join(f"{k}={_short(config[k])}" for k in keys[:most])
    return shown + (f", +{len(keys) - most} more" if len(keys) > most else "")


def config_note(card: Mapping[str, Any], config: Mapping[str, Any]) -> str | None:
    """How ``config`` differs from the card's defaults: "default", "quick" (defaults + ``quick_config``), or
    the differing keys (at most three shown, relative to whichever of the two differs less); None when the
    card has no ``default_config`` (old results files).

    Example:
        >>> card = {"default_config": {"widths": [16, 32], "sigma0": 0.5}, "quick_config": {"widths": [8, 8]}}
        >>> config_note(card, {"widths": [16, 32], "sigma0": 0.5}), config_note(card, {"widths": (8, 8)})
        ('default', 'quick')
        >>> config_note(card, {"widths": [8, 8, 12, 12], "sigma0": 0.5})
        'widths=[8, 8, 12, 12]'
    """
    defaults = card.get("default_config")
    if not isinstance(defaults, Mapping):
        return None
    defaults = _plain(dict(defaults))
    quick = {**defaults, **_plain(dict(card.get("quick_config") or {}))}
    config = _plain(dict(config))
    missing = object()
    by_default = [k for k in config if config[k] != defaults.get(k, missing)]
    by_quick = [k for k in config if config[k] != quick.get(k, missing)]
    if not by_default:
        return "default"
    if not by_quick:
        return "quick"
    if len(by_quick) < len(by_default):
        return "quick, " + _keys_note(config, by_quick)
    return _keys_note(config, by_default)


def _model_ids(run: AnyRunResult) -> tuple[str, ...]:
    return (run.model.name, seedless_config_hash(run), run.model.config_hash)


def _overrides(
    groups: Sequence[Sequence[AnyRunResult]], labels: Mapping[str, str]
) -> tuple[dict[str, str], dict[int, str]]:
    """Split ``labels`` into model name -> shown name, and group index -> whole label (a config hash key).

    A key is a registered model name of the figure, or a config hash or a prefix of one (the seedless hash of
    the CSVs, or a run's own ``config_hash``) that names exactly one group.
    """
    names: dict[str, str] = {}
    whole: dict[int, str] = {}
    models = {g[0].model.name for g in groups}
    for key, name in labels.items():
        if key in models:
            names[key] = name
            continue
        hits = [
            i
            for i, g in enumerate(groups)
            if key and any(h.startswith(key.lower()) for r in g for h in _model_ids(r)[1:])
        ]
        if len(hits) > 1:
            raise ScalebenchError(
                f"Label key {key!r} starts {len(hits)} config hashes; give more of the hash."
            )
        if not hits:
            hashes = sorted({seedless_config_hash(g[0]) for g in groups})
            raise ScalebenchError(
                f"Label key {key!r} names no curve of this figure. Valid keys: a model name "
                f"({', '.join(sorted(models))}) or a config hash ({', '.join(hashes)})."
            )
        whole[hits[0]] = name
    return names, whole


#: Run fields that tell apart configurations whose labels still agree, in the order they are tried.
_DISTINGUISHERS = (
    lambda r: r.dataset.build_id,
    lambda r: f"{r.training.preset} preset",
    lambda r: f"{r.training.recipe.get('epochs')} epochs",
    lambda r: f"{r.dataset.train_size} training images",
    lambda r: f"--limit {r.limit}" if r.limit else "no --limit",
)


def _duplicates(labels: Sequence[str]) -> list[list[int]]:
    at: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        at.setdefault(label, []).append(i)
    return [idx for idx in at.values() if len(idx) > 1]


def legend_labels(
    groups: Sequence[Sequence[AnyRunResult]], *, labels: Mapping[str, str] | None = None
) -> list[str]:
    """One legend label per group of runs (the seeds of one configuration), never a config hash.

    The card's display name (:func:`display_name`); when a figure holds several configurations of one model,
    followed by :func:`config_note` in brackets ("GaussDerNet (quick)", "GaussDerNet (widths=[8, 8, 12, 12])"),
    or by the config keys in which they differ when the card has no defaults. Labels still equal after that
    get the first of build id, preset, epochs, training-set size and ``--limit`` that tells them apart, in
    square brackets. ``labels`` overrides: a registered model name -> the name shown in place of the display
    name (notes still follow), a config hash or a prefix of one -> the whole label. A key that names no group
    is an error listing the valid keys.
    """
    firsts = [g[0] for g in groups]
    names, whole = _overrides(groups, labels or {})
    out = [names.get(r.model.name) or display_name(r.model) for r in firsts]
    configs = [_plain(r.model.config) for r in firsts]
    for model in dict.fromkeys(r.model.name for r in firsts):
        idx = [i for i, r in enumerate(firsts) if r.model.name == model]
        if len({json.dumps(configs[i], sort_keys=True) for i in idx}) < 2:
            continue
        keys = sorted({k for i in idx for k in configs[i]})
        differ = [k for k in keys if len({json.dumps(configs[i].get(k)) for i in idx}) > 1]
        for i in idx:
            note = config_note(firsts[i].model.card, configs[i])
            if note is None:
                note = _keys_note({k: configs[i].get(k) for k in differ}, differ)
            out[i] = f"{out[i]} ({note})"
    for field in _DISTINGUISHERS:
        for idx in _duplicates(out):
            values = [field(firsts[i]) for i in idx]
            if len(set(values)) > 1:
                for i, value in zip(idx, values, strict=True):
                    out[i] = f"{out[i]} [{value}]"
    for idx in _duplicates(out):
        for k, i in enumerate(idx, start=1):
            out[i] = f"{out[i]} [#{k}]"
    for i, label in whole.items():
        out[i] = label
    return out


def seeds_suffix(n: int) -> str:
    """The seed count after a legend label: " (n = 3 seeds)", or " (1 seed)".

    Example:
        >>> seeds_suffix(3), seeds_suffix(1)
        (' (n = 3 seeds)', ' (1 seed)')
    """
    return f" (n = {n} seeds)" if n > 1 else " (1 seed)"


def seeds_note(counts: Sequence[int]) -> str:
    """What a title says about the seeds of its curves: "± std" only where some curve has two or more.

    Example:
        >>> seeds_note([3]), seeds_note([1]), seeds_note([1, 1]), seeds_note([3, 1])
        ('mean ± std over 3 seeds', '1 seed', '1 seed each', 'mean ± std over seeds where n ≥ 2')
    """
    if all(n <= 1 for n in counts):
        return "1 seed" if len(counts) == 1 else "1 seed each"
    if len(set(counts)) == 1:
        return f"mean ± std over {counts[0]} seeds"
    return "mean ± std over seeds where n ≥ 2"


# --- drawing and saving -----------------------------------------------------------------------------------


def save_figure(
    fig: Figure, stem: str | Path, *, formats: Sequence[str] = ("png", "svg"), dpi: int = DPI
) -> list[Path]:
    """Write ``fig`` as ``<stem>.<format>`` for each of ``formats`` (png, svg, pdf; raster at ``dpi``),
    atomically, with fixed metadata and SVG hash salt, so that the same figure gives byte-identical files.

    The format is appended to the name (``a.v2`` -> ``a.v2.png``). Used by every figure: PNG and SVG for the
    figures of one run, PDF, SVG and PNG for the paper figures of :mod:`scalebench.leaderboard.figures`; the
    PNG at 300 dpi everywhere.
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
    """300-dpi PNG and SVG at ``stem`` with its suffix replaced (as the CSV: ``stem.with_suffix(".csv")``)."""
    return save_figure(fig, stem.with_suffix(""))


def scale_tick_labels(scales: Sequence[float]) -> list[str]:
    """Tick labels of a test-scale axis (:data:`SCALE_FORMAT`), the same in every figure.

    Example:
        >>> scale_tick_labels([2 ** (k / 4) for k in range(-4, 5)])
        ['0.5', '0.595', '0.707', '0.841', '1', '1.19', '1.41', '1.68', '2']
    """
    return [format(s, SCALE_FORMAT) for s in scales]


def scale_axis(ax: Axes, scales: Sequence[float], *, ylabel: str = "accuracy") -> None:
    """The test-scale axis of every curve figure: log2 x axis ticked at ``scales`` (:func:`scale_tick_labels`),
    the score in [0, 1] on y, a light grid."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(scales, scale_tick_labels(scales))
    ax.minorticks_off()
    ax.set_ylim(0, 1.0)
    ax.set_xlabel(SCALE_AXIS_LABEL)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, lw=0.5)


def legend_outside(ax: Axes, *, fontsize: float = 7) -> Legend:
    """The legend of ``ax`` to the right of its axes, so that it covers no data and no training-scale line
    (saving with ``bbox_inches="tight"`` widens the image to hold it)."""
    return ax.legend(
        loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False, fontsize=fontsize
    )


@dataclass(frozen=True)
class Curve:
    """One line of a curve figure: its legend label (without the seed count), :func:`curve_rows`, colour and
    line style (None: solid, then dashed, dotted, ... for each earlier curve of the same colour)."""

    label: str
    rows: Sequence[tuple[float, float, float, int]]
    colour: str
    linestyle: str | None = None


def curve_figure(
    curves: Sequence[Curve],
    *,
    title: str,
    train_scale: float | None = None,
    ylabel: str = "accuracy",
    figsize: tuple[float, float] = (4.8, 3.3),
) -> Figure:
    """Score against test scale, one line per curve (mean; a ± std band only with two or more seeds), the
    training scale dashed, on :func:`scale_axis`, the legend outside (:func:`legend_outside`).

    Every curve figure of scalebench is drawn here, so that they share ticks, labels and legend placement.
    """
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=figsize)
        ax = fig.add_subplot()
        used: dict[str, int] = {}
        ticks: set[float] = set()
        for curve in curves:
            style = curve.linestyle or _LINESTYLES[used.get(curve.colour, 0) % len(_LINESTYLES)]
            used[curve.colour] = used.get(curve.colour, 0) + 1
            scales, mean, std = (np.array([row[i] for row in curve.rows]) for i in range(3))
            n = curve.rows[0][3]
            ax.plot(
                scales, mean, ls=style, marker="o", ms=3.5, lw=1.4, color=curve.colour,
                label=curve.label + seeds_suffix(n),
            )  # fmt: skip
            if n > 1:
                ax.fill_between(scales, mean - std, mean + std, color=curve.colour, alpha=0.2, linewidth=0)
            ticks.update(scales.tolist())
        if train_scale is not None:
            ax.axvline(float(train_scale), color="0.4", ls="--", lw=0.8, label="training scale")
        scale_axis(ax, sorted(ticks), ylabel=ylabel)
        legend_outside(ax)
        ax.set_title(title, fontsize=8)
    return fig


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write a CSV (header + rows, '\\n' line ends) atomically; the data file beside every figure."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())
    return path


def curve_rows(results: Sequence[AnyRunResult]) -> list[tuple[float, float, float, int]]:
    """(scale, mean score, sample std, n seeds) per test scale over runs of one configuration."""
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


# --- the figures of one configuration ---------------------------------------------------------------------


def _curve_title(
    what: str, results: Sequence[AnyRunResult], counts: Sequence[int], train_scale: float
) -> str:
    return f"{what}, {_builds_label(results)}\ntrained at s = {train_scale:g}; {seeds_note(counts)}"


def _generalisation_curve_figure(results: Sequence[RunResult], *, title: str | None = None) -> Figure:
    rows = curve_rows(results)
    first = results[0]
    (label,) = legend_labels([results])
    curve = Curve(label, rows, model_colour(first.model.name))
    title = title or _curve_title(label, results, [len(results)], first.dataset.train_scale)
    return curve_figure([curve], title=title, train_scale=first.dataset.train_scale)


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
    return [*_save(_generalisation_curve_figure(results, title=title), stem), csv_path]


def selection_fractions(counts: Sequence[Sequence[int]]) -> np.ndarray:
    """Counts of winning channels (rows: test scales) as fractions of each row (rows sum to 1; empty rows 0)."""
    arr = np.asarray(counts, dtype=np.float64)
    totals = arr.sum(axis=1, keepdims=True)
    return np.divide(arr, totals, out=np.zeros_like(arr), where=totals > 0)


#: The colour bar of every scale-selection heatmap.
SELECTION_COLOURBAR_LABEL = "fraction of test images\nper test scale (rows sum to 1)"


def selection_axes(ax: Axes, frac: np.ndarray, test_scales: Sequence[float], sigmas: Sequence[float]) -> Any:
    """One scale-selection heatmap on ``ax`` (test scales as :func:`scale_tick_labels`); returns the image."""
    im = ax.imshow(frac, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(sigmas)), [f"{s:.2g}" for s in sigmas])
    ax.set_yticks(range(len(test_scales)), scale_tick_labels(test_scales))
    ax.set_xlabel("σ0 of the winning scale channel")
    return im


def _scale_selection_figure(result: RunResult, *, title: str | None = None) -> Figure:
    sel = result.scale_selection
    if sel is None:
        raise ScalebenchError(
            f"{result.model.name} reports no scale selection (only scale-channel models do); no heatmap to draw."
        )
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(4.2, 3.4))
        ax = fig.add_subplot()
        im = selection_axes(ax, selection_fractions(sel.counts), sel.test_scales, sel.channel_sigmas)
        ax.set_ylabel("test scale s")
        rho = "n/a" if sel.spearman_rho is None else f"{sel.spearman_rho:.2f}"
        slope = "n/a" if sel.slope_per_octave is None else f"{sel.slope_per_octave:.2f}"
        name = display_name(result.model)
        default = f"{name}, {_builds_label([result])}\nSpearman ρ = {rho}, slope = {slope} ch/octave (1 seed)"
        ax.set_title(title or default, fontsize=8)
        fig.colorbar(im, ax=ax, label=SELECTION_COLOURBAR_LABEL)
    return fig


def plot_scale_selection(result: RunResult, stem: str | Path, *, title: str | None = None) -> list[Path]:
    """Heatmap of the winning channel's σ0 per test scale, rows normalised to fractions.

    Writes ``<stem>.png``, ``<stem>.svg`` and ``<stem>.csv`` (one row per test scale and channel with the
    count and the fraction); returns their paths. Raises for a run without scale selection.
    """
    fig = _scale_selection_figure(result, title=title)
    sel = result.scale_selection
    assert sel is not None  # checked by _scale_selection_figure
    stem = Path(stem)
    frac = selection_fractions(sel.counts)
    csv_rows = [
        (s, j, sigma, int(sel.counts[i][j]), float(frac[i, j]))
        for i, s in enumerate(sel.test_scales)
        for j, sigma in enumerate(sel.channel_sigmas)
    ]
    csv_path = write_csv(
        stem.with_suffix(".csv"), ["test_scale", "channel", "sigma", "count", "fraction"], csv_rows
    )
    return [*_save(fig, stem), csv_path]


def _comparison_labels(groups: Mapping[str, Sequence[RunResult]]) -> list[str]:
    """Legend labels of :func:`plot_comparison`: a key that identifies its runs (model name or config hash)
    gives way to :func:`legend_labels`; any other key is the caller's label and is shown as it is."""
    derived = legend_labels(list(groups.values()))
    return [
        label if key in {i for r in runs for i in _model_ids(r)} else key
        for (key, runs), label in zip(groups.items(), derived, strict=True)
    ]


def _check_comparison(groups: Mapping[str, Sequence[RunResult]]) -> float:
    if not groups:
        raise ScalebenchError("No results to compare.")
    train_scales = {r.dataset.train_scale for runs in groups.values() for r in runs}
    if len(train_scales) != 1:
        raise ScalebenchError(
            f"Runs have different training scales {sorted(train_scales)}; compare one at a time."
        )
    return train_scales.pop()


def _comparison_figure(groups: Mapping[str, Sequence[RunResult]], *, title: str | None = None) -> Figure:
    train_scale = _check_comparison(groups)
    curves = [
        Curve(label, curve_rows(runs), model_colour(runs[0].model.name))
        for label, runs in zip(_comparison_labels(groups), groups.values(), strict=True)
    ]
    runs = [r for rs in groups.values() for r in rs]
    counts = [len(rs) for rs in groups.values()]
    title = title or _curve_title("Scale generalisation", runs, counts, train_scale)
    return curve_figure(curves, title=title, train_scale=train_scale)


def plot_comparison(
    groups: dict[str, Sequence[RunResult]], stem: str | Path, *, title: str | None = None
) -> list[Path]:
    """Overlay the generalisation curves of several models (key -> runs over seeds) in one figure.

    The legend names each group by :func:`legend_labels` when its key is the model name or a config hash of
    its runs, else by the key. Each model keeps its :func:`model_colour`; two or more seeds give a mean ± std
    band. All runs must share the training scale. Writes ``<stem>.png``, ``<stem>.svg`` and ``<stem>.csv``
    (one row per key and scale).
    """
    _check_comparison(groups)
    stem = Path(stem)
    csv_path = write_csv(
        stem.with_suffix(".csv"),
        ["model", "scale", "mean_accuracy", "std_accuracy", "n_seeds"],
        [(key, *row) for key, runs in groups.items() for row in curve_rows(runs)],
    )
    return [*_save(_comparison_figure(groups, title=title), stem), csv_path]
