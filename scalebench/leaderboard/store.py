"""The results store: one JSON file per run under ``<store>/<dataset>/<model>/<config-hash>/seed-<n>.json``.

The store is a plain folder, meant to live in git (as the MTEB results repository and RobustBench's
``model_info/`` do), so that every addition is a reviewable diff:

- ``index.json`` lists every entry with the sha256 of its file. :func:`validate_store` fails when an entry
  listed there is gone or changed, or when a file is not listed, so that no result silently disappears from
  the leaderboard (mteb issues 1840 and 1571 report rewrites that dropped models).
- ``.lock`` serialises writers: :func:`submit_runs` validates every file first without touching the store,
  then takes an exclusive ``fcntl.flock`` on it, checks for duplicates, writes the new entries and the index.
  Concurrent submissions from several processes therefore never lose an entry.
- entries are never overwritten: a file is written to a temporary name and hard-linked to its final name,
  which fails if that name exists. The one exception is the upgrade of a self-reported entry to "verified"
  by re-evaluating its checkpoint (:func:`submit` with ``checkpoint``): the verified copy, identical apart
  from ``evaluated_by``, replaces the self-reported one atomically.
- a rejected submission leaves the store byte-for-byte unchanged.
- ``unranked/`` at the top of a store holds runs kept for traceability that the leaderboard must not rank
  (runs on subset builds, such as the CPU runs of ``docs/protocol.md``); validation skips it.
- a store holds no symbolic links (a results repository that takes pull requests could receive one, and git
  stores them): every write checks that no folder or file between the store root and its destination is a
  link and that the destination resolves inside the store, ``.lock`` is opened without following a link, and
  :func:`validate_store` reports every link it finds. The store root itself may be a link.

Not yet: removing an entry on purpose needs a hand edit of ``index.json`` (visible in review).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.scales import same_scale
from scalebench.fileio import file_digest, new_file_mode, write_json_atomic, write_text_atomic
from scalebench.leaderboard.validate import KnownBuild, check_run, track_of, validate_submission
from scalebench.results import (
    ALL_TASKS,
    AnyRunResult,
    RunResult,
    SegmentationRunResult,
    load_results,
    read_results_bytes,
    results_to_json,
    stored_checkpoint,
)

INDEX_NAME = "index.json"
LOCK_NAME = ".lock"
#: Top-level folder of a store for runs kept for traceability but never ranked (subset or smoke runs on
#: non-canonical builds, e.g. CPU runs on the first N images): ``validate_store`` does not read it.
UNRANKED_DIR = "unranked"


@dataclass(frozen=True)
class StoredRun:
    """One validated entry of the store: its path relative to the store root, the run, its file's sha256 and
    its track (``full`` or ``lite``, from the build the run records)."""

    path: PurePosixPath
    result: AnyRunResult
    sha256: str
    track: str = "full"


@dataclass(frozen=True)
class SubmitOutcome:
    """What :func:`submit_runs` did with one file: ``added`` or ``upgraded`` (self-reported -> verified)."""

    source: str
    path: Path
    status: str


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _link_error(link: Path, store: Path) -> ScalebenchError:
    return ScalebenchError(
        f"{link} is a symbolic link inside the results store {store}; a store holds only real files and folders. "
        "Replace the link by what it points to (or delete it) and retry; nothing was written."
    )


def checked_path(store: str | Path, rel: PurePosixPath | str) -> Path:
    """``store / rel`` after checking that no existing folder or file from the store root down to it is a
    symbolic link and that it resolves inside the resolved store root (see the module docstring)."""
    store = Path(store)
    rel = PurePosixPath(rel)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ScalebenchError(f"{rel} is not a path inside the results store {store}.")
    path = store
    for part in rel.parts:
        path = path / part
        if path.is_symlink():
            raise _link_error(path, store)
    root = store.resolve()
    if root not in path.resolve().parents:
        raise ScalebenchError(
            f"{path} resolves to {path.resolve()}, outside the results store {root}; nothing was written."
        )
    return path


def _make_parents(store: Path, rel: PurePosixPath) -> Path:
    """Create the missing folders of ``store / rel`` one at a time (never through a link); return the path."""
    path = store
    for part in rel.parts[:-1]:
        path = path / part
        if not path.is_dir() or path.is_symlink():
            with contextlib.suppress(FileExistsError):
                os.mkdir(path)
    return checked_path(store, rel)


@contextlib.contextmanager
def store_lock(store: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``<store>/.lock`` (created if needed, never through a symbolic link) for the
    duration of the block."""
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(store / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError:
        if (store / LOCK_NAME).is_symlink():
            raise _link_error(store / LOCK_NAME, store) from None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield store
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_index(store: str | Path) -> dict[str, str]:
    """The store's index: entry path (relative, POSIX) -> sha256 of the file. Empty for a new store."""
    path = Path(store) / INDEX_NAME
    if path.is_symlink():
        raise _link_error(path, Path(store))
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        entries = data["entries"]
        if not isinstance(entries, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in entries.items()
        ):
            raise TypeError("entries must map paths to sha256 strings")
    except (ValueError, KeyError, TypeError) as err:
        raise ScalebenchError(
            f"{path} is not a valid store index ({err}); restore it from git (`git checkout {path}`)."
        ) from None
    return dict(entries)


def _write_new(store: Path, rel: PurePosixPath, text: str | bytes) -> Path:
    """Write ``text`` to ``store / rel`` atomically, failing with FileExistsError if it exists (no overwrite);
    every folder on the way is checked (:func:`checked_path`) and created without following a link."""
    dest = _make_parents(store, rel)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        os.fchmod(fd, new_file_mode())  # readable like the rest of the store, not mkstemp's 0o600
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode() if isinstance(text, str) else text)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest


