"""Hostile submissions, store tampering, symbolic links and output folders: the probe's tables 3, 3b and 3c.

Every rejection must leave the store byte for byte unchanged (``snapshot`` before and after), and every CLI
error must be one ``Error:`` line with exit code 1 and no traceback. The canonical build of these tests is the
factories' (:data:`KNOWN`) with split sizes, so that the count rules apply: 50,000 / 10,000 training and
validation images, 100 test images per scale.
"""

from __future__ import annotations

import copy
import csv
import errno
import hashlib
import io
import json
import os
import re
import sys
import threading
from pathlib import Path

import pytest
from cli_checks import one_error_line
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "leaderboard"))

from lb_factories import MANIFEST, SCALES, VERSION, make_run, run_text, snapshot

from scalebench.checks import ScalebenchError
from scalebench.cli import main
from scalebench.leaderboard import KnownBuild, build_leaderboard, submit, submit_runs, validate_store
from scalebench.leaderboard.escape import csv_safe, md_cell
from scalebench.leaderboard.render import SITE_MARKER
from scalebench.leaderboard.segmentation import segmentation_csv, segmentation_markdown
from scalebench.leaderboard.store import INDEX_NAME, LOCK_NAME, read_index
from scalebench.results import MAX_RESULTS_BYTES, metrics

KNOWN = (
    KnownBuild("fashion-mnist", VERSION, MANIFEST, tuple(SCALES), 1.0, train_size=50000, val_size=10000,
               test_size=100),
)  # fmt: skip
BASE = json.loads(run_text(make_run(seed=0, selection=True)))


def doc(seed: int = 0, **top) -> dict:
    """A fresh copy of the valid base document (with scale selection), with a seed and top-level changes."""
    d = copy.deepcopy(BASE)
    d["seed"] = seed
    d.update(top)
    return d


def resummarize(d: dict) -> dict:
    """Recompute the summary from the per-scale counts, so that the rule under test, not a stale summary,
    must catch the change."""
    rows = d["per_scale"]
    for r in rows:
        r["accuracy"] = r["correct"] / r["total"]
    m = metrics.summarize(
        [r["scale"] for r in rows], [r["accuracy"] for r in rows], d["dataset"]["train_scale"]
    )
    d["summary"] = dict(m.__dict__)
    return d


def rejected(
    store: Path, payload: str | bytes | dict, match: str | None = None, *, names_file: bool = True
) -> str:
    """Submit ``payload`` as ``hostile.json``: it must fail with one message (naming the file, unless the store
    itself is at fault: ``names_file=False``), the store unchanged."""
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    before = snapshot(store)
    with pytest.raises(ScalebenchError) as info:
        submit_runs([("hostile.json", payload)], store, known=KNOWN)
    message = str(info.value)
    assert "hostile.json" in message or not names_file, message
    if match is not None:
        assert match in message, message
    assert snapshot(store) == before
    return message


def accepted(store: Path, payload: dict) -> Path:
    (out,) = submit_runs([("ok.json", json.dumps(payload))], store, known=KNOWN)
    assert out.status == "added"
    return out.path


@pytest.fixture
def store(tmp_path) -> Path:
    """A store holding the base run (seed 0)."""
    path = tmp_path / "results"
    accepted(path, doc(0))
    return path


# --- 3. Submit ---------------------------------------------------------------------------------------------


@pytest.mark.case("S1")
def test_s1_smoke_run_is_rejected_and_no_store_is_created(tmp_path):
    d = doc(1, limit=60000)
    rejected(tmp_path / "new", d, "smoke run")
    assert not (tmp_path / "new").exists()


@pytest.mark.case("S2", "S3", "N9")
def test_s2_s3_self_reported_run_is_added_once(store):
    """A schema-valid claim on the canonical build is accepted as self-reported (N9, by design); the same run
    again is a duplicate."""
    report = validate_store(store, known=KNOWN)
    assert report.ok and [e.result.evaluated_by for e in report.entries] == ["self-reported"]
    rejected(store, doc(0), "duplicates the stored run")


