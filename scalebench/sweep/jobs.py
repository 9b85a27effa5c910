"""A sweep: the grid models × datasets × training sets × seeds as jobs, and each job's state on disk.

Each job is one ``scalebench evaluate`` run (:func:`scalebench.benchmark.protocol.run`), of any task. Its
identity is the protocol's own run hash: the job id is the name of the run directory, which ends with the hash
of the run's fully resolved config, so a job and the run it makes are one thing (DomainBed's ``sweep.py``
convention of naming a job by the hash of its sorted-key arguments; Gulrajani & Lopez-Paz, 2021, "In search of
lost domain generalization", ICLR). The run directory's ``done`` marker, written last by the protocol, says a
job is finished; nothing else does.

A sweep folder holds:

- ``sweep.json``: every job ever launched from it (job id -> its :class:`EvalConfig`), so ``status``,
  ``collect`` and ``delete-incomplete`` need no grid options;
- ``runs/``: the run directories (the protocol's ``--out``);
- ``jobs/<job id>.json``: the job's last launcher event (``running`` with host, pid and the process's start
  time, ``failed`` with the error and the log, ``requeued``), written atomically. While a job runs, a thread
  of its process touches this file every :data:`HEARTBEAT_SECONDS`: the file's modification time is the job's
  heartbeat;
- ``logs/<job id>.log``: the output of jobs run by the ``local`` launcher (``slurm`` jobs log to submitit's
  folder ``submitit/``);
- ``.launch.lock``: held (``fcntl.flock``) by the one ``sweep launch`` running on the folder (:func:`sweep_lock`).

States (:func:`job_state`): ``done`` (``done`` marker present); ``running`` (on this host: its process is alive
and started when the record says, so a reused PID is not taken for the job; on another host: a heartbeat less
than :data:`STALE_AFTER_SECONDS` old); ``stale`` (a running record from another host, or from an older
scalebench, whose heartbeat is older than that: a dead node or a job killed before it could record it;
``sweep launch`` re-queues it and ``delete-incomplete`` deletes it); ``failed`` (a failed record, or a running
record whose process on this host is gone: killed); else ``pending``. A pending, stale or failed job with an
epoch checkpoint resumes from it.

Every job id read from ``sweep.json`` is checked before it names a path (:func:`load_jobs`): one path
component of the shape ``<model>__<dataset>[__train<key>]__seed<n>__<hash>`` of its own config, whose run folder
lies inside
``<sweep>/runs``; :func:`delete_incomplete` also checks that it is the run directory its config resolves to
(:func:`scalebench.benchmark.protocol.resolve_run`) before deleting anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import shutil
import socket
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalebench.allocator import tune_cpu_allocator
from scalebench.benchmark.checkpoint import STATE
from scalebench.benchmark.config import EvalConfig, make_config
from scalebench.benchmark.engine import CONFIG, DONE
from scalebench.benchmark.protocol import resolve_run, run
from scalebench.checks import ScalebenchError
from scalebench.fileio import write_json_atomic

SWEEP_FILE = "sweep.json"
LOCK_NAME = ".launch.lock"
STATES = ("pending", "running", "done", "failed", "stale")

#: A running job touches its record this often (seconds): the record's modification time is its heartbeat.
HEARTBEAT_SECONDS = 60.0
#: A running record whose heartbeat is older than this (seconds; 10 minutes) is ``stale``: its job is re-queued.
STALE_AFTER_SECONDS = 600.0

#: A job id: one path component of safe characters (``<model>__<build id>[__train<key>]__seed<n>__<run hash>``).
_JOB_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,250}")


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
    train_scales: Sequence[Sequence[float] | float] | None = None,
    **options: Any,
) -> list[Job]:
    """The jobs of the grid models × datasets × training sets × seeds, in that nesting order.

    ``train_scales``: the training sets of each build (a training scale, or the scales of a mixed set such as
    ``(1, 2, 3, 4)``); None: each build's default set. Every training set must be built in the
    build (``scalebench datasets build --train-scale S`` adds one); the error names the command. ``options`` are further
    :class:`EvalConfig` fields shared by every job (``preset``, ``limit``, ``root``, ``recipe_overrides``, ...).
    Every job is resolved by the protocol, so a bad model, dataset, training set or option fails here, before
    anything is launched.
    """
    from scalebench.datasets_builders.builds import parse_train_key

    keys = (
        [None] if train_scales is None else [list(parse_train_key(k, "--train-scales")) for k in train_scales]
    )
    for what, values in (("--models", models), ("--datasets", datasets), ("--seeds", seeds),
                         ("--train-scales", keys)):  # fmt: skip
        if not values:
            raise ScalebenchError(f"{what} is empty; give at least one value (comma-separated).")
        if len({repr(v) for v in values}) != len(values):
            raise ScalebenchError(f"{what} lists a value twice: {list(values)}.")
    runs = Path(sweep_dir) / "runs"
    jobs: list[Job] = []
    for model in models:
        for dataset in datasets:
            for key in keys:
                for seed in seeds:
                    config = make_config(model=model, dataset=dataset, seed=seed, train_scale=key, out=runs,
                                         resume=True, **options)  # fmt: skip
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
    """The jobs recorded in ``<sweep_dir>/sweep.json``, each checked before it names a path.

    A job's config runs into this sweep's ``runs/`` (whatever ``out`` the file records, so a moved sweep
    folder keeps working), and its id must be one path component of the shape
    ``<model>__<dataset>[__train<key>]__seed<n>__<hash>`` of that config whose run folder lies inside ``runs/``;
    anything else is one ScalebenchError naming the job, before anything is read or written.
    """
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        raise ScalebenchError(
            f"{path} does not exist: {sweep_dir} is not a sweep folder. Start one with `scalebench sweep launch "
            f"--out {sweep_dir} ...`."
        )
    runs = Path(sweep_dir) / "runs"
    jobs = []
    for job_id, fields in _read_sweep(path).items():
        if not isinstance(fields, dict):
            raise ScalebenchError(
                f"{path}: job {job_id!r} has no config; {path} is written by `sweep launch`."
            )
        config = make_config(**{**fields, "out": runs})
        jobs.append(Job(config, job_id, _checked_run_dir(path, runs, job_id, config)))
    return jobs


def _bad_job(path: Path, job_id: str, why: str) -> ScalebenchError:
    return ScalebenchError(
        f"{path}: job id {job_id!r} {why}; sweep.json was edited by hand or damaged. Restore it (or delete the "
        "sweep folder and launch again); nothing was changed."
    )


def _checked_run_dir(path: Path, runs: Path, job_id: str, config: EvalConfig) -> Path:
    """``runs / job_id`` after checking that ``job_id`` is one safe path component of the shape its config
    gives, and that the folder (if it exists) resolves inside ``runs``."""
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise _bad_job(
            path, str(job_id), "is not one path component of letters, digits, '_', '.', '+', '=', '-'"
        )
    from scalebench.models.external import is_reference  # a string test: no model is imported here

    train = r"(__train[0-9][0-9.+]*)?"
    if config.model_name is not None:
        name = re.escape(config.model_name)
    else:  # a model of one's own is named by its factory, known once imported
        name = r"[a-z0-9_][a-z0-9_.-]{0,99}" if is_reference(config.model) else re.escape(config.model)
    shape = rf"{name}__{re.escape(config.dataset)}{train}__seed{config.seed}__[0-9a-f]{{8,64}}"
    if not re.fullmatch(shape, job_id):
        raise _bad_job(
            path, job_id, f"is not the run directory of its config ({config.model}__{config.dataset}__seed"
            f"{config.seed}__<hash>)"
        )  # fmt: skip
    run_dir = runs / job_id
    if run_dir.is_symlink() or run_dir.resolve().parent != runs.resolve():
        raise _bad_job(path, job_id, f"names a run folder outside {runs} (a symbolic link?)")
    return run_dir


def check_job_identity(sweep_dir: str | Path, job: Job) -> None:
    """Check that ``job.job_id`` is the run directory its config resolves to (the protocol's run hash).

    ``resolve_run`` checks every input (model, dataset build, recipe) without training. The device does not
    enter the hash, so it is checked as ``cpu`` (a GPU sweep can be checked on a login node), except for an
    ``--amp`` sweep, which needs its GPU.
    """
    config = job.config if job.config.amp else job.config.model_copy(update={"device": "cpu"})
    _, run_dir = resolve_run(config)
    if run_dir.name != job.job_id:
        raise _bad_job(
            Path(sweep_dir) / SWEEP_FILE,
            job.job_id,
            f"is not the run directory its config resolves to ({run_dir.name}; or sweep.json was written by "
            "another scalebench version)",
        )


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
    if pid <= 0:  # 0 and negative numbers name process groups, never a job
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, field 22 of ``/proc/<pid>/stat``), or None where
    unknown (no such process, no ``/proc``). A PID that the system reused has another start time."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError, ValueError):
        return None


def heartbeat_age(sweep_dir: str | Path, job_id: str) -> float | None:
    """Seconds since the job's record was last written or touched (its heartbeat); None without a record."""
    try:
        return max(0.0, time.time() - record_path(sweep_dir, job_id).stat().st_mtime)
    except OSError:
        return None


@contextlib.contextmanager
def heartbeat(sweep_dir: str | Path, job_id: str, every: float | None = None) -> Iterator[None]:
    """While the block runs, touch the job's record every ``every`` seconds (default :data:`HEARTBEAT_SECONDS`)
    from a daemon thread; the thread has stopped when the block ends."""
    path = record_path(sweep_dir, job_id)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS if every is None else every):
            with contextlib.suppress(OSError):  # the record may be replaced or deleted meanwhile
                os.utime(path)

    thread = threading.Thread(target=beat, name=f"scalebench-heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class JobStatus:
    """One row of ``sweep status``."""

    job: Job
    state: str
    epoch: int | None
    log: str | None
    detail: str
    epochs: int | None = None  # the recipe's epochs (the run's config.json), once the run has started
    train_seconds: float | None = None  # training time of the epochs done (the run's state.json)

    @property
    def seconds_left(self) -> float | None:
        """Training time still to come at the mean pace of the epochs done (None before the first epoch)."""
        if not self.epoch or self.epochs is None or self.train_seconds is None:
            return None
        return max(0, self.epochs - self.epoch) * self.train_seconds / self.epoch


def _read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it is missing or not JSON (a run folder being written)."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        return json.loads(path.read_text())
    return None


def _number(data: Any, keys: Sequence[str], kind: type[int] | type[float]) -> int | float | None:
    """``kind(data[k0][k1]...)``, or None when a key is missing or the value is not a number of that kind."""
    try:
        for key in keys:
            data = data[key]
        return kind(data)
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def job_state(sweep_dir: str | Path, job: Job) -> JobStatus:
    """The state of one job, read from disk (see the module docstring); a damaged ``state.json`` or
    ``config.json`` leaves its numbers out (the run itself says what is wrong when it resumes)."""
    state = _read_json(job.run_dir / STATE)  # read once: the epoch and the training time
    epochs = _number(_read_json(job.run_dir / CONFIG), ("recipe", "epochs"), int)
    status = _job_state(sweep_dir, job, _number(state, ("epoch",), int))
    return dataclasses.replace(status, epochs=epochs, train_seconds=_number(state, ("train_seconds",), float))


def _job_state(sweep_dir: str | Path, job: Job, epoch: int | None) -> JobStatus:
    record = read_record(sweep_dir, job.job_id) or {}
    log = record.get("log")
    if job.done:
        return JobStatus(job, "done", epoch, log, "")
    state = record.get("state")
    if state == "running":
        where = f"{record.get('launcher', '?')} on {record.get('host')}"
        pid = record.get("pid")
        pid = pid if isinstance(pid, int) and not isinstance(pid, bool) else None
        if record.get("host") == socket.gethostname() and pid is not None:
            if not _alive(pid):
                return JobStatus(job, "failed", epoch, log, f"process {pid} gone (killed?)")
            started = record.get("pid_start")
            if started is not None:
                if process_start(pid) not in (None, started):
                    return JobStatus(job, "failed", epoch, log,
                                     f"process {pid} gone (its PID now belongs to another process)")  # fmt: skip
                return JobStatus(job, "running", epoch, log, where)
        age = heartbeat_age(sweep_dir, job.job_id)
        if age is not None and age > STALE_AFTER_SECONDS:
            return JobStatus(job, "stale", epoch, log,
                             f"{where}: no heartbeat for {age / 60:.0f} min (dead node or killed job); "
                             "`sweep launch` re-queues it")  # fmt: skip
        return JobStatus(job, "running", epoch, log, where)
    if state == "failed":
        return JobStatus(job, "failed", epoch, log, str(record.get("error", ""))[:200])
    return JobStatus(job, "pending", epoch, log, "requeued" if state == "requeued" else "")


def sweep_status(sweep_dir: str | Path) -> list[JobStatus]:
    """The state of every job of the sweep."""
    return [job_state(sweep_dir, job) for job in load_jobs(sweep_dir)]


def delete_incomplete(sweep_dir: str | Path) -> list[Job]:
    """Delete the run directory and record of every job that is neither done nor running (pending, failed or
    stale); return those jobs.

    Such jobs then start from scratch at the next launch (use this to discard failed runs; an interrupted run
    is otherwise resumed from its last epoch checkpoint). Every job to delete is checked first
    (:func:`check_job_identity`); if one fails, nothing is deleted.
    """
    todo = [st for st in sweep_status(sweep_dir) if st.state not in ("done", "running")]
    for st in todo:
        paths = (st.job.run_dir, record_path(sweep_dir, st.job.job_id), log_path(sweep_dir, st.job.job_id))
        if any(p.exists() for p in paths):
            check_job_identity(sweep_dir, st.job)
    deleted = []
    for st in todo:
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


@contextlib.contextmanager
def sweep_lock(sweep_dir: str | Path) -> Iterator[Path]:
    """Hold ``<sweep_dir>/.launch.lock`` exclusively (``fcntl.flock``) for the block, or fail at once if another
    ``sweep launch`` holds it, so that two launches on one folder never run the same job."""
    folder = Path(sweep_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError:
        if path.is_symlink():
            raise ScalebenchError(
                f"{path} is a symbolic link; delete it (sweep launch recreates it)."
            ) from None
        raise
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScalebenchError(
                f"Another `scalebench sweep launch` is running on {folder} (it holds {path}); wait for it to "
                f"finish (`scalebench sweep status --out {folder}`) or launch into another --out."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        yield folder
    finally:
        os.close(fd)  # closing releases the lock


def job_command(sweep_dir: str | Path, job: Job) -> list[str]:
    """The command that runs one job: ``scalebench sweep run-job --sweep DIR JOB_ID``."""
    return ["scalebench", "sweep", "run-job", "--sweep", str(sweep_dir), job.job_id]


def _check_code_unchanged(job: Job) -> None:
    """The job's config still resolves to the job's run: the model's code (its source sha256 and structure are
    part of the run hash) and scalebench are those the sweep was launched with. Otherwise the job would write
    another run than the one it names; stop with one error instead."""
    _, run_dir = resolve_run(job.config)
    if run_dir.name != job.job_id:
        raise ScalebenchError(
            f"Job {job.job_id} now resolves to run {run_dir.name}: the model's code or scalebench changed since "
            "`sweep launch`. Launch the sweep again with the same options to add jobs for the code as it is now "
            "(finished jobs stay), or restore the code the sweep was launched with."
        )


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
    write_record(sweep_dir, job_id, "running", pid=os.getpid(), pid_start=process_start(os.getpid()),
                 launcher=launcher, log=log, heartbeat_s=HEARTBEAT_SECONDS)  # fmt: skip
    try:
        _check_code_unchanged(job)
        with heartbeat(sweep_dir, job_id):
            outcome = run(job.config.model_copy(update={"resume": True, "progress": "plain"}))
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