def _same_run_but_verified(stored: AnyRunResult, new: AnyRunResult) -> bool:
    if stored.evaluated_by != "self-reported" or new.evaluated_by != "verified":
        return False
    a = stored.model_dump(mode="json")
    b = new.model_dump(mode="json")
    for doc in (a, b):
        doc.pop("evaluated_by")
        doc.pop("verification", None)
    return a == b


def submit_runs(
    items: Sequence[tuple[str, AnyRunResult | str | bytes]],
    store: str | Path = "results",
    *,
    known: Sequence[KnownBuild] | None = None,
    verified: bool = False,
) -> list[SubmitOutcome]:
    """Validate runs and add them to the store: all or nothing.

    Args:
        items: ``(source name, run)`` pairs; a run is the text of a results file, or a :class:`RunResult`
            or :class:`SegmentationRunResult` that the caller already validated against the schema.
        store: the store folder.
        known: accepted canonical builds (default :func:`scalebench.leaderboard.validate.known_builds`).
        verified: the runs come from a checkpoint re-evaluation (:func:`submit` with ``checkpoint``) and may
            carry ``evaluated_by == "verified"``.

    Raises:
        ScalebenchError: the first file that fails a check, a duplicate of a stored run or of another file in
            the same call. The store is then unchanged.
    """
    store = Path(store)
    checked = _check_items(items, store, known=known, verified=verified)
    with store_lock(store):
        index = read_index(store)
        plan = [
            (source, result, rel, _status(store, index, source, result, rel))
            for source, result, rel in checked
        ]
        _commit(
            store,
            index,
            [(rel, results_to_json(result), status == "upgraded") for _, result, rel, status in plan],
        )
    return [SubmitOutcome(source, checked_path(store, rel), status) for source, _, rel, status in plan]


def _check_items(
    items: Sequence[tuple[str, AnyRunResult | str | bytes]],
    store: Path,
    *,
    known: Sequence[KnownBuild] | None,
    verified: bool,
) -> list[tuple[str, AnyRunResult, PurePosixPath]]:
    """Validate every run (no two of them the same run) and the store paths they go to, before the lock:
    ``(source, run, path in the store)`` triples."""
    checked: list[tuple[str, AnyRunResult, PurePosixPath]] = []
    for source, item in items:
        if isinstance(item, (RunResult, SegmentationRunResult)):
            rel = check_run(item, source, known=known, allow_verified=verified)
            result = item
        else:
            result, rel = validate_submission(item, source, known=known, allow_verified=verified)
        checked.append((source, result, rel))
    seen: dict[PurePosixPath, str] = {}
    for source, _, rel in checked:
        if rel in seen:
            raise ScalebenchError(
                f"{source} and {seen[rel]} are the same run (same model, config hash, dataset, training scale "
                f"and seed: {rel}); submit each run once."
            )
        seen[rel] = source
    if (
        store.is_dir()
    ):  # links are refused before the lock file is even created (checked again under the lock)
        for name in (LOCK_NAME, INDEX_NAME):
            if (store / name).is_symlink():
                raise _link_error(store / name, store)
        for _, _, rel in checked:
            checked_path(store, rel)
    return checked