@pytest.mark.case("S4")
@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.replace('"correct": 50', '"correct": NaN', 1),
        lambda t: t.replace('"correct": 50', '"correct": Infinity', 1),
        lambda t: t.replace('"correct": 50', '"correct": "NaN"', 1),
        lambda t: t.replace('"widths": [', '"widths": [NaN, ', 1),
        lambda t: t.replace('"accuracy": 0.5', '"accuracy": 1e999', 1),
    ],
)
def test_s4_non_finite_numbers(store, mutate):
    text = json.dumps(doc(1), indent=2)
    assert mutate(text) != text
    rejected(store, mutate(text))


@pytest.mark.case("S5")
@pytest.mark.parametrize("row", [{"correct": 101}, {"correct": -1}, {"total": 0, "correct": 0}])
def test_s5_counts_out_of_range(store, row):
    d = doc(1)
    d["per_scale"][0].update(row)
    rejected(store, d)


@pytest.mark.case("S6", "D3")
@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("per_scale", 0, "correct"), "50"),
        (("per_scale", 0, "correct"), 50.0),
        (("per_scale", 0, "correct"), True),
        (("per_scale", 0, "total"), "100"),
        (("dataset", "train_size"), 50000.0),
        (("dataset", "embedded"), 0),
        (("environment", "amp"), "false"),
        (("per_scale", 0, "accuracy"), "0.5"),
        (("per_scale", 0, "scale"), True),
    ],
)
def test_s6_wrong_types_are_never_coerced(store, path, value):
    d = doc(1)
    target = d
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    rejected(store, d, ".".join(str(p) for p in path))


@pytest.mark.case("S6", "D3")
def test_s6_integers_stay_valid_numbers(store):
    """Strictness keeps JSON's number rules: an integer is a valid number (scale 1, accuracy 0 or 1)."""
    d = doc(1)
    d["dataset"]["train_scale"] = 1
    d["per_scale"][4]["scale"] = 1
    d["timings"]["train_seconds"] = 1
    accepted(store, d)


@pytest.mark.case("S7", "D3")
@pytest.mark.parametrize("row", [{"total": 10**30}, {"correct": 1, "total": 1}, {"total": 99, "correct": 50}])
def test_s7_totals_must_be_the_canonical_test_size(store, row):
    d = doc(1)
    d["per_scale"][0].update(row)
    d["scale_selection"] = None
    rejected(store, resummarize(d), "test images per scale")


@pytest.mark.case("D3")
@pytest.mark.parametrize(("field", "value"), [("train_size", 49999), ("val_size", 1), ("train_size", 10**12)])
def test_split_sizes_must_be_the_canonical_build(store, field, value):
    d = doc(1)
    d["dataset"][field] = value
    rejected(store, d, f"dataset.{field}")


@pytest.mark.case("D3")
def test_selection_counts_must_sum_to_the_total(store):
    d = doc(1)
    sel = d["scale_selection"]
    sel["counts"][0][0] += 10**6
    sel["spearman_rho"] = metrics.selection_spearman(sel["test_scales"], sel["channel_sigmas"], sel["counts"])
    sel["slope_per_octave"] = metrics.selection_slope(sel["test_scales"], sel["counts"])
    rejected(store, d, "scale_selection.counts")


@pytest.mark.case("S8")
def test_s8_missing_or_repeated_scale(store):
    d = doc(1)
    d["per_scale"] = d["per_scale"][1:]
    d["scale_selection"] = None
    rejected(store, resummarize(d), "missing [0.5]")
    d = doc(1)
    d["per_scale"][1] = dict(d["per_scale"][2])
    rejected(store, d, "sorted")


@pytest.mark.case("S9")
def test_s9_unknown_fields(store):
    rejected(store, doc(1, foo=1), "Extra inputs")
    d = doc(1)
    d["per_scale"][0]["foo"] = 1
    rejected(store, d, "Extra inputs")


