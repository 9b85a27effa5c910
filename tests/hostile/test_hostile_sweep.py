"""The sweep under hostile or unlucky conditions: the probe's table 5 (W1-W6) and defects D5, D13, D18, D19.

Jobs are tiny: a fake Fashion-MNIST build of 16 training, 8 validation and 12 test images per scale at three
scales, the ``debug`` launcher or hand-written job records wherever no training is needed, and at most two
one-epoch ``cnn`` runs. W2 and W4 (killing the launcher, Ctrl-C) need two processes training for many seconds;
``tests/sweep/test_sweep_local.py`` kills a worker mid-run and checks the resume (W3) with real workers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_checks import one_error_line
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "datasets_builders"))

from fakes_raw import tiny_fmnist_build

from scalebench.checks import ScalebenchError
from scalebench.cli import main
from scalebench.leaderboard.store import validate_store
from scalebench.leaderboard.validate import KnownBuild
from scalebench.sweep import collect, launch, load_jobs, run_job, sweep_status
from scalebench.sweep import jobs as jobs_module
from scalebench.sweep.jobs import (
    STALE_AFTER_SECONDS,
    heartbeat,
    heartbeat_age,
    process_start,
    read_record,
    record_path,
    sweep_lock,
    write_record,
)
from scalebench.sweep.launchers import LAUNCHERS, LaunchReport

SEEDS = [0, 1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A scalebench home with a tiny non-embedded fashion-mnist build, and its KnownBuild with split sizes."""
    base = tmp_path_factory.mktemp("hostile-sweep")
    home = base / "home"
    b = tiny_fmnist_build(base / "raw", home)
    known = KnownBuild(b.name, str(b.version), b.manifest_sha256, tuple(float(s) for s in b.test_scales),
                       float(b.train_scale), build_id=b.build_id, train_size=b.split_sizes["train"],
                       val_size=b.split_sizes["val"], test_size=b.split_sizes["test"])  # fmt: skip
    return home, known


def grid(home, seeds=SEEDS, **options):
    return {"models": ["cnn"], "datasets": ["fashion-mnist"], "seeds": seeds, "root": home,
            "device": "cpu", "recipe_overrides": {"epochs": 1, "batch_size": 8}, **options}  # fmt: skip


def cli_grid(home, out, *extra):
    return ["sweep", "launch", "--models", "cnn", "--datasets", "fashion-mnist", "--seeds", "0,1,2", "--root",
            str(home), "--out", str(out), "--epochs", "1", "--device", "cpu", *extra]  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def age(sweep: Path, job_id: str, seconds: float) -> None:
    """Make the job record's heartbeat ``seconds`` old."""
    t = time.time() - seconds
    os.utime(record_path(sweep, job_id), (t, t))


@pytest.mark.case("W1")
def test_w1_debug_launch_prints_the_jobs_and_runs_nothing(home, tmp_path):
    home, _ = home
    sweep = tmp_path / "sw"
    result = CliRunner().invoke(main, cli_grid(home, sweep, "--launcher", "debug"))
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("scalebench sweep run-job") for line in result.output.splitlines()) == 3
    assert (sweep / "sweep.json").is_file() and not (sweep / "runs").exists()
    assert [r.state for r in sweep_status(sweep)] == ["pending"] * 3


@pytest.mark.case("W5", "D5")
def test_w5_stale_records_are_recognised_requeued_and_deletable(home, tmp_path):
    home, _ = home
    sweep = tmp_path / "sw"
    launch(sweep, launcher="debug", **grid(home))
    ids = [j.job_id for j in load_jobs(sweep)]
    here, me = socket.gethostname(), os.getpid()
    dead = subprocess.Popen(["true"])
    dead.wait()
    records = {
        0: {"host": "node17", "pid": 12345, "launcher": "slurm"},  # a dead node: old heartbeat
        1: {"host": here, "pid": 1, "pid_start": "not-its-start", "launcher": "local"},  # a reused PID
        2: {"host": "node18", "pid": 4242, "launcher": "slurm"},  # another node, fresh heartbeat
        3: {"host": here, "pid": me, "pid_start": process_start(me), "launcher": "local"},  # alive, this host
        4: {
            "host": here,
            "pid": me,
            "launcher": "local",
        },  # an older record without start time, old heartbeat
        5: {"host": here, "pid": dead.pid, "pid_start": "1", "launcher": "local"},  # the process is gone
    }
    for k, info in records.items():
        write_record(sweep, ids[k], "running", **info)
    for k in (0, 3, 4):
        age(sweep, ids[k], STALE_AFTER_SECONDS + 60)
    states = {r.job.job_id: r for r in sweep_status(sweep)}
    assert [states[i].state for i in ids] == ["stale", "failed", "running", "running", "stale", "failed"]
    assert "PID now belongs to another process" in states[ids[1]].detail
    assert "no heartbeat for 11 min" in states[ids[0]].detail and "gone" in states[ids[5]].detail

    out = CliRunner().invoke(main, ["sweep", "status", "--out", str(sweep)]).output
    assert "0 pending, 2 running, 0 done, 2 failed, 2 stale" in out and "stale\t" in out
    report = launch(sweep, launcher="debug", **grid(home))
    assert report.requeued_stale == [ids[0], ids[4]] and sorted(report.skipped_running) == sorted(
        [ids[2], ids[3]]
    )
    commands = [line for line in report.lines if line.startswith("scalebench sweep run-job")]
    assert [c.rsplit(" ", 1)[1] for c in commands] == [ids[0], ids[1], ids[4], ids[5]]

    deleted = {j.job_id for j in jobs_module.delete_incomplete(sweep)}
    assert deleted == {ids[0], ids[1], ids[4], ids[5]}
    assert read_record(sweep, ids[2]) and read_record(sweep, ids[3]) and read_record(sweep, ids[0]) is None