def _status(store: Path, index: dict[str, str], source: str, result: AnyRunResult, rel: PurePosixPath) -> str:
    """``added`` for a new run, ``upgraded`` for the verified copy of a stored self-reported run; any other
    run already stored (or listed and gone) is an error: entries are never overwritten."""
    dest = checked_path(store, rel)
    if str(rel) in index and not dest.exists():
        raise ScalebenchError(
            f"{source}: the store lists {rel} in {INDEX_NAME} but its file is gone; restore it from "
            "git before submitting (`scalebench leaderboard validate` lists every problem)."
        )
    if not dest.exists():
        return "added"
    stored = _load_entry(store, rel)
    if stored is not None and _same_run_but_verified(stored, result):
        return "upgraded"
    raise ScalebenchError(
        f"{source} duplicates the stored run {dest} (same model, config hash, dataset, training "
        f"scale and seed {result.seed}); entries are never overwritten. Submit a new seed, or "
        "change the config."
    )


def _commit(
    store: Path, index: dict[str, str], files: Sequence[tuple[PurePosixPath, str | bytes, bool]]
) -> list[Path]:
    """Write ``files`` (``(path in the store, content, replace)``) and the index with their sha256, under the
    store's lock, all or nothing: a new file never replaces an existing one (``replace``: the entry is
    rewritten atomically, the upgrade to verified), and the new files are removed again if a write fails.
    Returns the new files."""
    written: list[Path] = []
    new_index = dict(index)
    try:
        for rel, data, replace in files:
            if replace:
                write_text_atomic(checked_path(store, rel), data)
            else:
                written.append(_write_new(store, rel, data))
            new_index[str(rel)] = hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()
        write_json_atomic(store / INDEX_NAME, {"entries": new_index})
    except BaseException:
        for dest in written:
            with contextlib.suppress(FileNotFoundError):
                dest.unlink()
        raise
    return written


def _load_entry(store: Path, rel: PurePosixPath) -> AnyRunResult | None:
    from scalebench.results import parse_results

    path = checked_path(store, rel)
    try:
        return parse_results(read_results_bytes(path), source=str(path), tasks=ALL_TASKS)
    except ScalebenchError:
        return None


class VerifyOutcome(Protocol):
    """What a :class:`Verifier` reports: the verified results (None when a count differs) and the mismatches."""

    verified: AnyRunResult | None
    mismatches: list[str]


class Verifier(Protocol):
    """Re-evaluates a checkpoint on the test sets a results file records and compares every per-scale count
    (``verify_run`` of the benchmark's verify module; the leaderboard runs no model itself)."""

    def __call__(
        self,
        results_path: str | Path,
        checkpoint: str | Path,
        *,
        root: str | Path | None = ...,
        device: str = ...,
        out: str | Path | None = ...,
        progress: str = ...,
        trust_model_code: bool = ...,
    ) -> VerifyOutcome: ...


def submit(
    paths: Sequence[str | Path],
    store: str | Path = "results",
    *,
    checkpoint: str | Path | None = None,
    verify: Verifier | None = None,
    root: str | Path | None = None,
    device: str = "auto",
    known: Sequence[KnownBuild] | None = None,
    progress: str = "none",
    trust_model_code: bool = False,
) -> list[SubmitOutcome]:
    """``scalebench submit``: validate results files and add them to the store (all or nothing).

    With ``checkpoint`` (one results file only), ``verify`` re-evaluates the checkpoint on the recorded test
    sets (``scalebench submit`` passes ``verify_run`` of the benchmark's verify module: the sha256 of the
    weights must equal the recorded one, and every per-scale count must match exactly), showing ``progress``
    (a ``--progress`` mode; ``trust_model_code``: a model from outside scalebench may be imported and run); the
    entry is then stored as "verified", or upgraded from self-reported if the same run is already stored.
    """
    if not paths:
        raise ScalebenchError("Give at least one results file to submit (scalebench submit RUN.json ...).")
    if checkpoint is None:
        return submit_runs([(str(p), read_results_bytes(Path(p))) for p in paths], store, known=known)
    if len(paths) != 1:
        raise ScalebenchError(
            f"--checkpoint verifies one results file, got {len(paths)}; submit each run with its own checkpoint."
        )
    if verify is None:
        raise ScalebenchError(
            "A checkpoint needs a verifier to re-evaluate it: pass verify=verify_run from the benchmark's "
            "verify module, as `scalebench submit --checkpoint` does."
        )
    source = str(paths[0])
    validate_submission(read_results_bytes(Path(source)), source, known=known)
    with tempfile.TemporaryDirectory(prefix="scalebench-verify-") as tmp:
        report = verify(source, checkpoint, root=root, device=device, out=Path(tmp) / "verified.json",
                        progress=progress, trust_model_code=trust_model_code)  # fmt: skip
    if report.verified is None:
        raise ScalebenchError(
            f"{source} is NOT verified: re-evaluating {checkpoint} gave other counts ("
            + "; ".join(report.mismatches)
            + "). Nothing was stored; submit it without --checkpoint to list it as self-reported."
        )
    return submit_runs([(source, report.verified)], store, known=known, verified=True)


