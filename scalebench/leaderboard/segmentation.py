"""The segmentation table of the leaderboard (issue 6): one row per model and training set, mIoU per test scale.

``scalebench leaderboard segmentation RESULTS.json... --out DIR`` validates each segmentation results file
(:class:`scalebench.benchmark.results.SegmentationRunResult`, which recomputes every mIoU from its
intersection and union counts) and writes, into ``DIR``: ``SEGMENTATION.md`` (the table), ``segmentation.csv``
(full precision), and the comparison figures ``miou_vs_scale`` and ``sigmas`` (N-Jet runs). Rows are grouped
by training set and sorted by mean mIoU (best first), then model name; several seeds of one configuration
give the mean over seeds and the seed count. Output is a pure function of the inputs (no dates).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from scalebench.benchmark.results import SegmentationRunResult, load_segmentation_results
from scalebench.checks import ScalebenchError
from scalebench.fileio import write_text_atomic


def _key(r: SegmentationRunResult) -> tuple[str, str, str, str]:
    return (
        "+".join(f"{s:g}" for s in r.dataset.train_scales),
        r.dataset.build_id,
        r.model.name,
        r.model.config_hash,
    )


def segmentation_rows(results: Sequence[SegmentationRunResult]) -> list[dict[str, object]]:
    """One row per (training set, build, model, config): mean over seeds of mIoU per scale and of the summary."""
    groups: dict[tuple[str, str, str, str], list[SegmentationRunResult]] = {}
    for r in results:
        groups.setdefault(_key(r), []).append(r)
    rows = []
    for (train, build, model, chash), runs in groups.items():
        scales = [p.scale for p in runs[0].per_scale]
        if any([p.scale for p in r.per_scale] != scales for r in runs):
            raise ScalebenchError(f"Seeds of {model} on {build} (train {train}) have different test scales.")
        per_scale = {
            s: math.fsum(r.per_scale[i].mean_iou for r in runs) / len(runs) for i, s in enumerate(scales)
        }
        rows.append(
            {
                "train_scales": train,
                "build_id": build,
                "model": model,
                "config_hash": chash,
                "seeds": len(runs),
                "epochs": runs[0].training.recipe.get("epochs"),
                "num_params": runs[0].model.num_params,
                "receptive_field": runs[0].encoder_receptive_field,
                "per_scale": per_scale,
                "mean_miou": math.fsum(r.summary.mean_miou for r in runs) / len(runs),
                "sigmas": [
                    math.fsum(r.learned_sigmas[i] for r in runs) / len(runs)
                    for i in range(len(runs[0].learned_sigmas))
                ],
            }
        )
    rows.sort(key=lambda row: (row["train_scales"], row["build_id"], -row["mean_miou"], row["model"]))  # type: ignore[operator]
    return rows


def segmentation_markdown(rows: Sequence[dict[str, object]]) -> str:
    """The Markdown table(s), one per training set and build."""
    out = ["# Segmentation leaderboard (multi-scale Fashion-MNIST, mIoU over object classes)", ""]
    current = None
    for row in rows:
        head = (row["train_scales"], row["build_id"])
        scales = list(row["per_scale"])  # type: ignore[arg-type]
        if head != current:
            current = head
            out += ["", f"## Training objects at s = {row['train_scales']} ({row['build_id']})", ""]
            out.append(
                "| model | params | RF (px) | "
                + " | ".join(f"s={s:g}" for s in scales)
                + " | mean | σ (min–max) | seeds | epochs |"
            )
            out.append("|---|---:|---:|" + "---:|" * len(scales) + "---:|---|---:|---:|")
        sig = row["sigmas"]
        sig_text = f"{min(sig):.2f}–{max(sig):.2f}" if sig else "—"  # type: ignore[type-var, arg-type]
        cells = " | ".join(f"{v:.4f}" for v in row["per_scale"].values())  # type: ignore[union-attr]
        out.append(
            f"| {row['model']} | {row['num_params']:,} | {row['receptive_field']} | {cells} | "
            f"{row['mean_miou']:.4f} | {sig_text} | {row['seeds']} | {row['epochs']} |"
        )
    return "\n".join(out).replace("\n\n\n", "\n\n") + "\n"


def build_segmentation_leaderboard(result_files: Sequence[str | Path], out: str | Path) -> dict[str, Path]:
    """Validate ``result_files`` and write ``SEGMENTATION.md``, ``segmentation.csv`` and the figures into ``out``."""
    from scalebench.benchmark.segmentation_figures import plot_miou_vs_scale, plot_sigmas

    if not result_files:
        raise ScalebenchError("Give at least one segmentation results.json.")
    results = [load_segmentation_results(p) for p in result_files]
    rows = segmentation_rows(results)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "SEGMENTATION.md", "csv": out / "segmentation.csv"}
    write_text_atomic(paths["markdown"], segmentation_markdown(rows))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["train_scales", "build_id", "model", "config_hash", "seeds", "num_params", "receptive_field",
                "scale", "mean_iou", "mean_miou", "sigmas"])  # fmt: skip
    for row in rows:
        for s, v in row["per_scale"].items():  # type: ignore[union-attr]
            w.writerow([row["train_scales"], row["build_id"], row["model"], row["config_hash"], row["seeds"],
                        row["num_params"], row["receptive_field"], s, repr(v), repr(row["mean_miou"]),
                        " ".join(repr(x) for x in row["sigmas"])])  # type: ignore[union-attr]  # fmt: skip
    write_text_atomic(paths["csv"], buf.getvalue())
    ordered = sorted(results, key=lambda r: (_key(r), r.seed))
    paths["miou_png"] = plot_miou_vs_scale(ordered, out / "miou_vs_scale")[0]
    if any(r.learned_sigmas for r in results):
        paths["sigmas_png"] = plot_sigmas(ordered, out / "sigmas")[0]
    return paths
