"""CLI smoke tests: build-datasets, datasets info | verify | export (one CliRunner run each)."""

from __future__ import annotations

import h5py
from click.testing import CliRunner

from scalebench.cli import main


def test_build_info_verify_export(tmp_path):
    runner = CliRunner()
    root = str(tmp_path / "home")
    args = ["--root", root]
    res = runner.invoke(
        main, ["build-datasets", "--embedded", "--limit", "8", "--scales", "0.5,1", "--quiet", *args]
    )
    assert res.exit_code == 0, res.output
    assert "fashion-mnist-embedded-limit8: 2 test scales" in res.output
    res = runner.invoke(main, ["datasets", "info", *args])
    assert (
        res.exit_code == 0
        and "test scales 0.500, 1.000" in res.output
        and "train/val/test 8/8/8" in res.output
    )
    add = ["build-datasets", "--embedded", "--limit", "8", "--scales", "1", "--train-scale", "2", "--quiet"]
    res = runner.invoke(main, [*add, *args])  # adds a training set to the build
    assert res.exit_code == 0 and "fashion-mnist-embedded-limit8: 2 test scales" in res.output
    res = runner.invoke(main, ["datasets", "info", *args])
    assert "train scales 1.000 (default), 2.000; test scales 0.500, 1.000" in res.output
    res = runner.invoke(main, ["datasets", "verify", "--dataset", "fashion-mnist", *args])
    assert res.exit_code == 0 and "fashion-mnist-embedded-limit8: OK" in res.output
    path = next((tmp_path / "home" / "datasets" / "fashion-mnist-embedded-limit8").glob("*scte0p500.h5"))
    with h5py.File(path, "r+") as f:
        f["y_test"][0] = 9 - f["y_test"][0]
    res = runner.invoke(main, ["datasets", "verify", *args])
    assert res.exit_code == 1 and "1 mismatch" in res.output and "y_test sha256" in res.output
    assert "Fix: delete the files listed" in res.output
    res = runner.invoke(main, ["datasets", "export", "--format", "hf", "--out", str(tmp_path / "hf"), *args])
    assert res.exit_code == 0 and "wrote" in res.output
    assert (tmp_path / "hf" / "fashion-mnist-embedded-limit8" / "README.md").is_file()


def test_errors_are_one_line(tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        main, ["build-datasets", "--dataset", "cifar10", "--embedded", "--root", str(tmp_path)]
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
    res = runner.invoke(main, ["build-datasets", "--dataset", "mnist"])
    assert res.exit_code == 2 and "fashion-mnist" in res.output


def test_train_scale_names_a_training_set_of_the_build(tmp_path):
    """``--train-scale`` means the training set everywhere: one scale per classification set; the segmentation
    build holds the four sets of its protocol and no other."""
    runner = CliRunner()
    root = ["--root", str(tmp_path), "--quiet"]
    res = runner.invoke(main, ["build-datasets", "--embedded", "--limit", "2", "--train-scale", "1+2", *root])
    assert (
        res.exit_code == 1 and "Error: --train-scale takes one scale for a classification build" in res.output
    )
    res = runner.invoke(main, ["build-datasets", "--dataset", "fashion-mnist-seg", "--embedded", "--limit", "1",
                               "--train-scale", "3", *root])  # fmt: skip
    assert res.exit_code == 1 and "holds the training sets 1, 2, 4, 1+2+3+4 of the protocol" in res.output
    assert not (tmp_path / "datasets").exists() or not any((tmp_path / "datasets").iterdir())