#: Largest checkpoint the store takes (the lite track's best checkpoints are kilobytes; full-track ones a few MB).
MAX_CHECKPOINT_BYTES = 64 * 1024 * 1024


def checkpoint_path(rel: PurePosixPath) -> PurePosixPath:
    """Where the store keeps the best checkpoint of the run at ``rel``: beside it, ``seed-<n>.safetensors``."""
    return stored_checkpoint(rel)


def add_checkpoints(store: str | Path, items: Sequence[tuple[PurePosixPath, str | Path]]) -> list[Path]:
    """Store the best checkpoint of runs already in the store: ``(entry path, checkpoint file)`` pairs.

    Each checkpoint's sha256 must equal the ``checkpoint_sha256`` its stored results record; it is written
    beside the results as ``seed-<n>.safetensors`` (never over an existing file) and listed in ``index.json``
    with its sha256, so that ``leaderboard validate`` notices a lost or changed checkpoint. All or nothing.
    """
    store = Path(store)
    plan = []
    for rel, source in items:
        source = Path(source)
        if not source.is_file():
            raise ScalebenchError(f"Checkpoint {source} does not exist.")
        if source.stat().st_size > MAX_CHECKPOINT_BYTES:
            raise ScalebenchError(
                f"Checkpoint {source} is {source.stat().st_size} bytes, above the store's limit of "
                f"{MAX_CHECKPOINT_BYTES}; keep it elsewhere (its sha256 is in the results)."
            )
        data = source.read_bytes()
        plan.append((rel, checkpoint_path(rel), data, hashlib.sha256(data).hexdigest(), source))
    with store_lock(store):
        index = read_index(store)
        for rel, ckpt, _, sha, source in plan:
            checked_path(store, ckpt)
            stored = _load_entry(store, rel) if str(rel) in index else None
            if stored is None:
                raise ScalebenchError(f"{store / rel} is not in the store; submit its results first.")
            if sha != stored.checkpoint_sha256:
                raise ScalebenchError(
                    f"Checkpoint {source} has sha256 {sha}, but {store / rel} records {stored.checkpoint_sha256}; "
                    "give the best.safetensors of that run."
                )
        # a checkpoint stored already is the same file (the results pin its sha256)
        stored_already = {
            ckpt for _, ckpt, _, _, _ in plan if str(ckpt) in index and checked_path(store, ckpt).exists()
        }
        return _commit(
            store, index, [(ckpt, data, False) for _, ckpt, data, _, _ in plan if ckpt not in stored_already]
        )


@dataclass
class StoreReport:
    """The outcome of :func:`validate_store`: the valid entries and one line per problem found."""

    store: Path
    entries: list[StoredRun]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _previous_runs(previous: str | Path) -> dict[str, dict[str, str | None]]:
    """The runs a ``leaderboard.json`` lists: path -> its recorded ``sha256`` and ``evaluated_by`` (None when an
    older leaderboard.json lacks them)."""
    path = Path(previous)
    try:
        data = json.loads(path.read_text())
        runs: dict[str, dict[str, str | None]] = {}
        for entry in data["entries"]:
            for run in entry["runs"]:
                rel, sha, by = run["path"], run.get("sha256"), run.get("evaluated_by")
                if not isinstance(rel, str) or not all(v is None or isinstance(v, str) for v in (sha, by)):
                    raise TypeError(f"run {rel!r}: path, sha256 and evaluated_by must be strings")
                runs[rel] = {"sha256": sha, "evaluated_by": by}
        return runs
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ScalebenchError(
            f"{path} is not a leaderboard.json written by `scalebench leaderboard build` ({err})."
        ) from None


