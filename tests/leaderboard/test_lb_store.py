"""The results store: layout, no overwrite, all-or-nothing batches, index checks, concurrency, verification."""

from __future__ import annotations

import json
import multiprocessing as mp
import stat
from pathlib import Path, PurePosixPath

import pytest
from lb_factories import KNOWN, make_run, run_text, snapshot, write_run
from lb_workers import submit_worker

from scalebench.benchmark.verify import VerifyReport
from scalebench.checks import ScalebenchError
from scalebench.fileio import new_file_mode
from scalebench.leaderboard import read_index, submit, submit_runs, validate_store
from scalebench.leaderboard.store import INDEX_NAME
from scalebench.results import load_results


def test_submit_stores_one_canonical_file_per_run(tmp_path):
    store = tmp_path / "results"
    src = write_run(tmp_path / "in" / "run.json", make_run(seed=2))
    (out,) = submit([src], store, known=KNOWN)
    assert out.status == "added"
    assert out.path.relative_to(store).parts[:2] == ("fashion-mnist", "gaussdernet")
    assert out.path.name == "seed-2.json"
    assert load_results(out.path) == load_results(src)
    index = read_index(store)
    assert list(index) == [out.path.relative_to(store).as_posix()]
    report = validate_store(store, known=KNOWN)
    assert report.ok and len(report.entries) == 1


def test_stored_files_get_the_umask_permissions(tmp_path):
    store = tmp_path / "results"
    (outcome,) = submit_runs([("a.json", run_text(make_run(seed=0)))], store, known=KNOWN)
    for path in (outcome.path, store / INDEX_NAME):
        assert stat.S_IMODE(path.stat().st_mode) == new_file_mode(), path  # mkstemp's 0o600 made them private


def test_duplicate_is_rejected_and_nothing_is_overwritten(tmp_path):
    store = tmp_path / "results"
    submit_runs([("a.json", run_text(make_run(seed=0)))], store, known=KNOWN)
    before = snapshot(store)
    again = make_run(seed=0).model_copy(update={"created_at": "2027-01-01T00:00:00+00:00"})
    with pytest.raises(ScalebenchError, match=r"duplicates the stored run .*seed-0\.json"):
        submit_runs([("b.json", run_text(again))], store, known=KNOWN)
    assert snapshot(store) == before


def test_batch_is_all_or_nothing(tmp_path):
    store = tmp_path / "results"
    submit_runs([("a.json", run_text(make_run(seed=0)))], store, known=KNOWN)
    before = snapshot(store)
    bad = json.loads(run_text(make_run(seed=2)))
    bad["limit"] = 99999
    # a bad file, one run twice, a later duplicate of a stored run: each rejects the new runs of its batch too
    batches = {
        r"bad\.json": [("ok.json", run_text(make_run(seed=1))), ("bad.json", json.dumps(bad))],
        "same run": [("x.json", run_text(make_run(seed=5))), ("y.json", run_text(make_run(seed=5)))],
        "duplicates": [("n.json", run_text(make_run(seed=6))), ("d.json", run_text(make_run(seed=0)))],
    }
    for pattern, batch in batches.items():
        with pytest.raises(ScalebenchError, match=pattern):
            submit_runs(batch, store, known=KNOWN)
        assert snapshot(store) == before


def test_missing_file_and_oversize_file_are_clear_errors(tmp_path):
    with pytest.raises(ScalebenchError, match="does not exist"):
        submit([tmp_path / "nope.json"], tmp_path / "results", known=KNOWN)
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(5 * 1024 * 1024)
    with pytest.raises(ScalebenchError, match="byte limit"):
        submit([big], tmp_path / "results", known=KNOWN)
    assert not (tmp_path / "results").exists()


def _populated(tmp_path: Path) -> Path:
    store = tmp_path / "results"
    submit_runs([(f"s{s}.json", run_text(make_run(seed=s))) for s in range(3)], store, known=KNOWN)
    return store


