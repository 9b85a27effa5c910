"""Comparison figures: files and formats, reproducible bytes, CSV = recomputed numbers, fixed colours, errors."""

from __future__ import annotations

import csv
import statistics

import pytest
from click.testing import CliRunner
from figure_helpers import figure_texts, legend_is_outside, legend_texts
from lb_factories import KNOWN, SCALES, make_run, run_text, write_run
from PIL import Image

from scalebench.checks import ScalebenchError
from scalebench.cli import main
from scalebench.figures.curves import RUN_CURVE_COLUMNS, curves_figure, group_runs, plot_curves
from scalebench.figures.segmentation import sigmas_figure
from scalebench.figures.selection import plot_selection, selection_figure
from scalebench.figures.style import RUN_FORMATS, build_label, model_colour, select_runs
from scalebench.leaderboard import submit_runs
from scalebench.leaderboard.store import load_for_plot
from scalebench.results import seedless_config_hash

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
    assert next(iter(groups)) == "cnn"  # the factories' cards have no display name and no defaults
    assert set(list(groups)[1:]) == {
        "gaussdernet (widths=[8, 8, 8, 8])",
        "gaussdernet (widths=[16, 16, 16, 16])",
    }
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


# --- figures a reviewer accepts: names, legends outside, seeds, builds, one resolution and tick format -----

GAUSS = {
    "name": "gaussdernet",
    "display_name": "GaussDerNet",
    "default_config": {"widths": [16, 16, 24, 24, 32], "sigma0": 0.7071},
    "quick_config": {"widths": [8, 8, 12, 12]},
}
CNN = {"name": "cnn", "display_name": "plain CNN", "default_config": {"widths": [16, 32]}, "quick_config": {}}


def _as(run, card, config=None, build_id="fashion-mnist-lite"):
    """``run`` with a real-looking card and config, on the lite build (the factories' cards are bare)."""
    model = run.model.model_copy(update={"card": card, "config": config or run.model.config})
    return run.model_copy(
        update={"model": model, "dataset": run.dataset.model_copy(update={"build_id": build_id})}
    )


def _three_configs():
    quick = {"widths": [8, 8, 12, 12], "sigma0": 0.7071}
    default = {"widths": [16, 16, 24, 24, 32], "sigma0": 0.7071}
    other = {"widths": [8, 8, 12, 12], "sigma0": 1.0}
    runs = [_as(make_run(seed=s, selection=True), GAUSS, quick) for s in range(3)]
    runs += [
        _as(make_run(seed=0, selection=True), GAUSS, default),
        _as(make_run(seed=0, selection=True), GAUSS, other),
    ]
    return [*runs, _as(make_run(seed=0, model="cnn"), CNN, {"widths": [16, 32]})]


def test_legends_name_models_and_configs_never_hashes():
    runs = _three_configs()
    fig = curves_figure(runs)
    legend = legend_texts(fig)  # order: by model name, then config hash
    assert legend[0] == "plain CNN (1 seed)" and legend[-2:] == ["training scale", "chance (1/10)"]
    assert set(legend[1:-2]) == {
        "GaussDerNet (quick) (n = 3 seeds)",
        "GaussDerNet (default) (1 seed)",
        "GaussDerNet (quick, sigma0=1) (1 seed)",
    }
    hashes = {seedless_config_hash(r) for r in runs} | {r.model.config_hash for r in runs}
    assert not any(h[:8] in t for h in hashes for t in figure_texts(fig))
    assert legend_is_outside(fig)
    sel = selection_figure([r for r in runs if r.scale_selection is not None])
    titles = [ax.get_title() for ax in sel.axes[:3]]
    assert {t.split("\n")[0] for t in titles} == {
        "GaussDerNet (quick)",
        "GaussDerNet (default)",
        "GaussDerNet (quick, sigma0=1)",
    }
    assert sel.axes[3].get_ylabel() == "fraction of test images\nper test scale (rows sum to 1)"
    assert "Fashion-MNIST lite (fashion-mnist-lite)" in sel.get_suptitle()


