"""Progress display: rich bars on a terminal, throttled plain lines otherwise (CI, Slurm logs).

tqdm-style bars flood batch logs (stanford-crfm/helm #1351), yet people want some progress there too, so the
plain mode prints one line when a phase starts, at most one line every ``interval`` seconds while it runs (with
the time the phase has left at its mean pace so far), and one when it ends. Every plain line starts with the
local date and time, so that a log read later says when each thing happened; a run's log starts with a
:meth:`Progress.header` naming the run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO


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
    """Phases with a known number of steps. Use as a context manager; ``mode`` is rich, plain or none."""

    def __init__(self, mode: str = "auto", *, stream: TextIO | None = None, interval: float = 10.0) -> None:
        self.stream = stream or sys.stderr
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
        """Record ``n`` finished steps."""
        self._done += n
        if self._rich is not None:
            self._rich.update(self._task, advance=n)
        elif self.mode == "plain":
            now = time.monotonic()
            if now - self._last >= self.interval and self._done < self._total:
                self._last = now
                spent = now - self._start
                left = spent / self._done * (self._total - self._done)
                self._print(
                    f"{self._name}: {self._done}/{self._total} ({duration(spent)}, about {duration(left)} left)"
                )

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
