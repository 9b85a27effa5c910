"""The slurm launcher through submitit's real code path (LocalExecutor), sbatch parameters, and collect."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from submitit.core.utils import DelayedSubmission
from submitit.slurm import slurm as submitit_slurm

from scalebench.checks import ScalebenchError
from scalebench.leaderboard.store import read_index, validate_store
from scalebench.sweep import SweepJob, collect, launch, slurm_options, sweep_status
from scalebench.sweep.jobs import read_record
from scalebench.sweep.launchers import LAUNCHERS, LaunchReport, make_executor


@pytest.mark.slow
def test_slurm_launcher_runs_jobs_through_submitit_and_collect_stores_them(sweep_home, tmp_path, monkeypatch):
    home, known = sweep_home
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the two local "array" jobs share the CPU
    sweep = tmp_path / "sweep"
    grid = {"models": ["cnn"], "datasets": ["cifar10"], "seeds": [0, 1], "root": home, "device": "cpu",
            "recipe_overrides": {"epochs": 2, "batch_size": 8}}  # fmt: skip
    report = launch(sweep, launcher="slurm", launcher_options={"cluster": "local", "wait": True,
                    "slurm": slurm_options(time_min=10)}, **grid)  # fmt: skip
    assert len(report.launched) == 2 and not report.failed, report.lines
    rows = sweep_status(sweep)
    assert [r.state for r in rows] == ["done", "done"]
    for row in rows:  # the job ran inside submitit: its record names submitit's log file, which exists
        record = read_record(sweep, row.job.job_id)
        assert record["state"] == "finished" and record["launcher"] == "slurm"
        assert sweep / "submitit" in Path(record["log"]).parents
        assert os.path.isfile(record["log"])
    again = launch(sweep, launcher="slurm", launcher_options={"cluster": "local", "wait": True}, **grid)
    assert not again.launched and len(again.skipped_done) == 2

    store = tmp_path / "store"
    # a finished run whose results were edited afterwards is never collected (its done marker pins them)
    results0 = rows[0].job.run_dir / "results.json"
    original = results0.read_bytes()
    results0.write_bytes(original.replace(b'"seed": 0', b'"seed": 0 '))
    with pytest.raises(ScalebenchError, match="edited after the run finished"):
        collect(sweep, store, known=known)
    results0.write_bytes(original)
    assert not store.exists() or not read_index(store)
    first = collect(sweep, store, known=known)
    assert len(first.added) == 2 and not first.not_done
    # each run's best checkpoint is stored beside its results and listed in the index
    assert [p.name for p in first.checkpoints] == ["seed-0.safetensors", "seed-1.safetensors"]
    assert len(read_index(store)) == 4 and not validate_store(store, known=known).problems
    ckpt = first.checkpoints[0]
    original = ckpt.read_bytes()
    ckpt.write_bytes(original + b" ")
    assert any("its results record" in p for p in validate_store(store, known=known).problems)
    ckpt.write_bytes(original)
    assert {p.suffix for p in first.figures} == {".pdf", ".svg", ".png", ".csv"}
    assert all(p.is_file() for p in first.figures)
    second = collect(sweep, store, known=known)
    assert not second.added and len(second.already_stored) == 2 and not second.checkpoints
    # a fresh machine (a new sweep folder) with the collected store runs none of the stored jobs again
    fresh = launch(tmp_path / "fresh", launcher="local", skip_stored=store, **grid)
    assert not fresh.launched and sorted(fresh.skipped_stored) == sorted(r.job.job_id for r in rows)
    assert not fresh.stored_under_other_hash
    # another setting (one epoch more) gives other run hashes: nothing is skipped, and the launch says why
    monkeypatch.setitem(
        LAUNCHERS, "local", lambda _dir, jobs, _opts: LaunchReport(launched=[j.job_id for j in jobs])
    )
    changed = launch(tmp_path / "changed", launcher="local", skip_stored=store,
                     **{**grid, "recipe_overrides": {"epochs": 3, "batch_size": 8}})  # fmt: skip
    assert len(changed.launched) == 2 and not changed.skipped_stored
    assert sorted(changed.stored_under_other_hash) == sorted(changed.launched)
    assert "2 more stored under another run hash" in changed.summary(tmp_path / "changed", store)


def test_checkpoint_requeues_the_same_job_and_says_so(tmp_path):
    job = SweepJob(tmp_path, "cnn__x__seed0__abc")
    delayed = job.checkpoint()
    assert isinstance(delayed, DelayedSubmission) and delayed.function is job
    assert read_record(tmp_path, job.job_id)["state"] == "requeued"


def _fake_srun(tmp_path, monkeypatch):
    """submitit's SlurmExecutor only checks that ``srun`` exists; nothing is submitted."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text("#!/bin/sh\nexit 1\n")
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_sbatch_parameters_from_yaml_and_flags(tmp_path, monkeypatch):
    _fake_srun(tmp_path, monkeypatch)
    config = tmp_path / "slurm.yaml"
    config.write_text(
        "partition: cpu\ntime_min: 120\narray_parallelism: 4\nqos: high\nsetup: [module load cuda]\n"
    )
    options = slurm_options(config, partition="gpu", gpus_per_job=2)  # flags win over the file
    executor = make_executor(tmp_path / "submitit", options, cluster="slurm")
    text = submitit_slurm._make_sbatch_string(
        command="python -m submitit.core._submit", folder=tmp_path / "submitit", map_count=8,
        **executor._executor.parameters,
    )  # fmt: skip
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=2", "#SBATCH --time=120",
                 "#SBATCH --array=0-7%4", "#SBATCH --qos=high", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --mem=32GB", "#SBATCH --ntasks-per-node=1", "#SBATCH --nodes=1",
                 "#SBATCH --job-name=scalebench", "#SBATCH --signal=USR2@90", "module load cuda"):  # fmt: skip
        assert line in text, line
    assert "--partition=cpu" not in text


def test_slurm_option_errors(tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("partiton: gpu\n")
    with pytest.raises(ScalebenchError, match=r"Unknown Slurm option\(s\) \['partiton'\]"):
        slurm_options(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ScalebenchError, match="must be a YAML mapping"):
        slurm_options(bad)
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun: not a Slurm machine
    with pytest.raises(ScalebenchError, match="on a Slurm login node, or use --launcher local"):
        make_executor(tmp_path, slurm_options(), cluster="slurm")