@pytest.mark.case("D5")
def test_pids_that_name_no_process_are_never_alive(home, tmp_path):
    home, _ = home
    sweep = tmp_path / "sw"
    launch(sweep, launcher="debug", **grid(home, seeds=[0, 1]))
    ids = [j.job_id for j in load_jobs(sweep)]
    for job_id, pid in zip(ids, (0, -1), strict=True):  # kill(0 or -1, 0) would name process groups
        write_record(sweep, job_id, "running", pid=pid, launcher="local")
    assert [r.state for r in sweep_status(sweep)] == ["failed", "failed"]


@pytest.mark.case("D5")
def test_heartbeat_thread_touches_the_record_and_stops(home, tmp_path):
    home, _ = home
    sweep = tmp_path / "sw"
    launch(sweep, launcher="debug", **grid(home, seeds=[0]))
    (job_id,) = [j.job_id for j in load_jobs(sweep)]
    write_record(sweep, job_id, "running", pid=os.getpid(), launcher="local")
    age(sweep, job_id, 3600)
    with heartbeat(sweep, job_id, every=0.02):
        deadline = time.time() + 5
        while heartbeat_age(sweep, job_id) > 60 and time.time() < deadline:
            time.sleep(0.02)
        assert heartbeat_age(sweep, job_id) < 60
    assert not [t for t in threading.enumerate() if t.name.startswith("scalebench-heartbeat")]


@pytest.mark.case("D5")
def test_run_job_records_host_pid_start_time_and_heartbeat(home, tmp_path, monkeypatch):
    home, _ = home
    sweep = tmp_path / "sw"
    launch(sweep, launcher="debug", **grid(home, seeds=[0]))
    (job,) = load_jobs(sweep)
    seen = {}

    def fake_run(config):
        record = read_record(sweep, job.job_id)
        seen.update(record=record, state=jobs_module.job_state(sweep, job).state,
                    threads=[t.name for t in threading.enumerate()])  # fmt: skip
        return SimpleNamespace(result=None, stopped_after_epoch=1)

    monkeypatch.setattr(jobs_module, "run", fake_run)
    assert run_job(sweep, job.job_id) == "stopped"
    record = seen["record"]
    assert record["state"] == "running" and record["host"] == socket.gethostname()
    assert record["pid"] == os.getpid() and record["pid_start"] == process_start(os.getpid())
    assert record["heartbeat_s"] == jobs_module.HEARTBEAT_SECONDS and seen["state"] == "running"
    assert f"scalebench-heartbeat-{job.job_id}" in seen["threads"]
    assert read_record(sweep, job.job_id)["state"] == "stopped"
    assert not [t for t in threading.enumerate() if t.name.startswith("scalebench-heartbeat")]


@pytest.mark.case("D3", "N12")
def test_a_genuine_run_passes_every_submission_check_and_a_smoke_run_none(home, tmp_path):
    """A run that `evaluate` writes on the canonical build (here: the tiny build with its sizes) is stored;
    a --limit smoke run is rejected, all or nothing (N12)."""
    home, known = home
    sweep = tmp_path / "sw"
    launch(sweep, launcher="debug", **grid(home, seeds=[0]))
    (job_id,) = [j.job_id for j in load_jobs(sweep)]
    assert run_job(sweep, job_id) == "done"
    store = tmp_path / "store"
    report = collect(sweep, store, known=[known], checkpoints=False)
    assert len(report.added) == 1 and validate_store(store, known=[known]).ok

    smoke = tmp_path / "smoke"
    launch(smoke, launcher="debug", **grid(home, seeds=[0], limit=8))
    (smoke_id,) = [j.job_id for j in load_jobs(smoke)]
    assert run_job(smoke, smoke_id) == "done"
    with pytest.raises(ScalebenchError, match="smoke run"):
        collect(smoke, tmp_path / "store2", known=[known], checkpoints=False)
    assert not (tmp_path / "store2").exists()


def _edit_sweep(sweep: Path, old_id: str, new_id: str) -> None:
    data = json.loads((sweep / "sweep.json").read_text())
    data["jobs"][new_id] = data["jobs"].pop(old_id)
    (sweep / "sweep.json").write_text(json.dumps(data))