def test_validate_reports_a_gone_entry(tmp_path):
    store = _populated(tmp_path)
    victim = next(store.rglob("seed-1.json"))
    victim.unlink()
    report = validate_store(store, known=KNOWN)
    assert not report.ok
    assert any("seed-1.json is listed" in p and "is gone" in p for p in report.problems)


def test_validate_reports_changed_unlisted_and_misplaced_files(tmp_path):
    store = _populated(tmp_path)
    entry = next(store.rglob("seed-0.json"))
    entry.write_text(entry.read_text() + "\n")  # same run, different bytes
    folder = entry.parent
    write_run(folder / "seed-7.json", make_run(seed=7))  # not submitted through the store
    write_run(folder / "seed-8.json", make_run(seed=9))  # at the wrong path
    problems = "\n".join(validate_store(store, known=KNOWN).problems)
    assert "seed-0.json changed since it was submitted" in problems
    assert "seed-7.json is not listed" in problems
    assert "seed-8.json: its content belongs at" in problems and "seed-9.json" in problems


def test_validate_skips_the_unranked_folder_only(tmp_path):
    store = _populated(tmp_path)
    write_run(store / "unranked" / "cpu-subset" / "run.json", make_run(seed=7))  # kept, never ranked
    report = validate_store(store, known=KNOWN)
    assert report.ok, report.problems
    assert len(report.entries) == 3
    write_run(store / "elsewhere" / "run.json", make_run(seed=7))  # the same file outside unranked/
    assert any("elsewhere/run.json" in p for p in validate_store(store, known=KNOWN).problems)


def test_validate_reports_an_invalid_entry(tmp_path):
    store = _populated(tmp_path)
    entry = next(store.rglob("seed-2.json"))
    doc = json.loads(entry.read_text())
    doc["summary"]["mean_accuracy"] = 0.99
    entry.write_text(json.dumps(doc))
    assert any("summary.mean_accuracy" in p for p in validate_store(store, known=KNOWN).problems)


def test_validate_against_a_previous_leaderboard(tmp_path):
    from scalebench.leaderboard import build_leaderboard

    store = _populated(tmp_path)
    paths = build_leaderboard(store, tmp_path / "site", known=KNOWN)
    assert validate_store(store, known=KNOWN, previous=paths["json"]).ok
    victim = next(store.rglob("seed-2.json"))
    victim.unlink()
    index = json.loads((store / INDEX_NAME).read_text())
    index["entries"].pop(victim.relative_to(store).as_posix())
    (store / INDEX_NAME).write_text(json.dumps(index))  # hide it from the index too
    assert validate_store(store, known=KNOWN).ok
    problems = validate_store(store, known=KNOWN, previous=paths["json"]).problems
    assert len(problems) == 1 and "previous leaderboard" in problems[0]


def test_corrupt_index_is_a_clear_error(tmp_path):
    store = _populated(tmp_path)
    (store / INDEX_NAME).write_text("{not json")
    with pytest.raises(ScalebenchError, match="not a valid store index"):
        validate_store(store, known=KNOWN)


@pytest.mark.slow
def test_concurrent_submits_lose_nothing(tmp_path):
    store = tmp_path / "results"
    ctx = mp.get_context("spawn")
    n = 4
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            written = pool.starmap(submit_worker, [(str(store), w, barrier) for w in range(n)])
    paths = sorted(p for batch in written for p in batch)
    assert len(paths) == n * 3 == len(set(paths))
    report = validate_store(store, known=KNOWN)
    assert report.ok, report.problems
    assert sorted(str(store / e.path) for e in report.entries) == paths
    assert len(read_index(store)) == n * 3


def _fake_verify(counts_match: bool):
    def verify_run(
        results_path,
        checkpoint,
        *,
        root=None,
        device="auto",
        out=None,
        progress="auto",
        trust_model_code=False,
    ):
        result = load_results(results_path)
        if not counts_match:
            return VerifyReport(Path(results_path), None, ["scale 0.5: recorded 50/100, re-evaluated 49/100"])
        return VerifyReport(
            Path(results_path), result.model_copy(update={"evaluated_by": "verified"}), [], out
        )

    return verify_run


