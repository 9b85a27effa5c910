"""Round trip submit -> build: the rendered rows hold the numbers recomputed from the counts; ranking rules."""

from __future__ import annotations

import csv
import html as html_lib
import io
import json
import re
import statistics
from pathlib import Path

import pytest
from lb_factories import KNOWN, SCALES, make_run, run_text, write_run

from scalebench.checks import ScalebenchError
from scalebench.figures.style import model_colour
from scalebench.leaderboard import build_leaderboard, submit, submit_runs
from scalebench.results import Equivariance, EquivarianceError

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
    for model, table, sel in (
        ("resnet32", STRONG, True),
        ("resnet20", WEAK, False),
        ("gaussdernet", FEW, False),
    ):
        for seed, counts in enumerate(table):
            run = make_run(counts, seed=seed, model=model, selection=sel)
            if sel:  # the scale-channel entry also records its equivariance error (results 1.3)
                trained = EquivarianceError(images=32, pairs=[(0.5, 0.707107)], invariance=0.2 + 0.01 * seed)
                run = run.model_copy(update={"equivariance": Equivariance(trained=trained)})
            files.append(
                write_run(
                    tmp_path / "in" / f"{model}{seed}.json",
                    run,
                )
            )
    submit(files, store, known=KNOWN)
    return store, build_leaderboard(store, tmp_path / "site", known=KNOWN)


