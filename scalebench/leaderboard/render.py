"""Render the leaderboard: ``LEADERBOARD.md``, ``leaderboard.csv``, ``leaderboard.json``, a static HTML site.

``scalebench leaderboard build --store results/ --out site/`` writes, into ``site/``:

- ``index.html``: one self-contained page (inline CSS and vanilla JavaScript, a Content-Security-Policy that
  forbids every fetch; it opens from ``file://``). One table per board and training scale, where a board is a
  dataset and its track (``Fashion-MNIST full``, ``Fashion-MNIST lite``): rank, model (linked to its page),
  config as its difference from the card's defaults, mean ± std over seeds of every summary, the accuracy at
  every test scale, an inline curve, parameters, training FLOPs per image, training time, the paper and code
  links, the date, scalebench version and commit, and a verified badge naming who verified, when and where
  (:mod:`scalebench.leaderboard.pages`);
- ``entries/<board>/<model>/<config-hash>.html``: a page per entry (paper and BibTeX, config, recipe, the
  curves of every seed, the scale-selection heatmap, the choices its card marks unverified, every seed's
  provenance);
- ``curves/<board>/<model>/<config-hash>.svg``: the entry's curve as an image, shown by ``LEADERBOARD.md``;
- ``leaderboard.csv`` and ``leaderboard.json`` (full precision; the tables show rounded numbers);
- ``LEADERBOARD.md``: per board, a summary table and a per-scale table;
- ``runs/<board>/<model>/<config-hash>/seed-<n>.json``: copies of the result files the rows link to;
- segmentation results (task ``segmentation``) are not ranked with the classification entries: they form a
  section of their own (:mod:`scalebench.leaderboard.segmentation`) and ``segmentation.csv``.

The output is a pure function of the store (dates come from the results, never from the clock), so a
rebuild gives identical files. The site is written to a temporary folder beside ``--out`` and swapped in
whole; ``--out`` must be empty, missing or an earlier site (it holds :data:`SITE_MARKER`), and nothing else is
ever deleted.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scalebench import __version__
from scalebench.checks import ScalebenchError
from scalebench.figures.style import config_note
from scalebench.fileio import new_file_mode
from scalebench.leaderboard.escape import csv_safe, md_cell
from scalebench.leaderboard.ranking import METRIC_COLUMNS, MIN_SEEDS, Entry, Stat, rank_entries
from scalebench.leaderboard.segmentation import segmentation_csv, segmentation_markdown, segmentation_rows
from scalebench.leaderboard.store import load_store
from scalebench.leaderboard.validate import KnownBuild
from scalebench.results import SCHEMA_VERSION

RUNS_DIR = "runs"
ENTRIES_DIR = "entries"
CURVES_DIR = "curves"
#: A file every site holds, so that ``leaderboard build`` recognises (and may replace) an earlier output.
SITE_MARKER = ".scalebench-site"

RANKING_RULE = (
    f"Entries with at least {MIN_SEEDS} seeds are ranked by mean accuracy over the test scales (mean over "
    "seeds), ties broken by worst-scale accuracy; entries with fewer seeds are provisional. Values are "
    "mean ± sample std over seeds, recomputed from the per-scale counts."
)

#: What each track is, stated on every page that shows it.
TRACK_RULES = {
    "full": "full: the canonical full build (every image of the standard splits), each model's paper preset; "
    "GPU-sized.",
    "lite": "lite: the canonical lite build (a fixed, seeded subset: 4,000 training, 1,000 validation and "
    "1,000 test images per scale, rescaled exactly as the full build) and each model's quick preset; sized for "
    "a 2-core laptop. Lite numbers are not comparable with full ones.",
}

#: What each training track is (:data:`scalebench.leaderboard.validate.TRAINING_TRACKS`), stated where it shows.
TRAINING_RULES = {
    "augmented": "augmented training: the training images were randomly rescaled (the recorded "
    "scale_augmentation range and interpolation, shown on each entry's page); ranked apart from single-scale "
    "training.",
    "non-standard": "non-standard training: a loss, optimizer or schedule of the submitter's (Python API), "
    "recorded with the callables' source hashes; ranked apart from the standard recipe.",
    "external": "external training: trained elsewhere and only tested here (scalebench.test); ranked apart, "
    "never with protocol-trained runs.",
}

DATASET_TITLES = {"fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "stl10": "STL-10"}


def board_title(dataset: str, track: str, training: str = "standard") -> str:
    """The name of a board on every page: the dataset's name, the track and, off the standard recipe, the
    training track.

    Example:
        >>> board_title("fashion-mnist", "lite"), board_title("cifar10", "full", "external")
        ('Fashion-MNIST lite', 'CIFAR-10 full, external training')
    """
    suffix = "" if training == "standard" else f", {training} training"
    return f"{DATASET_TITLES.get(dataset, dataset)} {track}{suffix}"


def format_stat(stat: Stat, kind: str, n_seeds: int) -> str:
    """Display text of a statistic: accuracies in percent with 2 decimals, ratios with 3 (``ratio4``: 4, the
    mIoU of the segmentation table); '–' if undefined; '± std' only over two or more seeds.

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