@pytest.mark.case("W6", "D13")
@pytest.mark.parametrize("bad", ["../../victim", "a/b", "..", "cnn__fashion-mnist__seed1__000000000000"])
def test_w6_hand_edited_job_ids_delete_nothing(home, tmp_path, bad):
    home, _ = home
    sweep = tmp_path / "sw4"
    launch(sweep, launcher="debug", **grid(home, seeds=[0, 1]))
    ids = [j.job_id for j in load_jobs(sweep)]
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep")
    write_record(sweep, ids[0], "failed", error="boom")  # something delete-incomplete would delete
    if "/" not in bad and bad != "..":
        (sweep / "runs" / bad).mkdir(parents=True)  # a run folder for the id to name
    _edit_sweep(sweep, ids[1], bad)
    before = snapshot(tmp_path)
    line = one_error_line(CliRunner().invoke(main, ["sweep", "delete-incomplete", "--out", str(sweep)]))
    assert repr(bad) in line and "nothing was changed" in line
    assert snapshot(tmp_path) == before


@pytest.mark.case("W6", "D13")
def test_w6_symlinked_run_folder_is_refused(home, tmp_path):
    home, _ = home
    sweep = tmp_path / "sw"
    launch(sweep, launcher="debug", **grid(home, seeds=[0]))
    (job_id,) = [j.job_id for j in load_jobs(sweep)]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    (sweep / "runs").mkdir()
    (sweep / "runs" / job_id).symlink_to(outside)
    write_record(sweep, job_id, "failed", error="boom")
    line = one_error_line(CliRunner().invoke(main, ["sweep", "delete-incomplete", "--out", str(sweep)]))
    assert "outside" in line and (outside / "precious.txt").read_text() == "keep"


@pytest.mark.case("W6")
def test_w6_corrupt_sweep_file_and_moved_sweep_folder(home, tmp_path):
    home, _ = home
    sweep = tmp_path / "sw"
    launch(sweep, launcher="debug", **grid(home, seeds=[0]))
    moved = tmp_path / "moved"
    os.replace(sweep, moved)  # job ids are checked against the folder they are read from, not the old path
    (job,) = load_jobs(moved)
    assert job.run_dir == moved / "runs" / job.job_id and Path(job.config.out) == moved / "runs"
    (moved / "sweep.json").write_text('{"jobs": ')
    line = one_error_line(CliRunner().invoke(main, ["sweep", "status", "--out", str(moved)]))
    assert "is not a sweep file" in line


@pytest.mark.case("D19", "W6")
@pytest.mark.parametrize("parallel", ["0", "-1"])
def test_d19_parallel_below_one_is_an_error_before_anything_is_written(home, tmp_path, parallel):
    home, _ = home
    sweep = tmp_path / "sw"
    line = one_error_line(CliRunner().invoke(main, cli_grid(home, sweep, "--parallel", parallel)))
    assert "--parallel must be an integer of at least 1" in line and not sweep.exists()
    with pytest.raises(ScalebenchError, match="--parallel"):
        launch(sweep, launcher="local", launcher_options={"parallel": 0}, **grid(home))


@pytest.mark.case("D18")
def test_d18_a_second_launch_on_the_same_folder_is_refused(home, tmp_path, monkeypatch):
    home, _ = home
    sweep = tmp_path / "sw"
    launch(sweep, launcher="debug", **grid(home, seeds=[0]))
    before = snapshot(sweep)
    with sweep_lock(sweep):  # another launch holds the folder
        line = one_error_line(CliRunner().invoke(main, cli_grid(home, sweep, "--launcher", "debug")))
        assert "Another `scalebench sweep launch` is running" in line
    assert snapshot(sweep) == {**before, ".launch.lock": snapshot(sweep)[".launch.lock"]}

    # two launches at once: the first holds the lock while its launcher runs, the second is refused
    started, release = threading.Event(), threading.Event()

    def slow_launcher(sweep_dir, jobs, options):
        started.set()
        release.wait(10)
        return LaunchReport(launched=[j.job_id for j in jobs])

    monkeypatch.setitem(LAUNCHERS, "debug", slow_launcher)
    first: dict = {}
    thread = threading.Thread(
        target=lambda: first.update(r=launch(sweep, launcher="debug", **grid(home, seeds=[0])))
    )
    thread.start()
    assert started.wait(10)
    with pytest.raises(ScalebenchError, match="Another `scalebench sweep launch` is running"):
        launch(sweep, launcher="debug", **grid(home, seeds=[0]))
    release.set()
    thread.join()
    assert len(first["r"].launched) == 1
    assert launch(sweep, launcher="debug", **grid(home, seeds=[0])).launched  # free again afterwards


@pytest.mark.case("N14")
def test_n14_docs_say_the_sweep_folder_must_not_be_writable_by_others():
    text = (Path(__file__).resolve().parents[2] / "docs" / "cluster.md").read_text()
    assert "must not be writable by anyone" in text and "unpickle" in text
