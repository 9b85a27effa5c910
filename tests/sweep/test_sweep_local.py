"""The sweep on the ``local`` launcher: a 2×2×2 grid, skip-done, and resume after one job is killed mid-run."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from scalebench.benchmark.config import make_config
from scalebench.benchmark.protocol import resolve_run, run
from scalebench.checks import ScalebenchError
from scalebench.results import load_results
from scalebench.sweep import (
    delete_incomplete,
    expand_grid,
    format_status,
    launch,
    load_jobs,
    run_job,
    save_jobs,
    sweep_status,
)
from scalebench.sweep.jobs import read_record, write_record

EPOCHS = 4
GRID = {"models": ["cnn", "resnet20"], "datasets": ["fashion-mnist", "cifar10"], "seeds": [0, 1]}


def _opts(home):
    return {"root": home, "recipe_overrides": {"epochs": EPOCHS, "batch_size": 8}, "device": "cpu"}


def test_grid_jobs_are_the_protocol_runs_and_debug_runs_nothing(sweep_home, tmp_path):
    home, _ = sweep_home
    jobs = expand_grid(tmp_path, **GRID, **_opts(home))
    assert len(jobs) == 8 and len({j.job_id for j in jobs}) == 8
    for job in jobs:  # the job id is the protocol's run directory, named by the run hash
        _, run_dir = resolve_run(job.config)
        assert job.run_dir == run_dir and job.job_id == run_dir.name
    assert [(j.config.model, j.config.dataset, j.config.seed) for j in jobs[:3]] == [
        ("cnn", "fashion-mnist", 0), ("cnn", "fashion-mnist", 1), ("cnn", "cifar10", 0),
    ]  # fmt: skip
    report = launch(tmp_path, launcher="debug", **GRID, **_opts(home))
    assert len(report.lines) == 8 and not report.launched
    assert all(line.startswith(f"scalebench sweep run-job --sweep {tmp_path} ") for line in report.lines)
    assert not (tmp_path / "runs").exists()
    assert {r.state for r in sweep_status(tmp_path)} == {"pending"}


def test_grid_errors_name_the_fix(sweep_home, tmp_path):
    home, _ = sweep_home
    with pytest.raises(ScalebenchError, match="lists a value twice"):
        expand_grid(tmp_path, models=["cnn", "cnn"], datasets=["cifar10"], seeds=[0], root=home)
    with pytest.raises(ScalebenchError, match="lists a value twice"):
        expand_grid(
            tmp_path, models=["cnn"], datasets=["cifar10"], seeds=[0], train_scales=["1", 1.0], root=home
        )
    fix = r"add it with `scalebench datasets build --dataset cifar10 --train-scale 2`"
    with pytest.raises(ScalebenchError, match=rf"no training set with scales 2; .* {fix}"):
        expand_grid(
            tmp_path, models=["cnn"], datasets=["cifar10"], seeds=[0], train_scales=[1.0, 2.0], root=home
        )
    with pytest.raises(ScalebenchError, match="not a sweep folder"):
        load_jobs(tmp_path / "nowhere")


def _kill_when_checkpointed(sweep, job, seen: dict, stop: threading.Event) -> None:
    """Kill the worker running ``job`` as soon as it has checkpointed an epoch (and not finished); give up when
    the job ends on its own or ``stop`` is set (the launch returned or raised), so the test never hangs."""
    state = job.run_dir / "state.json"
    while not job.done and not stop.is_set():
        record = read_record(sweep, job.job_id)
        if record and record.get("state") == "failed":
            seen["failed on its own"] = record
            return
        if record and record.get("state") == "running" and state.is_file():
            try:
                seen["epoch"] = json.loads(state.read_text())["epoch"]
            except ValueError:  # pragma: no cover - atomic writes make this unlikely
                continue
            os.kill(int(record["pid"]), signal.SIGKILL)
            seen["killed"] = True
            return
        time.sleep(0.002)


@pytest.mark.slow
@pytest.mark.case("W3")  # the reliability probe's kill of a job mid-epoch (tests/hostile/ covers the others)
def test_local_sweep_kill_resume_and_skip_done(sweep_home, tmp_path):
    home, _ = sweep_home
    sweep = tmp_path / "sweep"
    jobs = expand_grid(sweep, **GRID, **_opts(home))
    victim = jobs[5]
    seen: dict = {}
    stop = threading.Event()
    killer = threading.Thread(target=_kill_when_checkpointed, args=(sweep, victim, seen, stop), daemon=True)
    killer.start()
    try:
        first = launch(sweep, launcher="local", launcher_options={"parallel": 2}, **GRID, **_opts(home))
    finally:
        stop.set()
        killer.join()
    log = sweep / "logs" / f"{victim.job_id}.log"
    assert "failed on its own" not in seen, log.read_text() if log.is_file() else seen
    assert seen.get("killed"), "the victim finished before it could be killed"
    assert sorted(first.launched) == sorted(j.job_id for j in jobs) and first.failed == [victim.job_id]

    rows = {r.job.job_id: r for r in sweep_status(sweep)}
    assert [r.state for r in rows.values()].count("done") == 7
    assert rows[victim.job_id].state == "failed" and rows[victim.job_id].epoch >= seen["epoch"]
    assert str(log) in format_status(list(rows.values())) and log.is_file()
    assert "7 done" in format_status(list(rows.values()))
    done_marks = {j.job_id: (j.run_dir / "done").stat().st_mtime_ns for j in jobs if j is not victim}

    second = launch(sweep, launcher="local", launcher_options={"parallel": 2}, **GRID, **_opts(home))
    assert second.launched == [victim.job_id] and not second.failed and len(second.skipped_done) == 7
    assert {j.job_id: (j.run_dir / "done").stat().st_mtime_ns for j in jobs if j is not victim} == done_marks
    text = log.read_text()
    resumed_after = int(re.search(r"resuming \S+ after epoch (\d+)", text).group(1))
    assert re.search(r"^[0-9: -]+ run \S+ on \S+, training set 1, seed \d$", text, flags=re.M)  # the header
    assert resumed_after >= seen["epoch"] >= 1
    for epoch in range(1, resumed_after + 1):  # checkpointed epochs were not trained again
        assert len(re.findall(rf"^[0-9: -]+ epoch {epoch}: train loss", text, flags=re.M)) == 1
    result = load_results(victim.run_dir / "results.json")
    assert [h.epoch for h in result.training.history] == list(range(1, EPOCHS + 1))

    # nothing lost: the resumed run ends exactly where an uninterrupted run of the same config ends
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers ran with OMP_NUM_THREADS = cores // parallel
    try:
        fields = victim.config.model_dump() | {
            "out": tmp_path / "reference",
            "resume": False,
            "progress": "none",
        }
        reference = run(make_config(**fields)).result
    finally:
        torch.set_num_threads(old)
    assert result.checkpoint_sha256 == reference.checkpoint_sha256
    assert [r.correct for r in result.per_scale] == [r.correct for r in reference.per_scale]

    third = launch(sweep, launcher="local", launcher_options={"parallel": 2}, **GRID, **_opts(home))
    assert not third.launched and len(third.skipped_done) == 8
    assert delete_incomplete(sweep) == []
    assert {r.state for r in sweep_status(sweep)} == {"done"}


def test_delete_incomplete_removes_stopped_and_failed_runs_only(sweep_home, tmp_path):
    home, _ = sweep_home
    opts = {"root": home, "recipe_overrides": {"epochs": 2}, "device": "cpu", "progress": "none"}
    jobs = expand_grid(
        tmp_path, models=["cnn"], datasets=["cifar10"], seeds=[0, 1], stop_after_epoch=1, **opts
    )
    save_jobs(tmp_path, jobs)
    assert run_job(tmp_path, jobs[0].job_id) == "stopped"
    write_record(tmp_path, jobs[1].job_id, "failed", error="boom", log="x.log")
    rows = sweep_status(tmp_path)
    assert [(r.state, r.epoch) for r in rows] == [("pending", 1), ("failed", None)]  # resumable from epoch 1
    assert "x.log" in format_status(rows) and format_status(rows, rich=True).row_count == 2
    assert rows[0].epochs == 2 and rows[0].train_seconds > 0 and "\t1/2\t" in format_status(rows)
    running = dataclasses.replace(rows[0], state="running", train_seconds=300.0)  # 5 min an epoch, 1 to go
    assert running.seconds_left == 300.0 and "about 5 min of training left" in format_status([running])
    assert "(trained; testing)" in format_status([dataclasses.replace(running, epoch=2)])
    state = jobs[0].run_dir / "state.json"
    original = state.read_bytes()
    for damaged in ("[1]", '{"epoch": null}', '{"epoch": "x", "train_seconds": [1]}', "{"):
        state.write_text(damaged)  # a damaged state leaves the numbers out; status still lists every job
        (row, _) = sweep_status(tmp_path)
        assert (row.epoch, row.train_seconds, row.epochs) == (None, None, 2)
    state.write_bytes(original)
    assert delete_incomplete(tmp_path) == jobs
    assert not jobs[0].run_dir.exists() and read_record(tmp_path, jobs[0].job_id) is None
    assert read_record(tmp_path, jobs[1].job_id) is None
    assert {r.state for r in sweep_status(tmp_path)} == {"pending"}


def test_a_local_worker_imports_the_launchers_scalebench_whatever_the_working_directory_holds(tmp_path):
    """A checkout of another scalebench in the working directory (``python -m`` would put it first on sys.path)
    must not be what the workers run: the jobs were resolved by the launcher's code."""
    import subprocess

    import scalebench
    from scalebench.sweep.launchers import worker_command

    decoy = tmp_path / "scalebench"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise SystemExit('the decoy was imported')\n")
    argv, env = worker_command()
    assert argv[-2:] == ["-m", "scalebench.sweep.worker"]
    probe = [*argv[:-2], "-c", "import scalebench; print(scalebench.__file__)"]
    out = subprocess.run(probe, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(Path(scalebench.__file__).resolve())


def test_a_worker_of_an_installed_scalebench_keeps_site_packages_behind_the_standard_library(monkeypatch):
    import site

    import scalebench
    from scalebench.sweep.launchers import worker_command

    root = str(Path(scalebench.__file__).resolve().parent.parent)
    monkeypatch.setattr(site, "getsitepackages", lambda: [root])
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    argv, env = worker_command()
    assert argv[1] == "-P" and env["PYTHONPATH"] == "/elsewhere"
