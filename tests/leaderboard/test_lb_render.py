"""Round trip submit -> build: the rendered rows hold the numbers recomputed from the counts; ranking rules."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics

import pytest
from lb_factories import KNOWN, SCALES, make_run, run_text, write_run

from scalebench.benchmark.figures import model_colour
from scalebench.checks import ScalebenchError
from scalebench.leaderboard import build_leaderboard, submit, submit_runs

# per-seed correct counts (of 100) at the 9 canonical scales; scale 1.0 is index 4
STRONG = [
    [70, 75, 80, 85, 90, 86, 82, 78, 72],
    [68, 74, 81, 86, 91, 85, 80, 77, 70],
    [71, 73, 79, 84, 89, 87, 83, 79, 73],
]
WEAK = [
    [40, 50, 60, 75, 88, 70, 60, 50, 41],
    [42, 52, 61, 74, 87, 69, 59, 48, 40],
    [39, 49, 62, 76, 89, 71, 61, 51, 42],
]
FEW = [[90, 90, 90, 90, 95, 90, 90, 90, 90], [91, 91, 91, 91, 96, 91, 91, 91, 91]]


def _expected(counts: list[list[int]]) -> dict[str, tuple[float, float]]:
    """Mean and sample std over seeds of each summary, computed here from the counts without scalebench."""
    per_seed = {"mean": [], "train": [], "worst": [], "ratio": []}
    for c in counts:
        acc = [x / 100 for x in c]
        per_seed["mean"].append(sum(acc) / len(acc))
        per_seed["train"].append(acc[SCALES.index(1.0)])
        per_seed["worst"].append(min(acc))
        per_seed["ratio"].append(min(acc) / acc[SCALES.index(1.0)])
    return {k: (statistics.fmean(v), statistics.stdev(v)) for k, v in per_seed.items()}


@pytest.fixture
def built(tmp_path):
    store = tmp_path / "results"
    files = []
    for model, table, sel in (("strong", STRONG, True), ("weak", WEAK, False), ("few", FEW, False)):
        for seed, counts in enumerate(table):
            files.append(
                write_run(
                    tmp_path / "in" / f"{model}{seed}.json",
                    make_run(counts, seed=seed, model=model, selection=sel),
                )
            )
    submit(files, store, known=KNOWN)
    return store, build_leaderboard(store, tmp_path / "site", known=KNOWN)


def _md_row(markdown: str, model: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 2 and cells[1] == model:
            return cells
    raise AssertionError(f"no row for {model}")


def test_markdown_rows_hold_the_recomputed_numbers(built):
    _, paths = built
    md = paths["markdown"].read_text()
    exp = _expected(STRONG)
    row = _md_row(md, "strong")
    assert row[0] == "1"
    assert row[3] == f"{100 * exp['mean'][0]:.2f} ± {100 * exp['mean'][1]:.2f}"
    assert row[4] == f"{100 * exp['train'][0]:.2f} ± {100 * exp['train'][1]:.2f}"
    assert row[5] == f"{100 * exp['worst'][0]:.2f} ± {100 * exp['worst'][1]:.2f}"
    assert row[6] == f"{exp['ratio'][0]:.3f} ± {exp['ratio'][1]:.3f}"
    assert re.fullmatch(r"0\.\d{3} ± 0\.\d{3}", row[7])  # ρ of a scale-channel model
    assert row[8] == "12,345" and row[9] == "3" and row[10] == "self-reported"
    weak = _md_row(md, "weak")
    assert weak[0] == "2" and weak[7] == "–"  # no scale selection reported
    few = _md_row(md, "few")
    assert few[0] == "provisional" and few[9] == "2"  # best mean accuracy, but only 2 seeds


def test_html_rows_hold_the_recomputed_numbers(built):
    _, paths = built
    html = paths["html"].read_text()
    row = re.search(
        r'<tr data-dataset="fashion-mnist" data-train-scale="1.0" data-model="strong">(.*?)</tr>', html, re.S
    )
    assert row, "no row for strong"
    exp = _expected(STRONG)
    text = row.group(1)
    assert f"{100 * exp['mean'][0]:.2f} ± {100 * exp['mean'][1]:.2f}" in text
    assert f"{exp['ratio'][0]:.3f} ± {exp['ratio'][1]:.3f}" in text
    sort_values = [float(v) for v in re.findall(r'class="num" data-sort="([0-9.e-]+)"', text)[:1]]
    assert sort_values[0] == pytest.approx(exp["mean"][0], abs=1e-12)
    assert text.count('class="run-link"') == 3 and "runs/fashion-mnist/strong/" in text
    assert model_colour("strong") in text
    assert '<polygon points="' in text  # ± std band over 3 seeds
    order = re.findall(r'data-model="([^"]+)"', html)
    assert order == ["strong", "weak", "few"]
    assert html.count("badge provisional") == 1


def test_html_is_self_contained(built):
    _, paths = built
    html = paths["html"].read_text()
    assert "src=" not in html and 'rel="stylesheet"' not in html
    urls = re.findall(r"https?://[^\s\"'<>]+", html)
    assert set(urls) <= {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched
    assert "default-src 'none'" in html


def test_csv_and_json_agree_and_link_existing_copies(built):
    _, paths = built
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    doc = json.loads(paths["json"].read_text())
    assert [r["model"] for r in rows] == [e["model"] for e in doc["entries"]] == ["strong", "weak", "few"]
    exp = _expected(WEAK)
    weak_csv, weak_json = rows[1], doc["entries"][1]
    assert float(weak_csv["mean_accuracy_mean"]) == pytest.approx(exp["mean"][0], abs=1e-12)
    assert weak_json["metrics"]["worst_accuracy"]["std"] == pytest.approx(exp["worst"][1], abs=1e-12)
    assert weak_json["rank"] == 2 and doc["entries"][2]["rank"] is None and doc["entries"][2]["provisional"]
    site = paths["html"].parent
    for entry in doc["entries"]:
        assert [r["seed"] for r in entry["runs"]] == entry["seeds"]
        for run in entry["runs"]:
            assert (site / "runs" / run["path"]).is_file()
    assert [p["scale"] for p in doc["entries"][0]["curve"]] == SCALES
    assert doc["entries"][0]["curve"][4]["mean"] == pytest.approx(
        statistics.fmean(s[4] / 100 for s in STRONG)
    )


def test_rebuild_is_byte_identical(built, tmp_path):
    store, paths = built
    again = build_leaderboard(store, tmp_path / "site2", known=KNOWN)
    for key in ("markdown", "csv", "json", "html"):
        assert paths[key].read_bytes() == again[key].read_bytes()


def test_ties_break_on_worst_scale_then_name(tmp_path):
    store = tmp_path / "results"
    flat = [80] * 9
    dip = [60, 85, 85, 85, 85, 85, 85, 85, 65]  # same mean (80), lower worst accuracy
    assert sum(flat) == sum(dip)
    items = []
    for model, counts in (("a-dip", dip), ("b-flat", flat), ("c-flat", flat)):
        items += [(f"{model}{s}", run_text(make_run(counts, seed=s, model=model))) for s in range(3)]
    submit_runs(items, store, known=KNOWN)
    doc = json.loads(build_leaderboard(store, tmp_path / "site", known=KNOWN)["json"].read_text())
    assert [(e["model"], e["rank"]) for e in doc["entries"]] == [("b-flat", 1), ("c-flat", 2), ("a-dip", 3)]


def test_verified_badge(tmp_path):
    store = tmp_path / "results"
    submit_runs([(f"s{s}", run_text(make_run(seed=s))) for s in range(3)], store, known=KNOWN)
    submit_runs([("v", make_run(seed=3, evaluated_by="verified"))], store, known=KNOWN, verified=True)
    submit_runs(
        [(f"m{s}", make_run(seed=s, model="cnn", evaluated_by="verified")) for s in range(3)],
        store,
        known=KNOWN,
        verified=True,
    )
    doc = json.loads(build_leaderboard(store, tmp_path / "site", known=KNOWN)["json"].read_text())
    status = {e["model"]: (e["status"], e["n_verified"]) for e in doc["entries"]}
    assert status == {"gaussdernet": ("partly verified", 1), "cnn": ("verified", 3)}
    html = (tmp_path / "site" / "index.html").read_text()
    assert 'class="badge verified"' in html and 'class="badge partly-verified"' in html


def test_empty_store_builds_an_empty_page(tmp_path):
    (tmp_path / "results").mkdir()
    paths = build_leaderboard(tmp_path / "results", tmp_path / "site", known=KNOWN)
    assert "No results yet" in paths["markdown"].read_text()
    assert "No results yet" in paths["html"].read_text()
    assert json.loads(paths["json"].read_text())["entries"] == []


def test_build_refuses_an_invalid_store(tmp_path):
    store = tmp_path / "results"
    submit_runs([("s0", run_text(make_run(seed=0)))], store, known=KNOWN)
    next(store.rglob("seed-0.json")).unlink()
    with pytest.raises(ScalebenchError, match="1 problem"):
        build_leaderboard(store, tmp_path / "site", known=KNOWN)
    with pytest.raises(ScalebenchError, match="must not be inside the store"):
        build_leaderboard(store, store / "site", known=KNOWN)


GOLDEN_MD = """\
## fashion-mnist, training scale 1

