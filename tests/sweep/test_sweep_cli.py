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
    assert res.exit_code == 0 and res.output.splitlines()[0] == "state\tjob\tepoch\tlog / detail"
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
