"""Outputs beside the results: reproducible figures, the long CSV, throttled plain progress."""

from __future__ import annotations

import io

import pytest
from bench_factories import make_result

from scalebench.benchmark.figures import plot_comparison, plot_generalisation_curve, plot_scale_selection
from scalebench.benchmark.progress import Progress
from scalebench.benchmark.protocol import long_csv_rows


def test_figures_are_byte_reproducible(tmp_path):
    result = make_result(selection=[[4, 1, 0], [1, 4, 1], [0, 1, 4]])
    for sub in ("a", "b"):
        plot_generalisation_curve([result, make_result([20, 40, 30], seed=1)], tmp_path / sub / "curve")
        plot_scale_selection(result, tmp_path / sub / "selection")
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
    png, svg, csv = plot_comparison(groups, tmp_path / "cmp")
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
    lines = stream.getvalue().splitlines()
    assert lines[0] == "epoch 1/1: 0/1000"
    assert lines[1].startswith("epoch 1/1: done in ") and lines[1].endswith("loss 0.1")
    assert lines[2:] == ["a line"]
    silent = io.StringIO()
    with Progress("none", stream=silent) as bar:
        bar.start("x", 2)
        bar.advance(2)
        bar.end()
    assert silent.getvalue() == ""
