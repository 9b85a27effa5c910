"""The long-lived worker process of the ``local`` launcher: runs the jobs it is sent, one at a time.

Protocol on stdin/stdout, one JSON object per line: the launcher sends ``{"sweep": DIR, "job": ID, "log": PATH}``;
the worker runs :func:`scalebench.sweep.jobs.run_job` with its own stdout and stderr sent to ``PATH`` (file
descriptors 1 and 2, so output of C extensions and subprocesses goes there too), then answers
``{"job": ID, "status": "done" | "skipped" | "stopped" | "failed", "error": ...}``. A worker imports torch
once and runs many jobs; if it dies (killed, out of memory), the launcher records the job it was running as
failed and starts a new worker for the rest.
"""

from __future__ import annotations

import json
import os
import sys


def _serve(reply: int) -> None:
    from scalebench.sweep.jobs import run_job

    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        fd = os.open(msg["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        answer: dict[str, str | None] = {"job": msg["job"], "error": None}
        try:
            answer["status"] = run_job(msg["sweep"], msg["job"], launcher="local", log=msg["log"])
        except Exception as err:  # recorded by run_job; the worker goes on with the next job
            import traceback

            traceback.print_exc()
            answer.update(status="failed", error=f"{type(err).__name__}: {err}")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        os.write(reply, (json.dumps(answer) + "\n").encode())


def main() -> None:
    reply = os.dup(1)  # answers go to the launcher's pipe even while fd 1 points at a job's log
    _serve(reply)


if __name__ == "__main__":
    main()