def format_gflops(flops: int | None) -> str:
    """FLOPs per image in GFLOP with 3 significant digits; '–' when the results do not record them.

    Example:
        >>> format_gflops(1_234_000_000), format_gflops(None)
        ('1.23', '–')
    """
    return "–" if flops is None else f"{flops / 1e9:.3g}"


def format_minutes(stat: Stat, n_seeds: int) -> str:
    """Training time in minutes (mean ± std over seeds).

    Example:
        >>> format_minutes(Stat(600.0, 60.0), 3)
        '10.0 ± 1.0'
    """
    if stat.mean is None or stat.std is None:
        return "–"
    return f"{stat.mean / 60:.1f}" + (f" ± {stat.std / 60:.1f}" if n_seeds > 1 else "")


def entry_slug(e: Entry) -> str:
    """The path of an entry's page and curve below their folders: ``<board>/<model>/<config-hash>``."""
    return f"{e.board}/{e.model}/{e.config_hash}"


def entry_config_text(e: Entry) -> str:
    """The entry's model config as its difference from the card's defaults (never a bare hash):
    :func:`scalebench.figures.style.config_note`, the same words as the figures' legends."""
    return config_note(e.card, e.config) or "as recorded (no defaults in the card)"


def entry_record(e: Entry) -> dict[str, Any]:
    """The JSON record of one entry (full precision)."""
    card = e.card
    return {
        "rank": e.rank,
        "provisional": e.provisional,
        "dataset": e.dataset,
        "dataset_version": e.dataset_version,
        "track": e.track,
        "training": e.training,
        "board": e.board,
        "build_id": e.build_id,
        "train_scale": e.train_scale,
        "model": e.model,
        "display_name": e.display_name,
        "config_hash": e.config_hash,
        "config": e.config,
        "config_difference": entry_config_text(e),
        "preset": e.preset,
        "recipe": e.recipe,
        "num_params": e.num_params,
        "train_flops_per_image": e.train_flops_per_image,
        "train_seconds": {"mean": e.train_seconds.mean, "std": e.train_seconds.std},
        "n_seeds": e.n_seeds,
        "seeds": e.seeds,
        "status": e.status,
        "n_verified": e.n_verified,
        "paper": card.get("paper"),
        "arxiv": card.get("arxiv"),
        "code_url": card.get("code_url"),
        "created": {"first": e.created[0], "last": e.created[1]},
        "scalebench_versions": list(e.versions),
        "git_commits": list(e.commits),
        "page": f"{ENTRIES_DIR}/{entry_slug(e)}.html",
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
        "tracks": TRACK_RULES,
        "entries": [entry_record(e) for e in entries],
    }
    return json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"


def all_scales(entries: Sequence[Entry]) -> list[float]:
    """Every test scale of the entries, ascending (one column each in the tables)."""
    return sorted({s for e in entries for s, _, _ in e.curve})