def _walk(store: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """The results files (``*.json``), checkpoints (``*.safetensors``) and symbolic links of a store, without
    following any link; folders whose name starts with a dot are not entered (files there are never read)."""
    results: list[Path] = []
    checkpoints: list[Path] = []
    links: list[Path] = []
    for folder, dirs, files in os.walk(store):
        here = Path(folder)
        links += [here / d for d in dirs if (here / d).is_symlink()]
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (here / d).is_symlink())
        for name in sorted(files):
            path = here / name
            if path.is_symlink():
                links.append(path)
            elif name.endswith(".json"):
                results.append(path)
            elif name.endswith(".safetensors"):
                checkpoints.append(path)
    return results, checkpoints, sorted(links)


def validate_store(
    store: str | Path = "results",
    *,
    known: Sequence[KnownBuild] | None = None,
    previous: str | Path | None = None,
) -> StoreReport:
    """``scalebench leaderboard validate``: re-validate every entry and the index of a store.

    Each file must pass every submission check (verified entries allowed), sit at the path its content
    implies, and be listed in ``index.json`` with its sha256; every listed entry must still exist; the store
    holds no symbolic link. With ``previous`` (a ``leaderboard.json`` of an earlier build), every run listed
    there must still be stored with the sha256 recorded there, unless it was upgraded to verified since.
    """
    store = Path(store)
    if not store.is_dir():
        raise ScalebenchError(
            f"Results store {str(store)!r} does not exist; create it with `scalebench submit`."
        )
    results, checkpoints, links = _walk(store)
    problems: list[str] = [
        f"{link} is a symbolic link inside the store; a store holds only real files and folders (replace it by "
        "what it points to, or delete it)."
        for link in links
    ]
    try:
        index = read_index(store)
    except ScalebenchError as err:
        if not (store / INDEX_NAME).is_symlink():
            raise
        problems.append(str(err))
        index = {}
    entries: list[StoredRun] = []
    on_disk: set[str] = set()
    for path in results:
        rel = PurePosixPath(path.relative_to(store).as_posix())
        if (
            str(rel) == INDEX_NAME
            or rel.parts[0] == UNRANKED_DIR
            or any(p.startswith(".") for p in rel.parts)
        ):
            continue
        on_disk.add(str(rel))
        try:
            data = read_results_bytes(path)
            result, expected = validate_submission(data, str(path), known=known, allow_verified=True)
        except ScalebenchError as err:
            problems.append(str(err))
            continue
        if expected != rel:
            problems.append(f"{path}: its content belongs at {store / expected}; move it with `git mv`.")
            continue
        sha = hashlib.sha256(data).hexdigest()
        if str(rel) not in index:
            problems.append(
                f"{path} is not listed in {store / INDEX_NAME}; add runs with `scalebench submit`."
            )
        elif index[str(rel)] != sha:
            problems.append(
                f"{path} changed since it was submitted (sha256 {sha}, index records {index[str(rel)]}); "
                "restore it from git."
            )
        entries.append(StoredRun(rel, result, sha, track_of(result, known)))
    _check_checkpoints(store, checkpoints, index, {str(e.path): e for e in entries}, on_disk, problems)
    for rel in sorted(set(index) - on_disk):
        problems.append(f"{store / rel} is listed in {store / INDEX_NAME} but is gone; restore it from git.")
    if previous is not None:
        _check_previous(store, previous, entries, on_disk, problems)
    return StoreReport(store, entries, problems)


def _is_upgrade_of(result: AnyRunResult, sha256: str) -> bool:
    """``result`` is verified and, with its badge set back to self-reported (no verification record), is byte for
    byte the stored file of sha256 ``sha256`` (the store writes canonical JSON): nothing but the badge changed."""
    if result.evaluated_by != "verified":
        return False
    before = result.model_copy(update={"evaluated_by": "self-reported", "verification": None})
    return _sha256_text(results_to_json(before)) == sha256