def test_select_runs_by_model_pattern_and_preset(tmp_path):
    runs = _three_configs()
    gauss = select_runs(runs, models=["gauss*"])
    assert {r.model.name for r in gauss} == {"gaussdernet"} and len(gauss) == 5
    presets = select_runs(runs, presets_only=True)  # the CNN's widths are its card's defaults
    notes = sorted(legend_texts(curves_figure(presets))[:-2])  # less "training scale" and "chance (1/10)"
    assert notes == [
        "GaussDerNet (default) (1 seed)",
        "GaussDerNet (quick) (n = 3 seeds)",
        "plain CNN (1 seed)",
    ]
    with pytest.raises(ScalebenchError, match=r"--models 'resnet\*' matches no model.*'cnn', 'gaussdernet'"):
        select_runs(runs, models=["resnet*"])
    files = [str(write_run(tmp_path / f"r{i}.json", r)) for i, r in enumerate(runs)]
    out = tmp_path / "fig" / "curves"
    res = CliRunner().invoke(main, ["plot", "curves", *files, "--models", "cnn, gaussdernet", "--presets-only",
                                    "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "fig" / "curves.csv").read_text().splitlines()))
    assert {r["label"] for r in rows} == {"plain CNN", "GaussDerNet (quick)", "GaussDerNet (default)"}
    res = CliRunner().invoke(main, ["plot", "curves", *files, "--models", "sesn", "--out", str(out)])
    assert res.exit_code == 1 and "matches no model" in res.output and "Traceback" not in res.output


def test_label_overrides_by_model_name_and_config_hash(tmp_path):
    runs = _three_configs()
    quick_hash = seedless_config_hash(runs[0])
    fig = curves_figure(runs, labels={"cnn": "CNN baseline", quick_hash[:10]: "ours"})
    legend = legend_texts(fig)
    assert "CNN baseline (1 seed)" in legend and "ours (n = 3 seeds)" in legend
    paths = plot_curves(runs, tmp_path / "c", labels={"gaussdernet": "GDN"})
    labels = {row["label"] for row in csv.DictReader(paths[3].read_text().splitlines())}
    assert labels == {"plain CNN", "GDN (quick)", "GDN (default)", "GDN (quick, sigma0=1)"}
    with pytest.raises(
        ScalebenchError, match=r"names no curve.*Valid keys: a model name \(cnn, gaussdernet\)"
    ):
        plot_curves(runs, tmp_path / "x", labels={"resnet": "R"})


def test_cli_plot_curves_takes_label_options(tmp_path):
    files = [str(write_run(tmp_path / f"r{s}.json", _as(make_run(seed=s), GAUSS))) for s in range(2)]
    out = tmp_path / "fig" / "curves"
    res = CliRunner().invoke(
        main, ["plot", "curves", *files, "--label", "gaussdernet=GDN-8", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "fig" / "curves.csv").read_text().splitlines()))
    assert {r["label"] for r in rows} == {"GDN-8"}
    res = CliRunner().invoke(main, ["plot", "curves", *files, "--label", "gaussdernet", "--out", str(out)])
    assert res.exit_code == 1 and "KEY=NAME" in res.output and "Traceback" not in res.output


def test_one_seed_has_a_wilson_band_and_no_plus_minus():
    runs = [_as(make_run(seed=0), GAUSS), _as(make_run(seed=0, model="cnn"), CNN)]
    fig = curves_figure(runs)
    texts = figure_texts(fig)
    assert not any("±" in t for t in texts), texts
    assert len(fig.axes[0].collections) == 2  # no std over one seed: each curve's 95 % Wilson interval
    assert "1 seed each, band: 95 % Wilson interval" in fig.axes[0].get_title()
    three = curves_figure([_as(make_run(seed=s), GAUSS) for s in range(3)])
    assert "mean ± std over 3 seeds" in three.axes[0].get_title() and len(three.axes[0].collections) == 1


def test_titles_name_the_build():
    smoke = _as(make_run(), GAUSS, build_id="fashion-mnist-limit500").model_copy(update={"limit": 50})
    fig = curves_figure([smoke])
    title = fig.axes[0].get_title()
    assert build_label(smoke.dataset, smoke.limit) in title
    assert "Fashion-MNIST subset (fashion-mnist-limit500), smoke run --limit 50" in title
    lite = curves_figure([_as(make_run(), GAUSS)]).axes[0].get_title()
    assert "Fashion-MNIST lite (fashion-mnist-lite)" in lite


def test_per_run_and_leaderboard_curves_share_ticks_and_resolution(tmp_path):
    runs = [_as(make_run(seed=s), GAUSS) for s in range(2)]
    per_run, board = curves_figure({"gaussdernet": runs}), curves_figure(runs)  # the caller's groups, or runs
    ticks = [[t.get_text() for t in f.axes[0].get_xticklabels()] for f in (per_run, board)]
    assert ticks[0] == ticks[1] == ["0.5", "0.595", "0.707", "0.841", "1", "1.19", "1.41", "1.68", "2"]
    assert per_run.axes[0].get_xlabel() == board.axes[0].get_xlabel() == "test scale s (log2 axis)"
    assert legend_texts(per_run)[0] == legend_texts(board)[0] == "GaussDerNet (n = 2 seeds)"
    assert legend_is_outside(per_run) and legend_is_outside(board)
    pngs = [
        plot_curves(runs, tmp_path / "run" / "curve", columns=RUN_CURVE_COLUMNS, formats=RUN_FORMATS)[0],
        plot_curves(runs, tmp_path / "lb")[2],
    ]
    for png in pngs:
        with Image.open(png) as im:
            assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_segmentation_figures_have_outside_legends_and_build_titles():
    from test_lb_segmentation import make_seg_run

    runs = [make_seg_run(0)]
    for fig in (curves_figure(runs, metric="miou"), sigmas_figure(runs)):
        assert legend_is_outside(fig)
        assert "Fashion-MNIST segmentation full (fashion-mnist-seg)" in fig.axes[0].get_title()
        assert not any("±" in t for t in figure_texts(fig))
    miou = curves_figure([make_seg_run(s) for s in range(2)], metric="miou")
    assert "mean ± std over 2 seeds" in miou.axes[0].get_title()
    assert [t.get_text() for t in miou.axes[0].get_xticklabels()] == ["1", "2", "3", "4"]


def test_every_figure_drawn_twice_gives_the_same_bytes(tmp_path):
    """Same numbers, same files: curves (one seed, seeds with a band, mIoU), heatmaps (one run, side by side),
    learned σ and the triptych, each drawn twice into fresh folders."""
    import numpy as np
    from test_lb_segmentation import make_seg_run

    from scalebench.figures.segmentation import plot_sigmas, plot_triptych

    runs = _runs()
    seg = [make_seg_run(s) for s in range(2)] + [make_seg_run(0, train_scales=(1.0, 2.0, 3.0, 4.0))]
    rng = np.random.default_rng(0)
    rows = [(s, rng.random((8, 8)), rng.integers(0, 11, (8, 8)), np.full((8, 8), 255)) for s in (1.0, 2.0)]
    files = []
    for sub in ("a", "b"):
        out = tmp_path / sub
        files.append(
            plot_curves(runs[:1], out / "one", columns=RUN_CURVE_COLUMNS, formats=RUN_FORMATS)
            + plot_curves(runs, out / "seeds")
            + plot_curves(seg, out / "miou", metric="miou")
            + plot_selection(runs[:1], out / "selection")
            + plot_selection(runs, out / "selections")
            + plot_sigmas(seg, out / "sigmas")
            + plot_triptych(rows, out / "triptych", ignore_index=255)
        )
    assert {p.suffix for p in files[0]} == {".png", ".svg", ".pdf", ".csv"}
    for a, b in zip(*files, strict=True):
        assert a.name == b.name and a.read_bytes() == b.read_bytes(), a.name


def test_summary_ranks_configurations_and_marks_augmented_training(tmp_path):
    """One row per configuration, best mean accuracy first, mean ± sd over seeds in the CSV (recomputed), the
    augmented run labelled as such and drawn with open markers; the same runs give the same bytes."""
    from scalebench.figures.summary import SUMMARY_COLUMNS, plot_summary, summary_figure

    runs = _runs()
    aug = make_run([90] * 9, seed=0, model="resnet20")
    recipe = {**aug.training.recipe, "scale_augmentation": [0.5, 2.0]}
    runs.append(aug.model_copy(update={"training": aug.training.model_copy(update={"recipe": recipe})}))
    paths = plot_summary(runs, tmp_path / "a" / "summary")
    assert [p.name for p in paths] == ["summary.pdf", "summary.svg", "summary.png", "summary.csv"]
    rows = list(csv.DictReader(paths[3].read_text().splitlines()))
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    assert [r["model"] for r in rows] == [
        "resnet20",
        "cnn",
        "cnn",
        "gaussdernet",
        "gaussdernet",
        "gaussdernet",
    ]
    assert "(scale-augmented training)" in rows[0]["label"] and rows[0]["augmented"] == "True"
    gd = [r for r in runs if r.model.name == "gaussdernet"]
    assert [float(r["mean_accuracy"]) for r in rows[3:]] == [r.summary.mean_accuracy for r in gd]
    fig = summary_figure(runs)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0].startswith("resnet20 (scale-augmented training)") and "(n = 3 seeds)" in labels[2]
    faces = {line.get_markerfacecolor() for line in fig.axes[0].get_lines() if line.get_marker() == "o"}
    assert "white" in faces and len(faces) > 1
    again = plot_summary(runs, tmp_path / "b" / "summary")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]
    with pytest.raises(ScalebenchError, match="training scales"):
        plot_summary([*runs, make_run(seed=5, model="cnn", train_scale=2.0)], tmp_path / "c")


def test_eight_models_of_one_figure_get_eight_colours():
    """Fixed colours are kept while they are free; a clash moves the later model to a free colour, and only a
    ninth model (or a second configuration of one model) shares a colour, with another line style."""
    from scalebench.figures.style import OKABE_ITO, curve_styles

    names = ["cnn", "gaussdernet", "resnet20", "resnet32", "njetnet_nin", "njetnet_resnet32", "sesn", "disco"]
    styles = curve_styles(names)
    assert len({c for c, _ in styles}) == 8 and {s for _, s in styles} == {"-"}
    assert styles[0][0] == model_colour("cnn")
    more = curve_styles([*names, "dss", "cnn"])
    assert set(more) <= {(c, s) for c in OKABE_ITO for s in ("-", "--")} and len(set(more)) == 10
