"""One CliRunner smoke test per leaderboard command: parse, call the library, print; errors in one line."""

from __future__ import annotations

import json

from click.testing import CliRunner
from lb_factories import make_run, write_run

from scalebench.cli import main


def test_submit_build_validate_plot(tmp_path, known_test_build):
    runner = CliRunner()
    store, site = tmp_path / "results", tmp_path / "site"
    files = [str(write_run(tmp_path / f"run{s}.json", make_run(seed=s, selection=True))) for s in range(3)]
    res = runner.invoke(main, ["submit", *files, "--store", str(store)])
    assert res.exit_code == 0, res.output
    assert res.output.count("added: ") == 3
    res = runner.invoke(main, ["submit", files[0], "--store", str(store)])
    assert res.exit_code == 1 and "duplicates the stored run" in res.output and "Traceback" not in res.output
    res = runner.invoke(main, ["leaderboard", "build", "--store", str(store), "--out", str(site)])
    assert res.exit_code == 0, res.output
    assert json.loads((site / "leaderboard.json").read_text())["entries"][0]["rank"] == 1
    res = runner.invoke(
        main, ["leaderboard", "validate", "--store", str(store), "--previous", str(site / "leaderboard.json")]
    )
    assert res.exit_code == 0 and "3 valid entries, 0 problem(s)" in res.output
    next(store.rglob("seed-1.json")).unlink()
    res = runner.invoke(main, ["leaderboard", "validate", "--store", str(store)])
    assert res.exit_code == 1 and "is gone" in res.output
    res = runner.invoke(main, ["plot", "selection", files[0], "--out", str(tmp_path / "fig" / "sel")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "fig").iterdir()) == [
        "sel.csv",
        "sel.pdf",
        "sel.png",
        "sel.svg",
    ]
    res = runner.invoke(main, ["plot", "summary", *files, "--out", str(tmp_path / "fig" / "summary")])
    assert res.exit_code == 0 and (tmp_path / "fig" / "summary.csv").is_file(), res.output
    res = runner.invoke(main, ["plot", "curves", "--store", str(store), "--dataset", "fashion-mnist"])
    assert res.exit_code == 1 and "problem" in res.output  # the store lost an entry: no figure from it


def test_plot_curves_needs_input(tmp_path):
    res = CliRunner().invoke(main, ["plot", "curves", "--out", str(tmp_path / "c")])
    assert res.exit_code == 1 and "Give results files to plot" in res.output
