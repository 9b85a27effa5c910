"""The curve figure: a task's score against test scale, one curve per model configuration.

One function, :func:`plot_curves`, draws every curve figure of scalebench: the curve of one run and of the
seeds of one configuration (``scalebench evaluate``), the demo's comparison (``make demo``), the paper figure
(``scalebench plot curves``, ``sweep collect``) and the segmentation mIoU curve (per run, over seeds, and
``scalebench leaderboard segmentation``). Only the metric (:data:`METRICS`), the CSV columns and the file
formats differ between them.

- Each curve is the mean over the seeds of one configuration (the runs that share
  :func:`scalebench.results.seedless_config_hash`), with a band of ± 1 sample standard deviation (ddof = 1)
  when it has two or more seeds (:func:`scalebench.results.metrics.mean_std` over the seeds, grouped by
  pandas in :func:`curve_table`, which is also the CSV beside the figure). An accuracy curve of one seed gets
  the 95 % Wilson interval of each accuracy instead (:func:`scalebench.results.metrics.wilson_interval`: the
  uncertainty from the test set's size), and an accuracy figure a dotted chance line at 1 / classes.
- The x axis is the test scale on a log2 axis (:func:`scalebench.figures.style.scale_axis`), y the score in
  [0, 1]; when every curve shares one training scale it is dashed. Accuracy curves need one training scale per
  figure; mIoU curves may compare training sets (Pintea et al., 2021, "Resolution learning in deep
  convolutional networks using scale-space theory", IEEE TIP 30: 8342-8353, Fig. 10), and their labels then
  name each curve's training set.
- Legends, titles, colours and files follow :mod:`scalebench.figures.style`.

The protocol is that of Jansson & Lindeberg (2022, "Scale-invariant scale-channel networks: deep networks that
generalise to previously unseen scales", JMIV 64(5): 506-536): train at one scale, test at scales 2^(k/4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from scalebench.checks import ScalebenchError
from scalebench.figures.style import (
    PAPER_FORMATS,
    RC,
    builds_label,
    curve_styles,
    legend_labels,
    legend_outside,
    run_ids,
    save_figure,
    scale_axis,
    seeds_note,
    seeds_suffix,
    train_label,
    write_csv,
)
from scalebench.results import AnyRunResult, metrics, seedless_config_hash, train_key


@dataclass(frozen=True)
class Metric:
    """What a curve figure plots: the per-scale score of one task (``per_scale[i].score`` of its results)."""

    #: the CSV's ``mean_<column>`` and ``std_<column>``
    column: str
    #: the y-axis label
    axis: str
    #: the default title of a figure with several curves
    title: str
    #: True: all curves of a figure share one training scale (else an error); False: they may differ
    one_training_set: bool
    #: True: a proportion of test images (correct / total): a one-seed curve gets its 95 % Wilson interval as
    #: its band, and the figure a chance line at 1 / number of classes
    proportion: bool = False


#: The metrics a curve figure draws, by name.
METRICS = {
    "accuracy": Metric(
        "accuracy", "accuracy", "Scale generalisation", one_training_set=True, proportion=True
    ),
    "miou": Metric("iou", "mIoU (object classes)", "mIoU against object scale", one_training_set=False),
}

#: CSV columns of each curve figure ("mean" and "std" become ``mean_<column>`` and ``std_<column>``):
#: a run's ``curve.csv`` and its seeds', the demo's, the paper figure's and the mIoU figure's.
RUN_CURVE_COLUMNS = ("model", "dataset", "train_scale", "scale", "mean", "std", "n_seeds")
DEMO_CURVE_COLUMNS = ("model", "scale", "mean", "std", "n_seeds")
PAPER_CURVE_COLUMNS = (
    "model",
    "config_hash",
    "dataset",
    "train_scale",
    "scale",
    "mean",
    "std",
    "n_seeds",
    "label",
)
MIOU_COLUMNS = ("model", "train_scales", "config_hash", "seeds", "scale", "mean", "std", "n_seeds")

#: Runs of a figure: results files (grouped by :func:`group_runs`), or the caller's groups (label -> runs).
Runs = Sequence[AnyRunResult] | Mapping[str, Sequence[AnyRunResult]]


def group_by_config(results: Sequence[AnyRunResult]) -> list[list[AnyRunResult]]:
    """Runs grouped by configuration (every field but the seed: :func:`seedless_config_hash`), in first-seen
    order, each group sorted by seed."""
    groups: dict[str, list[AnyRunResult]] = {}
    for r in results:
        groups.setdefault(seedless_config_hash(r), []).append(r)
    return [sorted(g, key=lambda r: r.seed) for g in groups.values()]


def group_runs(
    results: Sequence[AnyRunResult], *, labels: Mapping[str, str] | None = None
) -> dict[str, list[AnyRunResult]]:
    """Runs grouped by configuration (:func:`group_by_config`), keyed by their legend label
    (:func:`scalebench.figures.style.legend_labels`; ``labels`` overrides), ordered by model name, then
    config hash.

    Raises when there are no runs, or when one configuration holds the same seed twice.
    """
    if not results:
        raise ScalebenchError("No results to plot; give results files or a --store with runs.")
    ordered = sorted(group_by_config(results), key=lambda g: (g[0].model.name, seedless_config_hash(g[0])))
    for runs in ordered:
        seeds = [r.seed for r in runs]
        if len(set(seeds)) != len(seeds):
            raise ScalebenchError(
                f"{runs[0].model.name} (config {seedless_config_hash(runs[0])[:8]}) has seed "
                f"{max(seeds, key=seeds.count)} twice; give each run once."
            )
    names = legend_labels(ordered, labels=labels)
    if len(set(names)) != len(names):
        raise ScalebenchError(
            f"Two curves would share a legend label ({names}); give distinct --label names."
        )
    return dict(zip(names, ordered, strict=True))


def _caller_groups(
    groups: Mapping[str, Sequence[AnyRunResult]], labels: Mapping[str, str] | None
) -> dict[str, list[AnyRunResult]]:
    """The caller's groups relabelled: a key that names its runs (:func:`run_ids`) gives way to
    :func:`legend_labels` (``labels`` overrides); any other key is the caller's label and is kept."""
    if not groups or not all(groups.values()):
        raise ScalebenchError("No results to plot: every group needs at least one run.")
    derived = legend_labels(list(groups.values()), labels=labels)
    return {
        label if key in {i for r in runs for i in run_ids(r)} else key: list(runs)
        for (key, runs), label in zip(groups.items(), derived, strict=True)
    }


