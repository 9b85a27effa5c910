"""Progress of the long commands: rich bars on a terminal, throttled plain lines otherwise (CI, Slurm logs).

tqdm-style bars flood batch logs (stanford-crfm/helm #1351), yet people want some progress there too, so the
plain mode prints one line when a phase starts, at most one line every ``interval`` seconds while it runs (with
the time the phase has left at its mean pace so far), and one when it ends. Every plain line starts with the
local date and time, so that a log read later says when each thing happened; a run's log starts with a
:meth:`Progress.header` naming the run.

One display for every long command (``--progress``, :data:`PROGRESS_MODES`): a training run, a verification,
a dataset build (whose sets are written by several threads at once: :meth:`Progress.advance` is thread-safe),
``datasets verify`` and ``datasets export``, and the local launcher of a sweep. It sits below the datasets and
the benchmark, and imports nothing of scalebench but its checks.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from typing import Literal, TextIO

from scalebench.checks import check_choice

ProgressMode = Literal["auto", "rich", "plain", "none"]

#: The values of ``--progress``: ``auto`` is ``rich`` on a terminal and ``plain`` elsewhere.
PROGRESS_MODES: tuple[str, ...] = ("auto", "rich", "plain", "none")


def progress_mode(value: bool | str) -> str:
    """A ``--progress`` mode from a mode or a flag of the Python API (True: ``auto``, False: ``none``).

    Example:
        >>> progress_mode(True), progress_mode(False), progress_mode("plain")
        ('auto', 'none', 'plain')
    """
    if isinstance(value, bool):
        return "auto" if value else "none"
    return check_choice(value, "--progress", PROGRESS_MODES)


def duration(seconds: float) -> str:
    """A duration for a log line, rounded to what matters.

    Example:
        >>> duration(42.4), duration(125), duration(7384)
        ('42s', '2.1 min', '2.1 h')
    """
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Phases with a known number of steps. Use as a context manager; ``mode`` is one of
    :data:`PROGRESS_MODES` (or a flag, :func:`progress_mode`)."""

    def __init__(
        self, mode: bool | str = "auto", *, stream: TextIO | None = None, interval: float = 10.0
    ) -> None:
        self.stream = stream or sys.stderr
        mode = progress_mode(mode)
        if mode == "auto":
            mode = "rich" if self.stream.isatty() else "plain"
        self.mode = mode
        self.interval = interval
        self._rich = None
        self._task = None
        self._name = ""
        self._total = 0
        self._done = 0
        self._start = 0.0
        self._last = 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> Progress:
        if self.mode == "rich":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._rich.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.__exit__(*exc)
            self._rich = None

    def header(self, title: str, fields: Mapping[str, object]) -> None:
        """The first lines of a log: ``title``, then one ``name: value`` line per field."""
        self.log(title)
        for name, value in fields.items():
            self.log(f"  {name}: {value}")

    def start(self, name: str, total: int) -> None:
        """Begin a phase of ``total`` steps."""
        self._name, self._total, self._done = name, total, 0
        self._start = self._last = time.monotonic()
        if self._rich is not None:
            self._task = self._rich.add_task(name, total=total)
        elif self.mode == "plain":
            self._print(f"{name}: 0/{total}")

    def advance(self, n: int = 1) -> None:
        """Record ``n`` finished steps (from any thread)."""
        with self._lock:
            self._done += n
            if self._rich is not None:
                self._rich.update(self._task, advance=n)
            elif self.mode == "plain":
                now = time.monotonic()
                if now - self._last >= self.interval and self._done < self._total:
                    self._last = now
                    spent = now - self._start
                    left = spent / self._done * (self._total - self._done)
                    self._print(f"{self._name}: {self._done}/{self._total} ({duration(spent)}, about "
                                f"{duration(left)} left)")  # fmt: skip

    def end(self, message: str = "") -> None:
        """Close the current phase, printing ``message`` beside it."""
        elapsed = time.monotonic() - self._start
        if self._rich is not None:
            if message:
                self._rich.update(self._task, description=f"{self._name} {message}")
        elif self.mode == "plain":
            self._print(f"{self._name}: done in {elapsed:.1f}s {message}".rstrip())

    def log(self, message: str) -> None:
        """A line of its own (through rich's console on a terminal, so that bars are not broken)."""
        if self._rich is not None:
            self._rich.console.print(message, markup=False, highlight=False)
        elif self.mode != "none":
            self._print(message)

    def _print(self, text: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}", file=self.stream, flush=True)
