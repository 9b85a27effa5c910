"""The segmentation table of the leaderboard: one row per model and training set, mIoU per test scale.

Two ways in:

- ``scalebench leaderboard build`` renders the segmentation results of the store (submitted with
  ``scalebench submit``, checked like classification results) as a SEGMENTATION section of ``LEADERBOARD.md``
  and of ``index.html``, plus ``segmentation.csv`` (:func:`segmentation_markdown`, :func:`segmentation_csv`);
- ``scalebench leaderboard segmentation RESULTS.json... --out DIR`` validates loose results files
  (:class:`scalebench.results.SegmentationRunResult`, which recomputes every mIoU from its
  intersection and union counts) and writes ``SEGMENTATION.md``, ``segmentation.csv`` and the comparison
  figures ``miou_vs_scale`` (mean ± std band over seeds) and ``sigmas`` (N-Jet runs) into ``DIR``.

Text from the results (build id, model name) is escaped for Markdown and CSV (:mod:`scalebench.leaderboard.escape`).
Rows are grouped by training set and build and sorted by mean mIoU (best first), then model name. The seeds of
one configuration (every field but the seed equal:
:func:`scalebench.results.seedless_config_hash`) make one row whose cells are the mean ± sample std
over seeds (:func:`scalebench.figures.curves.curve_rows` and :func:`scalebench.results.metrics.mean_std`,
as the classification table). Output is a pure function of the inputs (no dates).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scalebench.checks import ScalebenchError
from scalebench.fileio import write_text_atomic
from scalebench.leaderboard.escape import csv_safe, md_cell
from scalebench.leaderboard.validate import verification_status
from scalebench.results import (
    SegmentationRunResult,
    load_segmentation_results,
    metrics,
    seedless_config_hash,
)


def segmentation_rows(
    results: Sequence[SegmentationRunResult], paths: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One row per configuration (training set, build, model, seedless config hash): mean and sample std over
    seeds of the mIoU per scale and of the mean mIoU. ``paths`` (one per result) become the row's links."""
    from scalebench.figures.curves import curve_rows, group_by_config

    href = dict(zip((id(r) for r in results), paths, strict=True)) if paths is not None else {}
    rows = []
    for runs in group_by_config(results):
        first = runs[0]
        mean, std = metrics.mean_std([r.summary.mean_miou for r in runs])
        rows.append(
            {
                "train_scales": "+".join(f"{s:g}" for s in first.dataset.train_scales),
                "build_id": first.dataset.build_id,
                "model": first.model.name,
                "config_hash": seedless_config_hash(first),
                "seeds": len(runs),
                "seed_list": [r.seed for r in runs],
                "epochs": first.training.recipe.get("epochs"),
                "num_params": first.model.num_params,
                # one per seed: an N-Jet encoder's receptive field follows its learned σ
                "receptive_field": [r.encoder_receptive_field for r in runs],
                "per_scale": {s: (m, sd) for s, m, sd, _ in curve_rows(runs)},
                "mean_miou": mean,
                "mean_miou_std": std,
                "sigmas": [
                    math.fsum(r.learned_sigmas[i] for r in runs) / len(runs)
                    for i in range(len(first.learned_sigmas))
                ],
                "status": verification_status(sum(r.evaluated_by == "verified" for r in runs), len(runs)),
                "runs": [{"seed": r.seed, "path": href[id(r)]} for r in runs if id(r) in href],
            }
        )
    rows.sort(key=lambda row: (row["train_scales"], row["build_id"], -row["mean_miou"], row["model"]))
    return rows


def receptive_field_text(fields: Sequence[int]) -> str:
    """The receptive fields of a row's seeds as shown in a table: ``60``, or ``60–76`` when the seeds differ.

    Example:
        >>> receptive_field_text([60, 76, 72]), receptive_field_text([32, 32])
        ('60–76', '32')
    """
    lo, hi = min(fields), max(fields)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def _cell(mean: float, std: float, seeds: int) -> str:
    """``0.1234`` for one seed, ``0.1234 ± 0.0100`` for several (sample std)."""
    return f"{mean:.4f}" + (f" ± {std:.4f}" if seeds > 1 else "")