def test_checkpoint_verification_stores_verified_and_upgrades(tmp_path):
    store = tmp_path / "results"
    src = write_run(tmp_path / "run.json", make_run(seed=0))
    submit([src], store, known=KNOWN)
    verify = _fake_verify(True)
    (out,) = submit([src], store, checkpoint=tmp_path / "best.safetensors", verify=verify, known=KNOWN)
    assert out.status == "upgraded"
    assert load_results(out.path).evaluated_by == "verified"
    assert validate_store(store, known=KNOWN).ok
    # a new run verified at submission is stored as verified directly
    src1 = write_run(tmp_path / "run1.json", make_run(seed=1))
    (out1,) = submit([src1], store, checkpoint=tmp_path / "best.safetensors", verify=verify, known=KNOWN)
    assert out1.status == "added" and load_results(out1.path).evaluated_by == "verified"
    # a verified entry is not replaced again
    with pytest.raises(ScalebenchError, match="duplicates"):
        submit([src1], store, checkpoint=tmp_path / "best.safetensors", verify=verify, known=KNOWN)


def test_failed_verification_stores_nothing(tmp_path):
    store = tmp_path / "results"
    src = write_run(tmp_path / "run.json", make_run(seed=0))
    verify = _fake_verify(False)
    with pytest.raises(ScalebenchError, match=r"NOT verified.*49/100"):
        submit([src], store, checkpoint=tmp_path / "best.safetensors", verify=verify, known=KNOWN)
    assert snapshot(store) == {}
    with pytest.raises(ScalebenchError, match="one results file"):
        submit([src, src], store, checkpoint=tmp_path / "best.safetensors", verify=verify, known=KNOWN)
    with pytest.raises(ScalebenchError, match="needs a verifier"):
        submit([src], store, checkpoint=tmp_path / "best.safetensors", known=KNOWN)
    assert snapshot(store) == {}


def test_resubmitting_a_run_whose_file_is_gone_asks_to_restore_it(tmp_path):
    store = _populated(tmp_path)
    next(store.rglob("seed-1.json")).unlink()
    before = snapshot(store)
    with pytest.raises(ScalebenchError, match=r"file is gone; restore it from git"):
        submit_runs([("s1.json", run_text(make_run(seed=1)))], store, known=KNOWN)
    assert snapshot(store) == before


def test_checkpoints_are_stored_beside_their_runs_only_with_the_recorded_sha(tmp_path):
    import hashlib

    from scalebench.leaderboard.store import add_checkpoints, checkpoint_path

    store = tmp_path / "results"
    weights = tmp_path / "best.safetensors"
    weights.write_bytes(b"weights")
    sha = hashlib.sha256(b"weights").hexdigest()
    run = make_run(seed=0).model_copy(update={"checkpoint_sha256": sha})
    (outcome,) = submit_runs([("r", run_text(run))], store, known=KNOWN)
    rel = PurePosixPath(outcome.path.relative_to(store).as_posix())
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"other")
    before = snapshot(store)
    with pytest.raises(ScalebenchError, match="records"):
        add_checkpoints(store, [(rel, other)])
    with pytest.raises(ScalebenchError, match="not in the store"):
        add_checkpoints(store, [(rel.with_name("seed-9.json"), weights)])
    assert snapshot(store) == before
    (written,) = add_checkpoints(store, [(rel, weights)])
    assert written == store / checkpoint_path(rel) and written.read_bytes() == b"weights"
    assert read_index(store)[str(checkpoint_path(rel))] == sha
    assert validate_store(store, known=KNOWN).problems == []
    written.unlink()
    assert any("is listed in" in p for p in validate_store(store, known=KNOWN).problems)