def check_one_configuration(label: str, runs: Sequence[AnyRunResult]) -> None:
    """The runs of one curve are seeds of one configuration: one :func:`seedless_config_hash`, which covers
    the test scales, so that the seeds share their x values."""
    if not runs:
        raise ScalebenchError("No results to draw a curve from.")
    hashes = sorted({seedless_config_hash(r) for r in runs})
    if len(hashes) > 1:
        raise ScalebenchError(
            f"The runs of curve {label!r} are not the seeds of one configuration (seedless config hashes "
            f"{', '.join(hashes)}); give each configuration its own curve."
        )


def scores_table(groups: Mapping[str, Sequence[AnyRunResult]]) -> pd.DataFrame:
    """The long table of a figure: one row per run and test scale, with the curve's index and label, the
    configuration (model, seedless config hash, build id as ``dataset``, training set), the seed, the scale
    and the score. A curve's runs must be the seeds of one configuration."""
    rows = []
    for curve, (label, runs) in enumerate(groups.items()):
        check_one_configuration(label, runs)
        first = runs[0]
        key = train_key(first)
        config = {
            "curve": curve,
            "label": label,
            "model": first.model.name,
            "config_hash": seedless_config_hash(first),
            "dataset": first.dataset.build_id,
            "train_scale": key[0] if len(key) == 1 else None,
            "train_scales": train_label(key),
        }
        rows += [
            {**config, "seed": r.seed, "scale": s, "score": p.score}
            for r in runs
            for s, p in zip(first.scales, r.per_scale, strict=True)
        ]
    return pd.DataFrame(rows)


def _seed_mean(scores: pd.Series) -> float:
    return metrics.mean_std(scores.tolist())[0]


def _seed_std(scores: pd.Series) -> float:
    return metrics.mean_std(scores.tolist())[1]


def curve_table(groups: Mapping[str, Sequence[AnyRunResult]]) -> pd.DataFrame:
    """One row per curve and test scale: the configuration columns of :func:`scores_table`, ``seeds`` (the
    seeds, space-separated), ``mean``, ``std`` and ``n_seeds``. The long table is grouped by pandas; the mean
    and the sample std (ddof = 1; 0.0 for one seed) are :func:`scalebench.results.metrics.mean_std`, the one
    definition the leaderboard's tables use too."""
    long = scores_table(groups)
    config = ("label", "model", "config_hash", "dataset", "train_scale", "train_scales")
    return (
        long.groupby(["curve", "scale"], sort=False)
        .agg(
            **{c: (c, "first") for c in config},
            seeds=("seed", lambda s: " ".join(map(str, s))),
            mean=("score", _seed_mean),
            std=("score", _seed_std),
            n_seeds=("score", "size"),
        )
        .reset_index()
    )


def curve_rows(results: Sequence[AnyRunResult]) -> list[tuple[float, float, float, int]]:
    """(scale, mean score, sample std, n seeds) per test scale over the runs of one configuration
    (:func:`curve_table`); the leaderboard's tables use it too."""
    table = curve_table({"": results})
    return [
        (float(s), float(m), float(sd), int(n))
        for s, m, sd, n in table[["scale", "mean", "std", "n_seeds"]].itertuples(index=False)
    ]


def _one(values: set, what: str, fix: str) -> object:
    if len(values) != 1:
        raise ScalebenchError(f"The runs have several {what} {sorted(values)}; {fix}")
    return next(iter(values))


