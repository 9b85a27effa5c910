"""The built leaderboard page in a real headless browser (Debian's chromium driven by Playwright).

Loads ``index.html`` from ``file://`` and checks: no console errors, sorting by a column reorders the rows,
the dataset filter hides the other datasets, the download links resolve and download, and no request
leaves ``file://`` or localhost. A screenshot is saved into the test's output folder (its path is printed).
Skips only when no chromium is installed (CI installs Debian's ``chromium`` package; never
``playwright install``, which downloads browsers).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from lb_factories import MANIFEST, SCALES, VERSION, make_run, run_text

from scalebench.leaderboard import KnownBuild, build_leaderboard, submit_runs
from scalebench.results import SCHEMA_VERSION

CHROMIUM = os.environ.get("SCALEBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
KNOWN2 = tuple(KnownBuild(d, VERSION, MANIFEST, tuple(SCALES), 1.0) for d in ("fashion-mnist", "cifar10"))

pytestmark = [pytest.mark.browser]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("browser")
    items = []
    plan = [("fashion-mnist", "gaussdernet", 3, 8), ("fashion-mnist", "cnn", 3, -10),
            ("fashion-mnist", "resnet20", 2, 2), ("cifar10", "gaussdernet", 3, -5), ("cifar10", "cnn", 3, -20)]  # fmt: skip
    for dataset, model, seeds, shift in plan:
        for s in range(seeds):
            counts = [max(0, min(100, c + shift + s)) for c in (50, 60, 70, 80, 90, 82, 74, 66, 58)]
            run = make_run(counts, seed=s, model=model, dataset=dataset, selection=model == "gaussdernet")
            items.append((f"{dataset}-{model}-{s}", run_text(run)))
    submit_runs(items, base / "results", known=KNOWN2)
    build_leaderboard(base / "results", base / "site", known=KNOWN2)
    return base / "site"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"no chromium at {CHROMIUM}: install Debian's chromium package (apt-get install chromium)"
        )
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"],
        )  # fmt: skip
        yield b
        b.close()


@pytest.fixture
def page(browser, site):
    context = browser.new_context(accept_downloads=True)
    p = context.new_page()
    p.errors, p.requests, p.blocked = [], [], []
    p.on("console", lambda m: p.errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    p.on("request", lambda r: p.requests.append(r.url))

    def route(r):
        url = r.request.url
        host = urlparse(url).hostname
        if url.startswith(("file://", "data:")) or host in ("localhost", "127.0.0.1", "::1"):
            r.continue_()
        else:
            p.blocked.append(url)
            r.abort()

    p.route("**/*", route)
    p.goto((site / "index.html").as_uri())
    p.wait_for_load_state("load")
    yield p
    context.close()


def _visible_rows(page) -> list[dict]:
    return page.eval_on_selector_all(
        "#leaderboard tbody tr",
        """rows => rows.filter(r => !r.hidden).map(r => ({
            model: r.dataset.model, dataset: r.dataset.dataset,
            mean: r.cells[5].dataset.sort, rank: r.cells[0].dataset.sort}))""",
    )


def test_page_loads_without_errors_or_outside_requests(page, site, tmp_path):
    assert page.title() == "scalebench leaderboard"
    assert len(_visible_rows(page)) == 5
    assert page.locator("svg polyline").count() == 5
    shot = tmp_path / "leaderboard.png"
    page.screenshot(path=str(shot), full_page=True)
    keep = os.environ.get("SCALEBENCH_TEST_ARTIFACTS")  # CI: a folder it uploads
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shot = Path(shutil.copy(shot, Path(keep) / "leaderboard.png"))
    print(f"\nscreenshot: {shot}")
    assert shot.stat().st_size > 1000
    assert page.errors == []
    assert page.blocked == []
    assert all(u.startswith(("file://", "data:")) for u in page.requests), page.requests


def test_sorting_reorders_rows(page):
    header = page.locator("#leaderboard thead th", has_text="mean acc. over scales").locator("button")
    header.click()
    values = [float(r["mean"]) for r in _visible_rows(page)]
    assert values == sorted(values) and len(set(values)) > 1
    header.click()
    values = [float(r["mean"]) for r in _visible_rows(page)]
    assert values == sorted(values, reverse=True)
    page.locator("#leaderboard thead th", has_text="model").first.locator("button").click()
    models = [r["model"] for r in _visible_rows(page)]
    assert models == sorted(models)
    # provisional entries have no rank: they stay last when sorting by rank, in both directions
    rank = page.locator("#leaderboard thead th", has_text="rank").first.locator("button")
    for _ in range(2):
        rank.click()
        ranks = [r["rank"] for r in _visible_rows(page)]
        assert ranks[-1] == "" and all(ranks[:-1])
    assert page.errors == []


def test_dataset_filter_hides_other_datasets(page):
    page.select_option("#filter-dataset", "cifar10")
    rows = _visible_rows(page)
    assert {r["dataset"] for r in rows} == {"cifar10"} and len(rows) == 2
    hidden = page.eval_on_selector_all("#leaderboard tbody tr", "rs => rs.filter(r => r.hidden).length")
    assert hidden == 3
    assert page.locator("#shown-count").inner_text() == "2 of 5 entries"
    page.select_option("#filter-train-scale", "2.0") if page.locator(
        "#filter-train-scale option[value='2.0']"
    ).count() else None
    page.select_option("#filter-dataset", "")
    assert len(_visible_rows(page)) == 5
    page.select_option("#filter-train-scale", "1.0")
    assert len(_visible_rows(page)) == 5
    assert page.errors == []


def test_download_links_resolve(page, site):
    hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    assert len(hrefs) == 3 + 14 + 5  # CSV, JSON, Markdown, one link per run, one page per entry
    for href in hrefs:
        assert href.startswith("file://")
        path = Path(unquote(urlparse(href).path))
        assert path.is_file() and site in path.parents, href
    with page.expect_download() as info:
        page.click("#download-csv")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert len(rows) == 5
    # chromium shows JSON from file:// instead of downloading it: follow the link and parse the page
    with page.expect_navigation():
        page.click("#download-json")
    assert page.url.endswith("/leaderboard.json")
    assert len(json.loads(page.inner_text("pre"))["entries"]) == 5
    page.go_back()
    with page.expect_navigation():
        page.locator(".run-link").first.click()
    assert "/runs/" in page.url and json.loads(page.inner_text("pre"))["schema_version"] == SCHEMA_VERSION
    page.go_back()
    with page.expect_navigation():
        page.locator(".entry-link").first.click()
    assert "/entries/" in page.url and page.locator("#curves svg polyline").count() >= 2
    with page.expect_navigation():
        page.click("#back")
    assert page.url.endswith("/index.html")
    assert page.blocked == [] and page.errors == []
