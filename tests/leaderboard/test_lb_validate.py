"""Submission checks: each rule rejects with a message naming the file, what was found and the fix."""

from __future__ import annotations

import json
import math

import pytest
from lb_factories import KNOWN, MANIFEST, SCALES, VERSION, make_run, run_text

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders import DATASETS, GENERATOR_VERSION
from scalebench.leaderboard import KnownBuild, entry_path, known_builds, run_config_hash, validate_submission
from scalebench.leaderboard.validate import MAX_DEPTH, slug
from scalebench.results import MAX_RESULTS_BYTES, metrics


def _doc(**kwargs) -> dict:
    return json.loads(run_text(make_run(**kwargs)))


def _resummarize(doc: dict) -> dict:
    """Recompute the stated summary so that only the rule under test is broken."""
    rows = doc["per_scale"]
    m = metrics.summarize(
        [r["scale"] for r in rows], [r["accuracy"] for r in rows], doc["dataset"]["train_scale"]
    )
    doc["summary"] = dict(m.__dict__)
    return doc


def _reject(doc_or_text, *match: str) -> str:
    text = doc_or_text if isinstance(doc_or_text, (str, bytes)) else json.dumps(doc_or_text)
    with pytest.raises(ScalebenchError) as info:
        validate_submission(text, "sub.json", known=KNOWN)
    msg = str(info.value)
    assert "sub.json" in msg
    for m in match:
        assert m in msg, msg
    return msg


def test_valid_submission_passes_and_gives_its_store_path():
    run, rel = validate_submission(run_text(make_run(seed=4)), "ok.json", known=KNOWN)
    assert run.seed == 4
    assert rel.parts[:2] == ("fashion-mnist", "gaussdernet")
    assert rel.name == "seed-4.json"
    assert rel.parts[2] == run_config_hash(run) and len(rel.parts[2]) == 16


def test_config_hash_ignores_seed_and_timing_but_not_config():
    a, b = make_run(seed=0), make_run(seed=1)
    assert run_config_hash(a) == run_config_hash(b)
    assert run_config_hash(a) != run_config_hash(make_run(seed=0, width=16))
    assert run_config_hash(a) != run_config_hash(make_run(seed=0, model="cnn"))
    assert entry_path(a).parent == entry_path(b).parent


def test_known_builds_follow_the_dataset_specs():
    from scalebench.datasets_builders import segmentation as seg

    builds = known_builds()
    recorded = {n for n, s in DATASETS.items() if s.known_manifest_sha256}
    assert {b.dataset for b in builds} == recorded | {seg.NAME}
    (segb,) = [b for b in builds if b.dataset == seg.NAME]
    assert segb.manifest_sha256 == seg.KNOWN_MANIFEST_SHA256 and segb.version == seg.GENERATOR_VERSION
    assert segb.accepted_train_sets == ((1.0,), (2.0,), (4.0,), (1.0, 2.0, 3.0, 4.0))
    for b in builds:
        if b.dataset == seg.NAME:
            continue
        spec = DATASETS[b.dataset]
        assert b.version == GENERATOR_VERSION
        pinned = spec.known_lite_manifest_sha256 if b.track == "lite" else spec.known_manifest_sha256
        assert b.manifest_sha256 == pinned and b.board == b.dataset + ("-lite" if b.track == "lite" else "")
        assert b.test_scales == tuple(spec.test_scales)
    lite = [b for b in builds if b.track == "lite"]
    assert {b.dataset for b in lite} == {n for n, s in DATASETS.items() if s.known_lite_manifest_sha256}
    assert "fashion-mnist" in {b.dataset for b in lite}


def test_smoke_run_is_rejected():
    doc = _doc()
    doc["limit"] = 60000  # >= train_size, so the schema accepts it; the leaderboard does not
    _reject(doc, "smoke run", "without --limit")


def test_embedded_subset_is_rejected():
    doc = _doc()
    doc["dataset"]["embedded"] = True
    _reject(doc, "embedded demo subset", "scalebench datasets build")


def test_verified_claim_without_reevaluation_is_rejected():
    _reject(_doc(evaluated_by="verified"), "evaluated_by='verified'", "--checkpoint")