def _md_row(markdown: str, model: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 2 and cells[1].startswith(f"[{model}]("):
            return cells
    raise AssertionError(f"no row for {model}")


def test_markdown_rows_hold_the_recomputed_numbers(built):
    _, paths = built
    md = paths["markdown"].read_text()
    exp = _expected(STRONG)
    row = _md_row(md, "resnet32")
    assert row[0] == "1"
    assert row[3] == f"{100 * exp['mean'][0]:.2f} ± {100 * exp['mean'][1]:.2f}"
    assert row[4] == f"{100 * exp['train'][0]:.2f} ± {100 * exp['train'][1]:.2f}"
    assert row[5] == f"{100 * exp['worst'][0]:.2f} ± {100 * exp['worst'][1]:.2f}"
    assert row[6] == f"{exp['ratio'][0]:.3f} ± {exp['ratio'][1]:.3f}"
    assert re.fullmatch(r"0\.\d{3} ± 0\.\d{3}", row[7])  # ρ of a scale-channel model
    assert row[8] == "0.210 ± 0.010"  # the trained invariance error, mean ± std over seeds
    assert row[9].startswith("![curve of resnet32](curves/fashion-mnist/resnet32/")
    assert row[10] == "12,345" and row[13] == "3" and row[14] == "self-reported" and row[15] == "–"
    assert row[16] == "2026-01-01" and row[17] == "scalebench 0.1.0 @ n/a"
    weak = _md_row(md, "resnet20")
    assert weak[0] == "2" and weak[7] == "–" and weak[8] == "–"  # no scale selection, no equivariance record
    few = _md_row(md, "gaussdernet")
    assert few[0] == "provisional" and few[13] == "2"  # best mean accuracy, but only 2 seeds


def test_html_rows_hold_the_recomputed_numbers(built):
    _, paths = built
    html = paths["html"].read_text()
    row = re.search(
        r'<tr data-dataset="fashion-mnist" data-train-scale="1.0" data-model="resnet32">(.*?)</tr>',
        html,
        re.S,
    )
    assert row, "no row for strong"
    exp = _expected(STRONG)
    text = row.group(1)
    assert f"{100 * exp['mean'][0]:.2f} ± {100 * exp['mean'][1]:.2f}" in text
    assert f"{exp['ratio'][0]:.3f} ± {exp['ratio'][1]:.3f}" in text
    sort_values = [float(v) for v in re.findall(r'class="num" data-sort="([0-9.e-]+)"', text)[:1]]
    assert sort_values[0] == pytest.approx(exp["mean"][0], abs=1e-12)
    assert text.count('class="run-link"') == 3 and "runs/fashion-mnist/resnet32/" in text
    assert model_colour("resnet32") in text
    assert '<polygon points="' in text  # ± std band over 3 seeds
    order = re.findall(r'data-model="([^"]+)"', html)
    assert order == ["resnet32", "resnet20", "gaussdernet"]
    assert html.count("badge provisional") == 1


def test_html_is_self_contained(built):
    _, paths = built
    for page in [paths["html"], *paths["entries"].rglob("*.html")]:
        html = page.read_text()
        assert "src=" not in html and 'rel="stylesheet"' not in html
        urls = re.findall(r"https?://[^\s\"'<>]+", html)
        assert set(urls) <= {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched
        assert "default-src 'none'" in html


def test_csv_and_json_agree_and_link_existing_copies(built):
    _, paths = built
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    doc = json.loads(paths["json"].read_text())
    assert (
        [r["model"] for r in rows]
        == [e["model"] for e in doc["entries"]]
        == ["resnet32", "resnet20", "gaussdernet"]
    )
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
    pages = sorted(p.relative_to(paths["entries"]) for p in paths["entries"].rglob("*.html"))
    assert pages == sorted(p.relative_to(again["entries"]) for p in again["entries"].rglob("*.html"))
    assert all((paths["entries"] / p).read_bytes() == (again["entries"] / p).read_bytes() for p in pages)


def test_ties_break_on_worst_scale_then_name(tmp_path):
    store = tmp_path / "results"
    flat = [80] * 9
    dip = [60, 85, 85, 85, 85, 85, 85, 85, 65]  # same mean (80), lower worst accuracy
    assert sum(flat) == sum(dip)
    items = []
    for model, counts in (("cnn", dip), ("resnet20", flat), ("resnet32", flat)):
        items += [(f"{model}{s}", run_text(make_run(counts, seed=s, model=model))) for s in range(3)]
    submit_runs(items, store, known=KNOWN)
    doc = json.loads(build_leaderboard(store, tmp_path / "site", known=KNOWN)["json"].read_text())
    assert [(e["model"], e["rank"]) for e in doc["entries"]] == [("resnet20", 1), ("resnet32", 2), ("cnn", 3)]


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


def test_markdown_golden(tmp_path):
    """The exact LEADERBOARD.md tables of a fixed store (a change of format or of hashing shows up here)."""
    store = tmp_path / "results"
    items = [(f"s{s}", run_text(make_run(seed=s))) for s in range(3)] + [
        ("c0", run_text(make_run(model="cnn")))
    ]
    submit_runs(items, store, known=KNOWN)
    md = build_leaderboard(store, tmp_path / "site", known=KNOWN)["markdown"].read_text()
    assert md.split("## ", 1)[1] == (Path(__file__).parent / "golden_leaderboard.md").read_text()


def _visible_text(html: str) -> str:
    """What a reader sees: the text between tags (attributes, such as link targets and titles, removed)."""
    html = re.sub(r"<(script|style|title)\b.*?</\1>", " ", html, flags=re.S)
    return html_lib.unescape(" ".join(re.sub(r"<[^>]+>", " ", html).split()))


@pytest.fixture
def lite_site(tmp_path):
    """A store with full-track and lite-track runs of the same models (the lite build: another manifest)."""
    from lb_factories import MANIFEST, VERSION

    from scalebench.leaderboard import KnownBuild

    lite_sha = "c" * 64
    known = (*KNOWN, KnownBuild("fashion-mnist", VERSION, lite_sha, tuple(SCALES), 1.0, track="lite"))
    card = {"name": "gaussdernet", "display_name": "GaussDerNet", "arxiv": "2011.14759",
            "code_url": "https://github.com/example/code", "bibtex": "@article{x, title={A <b>title</b>}}",
            "default_config": {"widths": [16] * 4}, "quick_config": {"widths": [8] * 4},
            "paper_training": {"lr": 0.01, "unverified": ["lr"]}, "notes": "A note."}  # fmt: skip
    items = []
    for track, sha in (("full", MANIFEST), ("lite", lite_sha)):
        for s in range(3):
            r = make_run(seed=s, selection=True)
            build = "fashion-mnist" + ("-lite" if track == "lite" else "")
            r = r.model_copy(update={
                "model": r.model.model_copy(update={"card": card, "train_flops_per_image": 2_345_000_000}),
                "dataset": r.dataset.model_copy(update={"manifest_sha256": sha, "build_id": build}),
            })  # fmt: skip
            items.append((f"{track}{s}", run_text(r)))
    store = tmp_path / "results"
    submit_runs(items, store, known=known)
    return store, build_leaderboard(store, tmp_path / "site", known=known), known


def test_page_shows_the_lite_track_per_scale_columns_links_and_no_hash(lite_site):
    _, paths, _ = lite_site
    html = paths["html"].read_text()
    lite_row = re.search(r'<tr data-dataset="fashion-mnist-lite"[^>]*>(.*?)</tr>', html, re.S).group(1)
    assert "Fashion-MNIST lite" in _visible_text(lite_row)
    full_row = re.search(r'<tr data-dataset="fashion-mnist"[^>]*>(.*?)</tr>', html, re.S).group(1)
    assert "Fashion-MNIST full" in _visible_text(full_row)
    # per-scale columns: one header and one cell per canonical scale
    for s in SCALES:
        assert f">s={s:.3g}</button>" in html
    assert len(re.findall(r'class="num scale"', lite_row)) == len(SCALES)
    # model links lead to existing pages; paper and code links go out, never fetched
    site = paths["html"].parent
    pages = re.findall(r'class="entry-link" href="([^"]+)"', html)
    assert len(pages) == 2 and all((site / p).is_file() for p in pages)
    assert 'href="https://arxiv.org/abs/2011.14759" rel="noopener noreferrer"' in html
    # configs are shown as the difference from the card's defaults, never as a bare hash
    text = _visible_text(html)
    doc = json.loads(paths["json"].read_text())
    for entry in doc["entries"]:
        assert entry["config_hash"][:8] not in text and entry["config_difference"] == "quick"
    assert "GaussDerNet" in text and "2.35" in text  # display name, training GFLOP per image
    md = paths["markdown"].read_text()
    assert "## Fashion-MNIST lite (fashion-mnist-lite), training scale 1" in md
    assert "## Fashion-MNIST full (fashion-mnist), training scale 1" in md
    md_visible = re.sub(r"\]\([^)]*\)", "]", md)  # link targets removed
    assert all(e["config_hash"][:8] not in md_visible for e in doc["entries"])
    assert {e["track"] for e in doc["entries"]} == {"full", "lite"}
    assert {e["board"] for e in doc["entries"]} == {"fashion-mnist", "fashion-mnist-lite"}


def test_entry_page_has_paper_config_seed_curves_heatmap_and_unverified_choices(lite_site):
    _, paths, _ = lite_site
    (page,) = [p for p in paths["entries"].rglob("*.html") if "fashion-mnist-lite" in str(p)]
    html = page.read_text()
    text = _visible_text(html)
    assert "@article{x, title={A &lt;b&gt;title&lt;/b&gt;}}" in html  # BibTeX, escaped
    assert (
        "Fashion-MNIST lite" in text and "preset: quick." in text
    )  # widths=[8]*4: the card's quick override
    assert "paper recipe: lr = 0.01 (unverified)" in text and "A note." in text
    assert html.count("<polyline") == 3 + 1  # one line per seed and the mean
    assert html.count("<rect x=") >= len(SCALES) * 5  # the heatmap: test scales x channels
    assert "rows sum to 1" in text and "authors' code" in text
    links = re.findall(r'class="run-link" href="([^"]+)"', html)
    assert len(links) == 3 and all((page.parent / link).resolve().is_file() for link in links)
    assert (page.parent / "../../../index.html").resolve() == paths["html"].resolve()


def test_verified_badge_names_who_when_and_where(tmp_path):
    from scalebench.results import Environment, Verification

    env = Environment(scalebench_version="0.1.0", torch_version="2.14.1", python_version="3.11",
                      platform="linux", device="cpu", device_name="x86_64", num_threads=2, amp=False,
                      deterministic=True)  # fmt: skip
    prov = Verification(verified_by="maintainer@ci", verified_at="2026-12-06T10:00:00+00:00", environment=env,
                        source_results_sha256="d" * 64)  # fmt: skip
    runs = [
        make_run(seed=s, evaluated_by="verified").model_copy(update={"verification": prov}) for s in range(3)
    ]
    store = tmp_path / "results"
    submit_runs([(f"v{s}", r) for s, r in enumerate(runs)], store, known=KNOWN, verified=True)
    paths = build_leaderboard(store, tmp_path / "site", known=KNOWN)
    html = paths["html"].read_text()
    assert (
        'class="badge verified" title="seed 0: verified by maintainer@ci on 2026-12-06 (x86_64, torch 2.14.1'
        in html
    )
    page = next(paths["entries"].rglob("*.html")).read_text()
    assert "verified by maintainer@ci on 2026-12-06" in page


def test_out_folder_is_never_emptied_unless_it_is_an_earlier_site(built, tmp_path):
    store, paths = built
    mine = tmp_path / "mine"
    (mine / "runs").mkdir(parents=True)
    (mine / "runs" / "precious.json").write_text("{}")
    with pytest.raises(ScalebenchError, match="not an earlier leaderboard site"):
        build_leaderboard(store, mine, known=KNOWN)
    assert (mine / "runs" / "precious.json").read_text() == "{}"
    # an earlier site is replaced whole (a stale entry page disappears); its parent keeps everything else
    site = paths["html"].parent
    (site / "entries" / "stale.html").write_text("old")
    (tmp_path / "keep.txt").write_text("keep")
    build_leaderboard(store, site, known=KNOWN)
    assert not (site / "entries" / "stale.html").exists() and (site / "index.html").is_file()
    assert (tmp_path / "keep.txt").read_text() == "keep"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site.")]  # no temporary folder left


def _external(run):
    """``run`` as :func:`scalebench.test` writes it: a model from a file, trained elsewhere, only tested here."""
    from scalebench.results.schema import ModelSourceInfo, TrainingInfo

    src = ModelSourceInfo(kind="file", reference="my_net.py:build", sha256="a" * 64)
    return run.model_copy(update={
        "model": run.model.model_copy(update={"name": "my_net", "config": {}, "card": {"name": "my_net"},
                                              "source": src}),
        "dataset": run.dataset.model_copy(update={"train_size": 0, "val_size": 0}),
        "training": TrainingInfo(preset="external", recipe={}, history=[]),
    })  # fmt: skip


def _non_standard(run):
    """``run`` trained through the Python API with the submitter's own loss."""
    from scalebench.results.schema import CallableInfo, CustomTraining

    custom = CustomTraining(loss=CallableInfo(name="my_losses.focal", sha256="c" * 64))
    return run.model_copy(update={"training": run.training.model_copy(update={"custom": custom})})


def _scale_augmented(run):
    """``run`` whose recipe records random rescaling of the training images (everything else standard: the
    preset, no custom training, nothing that says 'augmented')."""
    recipe = {**run.training.recipe, "scale_augmentation": [0.5, 2.0],
              "scale_augmentation_interpolation": "bicubic"}  # fmt: skip
    return run.model_copy(update={"training": run.training.model_copy(update={"recipe": recipe})})


def test_external_and_non_standard_training_rank_on_boards_of_their_own(tmp_path):
    store = tmp_path / "results"
    items = [(f"std{s}", run_text(make_run(WEAK[s], seed=s))) for s in range(3)]
    items += [(f"ext{s}", run_text(_external(make_run(STRONG[s], seed=s)))) for s in range(3)]
    items += [(f"ns{s}", run_text(_non_standard(make_run(STRONG[s], seed=s)))) for s in range(3)]
    items += [(f"aug{s}", run_text(_scale_augmented(make_run(STRONG[s], seed=s)))) for s in range(3)]
    submit_runs(items, store, known=KNOWN)
    paths = build_leaderboard(store, tmp_path / "site", known=KNOWN)
    doc = json.loads(paths["json"].read_text())
    rows = {(e["board"], e["model"], e["training"], e["rank"]) for e in doc["entries"]}
    # the stronger runs are first of their own boards, never ranked above the standard recipe's; a file that
    # looks standard in every field but records scale augmentation lands on the augmented board
    assert rows == {("fashion-mnist", "gaussdernet", "standard", 1),
                    ("fashion-mnist-external", "my_net", "external", 1),
                    ("fashion-mnist-non-standard", "gaussdernet", "non-standard", 1),
                    ("fashion-mnist-augmented", "gaussdernet", "augmented", 1)}  # fmt: skip
    assert "## Fashion-MNIST full, augmented training" in paths["markdown"].read_text()
    md = paths["markdown"].read_text()
    assert "## Fashion-MNIST full, external training" in md and "never with protocol-trained runs" in md
    assert "## Fashion-MNIST full, non-standard training" in md and "source hashes" in md
    html = paths["html"].read_text()
    assert '<option value="fashion-mnist-external">Fashion-MNIST full, external training</option>' in html
    assert "ranked apart from the standard recipe" in html


def test_a_file_that_claims_the_standard_track_is_refused_or_placed_by_what_it_records(tmp_path):
    run = make_run(seed=0)
    claim = json.loads(run_text(run))
    claim["track"] = "standard"  # a field the schema does not have: refused, nothing stored
    with pytest.raises(ScalebenchError, match="track"):
        submit_runs([("claim", json.dumps(claim))], tmp_path / "r1", known=KNOWN)
    hidden = json.loads(run_text(_scale_augmented(run)))
    hidden["training"]["recipe"]["scale_augmentation"] = [2.0, 0.5]  # an impossible range is no way out
    with pytest.raises(ScalebenchError, match="scale_augmentation"):
        submit_runs([("hidden", json.dumps(hidden))], tmp_path / "r2", known=KNOWN)
    for store in ("r1", "r2"):
        assert not (tmp_path / store).exists() or not any((tmp_path / store).rglob("*.json"))


def test_an_external_run_with_a_training_split_is_refused(tmp_path):
    bad = _external(make_run(seed=0))
    bad = bad.model_copy(update={"dataset": bad.dataset.model_copy(update={"train_size": 50000})})
    with pytest.raises(ScalebenchError, match="train_size is 50000, but a model trained elsewhere"):
        submit_runs([("ext", run_text(bad))], tmp_path / "results", known=KNOWN)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))