def _check_previous(
    store: Path, previous: str | Path, entries: list[StoredRun], on_disk: set[str], problems: list[str]
) -> None:
    """Every run of the previous ``leaderboard.json`` is still stored, byte for byte (the sha256 it records),
    unless the stored copy is the verified upgrade of the run that was self-reported there (identical apart from
    ``evaluated_by`` and ``verification``)."""
    stored = {str(e.path): e for e in entries}
    for rel, run in sorted(_previous_runs(previous).items()):
        if rel not in on_disk:
            problems.append(f"{store / rel} was listed on the previous leaderboard ({previous}) but is gone.")
            continue
        now = stored.get(rel)
        if now is None or run["sha256"] is None or now.sha256 == run["sha256"]:
            continue  # an invalid file is reported already; an old leaderboard.json records no sha256
        if _is_upgrade_of(now.result, run["sha256"]) and run["evaluated_by"] != "verified":
            continue  # the one allowed change: a self-reported run upgraded to verified
        problems.append(
            f"{store / rel} differs from the run the previous leaderboard ({previous}) lists (sha256 {now.sha256}, "
            f"previously {run['sha256']}); a stored run changes only by its upgrade to verified. Restore it from git."
        )


def _check_checkpoints(
    store: Path,
    checkpoints: list[Path],
    index: dict[str, str],
    runs: dict[str, StoredRun],
    on_disk: set[str],
    problems: list[str],
) -> None:
    """Every stored checkpoint sits beside its run, is listed in the index and has the sha256 both record."""
    for path in checkpoints:
        rel = PurePosixPath(path.relative_to(store).as_posix())
        if rel.parts[0] == UNRANKED_DIR or any(p.startswith(".") for p in rel.parts):
            continue
        on_disk.add(str(rel))
        run = runs.get(str(rel.with_suffix(".json")))
        sha = file_digest(path, "sha256")
        if run is None:
            problems.append(f"{path} is a checkpoint without a valid results file beside it.")
        elif sha != run.result.checkpoint_sha256:
            problems.append(
                f"{path} has sha256 {sha}, but its results record {run.result.checkpoint_sha256}; restore it from git."
            )
        elif index.get(str(rel)) != sha:
            problems.append(
                f"{path} is not listed in {store / INDEX_NAME} with its sha256; restore the index from git."
            )


def load_store(
    store: str | Path = "results", *, known: Sequence[KnownBuild] | None = None
) -> list[StoredRun]:
    """Every entry of a valid store; raises with the problems of an invalid one (see :func:`validate_store`)."""
    report = validate_store(store, known=known)
    if report.problems:
        head = "\n  ".join(report.problems[:10])
        more = f"\n  (+{len(report.problems) - 10} more)" if len(report.problems) > 10 else ""
        raise ScalebenchError(
            f"Results store {report.store} has {len(report.problems)} problem(s); fix them first "
            f"(`scalebench leaderboard validate --store {report.store}`):\n  {head}{more}"
        )
    return report.entries


def load_for_plot(
    paths: Sequence[str | Path] = (),
    *,
    store: str | Path | None = None,
    dataset: str | None = None,
    train_scale: float | None = None,
    selection: bool = False,
) -> list[RunResult]:
    """The runs of ``scalebench plot``: the given results files, or every run of ``dataset`` in a validated
    store, where ``dataset`` names a board: ``fashion-mnist`` (the full track) or ``fashion-mnist-lite`` (the
    lite track); ``train_scale`` keeps the runs at that training scale.

    With ``selection`` (for :func:`scalebench.figures.selection.plot_selection`), a store's runs without scale
    selection (the baselines) are left out; given files are returned as they are.
    """
    if paths and store is not None:
        raise ScalebenchError("Give results files or --store, not both.")
    if paths:
        return [load_results(p) for p in paths]
    if store is None:
        raise ScalebenchError("Give results files to plot, or --store DIR --dataset NAME.")
    if dataset is None:
        raise ScalebenchError("--store needs --dataset NAME (one dataset per figure).")
    stored = [r for r in load_store(store) if r.result.task == "classification"]  # not segmentation
    # a valid entry's first path part is its board (entry_path): <dataset>, or <dataset>-<track> off full
    chosen = [
        r.result
        for r in stored
        if r.path.parts[0] == dataset
        and (train_scale is None or same_scale(r.result.dataset.train_scale, train_scale))
        and (not selection or r.result.scale_selection is not None)
    ]
    if not chosen:
        have = sorted({(r.path.parts[0], r.result.dataset.train_scale) for r in stored})
        raise ScalebenchError(
            f"No runs {'with scale selection ' if selection else ''}of dataset {dataset!r}"
            + (f" at training scale {train_scale:g}" if train_scale is not None else "")
            + f" in {store}; the store holds (dataset, training scale): {have or 'nothing'}."
        )
    return chosen  # type: ignore[return-value]
