"""Render the leaderboard: ``LEADERBOARD.md``, ``leaderboard.csv``, ``leaderboard.json`` and a static HTML site.

``scalebench leaderboard build --store results/ --out site/`` writes, into ``site/``:

- ``index.html``: one self-contained page (inline CSS and vanilla JavaScript, no CDN, no external request,
  a Content-Security-Policy that forbids any fetch) that opens from ``file://``. Sortable columns, a dataset
  and a training-scale filter, an inline SVG accuracy-vs-scale curve per entry (mean ± std band over seeds,
  log2 scale axis, training scale dashed), a verified / self-reported badge, provisional entries marked,
  and download links for the CSV, the JSON and every result file;
- ``leaderboard.csv`` and ``leaderboard.json`` (every number at full precision: the tables show rounded ones);
- ``LEADERBOARD.md`` for a README, one table per dataset and training scale;
- ``runs/<dataset>/<model>/<config-hash>/seed-<n>.json``: copies of the result files the rows link to;
- segmentation results in the store (task ``segmentation``) are not ranked with the classification entries:
  they form a SEGMENTATION section of ``LEADERBOARD.md`` and of ``index.html`` (mIoU per object scale, mean
  ± std over seeds; :mod:`scalebench.leaderboard.segmentation`) and ``segmentation.csv``.

The output is a pure function of the store: no dates, sorted keys, so a rebuild gives identical files.
Colours come from :func:`scalebench.benchmark.figures.model_colour`, so a model has the same colour on the
site and in every figure.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from scalebench import __version__
from scalebench.benchmark.results import SCHEMA_VERSION
from scalebench.checks import ScalebenchError
from scalebench.fileio import write_text_atomic
from scalebench.leaderboard.ranking import METRIC_COLUMNS, MIN_SEEDS, Entry, Stat, rank_entries
from scalebench.leaderboard.segmentation import (
    receptive_field_text,
    segmentation_csv,
    segmentation_markdown,
    segmentation_rows,
)
from scalebench.leaderboard.store import load_store
from scalebench.leaderboard.validate import KnownBuild

TEMPLATES = Path(__file__).parent / "templates"
RUNS_DIR = "runs"

RANKING_RULE = (
    f"Entries with at least {MIN_SEEDS} seeds are ranked by mean accuracy over the test scales (mean over "
    "seeds), ties broken by worst-scale accuracy; entries with fewer seeds are provisional. Values are "
    "mean ± sample std over seeds, recomputed from the per-scale counts."
)


def format_stat(stat: Stat, kind: str, n_seeds: int) -> str:
    """Display text of a statistic: accuracies in percent with 2 decimals, ratios with 3 (``ratio4``: 4, the
    mIoU of the segmentation table); '–' if undefined.

    Example:
        >>> format_stat(Stat(0.8533, 0.012), "acc", 3), format_stat(Stat(0.5, 0.0), "ratio", 1)
        ('85.33 ± 1.20', '0.500')
    """
    if stat.mean is None or stat.std is None:
        return "–"
    if kind == "acc":
        text = f"{100 * stat.mean:.2f}"
        return text + (f" ± {100 * stat.std:.2f}" if n_seeds > 1 else "")
    digits = 4 if kind == "ratio4" else 3
    text = f"{stat.mean:.{digits}f}"
    return text + (f" ± {stat.std:.{digits}f}" if n_seeds > 1 else "")


def format_params(n: int) -> str:
    """Parameter count with thousands separators.

    Example:
        >>> format_params(1234567)
        '1,234,567'
    """
    return f"{n:,}"


def entry_record(e: Entry) -> dict[str, Any]:
    """The JSON record of one entry (full precision)."""
    return {
        "rank": e.rank,
        "provisional": e.provisional,
        "dataset": e.dataset,
        "dataset_version": e.dataset_version,
        "train_scale": e.train_scale,
        "model": e.model,
        "config_hash": e.config_hash,
        "preset": e.preset,
        "num_params": e.num_params,
        "n_seeds": e.n_seeds,
        "seeds": e.seeds,
        "status": e.status,
        "n_verified": e.n_verified,
        "metrics": {
            key: {"mean": e.stats[key].mean, "std": e.stats[key].std} for key, _, _ in METRIC_COLUMNS
        },
        "curve": [{"scale": s, "mean": m, "std": sd} for s, m, sd in e.curve],
        "runs": e.runs,
    }


def leaderboard_json(entries: Sequence[Entry]) -> str:
    """The text of ``leaderboard.json``."""
    doc = {
        "scalebench_version": __version__,
        "results_schema_version": SCHEMA_VERSION,
        "min_seeds": MIN_SEEDS,
        "ranking": RANKING_RULE,
        "entries": [entry_record(e) for e in entries],
    }
    return json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"


CSV_COLUMNS = [
    "rank", "provisional", "dataset", "dataset_version", "train_scale", "model", "config_hash", "preset",
    "num_params", "n_seeds", "seeds", "status",
    *[f"{key}_{part}" for key, _, _ in METRIC_COLUMNS for part in ("mean", "std")],
    "result_files",
]  # fmt: skip


def leaderboard_csv(entries: Sequence[Entry]) -> str:
    """The text of ``leaderboard.csv`` (one row per entry; empty cells for undefined values)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for e in entries:
        stats = [
            "" if v is None else repr(v)
            for key, _, _ in METRIC_COLUMNS
            for v in (e.stats[key].mean, e.stats[key].std)
        ]
        w.writerow([
            "" if e.rank is None else e.rank, str(e.provisional).lower(), e.dataset, e.dataset_version,
            repr(e.train_scale), e.model, e.config_hash, e.preset, e.num_params, e.n_seeds,
            " ".join(str(s) for s in e.seeds), e.status, *stats,
            " ".join(f"{RUNS_DIR}/{r['path']}" for r in e.runs),
        ])  # fmt: skip
    return buf.getvalue()


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def leaderboard_markdown(entries: Sequence[Entry], *, segmentation: bool = False) -> str:
    """The text of ``LEADERBOARD.md``: one table per dataset and training scale (``segmentation``: a
    segmentation section follows, so an empty classification part is not reported as an empty store)."""
    lines = ["# scalebench leaderboard", "", RANKING_RULE, ""]
    if not entries and not segmentation:
        lines += ["No results yet: add runs with `scalebench submit RESULTS.json`.", ""]
    header = [
        "rank",
        "model",
        "config",
        *[label for _, label, _ in METRIC_COLUMNS],
        "params",
        "seeds",
        "status",
        "results by seed",
    ]
    groups: dict[tuple[str, float], list[Entry]] = {}
    for e in entries:
        groups.setdefault((e.dataset, e.train_scale), []).append(e)
    for (dataset, train_scale), group in groups.items():
        lines += [f"## {dataset}, training scale {train_scale:g}", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] * len(header)) + "|")
        for e in group:
            rank = str(e.rank) if e.rank is not None else "provisional"
            cells = [
                rank,
                e.model,
                f"`{e.config_hash[:8]}`",
                *[format_stat(e.stats[key], kind, e.n_seeds) for key, _, kind in METRIC_COLUMNS],
                format_params(e.num_params),
                str(e.n_seeds),
                e.status,
                " ".join(f"[{r['seed']}]({RUNS_DIR}/{r['path']})" for r in e.runs),
            ]
            lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def curve_svg(e: Entry, *, width: int = 150, height: int = 46) -> dict[str, Any]:
    """Geometry of the inline SVG curve of an entry: polyline points, band polygon, training-scale x.

    x is log2(scale) mapped to the width, y is accuracy in [0, 1] mapped to the height (1 at the top).
    """
    from scalebench.benchmark.figures import model_colour

    pad = 3.0
    xs = [math.log2(s) for s, _, _ in e.curve]
    lo, hi = min(xs), max(xs)
    span = hi - lo if hi > lo else 1.0

    def px(log_s: float) -> float:
        return pad + (log_s - lo) / span * (width - 2 * pad)

    def py(acc: float) -> float:
        return pad + (1.0 - min(max(acc, 0.0), 1.0)) * (height - 2 * pad)

    line = " ".join(f"{px(x):.1f},{py(m):.1f}" for x, (_, m, _) in zip(xs, e.curve, strict=True))
    upper = [f"{px(x):.1f},{py(m + sd):.1f}" for x, (_, m, sd) in zip(xs, e.curve, strict=True)]
    lower = [f"{px(x):.1f},{py(m - sd):.1f}" for x, (_, m, sd) in zip(xs, e.curve, strict=True)]
    return {
        "width": width,
        "height": height,
        "line": line,
        "band": " ".join(upper + lower[::-1]) if e.n_seeds > 1 else None,
        "train_x": f"{px(math.log2(e.train_scale)):.1f}",
        "colour": model_colour(e.model),
        "title": "accuracy vs test scale: " + ", ".join(f"{s:.3g}: {100 * m:.1f}%" for s, m, _ in e.curve),
    }


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["stat"] = lambda e, key, kind: format_stat(e.stats[key], kind, e.n_seeds)
    env.filters["params"] = format_params
    return env