@pytest.mark.case("S10", "D3")
@pytest.mark.parametrize(
    ("where", "key", "value", "match"),
    [
        ("config", "foo", "bar", "Unknown config key 'foo'"),
        ("config", "widths", "abc", "model.config"),
        ("config", "widths", [-8, 8], "model.config"),
        ("recipe", "optimizer", "<script>alert(1)</script>", "training.recipe"),
        ("recipe", "eval_batch_size", 0, "training.recipe"),
        ("recipe", "micro_batch_size", -5, "training.recipe"),
        ("recipe", "epochs", "6", "training.recipe"),
        ("recipe", "foo", 1, "training.recipe"),
    ],
)
def test_s10_config_and_recipe_follow_the_rules_of_evaluate(store, where, key, value, match):
    d = doc(1)
    (d["model"] if where == "config" else d["training"])[where][key] = value
    rejected(store, d, match)


@pytest.mark.case("S10", "D3")
def test_s10_config_value_outside_the_builders_choices(store):
    d = doc(1)
    d["model"]["name"] = "cnn"
    d["model"]["config"]["global_pool"] = "<script>alert(1)</script>"
    d["scale_selection"] = None
    rejected(store, d, "global_pool")


@pytest.mark.case("S11")
@pytest.mark.parametrize("name", ["../../etc", "a/b", "CNN", ".hidden", "c" * 101, "cnnı", "cnn\n", ""])
def test_s11_model_names_that_cannot_name_a_folder(store, name):
    d = doc(1)
    d["model"]["name"] = name
    rejected(store, d)


@pytest.mark.case("S12", "D3")
def test_s12_unregistered_model(store):
    d = doc(1)
    d["model"]["name"] = "notamodel"
    rejected(store, d, "not registered")
    d["model"]["name"] = "unet"  # registered, but a segmentation model
    rejected(store, d, "segmentation model")


@pytest.mark.case("S13", "D3")
@pytest.mark.parametrize("seed", ["../../etc", -1, "7", True, 7.0, 10**40, 2**31])
def test_s13_seeds_are_integers_in_range(store, seed):
    rejected(store, doc(seed))


@pytest.mark.case("S13")
def test_s13_the_largest_seed_is_accepted(store):
    assert accepted(store, doc(2**31 - 1)).name == f"seed-{2**31 - 1}.json"


@pytest.mark.case("S14")
def test_s14_dataset_name_and_config_hash(store):
    d = doc(1)
    d["dataset"]["name"] = "../../etc"
    rejected(store, d)
    d = doc(1)
    d["model"]["config_hash"] = "../../etc"
    rejected(store, d, "config_hash")


@pytest.mark.case("S15", "D7")
@pytest.mark.parametrize(
    "build_id",
    ["../../etc/<script>alert(1)</script>", '=HYPERLINK("x")', "fashion-mnist-limit500", "FASHION-MNIST"],
)
def test_s15_build_id_must_be_the_canonical_builds(store, build_id):
    d = doc(1)
    d["dataset"]["build_id"] = build_id
    rejected(store, d, "is not the id of the canonical build")


@pytest.mark.case("S16")
def test_s16_summaries_within_tolerance_only(store):
    d = doc(1)
    d["summary"]["mean_accuracy"] += 0.01
    rejected(store, d, "summary.mean_accuracy")
    d = doc(1)
    d["summary"]["mean_accuracy"] += 1e-12
    accepted(store, d)


@pytest.mark.case("S17")
@pytest.mark.parametrize("claim", ["verified", "Verified"])
def test_s17_verified_claim(store, claim):
    rejected(store, doc(1, evaluated_by=claim))


@pytest.mark.case("S18")
def test_s18_version_task_manifest_and_training_scale(store):
    rejected(store, doc(1, schema_version="2.0"), "schema_version")
    rejected(store, doc(1, task="segmentation"))
    d = doc(1)
    d["dataset"]["manifest_sha256"] = "f" * 64
    rejected(store, d, "not a canonical build")
    d = doc(1)
    d["dataset"]["train_scale"] = 2.0
    rejected(store, resummarize(d), "training scale 2")


@pytest.mark.case("S19")
def test_s19_malformed_json(store):
    text = json.dumps(doc(1))
    rejected(store, text.replace('"seed": 1', '"seed": 1, "seed": 2', 1), "appears twice")
    rejected(store, "[1, 2]", "JSON object")
    rejected(store, "", "not valid JSON")
    rejected(store, b"\xff\xfe{}", "not valid JSON")


