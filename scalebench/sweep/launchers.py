"""Launchers: plain functions ``(sweep_dir, jobs, options) -> LaunchReport`` in :data:`LAUNCHERS`.

- ``local``: a pool of ``parallel`` worker processes (:mod:`scalebench.sweep.worker`), each running one job
  at a time with its output in ``logs/<job id>.log``; for a CPU or a single GPU. Each worker gets
  ``cores / parallel`` threads unless ``OMP_NUM_THREADS`` is set. ``options["progress"]`` (a ``--progress``
  mode, default ``none``) shows the jobs finished (:mod:`scalebench.progress`), with a dated line per job.
- ``slurm``: submitit's ``AutoExecutor`` (called directly, not through Hydra's plugin), all jobs in one job
  array (``executor.batch()``). Each job is a :class:`SweepJob`, a ``submitit.helpers.Checkpointable``: on
  preemption or time-out submitit calls its ``checkpoint()``, which requeues the same job, and the requeued
  job resumes from the protocol's last epoch checkpoint. ``cluster="local"`` runs the same code path through
  submitit's ``LocalExecutor`` (tests, or a workstation without Slurm).
- ``debug``: prints the command of each job and runs nothing.

Jobs that are done are skipped by every launcher, and so are jobs running now (on this host, or recorded as
running by another host with a recent heartbeat), so launching twice never runs a job twice; ``sweep launch``
holds the sweep folder's lock (:func:`scalebench.sweep.jobs.sweep_lock`) meanwhile, so two launches never
overlap. A ``stale`` job (its heartbeat stopped: a dead node) is launched again, and resumes from its last
epoch checkpoint.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scalebench.checks import ScalebenchError
from scalebench.progress import Progress
from scalebench.sweep.jobs import Job, job_command, job_state, log_path, run_job, write_record

try:  # submitit is a dependency; Checkpointable is the base of the slurm job.
    from submitit.helpers import Checkpointable
except ImportError:  # pragma: no cover
    Checkpointable = object  # type: ignore[assignment,misc]


@dataclass
class LaunchReport:
    """What a launcher did: job ids launched, skipped (done / running / stored in a leaderboard store) and
    failed, plus its lines of output."""

    launched: list[str] = field(default_factory=list)
    skipped_done: list[str] = field(default_factory=list)
    skipped_running: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    skipped_stored: list[str] = field(default_factory=list)
    stored_under_other_hash: list[str] = field(default_factory=list)
    requeued_stale: list[str] = field(default_factory=list)

    def summary(self, sweep_dir: str | Path, store: str | Path | None = None) -> str:
        """The closing line of ``sweep launch``: the counts, and the command that follows the jobs
        (``store``: the leaderboard store of ``--skip-stored``)."""
        stored = f", {len(self.skipped_stored)} stored in {store}" if store is not None else ""
        if self.stored_under_other_hash:
            stored += (
                f" ({len(self.stored_under_other_hash)} more stored under another run hash: same model, build "
                "and seed, but the model's code or a setting changed, so they run again)"
            )
        stored += f", {len(self.requeued_stale)} stale re-queued" if self.requeued_stale else ""
        return (
            f"{len(self.launched)} launched, {len(self.failed)} failed, {len(self.skipped_done)} done already, "
            f"{len(self.skipped_running)} running elsewhere{stored}; `scalebench sweep status --out {sweep_dir}`"
        )


def split_jobs(sweep_dir: str | Path, jobs: Sequence[Job], report: LaunchReport) -> list[Job]:
    """The jobs to launch: not done and not running (the others are noted in ``report``); stale jobs are
    launched again and listed in ``report.requeued_stale``."""
    todo = []
    for job in jobs:
        status = job_state(sweep_dir, job)
        if status.state == "done":
            report.skipped_done.append(job.job_id)
        elif status.state == "running":
            report.skipped_running.append(job.job_id)
        else:
            if status.state == "stale":
                report.requeued_stale.append(job.job_id)
                report.lines.append(f"re-queued stale job {job.job_id} ({status.detail})")
            todo.append(job)
    return todo


def parallel_option(options: dict[str, Any]) -> int:
    """The local launcher's ``parallel`` option: an integer of at least 1 (default 1 when absent).

    Example:
        >>> parallel_option({}), parallel_option({"parallel": 2})
        (1, 2)
    """
    parallel = options.get("parallel", 1)
    if parallel is None:
        parallel = 1
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ScalebenchError(f"--parallel must be an integer of at least 1, got {parallel!r}.")
    return parallel


# ---------------------------------------------------------------------------------------------------------
# debug


def launch_debug(sweep_dir: str | Path, jobs: Sequence[Job], options: dict[str, Any]) -> LaunchReport:
    """Print the command of each job that would run; run nothing."""
    report = LaunchReport()
    for job in split_jobs(sweep_dir, jobs, report):
        report.lines.append(shlex.join(job_command(sweep_dir, job)))
    return report


# ---------------------------------------------------------------------------------------------------------
# local


def launch_local(sweep_dir: str | Path, jobs: Sequence[Job], options: dict[str, Any]) -> LaunchReport:
    """Run the jobs on ``options["parallel"]`` (default 1) worker processes; wait for all of them.

    Each worker (:mod:`scalebench.sweep.worker`) imports torch once and runs one job at a time, its output in
    ``logs/<job id>.log``. A job that fails is reported with its log and the others go on; a worker that dies
    (killed) has its job recorded as failed and is replaced by a new one. ``options["progress"]``: the display
    of the jobs finished (a ``--progress`` mode; default ``none``).
    """
    parallel = parallel_option(options)
    report = LaunchReport()
    queue = list(split_jobs(sweep_dir, jobs, report))
    argv, env = worker_command()
    if "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    lock = threading.Lock()

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, bufsize=1
        )

    def slot() -> None:
        worker: subprocess.Popen | None = None
        while True:
            with lock:
                if not queue:
                    break
                job = queue.pop(0)
            log = log_path(sweep_dir, job.job_id)
            log.parent.mkdir(parents=True, exist_ok=True)
            worker = worker if worker is not None and worker.poll() is None else start()
            assert worker.stdin is not None and worker.stdout is not None
            try:
                worker.stdin.write(
                    json.dumps({"sweep": str(sweep_dir), "job": job.job_id, "log": str(log)}) + "\n"
                )
                worker.stdin.flush()
                line = worker.stdout.readline()
            except BrokenPipeError:
                line = ""
            answer = json.loads(line) if line else None
            if answer is None:  # the worker died with the job
                code = worker.wait()
                how = f"killed by signal {-code}" if code < 0 else f"worker exited with {code}"
                write_record(sweep_dir, job.job_id, "failed", launcher="local", log=log, error=how)
                answer = {"status": "failed", "error": how}
                worker = None
            with lock:
                report.launched.append(job.job_id)
                if answer["status"] == "failed":
                    report.failed.append(job.job_id)
                    report.lines.append(f"FAILED {job.job_id} ({answer['error']}); log: {log}")
                bar.log(f"{answer['status']}: {job.job_id}")
            bar.advance()
        if worker is not None and worker.poll() is None:
            assert worker.stdin is not None
            worker.stdin.close()
            worker.wait()

    threads = [threading.Thread(target=slot) for _ in range(min(parallel, len(queue)))]
    with Progress(options.get("progress", "none")) as bar:
        bar.start(f"sweep: {len(queue)} jobs", len(queue))
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if threads:
            bar.end(f"{len(report.failed)} failed")
    return report


def worker_command() -> tuple[list[str], dict[str, str]]:
    """The argv and environment of a local worker: it imports the scalebench this launcher runs, whatever the
    working directory holds (``python -P`` leaves the working directory off ``sys.path``, which ``-m`` would put
    first; the launcher's package folder goes first on ``PYTHONPATH`` unless it is an installation's
    site-packages, which the worker finds anyway and which must not move ahead of the standard library).
    Otherwise a checkout in the working directory would train the jobs with other code than the code that
    resolved them."""
    import site

    import scalebench

    root = str(Path(scalebench.__file__).resolve().parent.parent)
    env = dict(os.environ)
    if root not in {str(Path(p).resolve()) for p in site.getsitepackages()}:
        env["PYTHONPATH"] = os.pathsep.join(
            [root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        )
    return [sys.executable, "-P", "-m", "scalebench.sweep.worker"], env


# ---------------------------------------------------------------------------------------------------------
# slurm (submitit)

#: ``sweep launch`` Slurm options (flags or YAML keys) -> submitit ``AutoExecutor.update_parameters`` keys.
SLURM_OPTIONS: dict[str, str] = {
    "partition": "slurm_partition",
    "gpus_per_job": "gpus_per_node",
    "cpus_per_job": "cpus_per_task",
    "mem_gb": "mem_gb",
    "time_min": "timeout_min",
    "array_parallelism": "slurm_array_parallelism",
    "account": "slurm_account",
    "qos": "slurm_qos",
    "constraint": "slurm_constraint",
    "exclude": "slurm_exclude",
    "comment": "slurm_comment",
    "signal_delay_s": "slurm_signal_delay_s",
    "setup": "slurm_setup",
    "additional": "slurm_additional_parameters",
    "job_name": "name",
}

#: Per job unless given: one task, one GPU, 8 CPUs, 32 GB, 4 hours, the protocol's epoch checkpoints to resume.
SLURM_DEFAULTS: dict[str, Any] = {
    "gpus_per_job": 1,
    "cpus_per_job": 8,
    "mem_gb": 32,
    "time_min": 240,
    "job_name": "scalebench",
}


def slurm_options(config_file: str | Path | None = None, **flags: Any) -> dict[str, Any]:
    """Slurm options: :data:`SLURM_DEFAULTS`, then the YAML file's keys, then the flags that are not None.

    Example:
        >>> slurm_options(partition="gpu", gpus_per_job=2)["partition"], slurm_options(gpus_per_job=2)["mem_gb"]
        ('gpu', 32)
    """
    options = dict(SLURM_DEFAULTS)
    if config_file is not None:
        path = Path(config_file)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ScalebenchError(f"Cannot read the Slurm options file {path}: {err}") from None
        data = data or {}
        if not isinstance(data, dict):
            raise ScalebenchError(
                f"{path} must be a YAML mapping of Slurm options, found {type(data).__name__}."
            )
        options.update({str(k).replace("-", "_"): v for k, v in data.items()})
    options.update({k: v for k, v in flags.items() if v is not None})
    unknown = sorted(set(options) - set(SLURM_OPTIONS))
    if unknown:
        raise ScalebenchError(
            f"Unknown Slurm option(s) {unknown}{f' in {config_file}' if config_file else ''}. "
            f"Valid: {', '.join(sorted(SLURM_OPTIONS))}."
        )
    return options


def submitit_parameters(options: dict[str, Any]) -> dict[str, Any]:
    """The ``AutoExecutor.update_parameters`` keyword arguments of :func:`slurm_options`' result.

    Example:
        >>> submitit_parameters({"partition": "gpu", "gpus_per_job": 1, "time_min": 60})
        {'slurm_partition': 'gpu', 'gpus_per_node': 1, 'timeout_min': 60, 'tasks_per_node': 1, 'nodes': 1}
    """
    params = {SLURM_OPTIONS[k]: v for k, v in options.items() if v is not None}
    params.update(tasks_per_node=1, nodes=1)  # one run per job; multi-GPU runs use torchrun inside (docs)
    return params


def make_executor(folder: str | Path, options: dict[str, Any], *, cluster: str | None = "slurm") -> Any:
    """A submitit ``AutoExecutor`` on ``folder`` with the Slurm options (``cluster="local"``: LocalExecutor)."""
    import submitit

    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    except RuntimeError as err:
        raise ScalebenchError(
            f"submitit cannot use the {cluster!r} cluster here ({err}). Run `sweep launch --launcher slurm` on a "
            "Slurm login node, or use --launcher local."
        ) from None
    params = submitit_parameters(options)
    if cluster == "local":  # LocalExecutor knows only the generic keys
        params = {k: v for k, v in params.items() if k in ("timeout_min", "name", "nodes", "tasks_per_node")}
        params["gpus_per_node"] = 0
    executor.update_parameters(**params)
    return executor


class SweepJob(Checkpointable):
    """One sweep job as a submitit callable; ``checkpoint()`` (preemption, time-out) requeues it as is.

    Requeueing the same job is enough: the protocol checkpoints every epoch, and :func:`run_job` always
    resumes from the last one, so a requeued job loses at most the epoch it was in.
    """

    def __init__(self, sweep_dir: str | Path, job_id: str) -> None:
        self.sweep_dir, self.job_id = str(sweep_dir), job_id

    def __call__(self) -> str:
        return run_job(self.sweep_dir, self.job_id, launcher="slurm")

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        write_record(self.sweep_dir, self.job_id, "requeued", launcher="slurm")
        return super().checkpoint(*args, **kwargs)


def launch_slurm(sweep_dir: str | Path, jobs: Sequence[Job], options: dict[str, Any]) -> LaunchReport:
    """Submit the jobs as one submitit job array; return at once (``sweep status`` follows them).

    ``options["slurm"]``: the result of :func:`slurm_options`; ``options["cluster"]``: ``slurm`` (default) or
    ``local`` (submitit's LocalExecutor: the same code path on this machine); ``options["wait"]``: wait for
    the jobs and report failures (``local``).
    """
    report = LaunchReport()
    todo = split_jobs(sweep_dir, jobs, report)
    if not todo:
        return report
    folder = Path(sweep_dir) / "submitit"
    executor = make_executor(
        folder / "%j", options.get("slurm") or slurm_options(), cluster=options.get("cluster", "slurm")
    )
    with executor.batch():
        submitted = [executor.submit(SweepJob(sweep_dir, job.job_id)) for job in todo]
    for job, sub in zip(todo, submitted, strict=True):
        report.launched.append(job.job_id)
        report.lines.append(f"submitted {job.job_id} as {sub.job_id} (log {sub.paths.stderr})")
    if options.get("wait"):
        for job, sub in zip(todo, submitted, strict=True):
            try:
                sub.result()
            except Exception as err:  # submitit re-raises the job's error as FailedJobError
                report.failed.append(job.job_id)
                report.lines.append(f"FAILED {job.job_id}: {str(err).strip().splitlines()[-1][:200]}; "
                                    f"log: {sub.paths.stderr}")  # fmt: skip
    return report


LAUNCHERS: dict[str, Callable[[str | Path, Sequence[Job], dict[str, Any]], LaunchReport]] = {
    "local": launch_local,
    "slurm": launch_slurm,
    "debug": launch_debug,
}
