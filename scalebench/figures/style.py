"""The style every scalebench figure shares: rc parameters, fixed metadata, colours, saving, the test-scale axis
and the labels (builds, models, configurations, seeds).

- Reproducible files: :func:`save_figure` writes through matplotlib's object API under :data:`RC` (a fixed
  SVG hash salt) with :data:`METADATA` (no creation date, no software version), so that the same numbers give
  byte-identical PNG, SVG and PDF files; :func:`write_csv` writes the table a figure was drawn from.
- One resolution (:data:`DPI`, 300) and one test-scale axis (:func:`scale_axis`: log2, ticked at the test
  scales with :data:`SCALE_FORMAT`).
- Colours: the colour-blind-safe palette of Okabe & Ito (2008, "Color universal design", J*FLY), one fixed
  colour per model name (:func:`model_colour`, also used by the leaderboard site), moved within one figure to a
  colour no other model of it has while one is free (:func:`curve_styles`); a later curve of the same colour is
  dashed, then dotted (:data:`LINESTYLES`).
- Labels: legends name models by their card's display name and tell configurations of one model apart by how
  they differ from the card's defaults, never by a hash (:func:`legend_labels`); legends sit outside the axes
  (:func:`legend_outside`); titles name the dataset build (:func:`build_label`) and the seeds
  (:func:`seeds_note`: "± std" only where a curve has two or more seeds).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend import Legend

from scalebench.checks import ScalebenchError
from scalebench.fileio import write_bytes_atomic, write_text_atomic
from scalebench.results import (
    AnyRunResult,
    DatasetInfo,
    ModelInfo,
    SegmentationDatasetInfo,
    seedless_config_hash,
    train_key,
)

if TYPE_CHECKING:
    import pandas as pd

#: Okabe & Ito (2008) colour-blind-safe palette, in a fixed order.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

#: Resolution of every PNG (per-run, demo, segmentation and paper figures).
DPI = 300

#: The files of a run's figures, and of the paper figures (``scalebench plot``, ``sweep collect``).
RUN_FORMATS = ("png", "svg")
PAPER_FORMATS = ("pdf", "svg", "png")

#: Tick labels of every test-scale axis: three significant digits (0.5, 0.595, 0.707, 0.841, 1, 1.19, ...).
SCALE_FORMAT = ".3g"

SCALE_AXIS_LABEL = "test scale s (log2 axis)"

#: rc parameters of every figure, while drawing and while saving.
RC = {
    "svg.hashsalt": "scalebench",
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

#: Metadata that would differ between runs (dates, software versions), blanked in every format.
METADATA = {
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
    "svg": {"Date": None, "Creator": None},
    "png": {"Software": None},
}

#: Line styles of the curves that share a colour, in order.
LINESTYLES = ("-", "--", ":", "-.")

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


def curve_styles(models: Sequence[str]) -> list[tuple[str, str]]:
    """(colour, line style) of each curve of one figure, given the model name of each curve.

    A model keeps its fixed colour (:func:`model_colour`) unless another model of the figure already has it;
    it then takes the first palette colour no model of the figure uses yet, so that up to eight models get
    eight colours. Curves that share a colour (configurations of one model, or models beyond the eighth) are
    told apart by line style (:data:`LINESTYLES`), in order.

    Example:
        >>> [c for c, _ in curve_styles(["a", "a", "b"])][:2] == [model_colour("a")] * 2
        True
        >>> [style for _, style in curve_styles(["a", "a"])]
        ['-', '--']
    """
    colour_of: dict[str, str] = {}
    for model in dict.fromkeys(models):
        taken = set(colour_of.values())
        free = [c for c in OKABE_ITO if c not in taken]
        preferred = model_colour(model)
        colour_of[model] = preferred if preferred not in taken or not free else free[0]
    used: dict[str, int] = {}
    styles = []
    for model in models:
        colour = colour_of[model]
        styles.append((colour, LINESTYLES[used.get(colour, 0) % len(LINESTYLES)]))
        used[colour] = used.get(colour, 0) + 1
    return styles


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


def builds_label(results: Sequence[AnyRunResult]) -> str:
    """:func:`build_label` of the runs of a figure; several builds are joined with "; "."""
    seen = dict.fromkeys(build_label(r.dataset, r.limit) for r in results)
    return "; ".join(seen)


def train_label(key: Sequence[float]) -> str:
    """A training set as labels write it: its scales joined by "+".

    Example:
        >>> train_label((1.0,)), train_label((1.0, 2.0, 3.0, 4.0))
        ('1', '1+2+3+4')
    """
    return "+".join(f"{s:g}" for s in key)


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


def select_runs(
    runs: Sequence[AnyRunResult], *, models: Sequence[str] = (), presets_only: bool = False
) -> list[AnyRunResult]:
    """The runs of one figure: those of ``models`` (names or fnmatch patterns; all when empty) and, with
    ``presets_only``, only each model's preset configurations (:func:`config_note` "default" or "quick") tested
    on their trained channels, which leaves out ``--model-config`` variants and densified runs. A pattern that
    matches no run, or a selection that keeps none, is one error naming the models there are.

    Example:
        >>> select_runs([], models=["gauss*"])  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        scalebench.checks.ScalebenchError: --models 'gauss*' matches no model ...
    """
    import fnmatch

    have = sorted({r.model.name for r in runs})
    for pattern in models:
        if not fnmatch.filter(have, pattern):
            raise ScalebenchError(f"--models {pattern!r} matches no model of these runs; they hold: {have}.")
    chosen = [
        r for r in runs
        if (not models or any(fnmatch.fnmatchcase(r.model.name, p) for p in models))
        and (not presets_only or (getattr(r, "test_channels", None) is None
                                  and config_note(r.model.card, r.model.config) in ("default", "quick")))
    ]  # fmt: skip
    if not chosen:
        raise ScalebenchError(
            f"No run is left to plot after --models {','.join(models) or '*'}"
            + (" --presets-only" if presets_only else "")
            + f"; the runs hold: {have}."
        )
    return chosen


def run_ids(run: AnyRunResult) -> tuple[str, ...]:
    """The keys that name ``run`` in a ``labels`` override: its model name, its seedless config hash (the
    CSVs' ``config_hash``) and its own ``model.config_hash``."""
    return (run.model.name, seedless_config_hash(run), run.model.config_hash)


def _overrides(
    groups: Sequence[Sequence[AnyRunResult]], labels: Mapping[str, str]
) -> tuple[dict[str, str], dict[int, str]]:
    """Split ``labels`` into model name -> shown name, and group index -> whole label (a config hash key).

    A key is a registered model name of the figure, or a config hash or a prefix of one (:func:`run_ids`)
    that names exactly one group.
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
            if key and any(h.startswith(key.lower()) for r in g for h in run_ids(r)[1:])
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
    lambda r: f"train s={train_label(train_key(r))}",
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


def _config_notes(firsts: Sequence[AnyRunResult], out: list[str]) -> None:
    """Append to ``out[i]`` how its configuration differs, where one model appears with several configs."""
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


def legend_labels(
    groups: Sequence[Sequence[AnyRunResult]], *, labels: Mapping[str, str] | None = None
) -> list[str]:
    """One legend label per group of runs (the seeds of one configuration), never a config hash.

    The card's display name (:func:`display_name`); when a figure holds several configurations of one model,
    followed by :func:`config_note` in brackets ("GaussDerNet (quick)", "GaussDerNet (widths=[8, 8, 12, 12])"),
    or by the config keys in which they differ when the card has no defaults. Labels still equal after that
    get the first of training set, build id, preset, epochs, training-set size and ``--limit`` that tells them
    apart, in square brackets. ``labels`` overrides: a registered model name -> the name shown in place of the
    display name (notes still follow), a config hash or a prefix of one -> the whole label. A key that names
    no group is an error listing the valid keys.
    """
    firsts = [g[0] for g in groups]
    names, whole = _overrides(groups, labels or {})
    out = [names.get(r.model.name) or display_name(r.model) for r in firsts]
    _config_notes(firsts, out)
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


def seeds_note(counts: Sequence[int], *, interval: bool = False) -> str:
    """What a title says about the seeds of its curves: "± std" only where some curve has two or more, and
    with ``interval`` (a one-seed accuracy curve's band) the 95 % Wilson interval where a curve has one.

    Example:
        >>> seeds_note([3]), seeds_note([1]), seeds_note([1, 1]), seeds_note([3, 1])
        ('mean ± std over 3 seeds', '1 seed', '1 seed each', 'mean ± std over seeds where n ≥ 2')
        >>> seeds_note([1], interval=True), seeds_note([3, 1], interval=True)
        ('1 seed, band: 95 % Wilson interval', 'mean ± std where n ≥ 2, else 95 % Wilson interval')
    """
    if all(n <= 1 for n in counts):
        note = "1 seed" if len(counts) == 1 else "1 seed each"
        return f"{note}, band: 95 % Wilson interval" if interval else note
    if len(set(counts)) == 1:
        return f"mean ± std over {counts[0]} seeds"
    return (
        "mean ± std where n ≥ 2, else 95 % Wilson interval"
        if interval
        else "mean ± std over seeds where n ≥ 2"
    )


# --- axes, saving, tables ---------------------------------------------------------------------------------


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


def save_figure(
    fig: Figure, stem: str | Path, *, formats: Sequence[str] = RUN_FORMATS, dpi: int = DPI
) -> list[Path]:
    """Write ``fig`` as ``<stem>.<format>`` for each of ``formats`` (png, svg, pdf; raster at ``dpi``),
    atomically, with :data:`METADATA` and under :data:`RC`, so that the same figure gives byte-identical files.

    The format is appended to the name (``a.v2`` -> ``a.v2.png``). Returns the paths in the order of
    ``formats``.
    """
    stem = Path(stem)
    paths = []
    for fmt in formats:
        buf = io.BytesIO()
        with matplotlib.rc_context(RC):
            fig.savefig(buf, format=fmt, dpi=dpi, metadata=METADATA[fmt], bbox_inches="tight")
        path = stem.parent / f"{stem.name}.{fmt}"
        write_bytes_atomic(path, buf.getvalue())
        paths.append(path)
    return paths


def write_csv(table: pd.DataFrame, stem: str | Path) -> Path:
    """Write ``table`` as ``<stem>.csv`` (header, no index, '\\n' line ends, floats as ``repr`` gives them),
    atomically: the data file beside every figure. Returns its path."""
    stem = Path(stem)
    path = stem.parent / f"{stem.name}.csv"
    write_text_atomic(path, table.to_csv(index=False, lineterminator="\n"))
    return path