def _sort_value(v: float | None) -> str:
    return "" if v is None else repr(v)


def leaderboard_html(entries: Sequence[Entry], segmentation: Sequence[dict[str, Any]] = ()) -> str:
    """The text of ``index.html`` (see the module docstring); ``segmentation``: the rows of
    :func:`scalebench.leaderboard.segmentation.segmentation_rows`, shown in a section of their own."""
    rows = []
    for e in entries:
        rows.append(
            {
                "e": e,
                "svg": curve_svg(e),
                "values": {key: _sort_value(e.stats[key].mean) for key, _, _ in METRIC_COLUMNS},
                "runs": [{"href": f"{RUNS_DIR}/{r['path']}", **r} for r in e.runs],
            }
        )
    datasets = sorted({e.dataset for e in entries})
    train_scales = sorted({e.train_scale for e in entries})
    return (
        _environment()
        .get_template("index.html.j2")
        .render(
            rows=rows,
            seg_groups=_segmentation_groups(segmentation),
            columns=METRIC_COLUMNS,
            datasets=datasets,
            train_scales=train_scales,
            ranking_rule=RANKING_RULE,
            min_seeds=MIN_SEEDS,
            version=__version__,
            schema_version=SCHEMA_VERSION,
            script=(TEMPLATES / "leaderboard.js").read_text(),
            style=(TEMPLATES / "leaderboard.css").read_text(),
        )
    )


