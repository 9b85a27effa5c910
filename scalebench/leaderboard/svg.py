"""Geometry of the static site's inline SVG figures: accuracy-vs-scale curves and scale-selection heatmaps.

Pure functions from numbers to coordinates and colours; the templates draw them, so the pages need no image
file, no script and no network (the site's Content-Security-Policy forbids every fetch). The conventions are
those of the paper figures (:mod:`scalebench.figures`): the test scale on a log2 axis, accuracy
from 0 to 1, the training scale dashed, a band of ± 1 sample std over seeds only when there are two or more,
one colour per model (:func:`scalebench.figures.style.model_colour`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: One point of a curve: (test scale, mean accuracy, sample std over seeds or None for one seed).
Point = tuple[float, float, float | None]


@dataclass(frozen=True)
class Series:
    """One curve: its legend label, colour, points, stroke width and dash pattern ("" for solid)."""

    label: str
    colour: str
    points: Sequence[Point]
    width: float = 1.6
    dash: str = ""


def _fmt(v: float) -> str:
    return f"{v:.1f}"


def scale_tick(scale: float) -> str:
    """The label of a test scale on every axis of the site (3 significant digits, as the paper figures).

    Example:
        >>> [scale_tick(2 ** (k / 4)) for k in (-4, -3, 0, 3)]
        ['0.5', '0.595', '1', '1.68']
    """
    return f"{scale:.3g}"


def curve_geometry(
    series: Sequence[Series],
    *,
    train_scale: float,
    width: int = 150,
    height: int = 46,
    axes: bool = False,
) -> dict[str, Any]:
    """Polylines, bands, the training-scale line and (``axes=True``) ticks of an accuracy-vs-scale chart.

    x is log2(scale) mapped to the plot width, y is accuracy in [0, 1] (1 at the top). Without axes the plot
    fills the box with a 3-pixel margin (a sparkline); with axes, margins leave room for the tick labels.

    Example:
        >>> g = curve_geometry([Series("m", "#000", [(0.5, 1.0, None), (1.0, 0.5, None), (2.0, 0.0, None)])],
        ...                    train_scale=1.0, width=106, height=56)
        >>> g["series"][0]["line"], g["train_x"], g["series"][0]["band"]
        ('3.0,3.0 53.0,28.0 103.0,53.0', '53.0', None)
    """
    left, right, top, bottom = (34.0, 8.0, 8.0, 30.0) if axes else (3.0, 3.0, 3.0, 3.0)
    scales = sorted({p[0] for s in series for p in s.points} | {train_scale})
    lo, hi = math.log2(scales[0]), math.log2(scales[-1])
    span = hi - lo if hi > lo else 1.0

    def px(scale: float) -> float:
        return left + (math.log2(scale) - lo) / span * (width - left - right)

    def py(acc: float) -> float:
        return top + (1.0 - min(max(acc, 0.0), 1.0)) * (height - top - bottom)

    drawn = []
    for s in series:
        pts = sorted(s.points)
        line = " ".join(f"{_fmt(px(x))},{_fmt(py(m))}" for x, m, _ in pts)
        band = None
        if pts and all(sd is not None for _, _, sd in pts):
            upper = [f"{_fmt(px(x))},{_fmt(py(m + sd))}" for x, m, sd in pts]  # type: ignore[operator]
            lower = [f"{_fmt(px(x))},{_fmt(py(m - sd))}" for x, m, sd in pts]  # type: ignore[operator]
            band = " ".join(upper + lower[::-1])
        title = f"{s.label}: " + ", ".join(f"s={scale_tick(x)}: {100 * m:.1f}%" for x, m, _ in pts)
        drawn.append(
            {"label": s.label, "colour": s.colour, "line": line, "band": band, "width": s.width,
             "dash": s.dash, "title": title}
        )  # fmt: skip
    out: dict[str, Any] = {
        "width": width,
        "height": height,
        "series": drawn,
        "train_x": _fmt(px(train_scale)),
        "plot": {"x0": _fmt(left), "y0": _fmt(top), "x1": _fmt(width - right), "y1": _fmt(height - bottom)},
    }
    if axes:
        out["xticks"] = [{"x": _fmt(px(s)), "text": scale_tick(s)} for s in scales]
        out["yticks"] = [{"y": _fmt(py(a)), "text": f"{a:.1f}"} for a in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]
    return out


def _viridis(fraction: float) -> str:
    """The viridis colour of a fraction in [0, 1], as #rrggbb (matplotlib's colormap)."""
    from matplotlib import colormaps

    r, g, b, _ = colormaps["viridis"](min(max(fraction, 0.0), 1.0))
    return f"#{round(255 * r):02x}{round(255 * g):02x}{round(255 * b):02x}"


def heatmap_geometry(
    test_scales: Sequence[float], sigmas: Sequence[float], counts: Sequence[Sequence[int]], *, cell: int = 22
) -> dict[str, Any]:
    """Cells of a scale-selection heatmap: one row per test scale (smallest at the top), one column per scale
    channel, coloured by the fraction of that scale's test images whose winning channel it is (rows sum to 1).

    Example:
        >>> g = heatmap_geometry([0.5, 2.0], [1.0, 2.0], [[3, 1], [0, 4]])
        >>> [c["text"] for c in g["cells"]], g["rows"][1]["text"]
        (['0.75', '0.25', '0.00', '1.00'], '2')
    """
    left, top = 44, 8
    cells, rows = [], []
    for i, (scale, row) in enumerate(zip(test_scales, counts, strict=True)):
        total = sum(row) or 1
        y = top + i * cell
        rows.append({"y": y + cell / 2 + 4, "text": scale_tick(scale)})
        for j, c in enumerate(row):
            f = c / total
            cells.append(
                {"x": left + j * cell, "y": y, "fill": _viridis(f), "text": f"{f:.2f}",
                 "title": f"test scale {scale_tick(scale)}, channel σ0 = {sigmas[j]:.3g}: {c} images ({100 * f:.0f} %)"}
            )  # fmt: skip
    cols = [{"x": left + j * cell + cell / 2, "text": f"{s:.2g}"} for j, s in enumerate(sigmas)]
    return {
        "cell": cell,
        "cells": cells,
        "rows": rows,
        "cols": cols,
        "width": left + cell * len(sigmas) + 8,
        "height": top + cell * len(test_scales) + 34,
        "axis_y": top + cell * len(test_scales) + 14,
    }
