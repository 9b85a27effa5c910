"""CLI smoke tests: datasets build (and its alias build-datasets) | info | verify | export, one CliRunner run each,
and the one --progress of the long commands."""

from __future__ import annotations

import re

import h5py
from click.testing import CliRunner

from scalebench.cli import main

#: A plain progress line: the local date and time, then the phase.
DATED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", re.M)


def test_build_info_verify_export(tmp_path):
    runner = CliRunner()
    root = str(tmp_path / "home")
    args = ["--root", root]
    res = runner.invoke(
        main,
        [
            "datasets",
            "build",
            "--embedded",
            "--limit",
            "8",
            "--scales",
            "0.5,1",
            "--progress",
            "plain",
            *args,
        ],
    )
    assert res.exit_code == 0, res.output
    assert "fashion-mnist-embedded-limit8: 2 test scales, training sets 1 in" in res.stdout
    assert DATED.search(res.stderr) and "fashion-mnist-embedded-limit8: 3 sets: done in" in res.stderr
    res = runner.invoke(main, ["datasets", "info", *args])
    assert (
        res.exit_code == 0
        and "test scales 0.500, 1.000" in res.output
        and "train/val/test 8/8/8" in res.output
    )
    add = ["build-datasets", "--embedded", "--limit", "8", "--scales", "1", "--train-scale", "2", "--quiet"]
    res = runner.invoke(main, [*add, *args])  # the alias, --quiet: adds a training set to the build, silently
    assert res.exit_code == 0 and res.stderr == "", res.output
    assert "fashion-mnist-embedded-limit8: 2 test scales, training sets 1, 2 in" in res.output
    res = runner.invoke(main, ["datasets", "info", *args])
    assert "train scales 1.000 (default), 2.000; test scales 0.500, 1.000" in res.output
    res = runner.invoke(
        main, ["datasets", "verify", "--dataset", "fashion-mnist", "--progress", "plain", *args]
    )
    assert res.exit_code == 0 and "fashion-mnist-embedded-limit8: OK" in res.stdout
    assert DATED.search(res.stderr) and "verify 4 files: done in" in res.stderr
    path = next((tmp_path / "home" / "datasets" / "fashion-mnist-embedded-limit8").glob("*scte0p500.h5"))
    with h5py.File(path, "r+") as f:
        f["y_test"][0] = 9 - f["y_test"][0]
    res = runner.invoke(main, ["datasets", "verify", *args])
    assert res.exit_code == 1 and "1 mismatch" in res.output and "y_test sha256" in res.output
    assert "Fix: delete the files listed" in res.output
    res = runner.invoke(
        main, ["datasets", "export", "--out", str(tmp_path / "hf"), "--progress", "none", *args]
    )
    assert res.exit_code == 0 and "wrote" in res.output and res.stderr == ""
    assert (tmp_path / "hf" / "fashion-mnist-embedded-limit8" / "README.md").is_file()


def test_errors_are_one_line(tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        main, ["datasets", "build", "--dataset", "cifar10", "--embedded", "--root", str(tmp_path)]
    )
    assert res.exit_code == 1 and "Error: --embedded exists for fashion-mnist only" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(
        main,
        ["build-datasets", "--raw-dir", str(tmp_path / "nope"), "--no-download", "--root", str(tmp_path)],
    )
    assert res.exit_code == 1 and "does not exist" in res.output
    res = runner.invoke(main, ["datasets", "verify", "--root", str(tmp_path)])
    assert res.exit_code == 1 and "No built dataset" in res.output
    res = runner.invoke(main, ["datasets", "build", "--dataset", "mnist"])
    assert res.exit_code == 2 and "fashion-mnist-seg" in res.output
    res = runner.invoke(main, ["datasets", "build", "--progress", "loud"])
    assert res.exit_code == 2 and "'auto', 'rich', 'plain', 'none'" in res.output


def test_train_scale_names_a_training_set_of_the_build(tmp_path):
    """``--train-scale`` means the training set everywhere: one scale per classification set; the segmentation
    build holds the four sets of its protocol and no other."""
    runner = CliRunner()
    root = ["--root", str(tmp_path), "--quiet"]
    res = runner.invoke(
        main, ["datasets", "build", "--embedded", "--limit", "2", "--train-scale", "1+2", *root]
    )
    assert (
        res.exit_code == 1 and "Error: --train-scale takes one scale for a classification build" in res.output
    )
    res = runner.invoke(main, ["datasets", "build", "--dataset", "fashion-mnist-seg", "--embedded", "--limit", "1",
                               "--train-scale", "3", *root])  # fmt: skip
    assert res.exit_code == 1 and "holds the training sets 1, 2, 4, 1+2+3+4 of the protocol" in res.output
    assert not (tmp_path / "datasets").exists() or not any((tmp_path / "datasets").iterdir())


def test_segmentation_is_built_through_the_same_dispatch(tmp_path):
    """``datasets build --dataset fashion-mnist-seg`` goes through ``build_datasets`` (the library decides which
    builder), prints the same summary line as a classification build and refuses --lite."""
    runner = CliRunner()
    root = ["--root", str(tmp_path), "--progress", "none"]
    res = runner.invoke(main, ["datasets", "build", "--dataset", "fashion-mnist-seg", "--lite", *root])
    assert res.exit_code == 1 and "--lite exists for the classification datasets" in res.output
    res = runner.invoke(main, ["datasets", "build", "--dataset", "fashion-mnist-seg", "--embedded", "--limit", "1",
                               "--scales", "1", *root])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "fashion-mnist-seg-embedded-limit1: 1 test scales, training sets 1, 2, 4, 1+2+3+4 in" in res.output


def test_the_progress_option_is_one_option_on_every_long_command():
    """The same choices, default and help text on each long command."""
    from scalebench.cli import main as cli

    commands = {
        "datasets build": cli.commands["datasets"].commands["build"],
        "build-datasets": cli.commands["build-datasets"],
        "datasets verify": cli.commands["datasets"].commands["verify"],
        "datasets export": cli.commands["datasets"].commands["export"],
        "evaluate": cli.commands["evaluate"],
        "verify": cli.commands["verify"],
        "submit": cli.commands["submit"],
        "sweep launch": cli.commands["sweep"].commands["launch"],
    }
    options = {name: next(p for p in c.params if p.name == "progress") for name, c in commands.items()}
    first = options["evaluate"]
    for name, option in options.items():
        assert (option.type.choices, option.default, option.help) == (
            first.type.choices,
            "auto",
            first.help,
        ), name
