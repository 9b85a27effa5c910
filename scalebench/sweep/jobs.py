"""A sweep: the grid models × datasets × training scales × seeds as jobs, and each job's state on disk.

Each job is one ``scalebench evaluate`` run (:func:`scalebench.benchmark.protocol.run_evaluation`). Its
identity is the protocol's own run hash: the job id is the name of the run directory, which ends with the hash
of the run's fully resolved config, so a job and the run it makes are one thing (DomainBed's ``sweep.py``
convention of naming a job by the hash of its sorted-key arguments; Gulrajani & Lopez-Paz, 2021, "In search of
lost domain generalization", ICLR). The run directory's ``done`` marker, written last by the protocol, says a
job is finished; nothing else does.

A sweep folder holds:

- ``sweep.json``: every job ever launched from it (job id -> its :class:`EvalConfig`), so ``status``,
  ``collect`` and ``delete-incomplete`` need no grid options;
- ``runs/``: the run directories (the protocol's ``--out``);
- ``jobs/<job id>.json``: the job's last launcher event (``running`` with host and pid, ``failed`` with the
  error and the log, ``requeued``), written atomically;
- ``logs/<job id>.log``: the output of jobs run by the ``local`` launcher (``slurm`` jobs log to submitit's
  folder ``submitit/``).

States (:func:`job_state`): ``done`` (``done`` marker present), ``running`` (a live process on this host, or
a running record from another host), ``failed`` (a failed record, or a running record whose process on this
host is gone: killed), else ``pending``. A pending or failed job with an epoch checkpoint resumes from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalebench.allocator import tune_cpu_allocator
from scalebench.benchmark.config import EvalConfig, make_config
from scalebench.benchmark.protocol import DONE, STATE, resolve_run, run_evaluation
from scalebench.checks import ScalebenchError
from scalebench.fileio import write_json_atomic

SWEEP_FILE = "sweep.json"
STATES = ("pending", "running", "done", "failed")


@dataclass(frozen=True)
class Job:
    """One run of the grid: its config (``out`` is the sweep's ``runs/``), id (= run directory name) and folder."""

    config: EvalConfig
    job_id: str
    run_dir: Path

    @property
    def done(self) -> bool:
        return (self.run_dir / DONE).is_file()


def expand_grid(
    sweep_dir: str | Path,
    *,
    models: Sequence[str],
    datasets: Sequence[str],
    seeds: Sequence[int],
    train_scales: Sequence[float] = (1.0,),
    roots: dict[float, Path | None] | None = None,
    **options: Any,
) -> list[Job]:
    """The jobs of the grid models × datasets × training scales × seeds, in that nesting order.

    A dataset build has one training scale, so each training scale reads its builds from its own scalebench
    home, ``roots[train_scale]`` (``None``: the default home); a build whose training scale differs is an
    error naming the command that builds it. ``options`` are further :class:`EvalConfig` fields shared by
    every job (``preset``, ``limit``, ``recipe_overrides``, ...). Every job is resolved by the protocol, so a
    bad model, dataset or option fails here, before anything is launched.
    """
    from scalebench.benchmark.protocol import _load_built

    for what, values in (("--models", models), ("--datasets", datasets), ("--seeds", seeds)):
        if not values:
            raise ScalebenchError(f"{what} is empty; give at least one value (comma-separated).")
    for what, values in (("--models", models), ("--datasets", datasets), ("--seeds", seeds),
                         ("--train-scales", train_scales)):  # fmt: skip
        if len(set(values)) != len(values):
            raise ScalebenchError(f"{what} lists a value twice: {list(values)}.")
    roots = roots or {}
    runs = Path(sweep_dir) / "runs"
    jobs: list[Job] = []
    for model in models:
        for dataset in datasets:
            for train_scale in train_scales:
                root = roots.get(float(train_scale))
                if float(train_scale) not in {float(k) for k in roots} and len(train_scales) > 1:
                    raise ScalebenchError(
                        f"Training scale {train_scale:g} has no dataset home; give --train-scale-root "
                        f"{train_scale:g}=DIR (a home built with `scalebench build-datasets --train-scale "
                        f"{train_scale:g} --root DIR`)."
                    )
                built = _load_built(dataset, root)
                if abs(float(built.train_scale) - float(train_scale)) > 1e-9:
                    raise ScalebenchError(
                        f"Dataset {dataset!r} in {root or 'the default home'} was built at training scale "
                        f"{built.train_scale:g}, not {train_scale:g}. Build it with `scalebench build-datasets "
                        f"--dataset {built.name} --train-scale {train_scale:g} --root DIR` and pass "
                        f"--train-scale-root {train_scale:g}=DIR."
                    )
                for seed in seeds:
                    config = make_config(
                        model=model, dataset=dataset, seed=seed, root=root, out=runs, resume=True, **options
                    )
                    _, run_dir = resolve_run(config)
                    jobs.append(Job(config, run_dir.name, run_dir))
    return jobs


# ---------------------------------------------------------------------------------------------------------
# The sweep folder


def save_jobs(sweep_dir: str | Path, jobs: Sequence[Job]) -> Path:
    """Add ``jobs`` to ``sweep.json`` (the union with earlier launches), atomically."""
    path = Path(sweep_dir) / SWEEP_FILE
    known = _read_sweep(path) if path.is_file() else {}
    for job in jobs:
        known[job.job_id] = job.config.model_dump(mode="json")
    write_json_atomic(path, {"jobs": dict(sorted(known.items()))})
    return path


def _read_sweep(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return dict(json.loads(path.read_text())["jobs"])
    except (ValueError, KeyError, TypeError) as err:
        raise ScalebenchError(
            f"{path} is not a sweep file ({err}); it is written by `scalebench sweep launch`."
        ) from None


def load_jobs(sweep_dir: str | Path) -> list[Job]:
    """The jobs recorded in ``<sweep_dir>/sweep.json``."""
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        raise ScalebenchError(
            f"{path} does not exist: {sweep_dir} is not a sweep folder. Start one with `scalebench sweep launch "
            f"--out {sweep_dir} ...`."
        )
    jobs = []
    for job_id, fields in _read_sweep(path).items():
        config = make_config(**fields)
        jobs.append(Job(config, job_id, Path(config.out) / job_id))
    return jobs


def find_job(sweep_dir: str | Path, job_id: str) -> Job:
    jobs = {j.job_id: j for j in load_jobs(sweep_dir)}
    if job_id not in jobs:
        raise ScalebenchError(f"Job {job_id!r} is not in {Path(sweep_dir) / SWEEP_FILE}.")
    return jobs[job_id]


def record_path(sweep_dir: str | Path, job_id: str) -> Path:
    return Path(sweep_dir) / "jobs" / f"{job_id}.json"


def log_path(sweep_dir: str | Path, job_id: str) -> Path:
    return Path(sweep_dir) / "logs" / f"{job_id}.log"


def write_record(sweep_dir: str | Path, job_id: str, state: str, **info: Any) -> None:
    """The job's last launcher event (``running``, ``failed``, ``requeued``, ``finished``)."""
    record = {"state": state, "time": time.time(), "host": socket.gethostname(), **info}
    write_json_atomic(record_path(sweep_dir, job_id), {k: (str(v) if isinstance(v, Path) else v)
                                                        for k, v in record.items()})  # fmt: skip


def read_record(sweep_dir: str | Path, job_id: str) -> dict[str, Any] | None:
    path = record_path(sweep_dir, job_id)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"state": "failed", "error": f"unreadable job record {path}"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class JobStatus:
    """One row of ``sweep status``."""

    job: Job
    state: str
    epoch: int | None
    log: str | None
    detail: str


def job_state(sweep_dir: str | Path, job: Job) -> JobStatus:
    """The state of one job, read from disk (see the module docstring)."""
    epoch = None
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        epoch = int(json.loads((job.run_dir / STATE).read_text())["epoch"])
    record = read_record(sweep_dir, job.job_id) or {}
    log = record.get("log")
    if job.done:
        return JobStatus(job, "done", epoch, log, "")
    state = record.get("state")
    if state == "running":
        here = record.get("host") == socket.gethostname()
        if here and not _alive(int(record.get("pid", -1))):
            return JobStatus(job, "failed", epoch, log, f"process {record.get('pid')} gone (killed?)")
        return JobStatus(job, "running", epoch, log, f"{record.get('launcher', '?')} on {record.get('host')}")
    if state == "failed":
        return JobStatus(job, "failed", epoch, log, str(record.get("error", ""))[:200])
    return JobStatus(job, "pending", epoch, log, "requeued" if state == "requeued" else "")


def sweep_status(sweep_dir: str | Path) -> list[JobStatus]:
    """The state of every job of the sweep."""
    return [job_state(sweep_dir, job) for job in load_jobs(sweep_dir)]


def delete_incomplete(sweep_dir: str | Path) -> list[Job]:
    """Delete the run directory and record of every job that is neither done nor running; return those jobs.

    Such jobs then start from scratch at the next launch (use this to discard failed runs; an interrupted run
    is otherwise resumed from its last epoch checkpoint).
    """
    deleted = []
    for st in sweep_status(sweep_dir):
        if st.state in ("done", "running"):
            continue
        touched = False
        if st.job.run_dir.exists():
            shutil.rmtree(st.job.run_dir)
            touched = True
        for path in (record_path(sweep_dir, st.job.job_id), log_path(sweep_dir, st.job.job_id)):
            if path.exists():
                path.unlink()
                touched = True
        if touched:
            deleted.append(st.job)
    return deleted


# ---------------------------------------------------------------------------------------------------------
# Running one job (what every launcher runs, in whatever process it runs)


def job_command(sweep_dir: str | Path, job: Job) -> list[str]:
    """The command that runs one job: ``scalebench sweep run-job --sweep DIR JOB_ID``."""
    return ["scalebench", "sweep", "run-job", "--sweep", str(sweep_dir), job.job_id]


def run_job(
    sweep_dir: str | Path, job_id: str, *, launcher: str = "local", log: str | Path | None = None
) -> str:
    """Run one job of the sweep in this process: ``skipped`` if done, else ``done`` (or raise on failure).

    The run always resumes from its last epoch checkpoint, if any. The job record says ``running`` (host,
    pid, log) while it runs and ``failed`` (error, log) if it raises; ``done`` comes from the protocol.
    """
    job = find_job(sweep_dir, job_id)
    if job.done:
        return "skipped"
    tune_cpu_allocator()  # in every launcher's process (scalebench/allocator.py)
    log = log if log is not None else _submitit_log()
    write_record(sweep_dir, job_id, "running", pid=os.getpid(), launcher=launcher, log=log)
    try:
        outcome = run_evaluation(job.config.model_copy(update={"resume": True, "progress": "plain"}))
    except BaseException as err:  # also KeyboardInterrupt / SystemExit: the record must not claim running
        if isinstance(err, SystemExit) and (read_record(sweep_dir, job_id) or {}).get("state") == "requeued":
            raise  # submitit exits after checkpoint() requeued the job: it is pending, not failed
        error = f"{type(err).__name__}: {err}"
        write_record(sweep_dir, job_id, "failed", launcher=launcher, log=log, error=error,
                     traceback=traceback.format_exc()[-4000:])  # fmt: skip
        raise
    if outcome.result is None:  # stop_after_epoch: a resumable partial run
        write_record(
            sweep_dir, job_id, "stopped", launcher=launcher, log=log, epoch=outcome.stopped_after_epoch
        )
        return "stopped"
    write_record(sweep_dir, job_id, "finished", launcher=launcher, log=log)
    return "done"


def _submitit_log() -> str | None:
    """The stderr file of the submitit job this process runs in, if any."""
    if "SUBMITIT_FOLDER" not in os.environ:
        return None
    try:
        import submitit

        return str(submitit.JobEnvironment().paths.stderr)
    except Exception:  # not inside a submitit job after all
        return None
