"""Figures of the segmentation track (issue 6), drawn like the classification figures (same palette, fixed
metadata, 300-dpi PNG + SVG beside a CSV of the plotted numbers, legends outside the axes, titles naming the
dataset build by :func:`scalebench.benchmark.figures.build_label`):

- mIoU against object scale, one line per configuration (model and training set; mean ± std band over
  two or more seeds), as Fig. 10 of Pintea et al. (2021, IEEE TIP 30: 8342-8353), on the test-scale axis of
  the classification curves (:func:`scalebench.benchmark.figures.curve_figure`);
- the learned σ per N-Jet layer (forward order: encoder then decoder), one line per run;
- a triptych per test scale: input, prediction and ground truth of one test image (ignored pixels grey).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from scalebench.benchmark.figures import (
    _RC,
    Curve,
    _builds_label,
    _save,
    curve_figure,
    curve_rows,
    display_name,
    legend_outside,
    model_colour,
    seeds_note,
    write_csv,
)
from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.segmentation import IGNORE_INDEX
from scalebench.results import SegmentationRunResult, seedless_config_hash

#: Background black, ten class colours, and (index 11) grey for ignored pixels.
_MASK_COLOURS = [
    "#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
    "#56B4E9", "#F0E442", "#8C510A", "#B2182B", "#FFFFFF", "#888888",
]  # fmt: skip


_LINESTYLES = ("-", "--", ":", "-.")


def _label(r: SegmentationRunResult) -> str:
    epochs = r.training.recipe.get("epochs")
    return (
        f"{display_name(r.model)}, train s={'+'.join(f'{s:g}' for s in r.dataset.train_scales)}, {epochs} ep"
    )


def group_by_config(results: Sequence[SegmentationRunResult]) -> list[list[SegmentationRunResult]]:
    """Runs grouped by configuration (every field but the seed: :func:`seedless_config_hash`), in first-seen
    order, each group sorted by seed."""
    groups: dict[str, list[SegmentationRunResult]] = {}
    for r in results:
        groups.setdefault(seedless_config_hash(r), []).append(r)
    return [sorted(g, key=lambda r: r.seed) for g in groups.values()]


def _miou_figure(groups: Sequence[list[SegmentationRunResult]], *, title: str | None = None) -> Figure:
    curves = [
        Curve(_label(runs[0]), curve_rows(runs), model_colour(runs[0].model.name), _LINESTYLES[k % 4])
        for k, runs in enumerate(groups)
    ]
    results = [r for runs in groups for r in runs]
    default = f"mIoU against object scale, {_builds_label(results)}\n{seeds_note([len(g) for g in groups])}"
    return curve_figure(curves, title=title or default, ylabel="mIoU (object classes)")


def plot_miou_vs_scale(
    results: Sequence[SegmentationRunResult], stem: str | Path, *, title: str | None = None
) -> list[Path]:
    """mIoU against test object scale, one line per configuration; the seeds of one configuration give the
    mean and, with two or more, a ± sample-std band (:func:`scalebench.benchmark.figures.curve_rows`, as the
    classification curve). Writes ``<stem>.png/.svg/.csv``; the CSV has one row per configuration and scale."""
    if not results:
        raise ScalebenchError("No segmentation results to plot.")
    stem = Path(stem)
    groups = group_by_config(results)
    rows = [(runs[0].model.name, "+".join(f"{s:g}" for s in runs[0].dataset.train_scales),
             seedless_config_hash(runs[0]), " ".join(str(r.seed) for r in runs), *row)
            for runs in groups for row in curve_rows(runs)]  # fmt: skip
    header = ["model", "train_scales", "config_hash", "seeds", "scale", "mean_iou", "std_iou", "n_seeds"]
    csv_path = write_csv(stem.with_suffix(".csv"), header, rows)
    return [*_save(_miou_figure(groups, title=title), stem), csv_path]


def _sigmas_figure(runs: Sequence[SegmentationRunResult], *, title: str | None = None) -> Figure:
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(4.8, 3.3))
        ax = fig.add_subplot()
        for k, r in enumerate(runs):
            layers = np.arange(1, len(r.learned_sigmas) + 1)
            ax.plot(layers, r.learned_sigmas, marker="o", ms=3.5, color=model_colour(r.model.name),
                    linestyle=_LINESTYLES[k % 4], label=f"{_label(r)}, seed {r.seed}")  # fmt: skip
        ax.axhline(1.0, color="#888888", linewidth=0.6, linestyle=":")
        ax.set_xticks(range(1, max(len(r.learned_sigmas) for r in runs) + 1))
        ax.set_xlabel("N-Jet layer (encoder, then decoder)")
        ax.set_ylabel("learned σ (px)")
        legend_outside(ax)
        ax.set_title(
            title or f"Learned σ per N-Jet layer, {_builds_label(runs)}\none line per run", fontsize=8
        )
    return fig


def plot_sigmas(
    results: Sequence[SegmentationRunResult], stem: str | Path, *, title: str | None = None
) -> list[Path]:
    """Learned σ per N-Jet layer, one line per run that has N-Jet layers; writes PNG, SVG and CSV."""
    runs = [r for r in results if r.learned_sigmas]
    if not runs:
        raise ScalebenchError("None of these runs has learned sigmas (no N-Jet layers).")
    stem = Path(stem)
    rows = [(r.model.name, "+".join(f"{s:g}" for s in r.dataset.train_scales), r.seed, i + 1, s)
            for r in runs for i, s in enumerate(r.learned_sigmas)]  # fmt: skip
    csv_path = write_csv(stem.with_suffix(".csv"), ["model", "train_scales", "seed", "layer", "sigma"], rows)
    return [*_save(_sigmas_figure(runs, title=title), stem), csv_path]


def _colour_mask(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.int64).copy()
    m[m == IGNORE_INDEX] = len(_MASK_COLOURS) - 1
    return m


def plot_triptych(
    model: torch.nn.Module, test_sets: Mapping[float, Any], stem: str | Path, *, device: torch.device | None = None,
    index: int = 0, title: str | None = None,
) -> list[Path]:  # fmt: skip
    """Input / prediction / ground truth of test image ``index`` at every scale (one row per scale), under
    ``title`` (:func:`plot_run_figures` gives the model and :func:`scalebench.benchmark.figures.build_label`)."""
    stem = Path(stem)
    cmap = ListedColormap(_MASK_COLOURS)
    device = device or torch.device("cpu")
    model.eval()
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.0, 2.0 * len(test_sets)))
        axes = fig.subplots(len(test_sets), 3, squeeze=False)
        for row, (scale, ds) in enumerate(sorted(test_sets.items())):
            x, y = ds.read_batch([min(index, len(ds) - 1)])
            with torch.no_grad():
                pred = model(x.to(device)).argmax(1).cpu()[0].numpy()
            panels = [(x[0, 0].numpy(), "gray", f"input, s={scale:g}"), (pred, cmap, "prediction"),
                      (_colour_mask(y[0].numpy()), cmap, "ground truth (grey: ignored)")]  # fmt: skip
            for col, (img, cm, title) in enumerate(panels):
                ax = axes[row][col]
                kw = {"vmin": 0, "vmax": len(_MASK_COLOURS) - 1} if cm is cmap else {"vmin": 0, "vmax": 1}
                ax.imshow(img, cmap=cm, interpolation="nearest", **kw)
                ax.set_title(title, fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
        if title:
            fig.suptitle(title, fontsize=9)
    return _save(fig, stem)


def plot_run_figures(
    result: SegmentationRunResult, model: torch.nn.Module, test_sets: Mapping[float, Any], run_dir: Path,
    *, device: torch.device | None = None,
) -> list[Path]:  # fmt: skip
    """The figures of one run: ``miou_vs_scale``, ``sigmas`` (N-Jet models) and ``triptych``."""
    paths = plot_miou_vs_scale([result], run_dir / "miou_vs_scale")
    if result.learned_sigmas:
        paths += plot_sigmas([result], run_dir / "sigmas")
    title = f"{display_name(result.model)}, {_builds_label([result])}"
    paths += plot_triptych(model, test_sets, run_dir / "triptych", device=device, title=title)
    return paths