@pytest.mark.case("S20")
def test_s20_nesting(store):
    text = json.dumps(doc(1))
    for depth in (10_000, 200_000):
        rejected(store, "[" * depth + "]" * depth, "deep")
    assert '"widths": [8, 8, 8, 8]' in text
    rejected(store, text.replace('"widths": [8, 8, 8, 8]', '"widths": ' + "[" * 40 + "8" + "]" * 40), "deep")
    d = doc(1)
    nest: dict = {}
    d["model"]["card"]["deep"] = nest
    for _ in range(20):  # about 24 levels in all: below the limit of 32, accepted
        nest["x"] = {}
        nest = nest["x"]
    accepted(store, d)


@pytest.mark.case("S21", "N10")
def test_s21_size_limit_is_checked_before_reading(store, tmp_path):
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(MAX_RESULTS_BYTES + 1)  # sparse: never read
    before = snapshot(store)
    line = one_error_line(CliRunner().invoke(main, ["submit", str(big), "--store", str(store)]))
    assert "4194304-byte limit" in line and snapshot(store) == before
    d = doc(1)
    d["model"]["card"]["padding"] = "x" * (MAX_RESULTS_BYTES - 30_000)  # just below: accepted (N10)
    accepted(store, d)


@pytest.mark.case("S22")
def test_s22_batches_are_all_or_nothing(store):
    before = snapshot(store)
    for batch in (
        [("a.json", json.dumps(doc(5))), ("b.json", json.dumps(doc(5)))],
        [("a.json", json.dumps(doc(5))), ("b.json", json.dumps(doc(6))), ("c.json", '{"seed": NaN}')],
        [("a.json", json.dumps(doc(5))), ("b.json", json.dumps(doc(6))), ("c.json", json.dumps(doc(0)))],
    ):
        with pytest.raises(ScalebenchError):
            submit_runs(batch, store, known=KNOWN)
        assert snapshot(store) == before


@pytest.mark.case("S23", "S24")
def test_s23_s24_concurrent_submits_lose_nothing_and_add_a_run_once(tmp_path):
    store = tmp_path / "results"
    errors: list[Exception] = []

    def go(payload: str) -> None:
        try:
            submit_runs([("t.json", payload)], store, known=KNOWN)
        except ScalebenchError as err:
            errors.append(err)

    for payloads in ([json.dumps(doc(s)) for s in range(8)], [json.dumps(doc(100))] * 8):
        threads = [threading.Thread(target=go, args=(p,)) for p in payloads]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert len(errors) == 7 and all("duplicates the stored run" in str(e) for e in errors)
    assert len(read_index(store)) == 9 and validate_store(store, known=KNOWN).ok


HOSTILE = "<script>alert(1)</script>|[x](javascript:alert(2))\n=HYPERLINK(1)"


@pytest.mark.case("S25", "D7", "N11")
def test_s25_hostile_text_is_escaped_in_every_output(tmp_path):
    store = tmp_path / "results"
    items = []
    for s in range(3):
        d = doc(s)
        d["model"]["card"].update(
            display_name=HOSTILE, paper=HOSTILE, arxiv="x)<b>", code_url="javascript:alert(3)"
        )
        d["created_at"] = "<script>x</script>" + HOSTILE
        d["environment"]["device_name"] = HOSTILE
        items.append((f"h{s}.json", json.dumps(d)))
    submit_runs(items, store, known=KNOWN)
    paths = build_leaderboard(store, tmp_path / "site", known=KNOWN)
    html = [paths["html"].read_text(), *(p.read_text() for p in paths["entries"].rglob("*.html"))]
    assert all("<script>alert" not in h and 'href="javascript' not in h and "<b>" not in h for h in html)
    assert "default-src 'none'" in html[0]
    md = paths["markdown"].read_text()
    assert "<script" not in md and not re.search(r"(?<!\\)\]\(javascript:", md) and "<b>" not in md
    assert md_cell(HOSTILE) in md  # the display name, escaped, on one line
    for row in list(csv.reader(io.StringIO(paths["csv"].read_text())))[1:]:
        assert all(not cell.startswith(("=", "+", "@", "\t", "\r")) for cell in row), row


