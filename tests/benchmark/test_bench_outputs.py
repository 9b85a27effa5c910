"""Outputs beside the results: reproducible figures a reviewer accepts, the long CSV, throttled plain progress."""

from __future__ import annotations

import io
import re

import pytest
from bench_factories import make_result
from figure_helpers import figure_texts, legend_is_outside, legend_texts
from PIL import Image

from scalebench.benchmark.engine import long_csv_rows
from scalebench.figures.curves import DEMO_CURVE_COLUMNS, RUN_CURVE_COLUMNS, curves_figure, plot_curves
from scalebench.figures.selection import RUN_SELECTION_COLUMNS, plot_selection, selection_figure
from scalebench.figures.style import RUN_FORMATS, build_label, config_note
from scalebench.progress import Progress
from scalebench.results import seedless_config_hash

# The per-run and demo files: PNG + SVG + CSV with the columns the protocol and the demo write.
RUN = {"columns": RUN_CURVE_COLUMNS, "formats": RUN_FORMATS}
RUN_SELECTION = {"columns": RUN_SELECTION_COLUMNS, "formats": RUN_FORMATS}
DEMO = {"columns": DEMO_CURVE_COLUMNS, "formats": RUN_FORMATS}


def test_figures_are_byte_reproducible(tmp_path):
    result = make_result(selection=[[4, 1, 0], [1, 4, 1], [0, 1, 4]])
    for sub in ("a", "b"):
        plot_curves([result, make_result([20, 40, 30], seed=1)], tmp_path / sub / "curve", **RUN)
        plot_selection([result], tmp_path / sub / "selection", **RUN_SELECTION)
    for name in ("curve.png", "curve.svg", "curve.csv", "selection.png", "selection.svg", "selection.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    curve = (tmp_path / "a" / "curve.csv").read_text().splitlines()
    model, dataset, train_scale, scale, mean, std, n = curve[2].split(",")
    assert (model, dataset, train_scale, scale, n) == ("gaussdernet", "fashion-mnist", "1.0", "1.0", "2")
    assert float(mean) == pytest.approx(0.85) and float(std) == pytest.approx(0.0707107)
    selection = (tmp_path / "a" / "selection.csv").read_text().splitlines()
    assert selection[1] == "0.5,0,1.0,4,0.8"


def test_comparison_keeps_one_colour_per_model(tmp_path):
    groups = {"gaussdernet": [make_result()], "cnn": [make_result([10, 45, 12], model="cnn")]}
    png, svg, csv = plot_curves(groups, tmp_path / "cmp", **DEMO)
    assert png.read_bytes()[:4] == b"\x89PNG" and b"<svg" in svg.read_bytes()[:400]
    assert csv.read_text().splitlines()[4] == "cnn,0.5,0.2,0.0,1"


def test_long_csv_rows():
    rows = long_csv_rows(make_result(selection=[[4, 1, 0], [1, 4, 1], [0, 1, 4]]))
    assert ("gaussdernet", 0, "0.5", "correct", "30") in rows
    assert ("gaussdernet", 0, "", "worst_scale", "0.5") in rows
    assert any(r[3] == "selection_spearman_rho" for r in rows)


def test_plain_progress_is_throttled():
    stream = io.StringIO()
    with Progress("plain", stream=stream, interval=3600) as bar:
        bar.start("epoch 1/1", 1000)
        for _ in range(1000):
            bar.advance()
        bar.end("loss 0.1")
        bar.log("a line")
    stamped = stream.getvalue().splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", line) for line in stamped)  # local time
    lines = [line[20:] for line in stamped]
    assert lines[0] == "epoch 1/1: 0/1000"
    assert lines[1].startswith("epoch 1/1: done in ") and lines[1].endswith("loss 0.1")
    assert lines[2:] == ["a line"]
    silent = io.StringIO()
    with Progress("none", stream=silent) as bar:
        bar.start("x", 2)
        bar.advance(2)
        bar.end()
    assert silent.getvalue() == ""


# --- figures a reviewer accepts: names, legends outside, seeds, builds, one resolution --------------------

CARD = {
    "name": "gaussdernet",
    "display_name": "GaussDerNet",
    "default_config": {"width": 16},
    "quick_config": {"width": 8},
}


def _as(run, *, card=None, build_id=None, embedded=False):
    """``run`` with another model card and dataset build (the factories' card has no display name)."""
    model = run.model.model_copy(update={"card": card or run.model.card})
    dataset = run.dataset.model_copy(
        update={"build_id": build_id or run.dataset.build_id, "embedded": embedded}
    )
    return run.model_copy(update={"model": model, "dataset": dataset})


@pytest.mark.parametrize(
    ("name", "build_id", "embedded", "limit", "expected"),
    [
        ("fashion-mnist", "fashion-mnist-lite", False, None, "Fashion-MNIST lite (fashion-mnist-lite)"),
        ("fashion-mnist", "fashion-mnist", False, None, "Fashion-MNIST full (fashion-mnist)"),
        ("fashion-mnist", "fashion-mnist-limit500", False, None, "Fashion-MNIST subset (fashion-mnist-limit500)"),
        ("fashion-mnist", "fashion-mnist-embedded", True, None,
         "Fashion-MNIST embedded demo subset (fashion-mnist-embedded)"),
        ("fashion-mnist", "fashion-mnist", False, 64, "Fashion-MNIST full (fashion-mnist), smoke run --limit 64"),
        ("cifar10", "cifar10-lite-limit20", False, None, "CIFAR-10 lite subset (cifar10-lite-limit20)"),
        ("stl10", "stl10", False, None, "STL-10 full (stl10)"),
        ("fashion-mnist-seg", "fashion-mnist-seg-embedded-limit8-canvas112x112", False, None,
         "Fashion-MNIST segmentation embedded demo subset (fashion-mnist-seg-embedded-limit8-canvas112x112)"),
        ("mnist", "mnist-v2", False, None, "mnist (mnist-v2)"),
    ],
)  # fmt: skip
def test_build_label(name, build_id, embedded, limit, expected):
    dataset = make_result().dataset.model_copy(
        update={"name": name, "build_id": build_id, "embedded": embedded}
    )
    assert build_label(dataset, limit) == expected
    assert build_label({"name": name, "build_id": build_id, "embedded": embedded}, limit) == expected


def test_one_seed_curve_names_the_model_and_build_with_its_wilson_band(tmp_path):
    from scalebench.results.metrics import wilson_interval

    run = _as(make_result(), card=CARD, build_id="fashion-mnist-lite")
    fig = curves_figure([run])
    texts = figure_texts(fig)
    assert not any("±" in t for t in texts), texts
    (band,) = fig.axes[0].collections  # no std over one seed: the 95 % Wilson interval of each accuracy
    low = sorted(band.get_paths()[0].vertices[:, 1])[0]
    assert low == pytest.approx(min(wilson_interval(p.correct, p.total)[0] for p in run.per_scale))
    legend = legend_texts(fig)
    assert legend == ["GaussDerNet (1 seed)", "training scale", f"chance (1/{run.dataset.num_classes})"]
    title = fig.axes[0].get_title()
    assert build_label(run.dataset) in title and "lite" in title and "1 seed" in title
    assert "95 % Wilson interval" in title
    assert not any(run.model.config_hash in t or seedless_config_hash(run) in t for t in texts)
    assert legend_is_outside(fig)
    png, _, _ = plot_curves([run], tmp_path / "curve", **RUN)
    with Image.open(png) as im:
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_several_seeds_give_a_band_and_say_so():
    runs = [_as(make_result(seed=s), card=CARD) for s in range(3)]
    fig = curves_figure(runs)
    assert "mean ± std over 3 seeds" in fig.axes[0].get_title()
    assert legend_texts(fig)[0] == "GaussDerNet (n = 3 seeds)"
    assert len(fig.axes[0].collections) == 1  # the band


def test_selection_heatmap_colour_bar_and_title(tmp_path):
    run = _as(make_result(selection=[[4, 1, 0], [1, 4, 1], [0, 1, 4]]), card=CARD).model_copy(
        update={"limit": 20}
    )
    fig = selection_figure([run])
    colourbar = fig.axes[1]
    assert colourbar.get_ylabel() == "fraction of test images\nper test scale (rows sum to 1)"
    assert (
        fig.axes[0]
        .get_title()
        .startswith("GaussDerNet, Fashion-MNIST full (fashion-mnist), smoke run --limit 20")
    )
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["0.5", "1", "2"]
    png = plot_selection([run], tmp_path / "selection", **RUN_SELECTION)[0]
    with Image.open(png) as im:
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_comparison_names_models_by_display_name_outside_the_axes(tmp_path):
    cnn_card = {"name": "cnn", "display_name": "plain CNN"}
    runs = [_as(make_result(), card=CARD, build_id="fashion-mnist-embedded", embedded=True),
            _as(make_result([10, 45, 12], model="cnn"), card=cnn_card, build_id="fashion-mnist-embedded",
                embedded=True)]  # fmt: skip
    groups = {r.model.name: [r] for r in runs}  # as `make demo` gives them
    fig = curves_figure(groups)
    legend = legend_texts(fig)
    assert legend == ["GaussDerNet (1 seed)", "plain CNN (1 seed)", "training scale", "chance (1/10)"]
    assert "Fashion-MNIST embedded demo subset (fashion-mnist-embedded)" in fig.axes[0].get_title()
    assert not any("±" in t for t in figure_texts(fig))
    assert legend_is_outside(fig)
    named = curves_figure({"ours": [runs[0]], "cnn": [runs[1]]})
    assert legend_texts(named)[0] == "ours (1 seed)"
    png = plot_curves(groups, tmp_path / "cmp", **DEMO)[0]
    with Image.open(png) as im:
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_config_note_against_the_card():
    card = {"default_config": {"widths": [16, 32], "order": 2}, "quick_config": {"widths": (8, 8)}}
    assert config_note(card, {"widths": [16, 32], "order": 2}) == "default"
    assert config_note(card, {"widths": [8, 8], "order": 2}) == "quick"
    assert config_note(card, {"widths": [8, 8], "order": 1}) == "quick, order=1"
    assert config_note(card, {"widths": [4], "order": 1}) == "widths=[4], order=1"
    assert config_note({"name": "old"}, {"widths": [4]}) is None
