"""A segmentation grid through the sweep: the jobs run ``protocol.run``, so any task sweeps, over the training
sets of one build; on the ``local`` launcher and on the ``slurm`` one through submitit's ``LocalExecutor``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scalebench.benchmark.protocol import resolve_run
from scalebench.results import load_results
from scalebench.sweep import expand_grid, launch, load_jobs, slurm_options, sweep_status
from scalebench.sweep.jobs import read_record


def _grid(home, build_id):
    return {"models": ["unet"], "datasets": [build_id], "seeds": [0], "train_scales": ["1", "1+2+3+4"],
            "root": home, "device": "cpu", "scales": [1.0, 4.0], "model_config_overrides": {"width": 2},
            "recipe_overrides": {"epochs": 1, "batch_size": 2, "eval_batch_size": 2}}  # fmt: skip


def test_the_grid_runs_over_the_training_sets_of_one_build(seg_sweep_home, tmp_path):
    home, built = seg_sweep_home
    jobs = expand_grid(tmp_path, **_grid(home, built.build_id))
    prefix = f"unet__{built.build_id}__"
    assert [j.job_id.removeprefix(prefix).split("__")[0] for j in jobs] == ["seed0", "train1+2+3+4"]
    for job in jobs:  # the job id is the protocol's run directory
        assert resolve_run(job.config)[1] == job.run_dir
    assert [j.config.train_scale for j in jobs] == [[1.0], [1.0, 2.0, 3.0, 4.0]]
    report = launch(tmp_path, launcher="debug", **_grid(home, built.build_id))
    assert len(report.lines) == 2 and [j.job_id for j in load_jobs(tmp_path)] == sorted(
        j.job_id for j in jobs
    )


@pytest.mark.slow
def test_local_launcher_runs_segmentation_jobs(seg_sweep_home, tmp_path, monkeypatch):
    home, built = seg_sweep_home
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    sweep = tmp_path / "sweep"
    report = launch(sweep, launcher="local", launcher_options={"parallel": 1}, **_grid(home, built.build_id))
    assert len(report.launched) == 2 and not report.failed, report.lines
    rows = sweep_status(sweep)
    assert [r.state for r in rows] == ["done", "done"]
    results = [load_results(r.job.run_dir / "results.json", tasks=("segmentation",)) for r in rows]
    keys = sorted(tuple(r.dataset.train_scales) for r in results)
    assert keys == [(1.0,), (1.0, 2.0, 3.0, 4.0)]
    log = (sweep / "logs" / f"{rows[0].job.job_id}.log").read_text()
    assert re.search(rf"^[0-9: -]+ run unet on {built.build_id}, training set \S+, seed 0$", log, flags=re.M)
    assert re.search(r"^[0-9: -]+ epoch 1: train loss \S+, val mean iou ", log, flags=re.M)
    again = launch(sweep, launcher="local", **_grid(home, built.build_id))
    assert not again.launched and len(again.skipped_done) == 2


@pytest.mark.slow
def test_slurm_launcher_runs_segmentation_jobs_through_submitit(seg_sweep_home, tmp_path, monkeypatch):
    home, built = seg_sweep_home
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    sweep = tmp_path / "sweep"
    options = {"cluster": "local", "wait": True, "slurm": slurm_options(time_min=10)}
    report = launch(sweep, launcher="slurm", launcher_options=options, **_grid(home, built.build_id))
    assert len(report.launched) == 2 and not report.failed, report.lines
    for row in sweep_status(sweep):
        assert row.state == "done" and (row.job.run_dir / "triptych.png").is_file()
        record = read_record(sweep, row.job.job_id)
        assert record["state"] == "finished" and record["launcher"] == "slurm"
        assert sweep / "submitit" in Path(record["log"]).parents
