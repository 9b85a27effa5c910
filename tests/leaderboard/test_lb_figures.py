"""Comparison figures: files and formats, reproducible bytes, CSV = recomputed numbers, fixed colours, errors."""

from __future__ import annotations

import csv
import statistics

import pytest
from click.testing import CliRunner
from lb_factories import KNOWN, SCALES, make_run, run_text
from PIL import Image

from scalebench.benchmark.figures import model_colour
from scalebench.checks import ScalebenchError
from scalebench.cli import main
from scalebench.leaderboard import submit_runs
from scalebench.leaderboard.figures import group_runs, load_for_plot, plot_curves, plot_selection

A = [
    [50, 60, 70, 80, 90, 82, 74, 66, 58],
    [52, 61, 69, 81, 92, 80, 75, 65, 57],
    [49, 58, 71, 79, 91, 83, 73, 67, 59],
]


def _runs():
    runs = [make_run(c, seed=s, model="gaussdernet", selection=True) for s, c in enumerate(A)]
    runs += [make_run(seed=s, model="cnn", selection=True) for s in range(2)]
    return runs


def test_curves_files_csv_and_reproducibility(tmp_path):
    runs = _runs()
    paths = plot_curves(runs, tmp_path / "a" / "curves")
    assert [p.name for p in paths] == ["curves.pdf", "curves.svg", "curves.png", "curves.csv"]
    pdf, svg, png, table = (p.read_bytes() for p in paths)
    assert pdf.startswith(b"%PDF") and b"CreationDate" not in pdf and b"Matplotlib" not in pdf
    assert b"<dc:date>" not in svg
    with Image.open(paths[2]) as im:
        assert round(im.info["dpi"][0]) == 300
    for name in ("gaussdernet", "cnn"):
        assert model_colour(name).lower().encode() in svg.lower()
    rows = [r for r in csv.DictReader(table.decode().splitlines()) if r["model"] == "gaussdernet"]
    assert [float(r["scale"]) for r in rows] == SCALES
    for i, row in enumerate(rows):
        accs = [c[i] / 100 for c in A]
        assert float(row["mean_accuracy"]) == pytest.approx(statistics.fmean(accs), abs=1e-12)
        assert float(row["std_accuracy"]) == pytest.approx(statistics.stdev(accs), abs=1e-12)
        assert row["n_seeds"] == "3"
    again = plot_curves(runs, tmp_path / "b" / "curves")
    assert [p.read_bytes() for p in again] == [pdf, svg, png, table]


def test_selection_heatmaps_pool_counts_over_seeds(tmp_path):
    runs = _runs()
    paths = plot_selection(runs, tmp_path / "sel")
    assert [p.suffix for p in paths] == [".pdf", ".svg", ".png", ".csv"]
    rows = list(csv.DictReader(paths[3].read_text().splitlines()))
    assert {r["model"] for r in rows} == {"gaussdernet", "cnn"}
    first = [r for r in rows if r["model"] == "gaussdernet" and float(r["test_scale"]) == 0.5]
    pooled = [sum(run.scale_selection.counts[0][j] for run in runs[:3]) for j in range(5)]
    assert [int(r["count"]) for r in first] == pooled
    assert sum(float(r["fraction"]) for r in first) == pytest.approx(1.0)


def test_groups_and_labels():
    runs = [make_run(seed=s, width=w) for w in (8, 16) for s in range(2)] + [make_run(model="cnn")]
    groups = group_runs(runs)
    assert next(iter(groups)) == "cnn"
    assert all(label.startswith("gaussdernet [") for label in list(groups)[1:]) and len(groups) == 3
    with pytest.raises(ScalebenchError, match="seed 0 twice"):
        group_runs([make_run(seed=0), make_run(seed=0)])


def test_figure_errors_are_clear(tmp_path):
    with pytest.raises(ScalebenchError, match="several datasets"):
        plot_curves([make_run(), make_run(dataset="cifar10", model="cnn")], tmp_path / "x")
    with pytest.raises(ScalebenchError, match="No scale selection in the results of cnn"):
        plot_selection([make_run(model="cnn")], tmp_path / "x")
    with pytest.raises(ScalebenchError, match="No results to plot"):
        plot_curves([], tmp_path / "x")
    assert not list(tmp_path.iterdir())


def test_load_for_plot_from_store(tmp_path):
    store = tmp_path / "results"
    submit_runs([(f"s{s}", run_text(make_run(seed=s))) for s in range(2)], store, known=KNOWN)
    from scalebench.leaderboard import validate

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(validate, "known_builds", lambda: KNOWN)
        runs = load_for_plot(store=store, dataset="fashion-mnist")
        assert sorted(r.seed for r in runs) == [0, 1]
        with pytest.raises(ScalebenchError, match="No runs of dataset 'cifar10'"):
            load_for_plot(store=store, dataset="cifar10")
    with pytest.raises(ScalebenchError, match="--dataset"):
        load_for_plot(store=store)
    with pytest.raises(ScalebenchError, match="not both"):
        load_for_plot([tmp_path / "a.json"], store=store)


def test_plot_selection_from_a_store_leaves_out_the_baselines(tmp_path):
    store = tmp_path / "results"
    runs = [make_run(seed=s, model="gaussdernet", selection=True) for s in range(2)] + [make_run(model="cnn")]
    submit_runs([(f"r{i}", run_text(r)) for i, r in enumerate(runs)], store, known=KNOWN)
    from scalebench.leaderboard import validate

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(validate, "known_builds", lambda: KNOWN)
        assert len(load_for_plot(store=store, dataset="fashion-mnist")) == 3
        chosen = load_for_plot(store=store, dataset="fashion-mnist", selection=True)
        assert sorted((r.model.name, r.seed) for r in chosen) == [("gaussdernet", 0), ("gaussdernet", 1)]
        plot_selection(chosen, tmp_path / "sel")
        res = CliRunner().invoke(
            main,
            [
                "plot",
                "selection",
                "--store",
                str(store),
                "--dataset",
                "fashion-mnist",
                "--out",
                str(tmp_path / "c"),
            ],
        )
        assert res.exit_code == 0, res.output