def segmentation_markdown(
    rows: Sequence[dict[str, Any]], *, level: int = 1, runs_dir: str | None = None
) -> str:
    """The Markdown table(s), one per training set and build, under a heading of ``level`` (1: a page of its
    own; 2: the SEGMENTATION section of ``LEADERBOARD.md``, whose runs link into ``runs_dir``)."""
    h = "#" * level
    out = [f"{h} Segmentation leaderboard (multi-scale Fashion-MNIST, mIoU over object classes)", ""]
    if level > 1:
        out += ["Mean ± sample std over seeds of the mIoU per test object scale, recomputed from the per-class "
                "intersection and union counts; rows sorted by mean mIoU.", ""]  # fmt: skip
    current = None
    links = runs_dir is not None
    for row in rows:
        head = (row["train_scales"], row["build_id"])
        scales = list(row["per_scale"])
        if head != current:
            current = head
            out += [
                "",
                f"{h}# Training objects at s = {md_cell(row['train_scales'])} ({md_cell(row['build_id'])})",
                "",
            ]
            out.append(
                "| model | params | RF (px) | "
                + " | ".join(f"s={s:g}" for s in scales)
                + " | mean | σ (min–max) | seeds | epochs |"
                + (" status | results by seed |" if links else "")
            )
            out.append(
                "|---|---:|---:|"
                + "---:|" * len(scales)
                + "---:|---|---:|---:|"
                + ("---|---|" if links else "")
            )
        sig, rf = row["sigmas"], row["receptive_field"]
        sig_text = f"{min(sig):.2f}–{max(sig):.2f}" if sig else "—"
        rf_text = receptive_field_text(rf)
        cells = " | ".join(_cell(m, sd, row["seeds"]) for m, sd in row["per_scale"].values())
        line = (
            f"| {md_cell(row['model'])} | {row['num_params']:,} | {rf_text} | {cells} | "
            f"{_cell(row['mean_miou'], row['mean_miou_std'], row['seeds'])} | {sig_text} | {row['seeds']} | "
            f"{row['epochs']} |"
        )
        if links:
            line += (
                f" {row['status']} | "
                + " ".join(f"[{r['seed']}]({runs_dir}/{r['path']})" for r in row["runs"])
                + " |"
            )
        out.append(line)
    return "\n".join(out).replace("\n\n\n", "\n\n") + "\n"


def segmentation_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The text of ``segmentation.csv``: one line per row and test scale, full precision; ``seeds`` and
    ``receptive_field`` list one value per seed (in the same order), ``sigmas`` the mean σ per layer."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["train_scales", "build_id", "model", "config_hash", "seeds", "num_params", "receptive_field",
                "scale", "mean_iou", "std_iou", "mean_miou", "mean_miou_std", "sigmas"])  # fmt: skip
    for row in rows:
        for s, (m, sd) in row["per_scale"].items():
            cells = [row["train_scales"], row["build_id"], row["model"], row["config_hash"],
                     " ".join(str(x) for x in row["seed_list"]), row["num_params"],
                     " ".join(str(x) for x in row["receptive_field"]),
                     s, repr(m), repr(sd), repr(row["mean_miou"]), repr(row["mean_miou_std"]),
                     " ".join(repr(x) for x in row["sigmas"])]  # fmt: skip
            w.writerow([csv_safe(str(c)) for c in cells])  # text from results files: no formula (OWASP)
    return buf.getvalue()


def build_segmentation_leaderboard(result_files: Sequence[str | Path], out: str | Path) -> dict[str, Path]:
    """Validate ``result_files`` and write ``SEGMENTATION.md``, ``segmentation.csv`` and the figures into ``out``."""
    from scalebench.figures.curves import MIOU_COLUMNS, plot_curves
    from scalebench.figures.segmentation import plot_sigmas
    from scalebench.figures.style import RUN_FORMATS

    if not result_files:
        raise ScalebenchError("Give at least one segmentation results.json.")
    results = [load_segmentation_results(p) for p in result_files]
    rows = segmentation_rows(results)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "SEGMENTATION.md", "csv": out / "segmentation.csv"}
    write_text_atomic(paths["markdown"], segmentation_markdown(rows))
    write_text_atomic(paths["csv"], segmentation_csv(rows))
    ordered = sorted(
        results, key=lambda r: (r.dataset.train_scales, r.dataset.build_id, r.model.name, r.seed)
    )
    miou = plot_curves(
        ordered, out / "miou_vs_scale", metric="miou", columns=MIOU_COLUMNS, formats=RUN_FORMATS
    )
    paths["miou_png"] = miou[0]
    if any(r.learned_sigmas for r in results):
        paths["sigmas_png"] = plot_sigmas(ordered, out / "sigmas")[0]
    return paths
