"""One CliRunner smoke test per ``scalebench sweep`` command (the library is tested in the other files)."""

from __future__ import annotations

from click.testing import CliRunner

from scalebench.cli import main


def _run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_sweep_cli_debug_launch_status_delete_collect(sweep_home, tmp_path):
    home, _ = sweep_home
    out = tmp_path / "sweep"
    grid = ["--models", "cnn,resnet20", "--datasets", "cifar10", "--seeds", "0,1", "--root", str(home),
            "--out", str(out), "--epochs", "2"]  # fmt: skip
    res = _run("sweep", "launch", "--launcher", "debug", *grid)
    assert res.exit_code == 0, res.output
    commands = [line for line in res.output.splitlines() if line.startswith("scalebench sweep run-job")]
    assert len(commands) == 4 and "0 launched" in res.output

    res = _run("sweep", "status", "--out", str(out))
    assert res.exit_code == 0 and res.output.splitlines()[0] == "state\tjob\tepochs done\tlog / detail"
    assert "4 pending, 0 running, 0 done, 0 failed" in res.output

    res = _run("sweep", "delete-incomplete", "--out", str(out))
    assert res.exit_code == 0 and res.output == ""

    res = _run("sweep", "collect", "--out", str(out), "--store", str(tmp_path / "store"))
    assert res.exit_code == 0 and "0 added" in res.output and "4 jobs not done" in res.output


def test_sweep_cli_errors_are_one_line(tmp_path):
    res = CliRunner().invoke(main, ["sweep", "status", "--out", str(tmp_path / "none")])
    assert res.exit_code == 1 and "is not a sweep folder" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["sweep", "launch", "--models", "nope", "--datasets", "x", "--launcher", "debug",
                                    "--out", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 1 and res.output.startswith("Error:")


def test_train_scale_root_says_what_replaced_it(tmp_path):
    args = ["--models", "cnn", "--datasets", "cifar10", "--launcher", "debug", "--out", str(tmp_path)]
    res = CliRunner().invoke(main, ["sweep", "launch", "--train-scale-root", "2=/elsewhere", *args])
    assert res.exit_code == 1 and "Traceback" not in res.output
    (line,) = res.output.splitlines()
    assert line.startswith("Error: --train-scale-root was removed") and "--train-scales" in line


def test_model_config_and_test_channels_reach_every_job_and_its_identity(sweep_home, tmp_path):
    """``--model-config`` sweeps a variant (its runs get ids of their own, the plain grid keeps its ids);
    ``--test-channels`` gives the densified runs; a key one model lacks is one error naming it."""
    import json

    home, _ = sweep_home
    grid = [
        "--models",
        "cnn",
        "--datasets",
        "cifar10",
        "--seeds",
        "0",
        "--root",
        str(home),
        "--launcher",
        "debug",
    ]

    def job_ids(out, *extra):
        res = _run("sweep", "launch", *grid, "--out", str(tmp_path / out), *extra)
        assert res.exit_code == 0, res.output
        return sorted(json.loads((tmp_path / out / "sweep.json").read_text())["jobs"])

    plain = job_ids("plain")
    wide = job_ids("wide", "--model-config", "widths=[4, 4, 4, 4]", "--model-config", "dropout=0.1")
    assert len(wide) == 1 and wide != plain and job_ids("plain") == plain
    config = json.loads((tmp_path / "wide" / "sweep.json").read_text())["jobs"][wide[0]]
    assert config["model_config_overrides"] == {"widths": [4, 4, 4, 4], "dropout": 0.1}
    res = CliRunner().invoke(main, ["sweep", "launch", *grid, "--out", str(tmp_path / "bad"),
                                    "--model-config", "multires=true"])  # fmt: skip
    assert res.exit_code == 1 and "Unknown config key 'multires' for model 'cnn'" in res.output
    res = CliRunner().invoke(main, ["sweep", "launch", *grid, "--out", str(tmp_path / "dense"),
                                    "--test-channels", "dense"])  # fmt: skip
    assert res.exit_code == 1 and "Traceback" not in res.output  # the plain cnn has no scale channels
