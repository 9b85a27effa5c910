"""What only the segmentation track draws: the learned σ per N-Jet layer and the triptych of a test image.

Its mIoU-against-scale curve is the curve of every task (:func:`scalebench.figures.curves.plot_curves` with
``metric="miou"``), as Fig. 10 of Pintea et al. (2021, "Resolution learning in deep convolutional networks
using scale-space theory", IEEE TIP 30: 8342-8353); :func:`plot_run_figures` draws the three of one run.

- Learned σ: one line per run with N-Jet layers, layers in forward order (encoder, then decoder), a dotted
  line at σ = 1.
- Triptych: one row per test scale, with the input, the prediction and the ground truth of one test image
  (ignored pixels grey). It draws arrays only: the caller (the segmentation task) runs the model, so that
  the figures need no model, no tensor library and no dataset.

Style, legends outside the axes, titles naming the build and the files (300-dpi PNG and SVG beside a CSV of the
plotted numbers) follow :mod:`scalebench.figures.style`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from scalebench.checks import ScalebenchError
from scalebench.figures.curves import MIOU_COLUMNS, plot_curves
from scalebench.figures.style import (
    LINESTYLES,
    RC,
    RUN_FORMATS,
    builds_label,
    display_name,
    legend_outside,
    model_colour,
    save_figure,
    train_label,
    write_csv,
)
from scalebench.results import SegmentationResult

#: Background black, ten class colours, and (the last) grey for ignored pixels.
MASK_COLOURS = [
    "#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
    "#56B4E9", "#F0E442", "#8C510A", "#B2182B", "#FFFFFF", "#888888",
]  # fmt: skip

#: One row of a triptych: (test scale, input image (H, W) in [0, 1], predicted mask, ground-truth mask).
TriptychRow = tuple[float, np.ndarray, np.ndarray, np.ndarray]


def _run_label(r: SegmentationResult) -> str:
    epochs = r.training.recipe.get("epochs")
    return (
        f"{display_name(r.model)}, train s={train_label(r.dataset.train_scales)}, {epochs} ep, seed {r.seed}"
    )


def sigmas_figure(runs: Sequence[SegmentationResult], *, title: str | None = None) -> Figure:
    """The figure of :func:`plot_sigmas`, without writing it."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(4.8, 3.3))
        ax = fig.add_subplot()
        for k, r in enumerate(runs):
            layers = np.arange(1, len(r.learned_sigmas) + 1)
            ax.plot(
                layers,
                r.learned_sigmas,
                marker="o",
                ms=3.5,
                color=model_colour(r.model.name),
                linestyle=LINESTYLES[k % len(LINESTYLES)],
                label=_run_label(r),
            )
        ax.axhline(1.0, color="#888888", linewidth=0.6, linestyle=":")
        ax.set_xticks(range(1, max(len(r.learned_sigmas) for r in runs) + 1))
        ax.set_xlabel("N-Jet layer (encoder, then decoder)")
        ax.set_ylabel("learned σ (px)")
        legend_outside(ax)
        ax.set_title(
            title or f"Learned σ per N-Jet layer, {builds_label(runs)}\none line per run", fontsize=8
        )
    return fig


def plot_sigmas(
    results: Sequence[SegmentationResult], stem: str | Path, *, title: str | None = None
) -> list[Path]:
    """Learned σ per N-Jet layer, one line per run that has N-Jet layers; writes PNG, SVG and a CSV (model,
    train_scales, seed, layer, sigma)."""
    runs = [r for r in results if r.learned_sigmas]
    if not runs:
        raise ScalebenchError("None of these runs has learned sigmas (no N-Jet layers).")
    table = pd.DataFrame(
        [
            {
                "model": r.model.name,
                "train_scales": train_label(r.dataset.train_scales),
                "seed": r.seed,
                "layer": i + 1,
                "sigma": s,
            }
            for r in runs
            for i, s in enumerate(r.learned_sigmas)
        ]
    )
    csv_path = write_csv(table, stem)
    return [*save_figure(sigmas_figure(runs, title=title), stem), csv_path]


def triptych_figure(rows: Sequence[TriptychRow], *, ignore_index: int, title: str | None = None) -> Figure:
    """The figure of :func:`plot_triptych`, without writing it."""
    cmap = ListedColormap(MASK_COLOURS)
    masks = {"vmin": 0, "vmax": len(MASK_COLOURS) - 1, "cmap": cmap}
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.0, 2.0 * len(rows)))
        axes = fig.subplots(len(rows), 3, squeeze=False)
        for row, (scale, image, prediction, truth) in enumerate(sorted(rows, key=lambda r: r[0])):
            truth = np.where(truth == ignore_index, len(MASK_COLOURS) - 1, truth)
            panels = [
                (image, {"vmin": 0, "vmax": 1, "cmap": "gray"}, f"input, s={scale:g}"),
                (prediction, masks, "prediction"),
                (truth, masks, "ground truth (grey: ignored)"),
            ]
            for ax, (img, kw, name) in zip(axes[row], panels, strict=True):
                ax.imshow(img, interpolation="nearest", **kw)
                ax.set_title(name, fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
        if title:
            fig.suptitle(title, fontsize=9)
    return fig


def plot_triptych(
    rows: Sequence[TriptychRow], stem: str | Path, *, ignore_index: int, title: str | None = None
) -> list[Path]:
    """Input / prediction / ground truth of one test image per test scale (one figure row per scale, the
    smallest first); pixels of ``ignore_index`` in the ground truth are grey. Writes PNG and SVG."""
    return save_figure(triptych_figure(rows, ignore_index=ignore_index, title=title), stem)


def plot_run_figures(
    result: SegmentationResult, triptych: Sequence[TriptychRow], run_dir: Path
) -> list[Path]:
    """The figures of one run: ``miou_vs_scale`` (PNG, SVG, CSV), ``sigmas`` (N-Jet models) and ``triptych``
    (the rows the caller computed with the run's model, under a title naming the model and the build)."""
    paths = plot_curves(
        [result], run_dir / "miou_vs_scale", metric="miou", columns=MIOU_COLUMNS, formats=RUN_FORMATS
    )
    if result.learned_sigmas:
        paths += plot_sigmas([result], run_dir / "sigmas")
    title = f"{display_name(result.model)}, {builds_label([result])}"
    return paths + plot_triptych(
        triptych, run_dir / "triptych", ignore_index=result.dataset.ignore_index, title=title
    )
