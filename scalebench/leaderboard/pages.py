"""The HTML of the leaderboard site: the index page, one page per entry, and each entry's curve as an SVG file.

Every page is self-contained (inline CSS, inline SVG, no script but the index's sorting and filtering) and its
Content-Security-Policy forbids every fetch, so it opens from ``file://`` and makes no request; the only
outside addresses are plain links (paper, authors' code) that a reader may follow. Every text from a results
file is escaped by Jinja2's autoescape; figures come from :mod:`scalebench.leaderboard.svg`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from scalebench import __version__
from scalebench.datasets_builders.scales import same_scales
from scalebench.leaderboard.ranking import METRIC_COLUMNS, MIN_SEEDS, Entry, Stat
from scalebench.leaderboard.render import (
    CURVES_DIR,
    ENTRIES_DIR,
    RANKING_RULE,
    RUNS_DIR,
    TRACK_RULES,
    TRAINING_RULES,
    all_scales,
    board_title,
    entry_config_text,
    entry_slug,
    format_gflops,
    format_minutes,
    format_params,
    format_stat,
    paper_links,
)
from scalebench.leaderboard.segmentation import receptive_field_text
from scalebench.leaderboard.svg import Series, curve_geometry, heatmap_geometry, scale_tick
from scalebench.results import SCHEMA_VERSION, RunResult

TEMPLATES = Path(__file__).parent / "templates"


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2", "svg"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["stat"] = lambda e, key, kind: format_stat(e.stats[key], kind, e.n_seeds)
    env.filters["params"] = format_params
    env.filters["scale"] = scale_tick
    return env


def _sort_value(v: float | None) -> str:
    return "" if v is None else repr(v)


def entry_curve(e: Entry, *, width: int = 150, height: int = 46, axes: bool = False) -> dict[str, Any]:
    """The entry's mean curve (band over two or more seeds) as SVG geometry."""
    from scalebench.figures.style import model_colour

    points = [(s, m, sd if e.n_seeds > 1 else None) for s, m, sd in e.curve]
    return curve_geometry(
        [Series(e.display_name, model_colour(e.model), points)],
        train_scale=e.train_scale, width=width, height=height, axes=axes,
    )  # fmt: skip


def curve_svg_file(e: Entry) -> str:
    """The text of ``curves/<entry>.svg``: the entry's sparkline as a standalone SVG image (for Markdown)."""
    return _env().get_template("curve.svg.j2").render(g=entry_curve(e, width=180, height=54))


def _verification_text(run: dict[str, Any]) -> str:
    v = run.get("verification")
    if run["evaluated_by"] != "verified":
        return f"seed {run['seed']}: self-reported"
    if not v:
        return f"seed {run['seed']}: verified (no provenance recorded: results schema 1.0)"
    env = v["environment"]
    return (
        f"seed {run['seed']}: verified by {v['verified_by']} on {v['verified_at'][:10]} "
        f"({env['device_name']}, torch {env['torch_version']}, scalebench {env['scalebench_version']})"
    )


def _links(card: dict[str, Any]) -> list[dict[str, str]]:
    return [{"text": text, "href": href} for text, href in paper_links(card)]


def _row(e: Entry, scales: Sequence[float]) -> dict[str, Any]:
    by_scale = {s: (m, sd) for s, m, sd in e.curve}
    return {
        "e": e,
        "title": board_title(e.dataset, e.track, e.training),
        "config": entry_config_text(e),
        "page": f"{ENTRIES_DIR}/{entry_slug(e)}.html",
        "svg": entry_curve(e),
        "values": {key: _sort_value(e.stats[key].mean) for key, _, _ in METRIC_COLUMNS},
        "per_scale": [
            {"sort": _sort_value(by_scale[s][0]), "text": format_stat(Stat(*by_scale[s]), "acc", e.n_seeds)}
            if s in by_scale else {"sort": "", "text": "–"}
            for s in scales
        ],
        "gflops": format_gflops(e.train_flops_per_image),
        "minutes": format_minutes(e.train_seconds, e.n_seeds),
        "links": _links(e.card),
        "date": e.created[1][:10],
        "provenance": f"scalebench {', '.join(e.versions)}, commit {', '.join(c[:8] for c in e.commits) or 'n/a'}",
        "verification": "; ".join(_verification_text(r) for r in e.runs),
        "runs": [{"href": f"{RUNS_DIR}/{r['path']}", **r} for r in e.runs],
    }  # fmt: skip


def leaderboard_html(entries: Sequence[Entry], segmentation: Sequence[dict[str, Any]] = ()) -> str:
    """The text of ``index.html``; ``segmentation``: the rows of
    :func:`scalebench.leaderboard.segmentation.segmentation_rows`, shown in a section of their own."""
    scales = all_scales(entries)
    boards = sorted({(e.board, board_title(e.dataset, e.track, e.training)) for e in entries})
    return (
        _env()
        .get_template("index.html.j2")
        .render(
            rows=[_row(e, scales) for e in entries],
            scales=scales,
            seg_groups=_segmentation_groups(segmentation),
            columns=METRIC_COLUMNS,
            boards=boards,
            tracks=sorted({e.track for e in entries}),
            track_rules=TRACK_RULES,
            trainings=sorted({e.training for e in entries} & set(TRAINING_RULES)),
            training_rules=TRAINING_RULES,
            train_scales=sorted({e.train_scale for e in entries}),
            ranking_rule=RANKING_RULE,
            min_seeds=MIN_SEEDS,
            version=__version__,
            schema_version=SCHEMA_VERSION,
            script=(TEMPLATES / "leaderboard.js").read_text(),
            style=(TEMPLATES / "leaderboard.css").read_text(),
        )
    )