@pytest.mark.case("S26", "D7")
def test_s26_segmentation_tables_escape_the_build_id():
    """Loose files (``leaderboard segmentation``) are not submission-checked: the writers escape."""
    row = {
        "train_scales": "1", "build_id": '=HYPERLINK("http://x.invalid","a")<script>alert(9)</script>|x',
        "model": "unet", "config_hash": "0" * 16, "seeds": 1, "seed_list": [0], "epochs": 1, "num_params": 1,
        "receptive_field": [10], "per_scale": {1.0: (0.5, 0.0)}, "mean_miou": 0.5, "mean_miou_std": 0.0,
        "sigmas": [], "status": "self-reported", "runs": [{"seed": 0, "path": "p.json"}],
    }  # fmt: skip
    for level, runs_dir in ((1, None), (2, "runs")):
        md = segmentation_markdown([row], level=level, runs_dir=runs_dir)
        assert "alert(9)" in md and "<script>" not in md and "\\|x" in md
    cells = list(csv.reader(io.StringIO(segmentation_csv([row]))))[1]
    assert cells[1].startswith("'=HYPERLINK") and all(not c.startswith(("=", "+", "@")) for c in cells)


@pytest.mark.case("D7")
def test_escape_functions():
    assert md_cell("a_b*c`d[e](f)|g\nh<i>&") == "a\\_b\\*c\\`d\\[e\\](f)\\|g h&lt;i&gt;&amp;"
    assert csv_safe("-0.25") == "-0.25" and csv_safe("-1+1") == "'-1+1" and csv_safe("@x") == "'@x"
    assert csv_safe("\t=1") == "'\t=1" and csv_safe("1e-3") == "1e-3"


@pytest.mark.case("S27")
def test_s27_rejected_file_creates_no_store(tmp_path):
    rejected(tmp_path / "newstore", doc(1, evaluated_by="verified"))
    assert not (tmp_path / "newstore").exists()


@pytest.mark.case("S28", "D11")
def test_s28_disk_full_during_submit_is_one_line_and_rolled_back(store, tmp_path, monkeypatch):
    import scalebench.leaderboard.store as store_module

    real, calls = store_module._write_new, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(args[0] / args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module, "_write_new", failing)
    files = [tmp_path / "a.json", tmp_path / "b.json"]
    for f, s in zip(files, (3, 4), strict=True):
        f.write_text(json.dumps(doc(s)))
    monkeypatch.setattr("scalebench.leaderboard.validate.known_builds", lambda: KNOWN)
    before = snapshot(store)
    result = CliRunner().invoke(main, ["submit", *map(str, files), "--store", str(store)])
    line = one_error_line(result)
    assert "No space left on device (ENOSPC)" in line and str(store) in line
    assert snapshot(store) == before and validate_store(store, known=KNOWN).ok


@pytest.mark.case("S29")
def test_s29_checkpoint_verification_without_the_build(tmp_path):
    import torch
    from safetensors.torch import save_file

    from scalebench.benchmark.verify import verify_run
    from scalebench.models import create_model

    d = doc(1)
    d["model"]["name"] = "cnn"
    d["scale_selection"] = None
    torch.manual_seed(0)
    model = create_model("cnn", num_classes=10, in_channels=1, **d["model"]["config"])
    ckpt = tmp_path / "best.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt))
    d["checkpoint_sha256"] = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    run = tmp_path / "run.json"
    run.write_text(json.dumps(d))
    store = tmp_path / "results"
    with pytest.raises(ScalebenchError, match="has not been built"):
        submit(
            [run],
            store,
            checkpoint=ckpt,
            verify=verify_run,
            root=tmp_path / "home",
            device="cpu",
            known=KNOWN,
        )
    assert not store.exists()


# --- 3b. Store tampering ---------------------------------------------------------------------------------