| rank | model | config | mean acc. over scales | acc. at training scale | worst-scale acc. | generalisation ratio | scale-selection ρ | params | seeds | status | results by seed |
|---|---|---|---|---|---|---|---|---|---|---|---|
| 1 | gaussdernet | `49c6b26f` | 71.00 ± 1.00 | 91.00 ± 1.00 | 51.00 ± 1.00 | 0.560 ± 0.005 | – | 12,345 | 3 | self-reported | [0](runs/fashion-mnist/gaussdernet/49c6b26f06a147ef/seed-0.json) [1](runs/fashion-mnist/gaussdernet/49c6b26f06a147ef/seed-1.json) [2](runs/fashion-mnist/gaussdernet/49c6b26f06a147ef/seed-2.json) |
| provisional | cnn | `c2bb794d` | 70.00 | 90.00 | 50.00 | 0.556 | – | 12,345 | 1 | self-reported | [0](runs/fashion-mnist/cnn/c2bb794dccfc0184/seed-0.json) |
"""


def test_markdown_golden(tmp_path):
    """The exact LEADERBOARD.md table of a fixed store (a change of format or of hashing shows up here)."""
    store = tmp_path / "results"
    items = [(f"s{s}", run_text(make_run(seed=s))) for s in range(3)] + [
        ("c0", run_text(make_run(model="cnn")))
    ]
    submit_runs(items, store, known=KNOWN)
    md = build_leaderboard(store, tmp_path / "site", known=KNOWN)["markdown"].read_text()
    assert md.split("\n\n", 2)[2] == GOLDEN_MD


def test_inline_curve_geometry():
    from scalebench.leaderboard.ranking import Entry, Stat
    from scalebench.leaderboard.render import curve_svg

    e = Entry(
        dataset="d", dataset_version="1", train_scale=1.0, model="m", config_hash="0" * 16, preset="paper",
        num_params=1, seeds=[0, 1], stats={}, curve=[(0.5, 1.0, 0.0), (1.0, 0.5, 0.1), (2.0, 0.0, 0.0)],
        runs=[], n_verified=0,
    )  # fmt: skip
    g = curve_svg(e, width=106, height=56)
    assert g["line"] == "3.0,3.0 53.0,28.0 103.0,53.0"  # log2 x from 3 to 103, accuracy 1 at the top
    assert g["train_x"] == "53.0"
    assert g["band"].split()[1] == "53.0,23.0" and g["band"].split()[4] == "53.0,33.0"
    assert g["colour"] == model_colour("m")
    assert Stat.of([0.5, None]) == Stat(None, None)