def labelled_groups(
    runs: Runs, metric: Metric, labels: Mapping[str, str] | None
) -> tuple[dict[str, list[AnyRunResult]], tuple[float, ...] | None]:
    """The labelled groups of a figure and their one training set (None where curves differ in it)."""
    groups = _caller_groups(runs, labels) if isinstance(runs, Mapping) else group_runs(runs, labels=labels)
    flat = [r for g in groups.values() for r in g]
    _one({r.dataset.name for r in flat}, "datasets", "plot one dataset at a time (--dataset).")
    keys = {train_key(r) for r in flat}
    if metric.one_training_set:
        _one(keys, "training scales", "plot one training scale at a time.")
    return groups, next(iter(keys)) if len(keys) == 1 else None


def _metric(name: str) -> Metric:
    if name not in METRICS:
        raise ScalebenchError(f"Unknown metric {name!r}. Valid values are {sorted(METRICS)}.")
    return METRICS[name]


def curves_figure(
    runs: Runs, *, metric: str = "accuracy", title: str | None = None, labels: Mapping[str, str] | None = None
) -> Figure:
    """The figure of :func:`plot_curves` (see there), without writing it."""
    spec = _metric(metric)
    groups, train = labelled_groups(runs, spec, labels)
    return _draw(groups, curve_table(groups), train, spec, title)


def _draw(
    groups: Mapping[str, Sequence[AnyRunResult]],
    table: pd.DataFrame,
    train: tuple[float, ...] | None,
    spec: Metric,
    title: str | None,
) -> Figure:
    """Mean per curve (its band: :func:`_band`), the training scale dashed, chance dotted, legend outside."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(4.8, 3.3))
        ax = fig.add_subplot()
        styles = curve_styles([members[0].model.name for members in groups.values()])
        for (label, members), (_, rows), (colour, style) in zip(
            groups.items(), table.groupby("curve", sort=False), styles, strict=True
        ):
            ax.plot(
                rows["scale"],
                rows["mean"],
                ls=style,
                marker="o",
                ms=3.5,
                lw=1.4,
                color=colour,
                label=label + seeds_suffix(len(members)),
            )
            band = _band(members, rows, spec)
            if band is not None:
                ax.fill_between(rows["scale"], *band, color=colour, alpha=0.2, linewidth=0)
        if train is not None and len(train) == 1:
            ax.axvline(train[0], color="0.4", ls="--", lw=0.8, label="training scale")
        classes = {r.dataset.num_classes for g in groups.values() for r in g} if spec.proportion else set()
        if len(classes) == 1:
            k = classes.pop()
            ax.axhline(1 / k, color="0.6", ls=":", lw=0.8, label=f"chance (1/{k})")
        scale_axis(ax, sorted(set(table["scale"])), ylabel=spec.axis)
        legend_outside(ax)
        what = next(iter(groups)) if len(groups) == 1 else spec.title
        trained = f"trained at s = {train_label(train)}; " if train is not None else ""
        counts = [len(g) for g in groups.values()]
        runs = [r for g in groups.values() for r in g]
        note = seeds_note(counts, interval=spec.proportion)
        ax.set_title(title or f"{what}, {builds_label(runs)}\n{trained}{note}", fontsize=8)
    return fig


def _band(members: Sequence[AnyRunResult], rows: pd.DataFrame, spec: Metric) -> tuple[list, list] | None:
    """A curve's band: ± 1 std over two or more seeds; for one seed of a proportion, its 95 % Wilson interval
    per test scale (:func:`scalebench.results.metrics.wilson_interval`); else none."""
    if len(members) > 1:
        return list(rows["mean"] - rows["std"]), list(rows["mean"] + rows["std"])
    if not spec.proportion:
        return None
    bounds = [metrics.wilson_interval(p.correct, p.total) for p in members[0].per_scale]
    return [lo for lo, _ in bounds], [hi for _, hi in bounds]


def plot_curves(
    runs: Runs,
    stem: str | Path,
    *,
    metric: str = "accuracy",
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
    columns: Sequence[str] = PAPER_CURVE_COLUMNS,
    formats: Sequence[str] = PAPER_FORMATS,
) -> list[Path]:
    """Draw ``metric`` (a key of :data:`METRICS`) against test scale, one curve per configuration.

    ``runs``: results (grouped by :func:`group_runs`, labelled by
    :func:`scalebench.figures.style.legend_labels`; ``labels`` overrides: ``{model name or config hash (or a
    prefix of one): shown name}``), or the caller's groups ``{key: runs of one configuration}``, where a key
    that is not the model name or a config hash of its runs is shown as the label. All runs must share the
    dataset, and for accuracy the training scale.

    Writes ``<stem>.<format>`` for each of ``formats`` and ``<stem>.csv`` with ``columns`` (one row per curve
    and test scale: the :func:`curve_table`); returns their paths in that order.
    """
    spec = _metric(metric)
    groups, train = labelled_groups(runs, spec, labels)
    table = curve_table(groups)
    fig = _draw(groups, table, train, spec, title)
    renamed = {"mean": f"mean_{spec.column}", "std": f"std_{spec.column}"}
    csv_path = write_csv(table.rename(columns=renamed)[[renamed.get(c, c) for c in columns]], stem)
    return [*save_figure(fig, stem, formats=formats), csv_path]