def test_the_equivariance_error_shows_on_the_entry_page(built):
    _, paths = built
    site = paths["markdown"].parent
    (page,) = (site / "entries" / "fashion-mnist" / "resnet32").glob("*.html")
    html = page.read_text()
    assert "Scale-equivariance error" in html and "<td>trained</td><td>0.210 ± 0.010</td><td>–</td>" in html
    (weak,) = (site / "entries" / "fashion-mnist" / "resnet20").glob("*.html")
    assert "Scale-equivariance error" not in weak.read_text()  # not recorded (results before 1.3)


def test_a_densified_evaluation_is_a_variant_row_of_the_same_model(tmp_path):
    from lb_factories import SCALES as scales
    from result_factories import make_run as make_result

    from scalebench.results import DenseChannels

    def run(seed: int, dense: bool):
        n = 9 if dense else 5
        counts = [[(100 if j == min(i * (n - 1) // 8, n - 1) else 0) for j in range(n)] for i in range(9)]
        made = make_result([60, 70, 80, 85, 90, 85, 80, 70, 60], scales=scales, total=100, seed=seed,
                           selection=counts, sigmas=[2 ** (j / (4 if dense else 2)) for j in range(n)])  # fmt: skip
        if dense:
            trained = DenseChannels(factor=2, trained_channel_sigmas=[2 ** (j / 2) for j in range(5)])
            made = made.model_copy(update={"test_channels": trained})
        return made

    items = [(f"t{s}", run_text(run(s, False))) for s in range(3)] + [
        (f"d{s}", run_text(run(s, True))) for s in range(3)
    ]
    submit_runs(items, tmp_path / "results", known=KNOWN)
    doc = json.loads(
        build_leaderboard(tmp_path / "results", tmp_path / "site", known=KNOWN)["json"].read_text()
    )
    names = sorted((e["board"], e["display_name"]) for e in doc["entries"])
    assert names == [("fashion-mnist", "gaussdernet"), ("fashion-mnist", "gaussdernet + dense ×2")]
