"""The field at a glance: every configuration of one board as a row, ranked by its mean accuracy over the test
scales, beside its worst / train-scale ratio.

A curve figure with twenty models is a tangle; this figure shows each configuration as a point (the mean over
its seeds) with a bar of ± 1 sample standard deviation over the seeds (ddof = 1, drawn only where a row has two
or more seeds), in two panels that share the rows:

- **mean accuracy over the test scales** (:attr:`~scalebench.results.ClassificationSummary.mean_accuracy`), the
  board's ranking key;
- **worst / train-scale accuracy** (``generalisation_ratio``): 1 for a network whose accuracy at its worst test
  scale equals that at the training scale (Jansson & Lindeberg 2022, JMIV 64(5): 506-536, use the accuracy over
  the test range for the same purpose).

Runs trained with scale augmentation (their recipe records ``scale_augmentation``: the board's augmented track)
are drawn with open markers and say so in their label, so that they are never read as single-scale results.
Rows, labels and colours (:func:`~scalebench.figures.style.curve_styles`, as in the curve figure of the same
runs) follow :mod:`scalebench.figures.style` (:func:`~scalebench.figures.curves.group_runs`
groups the seeds of one configuration); the table beside the figure (:func:`summary_table`, one row per run) is
what it was drawn from. Seaborn draws the points and bars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from scalebench.checks import ScalebenchError
from scalebench.figures.curves import METRICS, Runs, check_one_configuration, labelled_groups
from scalebench.figures.style import (
    PAPER_FORMATS,
    RC,
    builds_label,
    curve_styles,
    save_figure,
    seeds_note,
    seeds_suffix,
    train_label,
    write_csv,
)
from scalebench.results import AnyRunResult, metrics, seedless_config_hash

#: The two panels: (summary field, axis label).
PANELS = (
    ("mean_accuracy", "mean accuracy over the test scales"),
    ("generalisation_ratio", "worst / train-scale accuracy"),
)

#: The summary needs one dataset and one training scale, as an accuracy curve figure does.
_ACCURACY = METRICS["accuracy"]

#: CSV columns of the summary figure (one row per run).
SUMMARY_COLUMNS = (
    "label",
    "model",
    "config_hash",
    "augmented",
    "seed",
    "mean_accuracy",
    "generalisation_ratio",
)


def _augmented(run: AnyRunResult) -> bool:
    return bool(run.training.recipe.get("scale_augmentation"))


def summary_table(groups: Mapping[str, Sequence[AnyRunResult]]) -> pd.DataFrame:
    """One row per run: the row label, model, seedless config hash, whether it trained with scale augmentation,
    the seed and the two summary numbers; rows ordered best first by the mean over seeds of the mean accuracy
    (:func:`scalebench.results.metrics.mean_std`), ties by label."""
    rows = []
    for label, runs in groups.items():
        check_one_configuration(label, runs)
        if getattr(runs[0], "task", "classification") != "classification":
            raise ScalebenchError(
                "The summary figure draws classification results; give a classification board."
            )
        tag = (" (scale-augmented training)" if _augmented(runs[0]) else "") + seeds_suffix(len(runs))
        rows += [
            {"label": label + tag, "model": r.model.name, "config_hash": seedless_config_hash(r),
             "augmented": _augmented(r), "seed": r.seed, "mean_accuracy": r.summary.mean_accuracy,
             "generalisation_ratio": r.summary.generalisation_ratio}
            for r in runs
        ]  # fmt: skip
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    order = table.groupby("label", sort=False)["mean_accuracy"].agg(lambda s: metrics.mean_std(s.tolist())[0])
    ranked = sorted(order.index, key=lambda label: (-order[label], label))
    rank = {label: i for i, label in enumerate(ranked)}
    return table.sort_values(
        ["label", "seed"], key=lambda c: c.map(rank) if c.name == "label" else c
    ).reset_index(drop=True)


def summary_figure(
    runs: Runs, *, title: str | None = None, labels: Mapping[str, str] | None = None
) -> Figure:
    """The figure of :func:`plot_summary` (see there), without writing it."""
    groups, train = labelled_groups(runs, _ACCURACY, labels)
    return _draw(groups, summary_table(groups), train, title)


def _draw(
    groups: Mapping[str, Sequence[AnyRunResult]],
    table: pd.DataFrame,
    train: tuple[float, ...] | None,
    title: str | None,
) -> Figure:
    order = list(dict.fromkeys(table["label"]))
    models = [runs[0].model.name for runs in groups.values()]  # the curve figure's order: the same colours
    colour_of = {model: colour for model, (colour, _) in zip(models, curve_styles(models), strict=True)}
    colours = {label: colour_of[model] for label, model in zip(table["label"], table["model"], strict=True)}
    augmented = dict(zip(table["label"], table["augmented"], strict=True))
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(7.2, 0.8 + 0.24 * len(order)), layout="constrained")
        axes = fig.subplots(1, len(PANELS), sharey=True)
        for ax, (column, axis_label) in zip(axes, PANELS, strict=True):
            for filled in (True, False):
                part = table[table["augmented"] != filled]
                if part.empty:
                    continue
                sns.pointplot(
                    data=part, x=column, y="label", hue="label", order=order, palette=colours, errorbar="sd",
                    linestyle="none", markers="o", markersize=4, err_kws={"linewidth": 1.2}, legend=False,
                    ax=ax, markerfacecolor=None if filled else "white",
                )  # fmt: skip
            ax.set_xlabel(axis_label)
            ax.set_ylabel("")
            ax.set_xlim(0, 1.02)
            ax.grid(axis="x", color="0.9", lw=0.6)
            ax.set_axisbelow(True)
        axes[0].tick_params(axis="y", labelsize=7)
        for tick in axes[0].get_yticklabels():
            if augmented.get(tick.get_text()):
                tick.set_fontstyle("italic")
        flat = [r for g in groups.values() for r in g]
        trained = f"trained at s = {train_label(train)}; " if train is not None else ""
        note = seeds_note([len(g) for g in groups.values()])
        fig.suptitle(title or f"The field, {builds_label(flat)}\n{trained}{note}", fontsize=8)
    return fig


def plot_summary(
    runs: Runs,
    stem: str | Path,
    *,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
    formats: Sequence[str] = PAPER_FORMATS,
) -> list[Path]:
    """Draw every configuration of ``runs`` (one dataset, one training scale) as a row: its mean accuracy over
    the test scales and its worst / train-scale ratio, mean ± sd over seeds, best first (see the module
    docstring). ``runs`` and ``labels`` as for :func:`scalebench.figures.curves.plot_curves`.

    Writes ``<stem>.<format>`` for each of ``formats`` and ``<stem>.csv`` (:func:`summary_table`, columns
    :data:`SUMMARY_COLUMNS`); returns their paths in that order.
    """
    groups, train = labelled_groups(runs, _ACCURACY, labels)
    table = summary_table(groups)
    fig = _draw(groups, table, train, title)
    return [*save_figure(fig, stem, formats=formats), write_csv(table[list(SUMMARY_COLUMNS)], stem)]