def _segmentation_groups(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The segmentation rows grouped into one HTML table per training set and build, with display cells."""
    from scalebench.benchmark.figures import model_colour

    groups: list[dict[str, Any]] = []
    for row in rows:
        title = f"Training objects at s = {row['train_scales']} ({row['build_id']})"
        if not groups or groups[-1]["title"] != title:
            groups.append({"title": title, "scales": list(row["per_scale"]), "rows": []})
        n = row["seeds"]
        sig = row["sigmas"]
        groups[-1]["rows"].append({
            **row,
            "cells": [format_stat(Stat(m, sd), "ratio4", n) for m, sd in row["per_scale"].values()],
            "mean_cell": format_stat(Stat(row["mean_miou"], row["mean_miou_std"]), "ratio4", n),
            "sigma_text": f"{min(sig):.2f}–{max(sig):.2f}" if sig else "—",
            "rf_text": receptive_field_text(row["receptive_field"]),
            "colour": model_colour(row["model"]),
            "links": [{"href": f"{RUNS_DIR}/{r['path']}", "seed": r["seed"]} for r in row["runs"]],
        })  # fmt: skip
    return groups


def build_leaderboard(
    store: str | Path = "results",
    out: str | Path = "site",
    *,
    known: Sequence[KnownBuild] | None = None,
) -> dict[str, Path]:
    """``scalebench leaderboard build``: validate the store, rank it and write every output into ``out``.

    Returns the paths written, by name (``markdown``, ``csv``, ``json``, ``html``, ``runs``). Refuses to build
    from a store with problems (see :func:`scalebench.leaderboard.store.validate_store`).
    """
    store, out = Path(store), Path(out)
    if store.resolve() == out.resolve() or store.resolve() in out.resolve().parents:
        raise ScalebenchError(f"--out {out} must not be inside the store {store}; use e.g. --out site/.")
    runs = load_store(store, known=known)
    entries = rank_entries([r for r in runs if r.result.task == "classification"])
    seg_runs = [r for r in runs if r.result.task == "segmentation"]
    seg_rows = segmentation_rows([r.result for r in seg_runs], [str(r.path) for r in seg_runs])
    out.mkdir(parents=True, exist_ok=True)
    runs_dir = out / RUNS_DIR
    if runs_dir.exists():
        shutil.rmtree(runs_dir)
    for run in runs:
        dest = runs_dir / run.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store / run.path, dest)
    paths = {
        "markdown": out / "LEADERBOARD.md",
        "csv": out / "leaderboard.csv",
        "json": out / "leaderboard.json",
        "html": out / "index.html",
    }
    markdown = leaderboard_markdown(entries, segmentation=bool(seg_rows))
    if seg_rows:
        markdown += "\n" + segmentation_markdown(seg_rows, level=2, runs_dir=RUNS_DIR)
        paths["segmentation_csv"] = out / "segmentation.csv"
        write_text_atomic(paths["segmentation_csv"], segmentation_csv(seg_rows))
    write_text_atomic(paths["markdown"], markdown)
    write_text_atomic(paths["csv"], leaderboard_csv(entries))
    write_text_atomic(paths["json"], leaderboard_json(entries))
    write_text_atomic(paths["html"], leaderboard_html(entries, seg_rows))
    paths["runs"] = runs_dir
    return paths