def _store3(tmp_path: Path) -> tuple[Path, Path]:
    """A store of seeds 1-3 and the leaderboard.json of its build."""
    store = tmp_path / "st"
    submit_runs([(f"s{s}.json", json.dumps(doc(s))) for s in (1, 2, 3)], store, known=KNOWN)
    site = build_leaderboard(store, tmp_path / "prev", known=KNOWN)
    return store, site["json"]


def _edit_consistently(store: Path, rel: str, *, update_index: bool) -> None:
    """Raise the scale-0.5 count of a stored run and recompute its summary (a schema-valid silent edit)."""
    path = store / rel
    d = json.loads(path.read_text())
    d["per_scale"][0]["correct"] = 99
    d["scale_selection"] = None
    path.write_text(json.dumps(resummarize(d), indent=2, sort_keys=True) + "\n")
    if update_index:
        index = json.loads((store / INDEX_NAME).read_text())
        index["entries"][rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        (store / INDEX_NAME).write_text(json.dumps(index))


def _entry_rel(store: Path, seed: int) -> str:
    return next(k for k in read_index(store) if k.endswith(f"seed-{seed}.json"))


@pytest.mark.case("T1")
def test_t1_edited_entry(tmp_path):
    store, _ = _store3(tmp_path)
    _edit_consistently(store, _entry_rel(store, 1), update_index=False)
    report = validate_store(store, known=KNOWN)
    assert any("changed since it was submitted" in p for p in report.problems)
    with pytest.raises(ScalebenchError, match="problem"):
        build_leaderboard(store, tmp_path / "site2", known=KNOWN)
    rejected(store, doc(1), "duplicates")


@pytest.mark.case("T2", "T2b", "D2")
def test_t2_edit_with_index_update_is_caught_by_previous(tmp_path):
    store, previous = _store3(tmp_path)
    rel = _entry_rel(store, 1)
    _edit_consistently(store, rel, update_index=True)
    assert validate_store(store, known=KNOWN).ok  # T2: the store alone cannot tell (documented)
    problems = validate_store(store, known=KNOWN, previous=previous).problems
    assert (
        len(problems) == 1
        and "differs from the run the previous leaderboard" in problems[0]
        and rel in problems[0]
    )
    line = one_error_line(CliRunner().invoke(main, ["leaderboard", "validate", "--store", str(store), "--previous",
                                                     str(tmp_path / "missing.json")]))  # fmt: skip
    assert "missing.json" in line


@pytest.mark.case("D2")
def test_previous_allows_only_the_upgrade_to_verified(tmp_path):
    store, previous = _store3(tmp_path)
    rel = _entry_rel(store, 2)
    base = json.loads((store / rel).read_text())
    vdoc = dict(base, evaluated_by="verified")
    (store / rel).write_text(json.dumps(vdoc, indent=2, sort_keys=True) + "\n")
    index = json.loads((store / INDEX_NAME).read_text())
    index["entries"][rel] = hashlib.sha256((store / rel).read_bytes()).hexdigest()
    (store / INDEX_NAME).write_text(json.dumps(index))
    assert validate_store(store, known=KNOWN, previous=previous).ok  # self-reported -> verified: allowed
    newer = build_leaderboard(store, tmp_path / "prev2", known=KNOWN)["json"]
    _edit_consistently(store, rel, update_index=True)  # a verified run edited afterwards: caught
    assert any("differs" in p for p in validate_store(store, known=KNOWN, previous=newer).problems)
    edited = json.loads((store / rel).read_text())  # marked verified *and* edited: not an upgrade
    assert edited["evaluated_by"] == "verified" and edited["per_scale"][0]["correct"] == 99
    assert any("differs" in p for p in validate_store(store, known=KNOWN, previous=previous).problems)


@pytest.mark.case("T3", "T8")
def test_t3_t8_removed_or_unranked_entries_are_caught_with_previous(tmp_path):
    store, previous = _store3(tmp_path)
    for how in ("delete", "unrank"):
        rel = _entry_rel(store, 1 if how == "delete" else 2)
        if how == "delete":
            (store / rel).unlink()
        else:
            (store / "unranked").mkdir(exist_ok=True)
            os.replace(store / rel, store / "unranked" / "moved.json")
        index = json.loads((store / INDEX_NAME).read_text())
        del index["entries"][rel]
        (store / INDEX_NAME).write_text(json.dumps(index))
        assert validate_store(store, known=KNOWN).ok  # documented: needs --previous
        problems = validate_store(store, known=KNOWN, previous=previous).problems
        assert any("was listed on the previous leaderboard" in p and rel in p for p in problems)


@pytest.mark.case("T4", "T6", "T7")
def test_t4_t6_t7_renamed_copied_and_invented_entries(tmp_path):
    store, _ = _store3(tmp_path)
    rel = _entry_rel(store, 3)
    os.replace(store / rel, store / rel.replace("seed-3", "seed-33"))
    problems = validate_store(store, known=KNOWN).problems
    assert any("belongs at" in p for p in problems) and any("but is gone" in p for p in problems)
    store, _ = _store3(tmp_path / "b")
    rel = _entry_rel(store, 1)
    (store / rel.replace("seed-1", "seed-99")).write_bytes((store / rel).read_bytes())
    assert any("belongs at" in p for p in validate_store(store, known=KNOWN).problems)
    index = json.loads((store / INDEX_NAME).read_text())
    index["entries"]["../../../etc/passwd"] = "0" * 64
    (store / INDEX_NAME).write_text(json.dumps(index))
    assert any(
        "etc/passwd is listed" in p and "but is gone" in p
        for p in validate_store(store, known=KNOWN).problems
    )


@pytest.mark.case("T5")
def test_t5_truncated_index(tmp_path):
    store, _ = _store3(tmp_path)
    text = (store / INDEX_NAME).read_text()
    (store / INDEX_NAME).write_text(text[: len(text) // 2])
    with pytest.raises(ScalebenchError, match="not a valid store index"):
        validate_store(store, known=KNOWN)
    rejected(store, doc(7), "not a valid store index", names_file=False)


@pytest.mark.case("T9", "N9")
def test_t9_a_hand_added_verified_entry_passes_validation(tmp_path):
    """Documented limitation (N9): the store cannot re-check a verified claim that a pull request adds."""
    store, previous = _store3(tmp_path)
    submit_runs([("v.json", make_run(seed=4, evaluated_by="verified", selection=True))], store, known=KNOWN,
                verified=True)  # fmt: skip
    assert validate_store(store, known=KNOWN, previous=previous).ok
    entry = json.loads(build_leaderboard(store, tmp_path / "s", known=KNOWN)["json"].read_text())["entries"][
        0
    ]
    assert entry["status"] == "partly verified"


# --- 3c. Symbolic links and output folders --------------------------------------------------------------


@pytest.mark.case("L1", "D4")
def test_l1_symlinked_folder_in_the_store(tmp_path):
    store, outside = tmp_path / "stL1", tmp_path / "outside"
    store.mkdir()
    outside.mkdir()
    (store / "fashion-mnist").symlink_to(outside)
    rejected(store, doc(0), "symbolic link", names_file=False)
    assert not any(outside.iterdir())
    problems = validate_store(store, known=KNOWN).problems
    assert len(problems) == 1 and "fashion-mnist is a symbolic link" in problems[0]
    result = CliRunner().invoke(
        main, ["leaderboard", "build", "--store", str(store), "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output and "symbolic link" in result.output
    assert result.output.startswith("Error: Results store") and not (tmp_path / "s").exists()


@pytest.mark.case("L1", "D4")
def test_symlink_deeper_in_the_store_or_as_an_entry(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    rel = _entry_rel(store, 0)
    model_dir = (store / rel).parents[1]
    os.replace(model_dir, tmp_path / "moved")
    model_dir.symlink_to(tmp_path / "moved")
    rejected(store, doc(1), "symbolic link", names_file=False)
    assert any("is a symbolic link" in p for p in validate_store(store, known=KNOWN).problems)
    os.unlink(model_dir)
    os.replace(tmp_path / "moved", model_dir)
    real = store / rel
    os.replace(real, outside / "seed-0.json")
    real.symlink_to(outside / "seed-0.json")  # the entry itself is a link: it is reported, never read
    assert any("seed-0.json is a symbolic link" in p for p in validate_store(store, known=KNOWN).problems)
    rejected(store, doc(0), "symbolic link", names_file=False)


@pytest.mark.case("L2", "D4")
def test_l2_symlinked_index(store, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text((store / INDEX_NAME).read_text())
    (store / INDEX_NAME).unlink()
    (store / INDEX_NAME).symlink_to(outside)
    kept = outside.read_bytes()
    rejected(store, doc(1), "symbolic link", names_file=False)
    assert outside.read_bytes() == kept and (store / INDEX_NAME).is_symlink()
    assert any("index.json is a symbolic link" in p for p in validate_store(store, known=KNOWN).problems)


@pytest.mark.case("L3", "N13", "D4")
def test_l3_symlinked_lock(store, tmp_path):
    target = tmp_path / "nowhere" / "..lockfile"
    (tmp_path / "nowhere").mkdir()
    (store / LOCK_NAME).unlink()
    (store / LOCK_NAME).symlink_to(target)
    rejected(store, doc(1), "symbolic link", names_file=False)
    assert not target.exists()
    assert any(".lock is a symbolic link" in p for p in validate_store(store, known=KNOWN).problems)


@pytest.mark.case("L4", "D4")
def test_l4_symlink_loops_finish_and_are_reported(store):
    (store / "fashion-mnist" / "loop").symlink_to("..")
    (store / "loopa").symlink_to("loopb")
    (store / "loopb").symlink_to("loopa")
    problems = validate_store(store, known=KNOWN).problems
    assert len(problems) == 3 and all("symbolic link" in p for p in problems)


@pytest.mark.case("L5", "D1")
def test_l5_build_never_deletes_a_folder_it_did_not_write(store, tmp_path):
    outputs = tmp_path / "outputs"
    (outputs / "runs" / "cnn__x").mkdir(parents=True)
    (outputs / "runs" / "cnn__x" / "results.json").write_text("{}")
    before = snapshot(outputs)
    line = one_error_line(CliRunner().invoke(main, ["leaderboard", "build", "--store", str(store), "--out",
                                                     str(outputs)]))  # fmt: skip
    assert "not an earlier leaderboard site" in line and snapshot(outputs) == before


@pytest.mark.case("D1", "D4")
def test_site_output_with_links_is_refused(store, tmp_path):
    site = tmp_path / "site"
    build_leaderboard(store, site, known=KNOWN)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("keep")
    (site / "runs" / "mine").symlink_to(precious)
    with pytest.raises(ScalebenchError, match="symbolic link"):
        build_leaderboard(store, site, known=KNOWN)
    assert (precious / "keep.txt").read_text() == "keep" and (site / "runs" / "mine").is_symlink()
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.txt").write_text("x")
    (other / SITE_MARKER).symlink_to(tmp_path / "some-file")
    (tmp_path / "some-file").write_text("")
    with pytest.raises(ScalebenchError):  # a link named like the marker does not make a site
        build_leaderboard(store, other, known=KNOWN)
    assert (other / "data.txt").read_text() == "x"
    link = tmp_path / "link-site"
    link.symlink_to(site)
    with pytest.raises(ScalebenchError, match="symbolic link"):
        build_leaderboard(store, link, known=KNOWN)


# --- CLI -----------------------------------------------------------------------------------------------------


@pytest.mark.case("D11", "N1")
def test_os_errors_reach_the_cli_as_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("scalebench.leaderboard.validate.known_builds", lambda: KNOWN)
    run = tmp_path / "run.json"
    run.write_text(json.dumps(doc(1)))
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    line = one_error_line(CliRunner().invoke(main, ["submit", str(run), "--store", str(blocker / "store")]))
    assert str(blocker) in line and "Not a directory (ENOTDIR)" in line
    import scalebench.cli as cli

    assert "1 for every error" in cli.__doc__ and "exit code 2 and no traceback" not in cli.__doc__
