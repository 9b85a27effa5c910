"""Leaderboard: submission checks, the results store, ranking over seeds and rendering.

It reads results through :mod:`scalebench.results` and draws its comparison figures through
:mod:`scalebench.figures`; it runs no model (checkpoint verification is passed in, see :func:`submit`).

Data flows one way: results JSON (``scalebench evaluate``) -> :func:`submit` (checks, store) ->
:func:`build_leaderboard` (ranking, Markdown, CSV, JSON, static HTML). Every summary shown is recomputed from
the per-scale counts by :mod:`scalebench.results.metrics`. See ``docs/leaderboard.md``.
"""

from scalebench.leaderboard.ranking import MIN_SEEDS, Entry, Stat, rank_entries
from scalebench.leaderboard.render import build_leaderboard
from scalebench.leaderboard.store import (
    StoredRun,
    StoreReport,
    SubmitOutcome,
    load_store,
    read_index,
    submit,
    submit_runs,
    validate_store,
)
from scalebench.leaderboard.validate import (
    KnownBuild,
    check_run,
    entry_path,
    known_builds,
    run_config_hash,
    validate_submission,
)

__all__ = [
    "MIN_SEEDS",
    "Entry",
    "KnownBuild",
    "Stat",
    "StoreReport",
    "StoredRun",
    "SubmitOutcome",
    "build_leaderboard",
    "check_run",
    "entry_path",
    "known_builds",
    "load_store",
    "rank_entries",
    "read_index",
    "run_config_hash",
    "submit",
    "submit_runs",
    "validate_store",
    "validate_submission",
]