def test_unknown_dataset_version_and_manifest_are_rejected():
    doc = _doc()
    doc["dataset"]["name"] = "cifar10"
    _reject(doc, "'cifar10' has no canonical build", "fashion-mnist")
    doc = _doc()
    doc["dataset"]["version"] = "0.9.0"
    _reject(doc, "version '0.9.0'", VERSION)
    doc = _doc()
    doc["dataset"]["manifest_sha256"] = "f" * 64
    _reject(doc, "f" * 64, MANIFEST, "not a canonical build")


def test_missing_and_extra_scales_are_rejected():
    doc = _doc()
    del doc["per_scale"][0]
    _reject(_resummarize(doc), "missing [0.5]", "extra []")
    doc = _doc()
    doc["per_scale"].append({"scale": 3.0, "correct": 10, "total": 100, "accuracy": 0.1})
    _reject(_resummarize(doc), "missing []", "extra [3]")


def test_other_training_scale_is_rejected():
    doc = _doc()
    doc["dataset"]["train_scale"] = SCALES[-1]
    _reject(_resummarize(doc), "training scale 2")


@pytest.mark.parametrize("name", ["../../etc", "Model", ".hidden", "a/b", "", "x" * 101, "a b", "é"])
def test_model_names_that_cannot_be_folder_names_are_rejected(name):
    doc = _doc()
    doc["model"]["name"] = name
    with pytest.raises(ScalebenchError):
        validate_submission(json.dumps(doc), "sub.json", known=KNOWN)


def test_slug_accepts_registry_style_names():
    for name in ("gaussdernet_fmnist_paper", "njet-resnet32", "cnn.v2", "_tiny"):
        assert slug(name, "model name") == name


def test_schema_errors_name_the_field():
    doc = _doc()
    doc["per_scale"][2]["correct"] = -1
    _reject(doc, "per_scale.2.correct")
    doc = _doc()
    doc["per_scale"][2]["correct"] = 101
    _reject(doc, "exceeds total")
    doc = _doc()
    doc["surprise"] = 1
    _reject(doc, "surprise", "Extra inputs are not permitted")
    doc = _doc()
    doc["summary"]["mean_accuracy"] += 1e-6
    _reject(doc, "summary.mean_accuracy")
    doc = _doc()
    doc["schema_version"] = "2.0"
    _reject(doc, "schema_version '2.0'")
    doc = _doc()  # a smoke run that claims more training images than its limit lets it read
    doc["limit"] = 100
    _reject(doc, "limit 100 but train_size 50000")


def test_non_finite_numbers_are_rejected():
    doc = _doc()
    doc["timings"]["train_seconds"] = math.nan
    _reject(json.dumps(doc), "NaN")
    doc = _doc()
    doc["model"]["config"]["lr"] = math.inf
    _reject(json.dumps(doc), "Infinity")


def test_malformed_json_is_rejected():
    text = run_text(make_run())
    _reject(text[: len(text) // 2], "not valid JSON")
    _reject(b"\xff\xfe" + text.encode(), "not valid JSON")
    _reject("[1, 2]", "JSON object")


def test_duplicate_keys_are_rejected():
    text = run_text(make_run(seed=0))
    _reject(text.replace('"seed": 0,', '"seed": 0, "seed": 7,', 1), "key 'seed' appears twice")


def test_deep_nesting_is_rejected_without_recursion_error():
    doc = _doc()
    doc["model"]["config"]["deep"] = 1
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    _reject(json.dumps(doc).replace('"deep": 1', f'"deep": {deep}'), "levels deep")
    very = "[" * 100_000 + "]" * 100_000
    _reject(json.dumps(doc).replace('"deep": 1', f'"deep": {very}'), "too deep")


def test_oversize_file_is_rejected_before_parsing():
    text = run_text(make_run())
    _reject(text + " " * MAX_RESULTS_BYTES, "byte limit")


def test_empty_known_build_list_says_none_recorded():
    with pytest.raises(ScalebenchError, match="none recorded yet"):
        validate_submission(run_text(make_run()), "sub.json", known=())


def test_known_build_with_other_scales_is_enforced():
    known = (KnownBuild("fashion-mnist", VERSION, MANIFEST, (0.5, 1.0, 2.0), 1.0),)
    with pytest.raises(ScalebenchError, match="extra"):
        validate_submission(run_text(make_run()), "sub.json", known=known)


def test_factory_scales_are_the_canonical_ones():
    from lb_factories import SCALES

    from scalebench.datasets_builders import DEFAULT_TEST_SCALES

    assert SCALES == list(DEFAULT_TEST_SCALES)