def _seed_series(e: Entry, results: Sequence[RunResult]) -> list[Series]:
    from scalebench.figures.style import model_colour

    colour = model_colour(e.model)
    series = [
        Series(
            f"seed {r.seed}", colour, [(x.scale, x.score, None) for x in r.per_scale], width=0.9, dash="3 2"
        )
        for r in results
    ]
    mean = [(s, m, sd if e.n_seeds > 1 else None) for s, m, sd in e.curve]
    label = f"mean ± std over {e.n_seeds} seeds" if e.n_seeds > 1 else "1 seed"
    return [*series, Series(label, colour, mean, width=2.0)]


def _pooled_selection(results: Sequence[RunResult]) -> dict[str, Any] | None:
    """The heatmap of the winning channels, counts summed over seeds (None without scale selection)."""
    sels = [r.scale_selection for r in results if r.scale_selection is not None]
    if not sels or len(sels) != len(results):
        return None
    first = sels[0]
    if any(
        s.channel_sigmas != first.channel_sigmas or not same_scales(s.test_scales, first.test_scales)
        for s in sels
    ):
        return None
    counts = [[sum(s.counts[i][j] for s in sels) for j in range(len(first.channel_sigmas))]
              for i in range(len(first.test_scales))]  # fmt: skip
    rho = Stat.of([s.spearman_rho for s in sels])
    slope = Stat.of([s.slope_per_octave for s in sels])
    return {
        **heatmap_geometry(first.test_scales, first.channel_sigmas, counts),
        "rho": format_stat(rho, "ratio", len(sels)),
        "slope": format_stat(slope, "ratio", len(sels)),
    }


def _equivariance(results: Sequence[RunResult]) -> dict[str, Any] | None:
    """The entry page's equivariance table: initial and trained, mean ± std over seeds (None: not recorded)."""
    records = [getattr(r, "equivariance", None) for r in results]
    if not records or any(rec is None for rec in records):
        return None
    n_layers = min(len(rec.trained.per_layer or []) for rec in records)
    rows = []
    for state in ("initial", "trained"):
        errs = [getattr(rec, state) for rec in records]
        if any(err is None for err in errs):
            continue
        cells = [Stat.of([e.invariance for e in errs]), Stat.of([e.output for e in errs])]
        cells += [Stat.of([e.per_layer[i] if e.per_layer else None for e in errs]) for i in range(n_layers)]
        rows.append({"state": state, "cells": [format_stat(c, "ratio", len(errs)) for c in cells]})
    pairs = ", ".join(f"({a:.3g}, {b:.3g})" for a, b in records[0].trained.pairs)
    return {"rows": rows, "layers": list(range(1, n_layers + 1)), "pairs": pairs}


def _unverified(card: dict[str, Any]) -> list[str]:
    """The choices a card marks unverified or documents as its own (recipe keys, notes, quick recipe source)."""
    out = []
    for preset, key in (("paper", "paper_training"), ("quick", "quick_training")):
        recipe = card.get(key) or {}
        facts = recipe.get("facts") or {}
        for field in recipe.get("unverified", []):
            out.append(f"{preset} recipe: {field} = {recipe.get(field, facts.get(field))!r} (unverified)")
        if recipe.get("source"):
            out.append(f"{preset} recipe source: {recipe['source']}")
    if card.get("notes"):
        out.append(str(card["notes"]))
    return out


def entry_html(e: Entry, results: Sequence[RunResult]) -> str:
    """The text of an entry's page (see :mod:`scalebench.leaderboard.render`); ``results``: its runs."""
    card = e.card
    defaults = {**(card.get("default_config") or {})}
    if e.preset == "quick":
        defaults.update(card.get("quick_config") or {})
    config_rows = [
        {"key": k, "value": v, "differs": k in defaults and _plain(defaults[k]) != _plain(v)}
        for k, v in sorted(e.config.items())
    ]
    seeds = []
    for r in sorted(results, key=lambda r: r.seed):
        run = next(x for x in e.runs if x["seed"] == r.seed)
        seeds.append({
            "r": r, "run": run, "href": f"../../../{RUNS_DIR}/{run['path']}",
            "cells": [f"{100 * x.score:.1f}" for x in r.per_scale],
            "verification": _verification_text(run),
        })  # fmt: skip
    return (
        _env()
        .get_template("entry.html.j2")
        .render(
            e=e,
            title=board_title(e.dataset, e.track, e.training),
            track_rule=TRACK_RULES.get(e.track, ""),
            training_rule=TRAINING_RULES.get(e.training, ""),
            config_text=entry_config_text(e),
            config_rows=config_rows,
            recipe_rows=sorted(e.recipe.items()),
            links=_links(card),
            curves=curve_geometry(_seed_series(e, results), train_scale=e.train_scale, width=520, height=260,
                                  axes=True),
            selection=_pooled_selection(results),
            equivariance=_equivariance(results),
            unverified=_unverified(card),
            seeds=seeds,
            scales=[x.scale for x in results[0].per_scale] if results else [],
            columns=METRIC_COLUMNS,
            gflops=format_gflops(e.train_flops_per_image),
            minutes=format_minutes(e.train_seconds, e.n_seeds),
            version=__version__,
            style=(TEMPLATES / "leaderboard.css").read_text(),
            index="../../../index.html",
            curve_file=f"../../../{CURVES_DIR}/{entry_slug(e)}.svg",
        )
    )  # fmt: skip


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _segmentation_groups(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The segmentation rows grouped into one HTML table per training set and build, with display cells."""
    from scalebench.figures.style import model_colour

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