CSV_COLUMNS = [
    "rank", "provisional", "dataset", "dataset_version", "track", "board", "train_scale", "model",
    "display_name", "config_hash", "config_difference", "preset", "num_params", "train_flops_per_image",
    "train_seconds_mean", "n_seeds", "seeds", "status", "first_created", "last_created", "scalebench_versions",
    "git_commits", *[f"{key}_{part}" for key, _, _ in METRIC_COLUMNS for part in ("mean", "std")],
    "per_scale_mean_accuracy", "result_files",
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
        text = [
            "" if e.rank is None else e.rank, str(e.provisional).lower(), e.dataset, e.dataset_version, e.track,
            e.board, repr(e.train_scale), e.model, e.display_name, e.config_hash, entry_config_text(e), e.preset,
            e.num_params, "" if e.train_flops_per_image is None else e.train_flops_per_image,
            "" if e.train_seconds.mean is None else repr(e.train_seconds.mean), e.n_seeds,
            " ".join(str(s) for s in e.seeds), e.status, e.created[0], e.created[1], " ".join(e.versions),
            " ".join(e.commits), *stats, " ".join(f"{s!r}:{m!r}" for s, m, _ in e.curve),
            " ".join(f"{RUNS_DIR}/{r['path']}" for r in e.runs),
        ]  # fmt: skip
        w.writerow([csv_safe(str(c)) for c in text])
    return buf.getvalue()


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def paper_links(card: dict[str, Any]) -> list[tuple[str, str]]:
    """(text, address) of an entry's paper (arXiv) and its authors' code; https addresses only.

    Example:
        >>> paper_links({"arxiv": "2011.14759", "code_url": "javascript:alert(1)"})
        [('paper', 'https://arxiv.org/abs/2011.14759')]
    """
    out = []
    if card.get("arxiv"):
        out.append(("paper", f"https://arxiv.org/abs/{card['arxiv']}"))
    if card.get("code_url"):
        out.append(("authors' code", str(card["code_url"])))
    return [(text, href) for text, href in out if re.fullmatch(r"https://[^\s()<>\"'|]+", href)]


def _date(iso: str) -> str:
    return iso[:10]


def leaderboard_markdown(entries: Sequence[Entry], *, segmentation: bool = False) -> str:
    """The text of ``LEADERBOARD.md``: per board and training scale, a summary table and a per-scale table
    (``segmentation``: a segmentation section follows, so an empty classification part is not reported as an
    empty store)."""
    lines = ["# scalebench leaderboard", "", RANKING_RULE, ""]
    lines += [f"- {rule}" for rule in TRACK_RULES.values()] + [""]
    if not entries and not segmentation:
        lines += ["No results yet: add runs with `scalebench submit RESULTS.json`.", ""]
    groups: dict[tuple[str, float, str], list[Entry]] = {}
    for e in entries:
        groups.setdefault((e.board, e.train_scale, e.training), []).append(e)
    header = ["rank", "model", "config", *[label for _, label, _ in METRIC_COLUMNS], "curve", "params",
              "train GFLOP/img", "train min", "seeds", "status", "paper, code", "date", "scalebench @ commit",
              "results by seed"]  # fmt: skip
    for (_, train_scale, training), group in groups.items():
        first = group[0]
        lines += [
            f"## {md_cell(board_title(first.dataset, first.track, training))} ({md_cell(first.build_id)}), "
            f"training scale {train_scale:g}"
        ]
        lines += ["", TRACK_RULES.get(first.track, ""), ""]
        if training in TRAINING_RULES:
            lines += [TRAINING_RULES[training], ""]
        rows = []
        for e in group:
            page = f"{ENTRIES_DIR}/{entry_slug(e)}.html"
            rows.append([
                str(e.rank) if e.rank is not None else "provisional",
                f"[{md_cell(e.display_name)}]({page})",
                md_cell(entry_config_text(e)),
                *[format_stat(e.stats[key], kind, e.n_seeds) for key, _, kind in METRIC_COLUMNS],
                f"![curve of {md_cell(e.display_name)}]({CURVES_DIR}/{entry_slug(e)}.svg)",
                format_params(e.num_params),
                format_gflops(e.train_flops_per_image),
                format_minutes(e.train_seconds, e.n_seeds),
                str(e.n_seeds),
                e.status,
                " ".join(f"[{text}]({href})" for text, href in paper_links(e.card)) or "–",
                md_cell(_date(e.created[1])),
                md_cell(f"scalebench {', '.join(e.versions)} @ {', '.join(c[:8] for c in e.commits) or 'n/a'}"),
                " ".join(f"[{r['seed']}]({RUNS_DIR}/{r['path']})" for r in e.runs),
            ])  # fmt: skip
        lines += _md_table(header, rows)
        scales = all_scales(group)
        lines += [f"Accuracy (%) at each test scale, mean over seeds; training scale {train_scale:g}.", ""]
        per_scale = []
        for e in group:
            by = {s: (m, sd) for s, m, sd in e.curve}
            cells = [format_stat(Stat(*by[s]), "acc", e.n_seeds) if s in by else "–" for s in scales]
            per_scale.append([md_cell(e.display_name), md_cell(entry_config_text(e)), *cells])
        lines += _md_table(["model", "config", *[f"s = {s:.3g}" for s in scales]], per_scale)
    return "\n".join(lines)


def _is_previous_site(out: Path) -> bool:
    """``out`` holds the marker as a regular file (a link named like the marker does not count)."""
    marker = out / SITE_MARKER
    return marker.is_file() and not marker.is_symlink()


def _links_in(folder: Path) -> list[Path]:
    """The symbolic links under ``folder`` (found without following any)."""
    links = []
    for here, dirs, files in os.walk(folder):
        links += [Path(here) / n for n in (*dirs, *files) if (Path(here) / n).is_symlink()]
    return sorted(links)


def _check_out(store: Path, out: Path) -> None:
    if store.resolve() == out.resolve() or store.resolve() in out.resolve().parents:
        raise ScalebenchError(f"--out {out} must not be inside the store {store}; use e.g. --out site/.")
    if out.is_symlink():
        raise ScalebenchError(f"--out {out} is a symbolic link; give a real folder.")
    if out.exists() and not out.is_dir():
        raise ScalebenchError(f"--out {out} is a file; give a folder.")
    if out.is_dir() and any(out.iterdir()) and not _is_previous_site(out):
        raise ScalebenchError(
            f"--out {out} is a non-empty folder that is not an earlier leaderboard site (no {SITE_MARKER}); "
            "nothing was written. Give an empty or new folder, e.g. --out site/."
        )
    links = _links_in(out) if out.is_dir() else []
    if links:
        raise ScalebenchError(
            f"--out {out} holds a symbolic link ({links[0]}), which no leaderboard site holds; nothing was written. "
            "Remove the link or give another folder."
        )


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace ``out`` (missing, empty or an earlier site) by the finished site ``tmp``."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / "site")
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old / "site", out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_site(files: dict[str, str | bytes], out: Path) -> None:
    """Write ``files`` (relative path -> content) as a new site at ``out``, atomically (see the module doc)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for rel, content in {**files, SITE_MARKER: "scalebench leaderboard site\n"}.items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(content.encode() if isinstance(content, str) else content)
            os.chmod(dest, new_file_mode())
        mode = new_file_mode()
        for folder in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            os.chmod(folder, mode | ((mode & 0o444) >> 2))  # searchable wherever readable
        _swap_in(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
        raise


def build_leaderboard(
    store: str | Path = "results",
    out: str | Path = "site",
    *,
    known: Sequence[KnownBuild] | None = None,
) -> dict[str, Path]:
    """``scalebench leaderboard build``: validate the store, rank it and write every output into ``out``.

    Returns the paths written, by name (``markdown``, ``csv``, ``json``, ``html``, ``runs``). Refuses to build
    from a store with problems (see :func:`scalebench.leaderboard.store.validate_store`) and to write into a
    non-empty folder that is not an earlier site; an earlier site is replaced whole, atomically.
    """
    from scalebench.leaderboard.pages import curve_svg_file, entry_html, leaderboard_html

    store, out = Path(store), Path(out)
    _check_out(store, out)
    runs = load_store(store, known=known)
    entries = rank_entries([r for r in runs if r.result.task == "classification"])
    seg_runs = [r for r in runs if r.result.task == "segmentation"]
    seg_rows = segmentation_rows([r.result for r in seg_runs], [str(r.path) for r in seg_runs])
    files: dict[str, str | bytes] = {f"{RUNS_DIR}/{r.path}": (store / r.path).read_bytes() for r in runs}
    markdown = leaderboard_markdown(entries, segmentation=bool(seg_rows))
    if seg_rows:
        markdown += "\n" + segmentation_markdown(seg_rows, level=2, runs_dir=RUNS_DIR)
        files["segmentation.csv"] = segmentation_csv(seg_rows)
    files["LEADERBOARD.md"] = markdown
    files["leaderboard.csv"] = leaderboard_csv(entries)
    files["leaderboard.json"] = leaderboard_json(entries)
    files["index.html"] = leaderboard_html(entries, seg_rows)
    by_slug = {
        entry_slug(e): [r for r in runs if str(r.path) in {x["path"] for x in e.runs}] for e in entries
    }
    for e in entries:
        files[f"{ENTRIES_DIR}/{entry_slug(e)}.html"] = entry_html(
            e, [r.result for r in by_slug[entry_slug(e)]]
        )
        files[f"{CURVES_DIR}/{entry_slug(e)}.svg"] = curve_svg_file(e)
    write_site(files, out)
    paths = {
        "markdown": out / "LEADERBOARD.md",
        "csv": out / "leaderboard.csv",
        "json": out / "leaderboard.json",
        "html": out / "index.html",
        "runs": out / RUNS_DIR,
        "entries": out / ENTRIES_DIR,
    }
    if seg_rows:
        paths["segmentation_csv"] = out / "segmentation.csv"
    return paths
