"""Property test: hostile submissions are never accepted, and every rejection leaves the store unchanged.

Each example starts from a valid run and breaks it in one of many ways (schema, numbers, leaderboard
rules, JSON syntax, size, duplicates, path injection). Summaries are recomputed after the mutations that
should trip a leaderboard rule, so that the rule itself, not a summary mismatch, must catch them.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lb_factories import KNOWN, MANIFEST, SCALES, VERSION, make_run, run_text, snapshot

from scalebench.checks import ScalebenchError
from scalebench.leaderboard import submit_runs
from scalebench.leaderboard.validate import SLUG_PATTERN
from scalebench.results import MAX_RESULTS_BYTES, metrics

BASE = json.loads(run_text(make_run(seed=0, selection=True)))


def _copy() -> dict:
    return json.loads(json.dumps(BASE))


def _resummarize(doc: dict) -> dict:
    rows = doc["per_scale"]
    try:
        m = metrics.summarize(
            [r["scale"] for r in rows], [r["accuracy"] for r in rows], doc["dataset"]["train_scale"]
        )
        doc["summary"] = dict(m.__dict__)
    except Exception:  # the mutation broke the counts themselves: keep the stale summary
        pass
    return doc


def _numeric_paths(value, path=()):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _numeric_paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numeric_paths(v, (*path, i))


def _dict_paths(value, path=()):
    if isinstance(value, dict):
        yield path
        for k, v in value.items():
            yield from _dict_paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _dict_paths(v, (*path, i))


NUMERIC = list(_numeric_paths(BASE))
DICTS = list(_dict_paths(BASE))
# free-form dicts accept any key; an unknown key must go into a schema-checked object
STRICT_DICTS = [p for p in DICTS if not ({"config", "card", "recipe"} & {x for x in p if isinstance(x, str)})]


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def _set(doc, path, value):
    _get(doc, path[:-1])[path[-1]] = value


@st.composite
def hostile(draw) -> str | bytes:
    kind = draw(st.sampled_from(KINDS))
    event(kind)
    doc = _copy()
    if kind == "non_finite":
        _set(doc, draw(st.sampled_from(NUMERIC)), draw(st.sampled_from([math.nan, math.inf, -math.inf])))
        return json.dumps(doc)
    if kind == "negative_count":
        i = draw(st.integers(0, len(SCALES) - 1))
        doc["per_scale"][i]["correct"] = draw(st.integers(-(10**12), -1))
        return json.dumps(doc)
    if kind == "count_above_total":
        i = draw(st.integers(0, len(SCALES) - 1))
        row = doc["per_scale"][i]
        row["correct"] = row["total"] + draw(st.integers(1, 10**6))
        row["accuracy"] = draw(st.sampled_from([1.0, row["correct"] / row["total"]]))
        return json.dumps(_resummarize(doc))
    if kind == "negative_selection_count":
        i, j = draw(st.integers(0, len(SCALES) - 1)), draw(st.integers(0, 4))
        doc["scale_selection"]["counts"][i][j] = draw(st.integers(-(10**6), -1))
        return json.dumps(doc)
    if kind == "unknown_field":
        where = draw(st.sampled_from(STRICT_DICTS))
        target = _get(doc, where)
        name = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in target))
        target[name] = draw(st.one_of(st.integers(), st.text(max_size=5), st.none()))
        return json.dumps(doc)
    if kind == "wrong_summary":
        field = draw(
            st.sampled_from(
                ["train_scale_accuracy", "mean_accuracy", "worst_accuracy", "generalisation_ratio"]
            )
        )
        delta = draw(st.floats(1e-7, 0.5)) * draw(st.sampled_from([-1, 1]))
        doc["summary"][field] = doc["summary"][field] + delta
        return json.dumps(doc)
    if kind == "wrong_accuracy":
        i = draw(st.integers(0, len(SCALES) - 1))
        row = doc["per_scale"][i]
        row["accuracy"] = min(1.0, max(0.0, row["accuracy"] + draw(st.sampled_from([-0.01, 0.01, 1e-6]))))
        return json.dumps(_resummarize(doc))
    if kind == "wrong_rho":
        doc["scale_selection"]["spearman_rho"] = draw(
            st.floats(-1, 1).filter(lambda r: abs(r - BASE["scale_selection"]["spearman_rho"]) > 1e-6)
        )
        return json.dumps(doc)
    if kind == "smoke_run":
        doc["limit"] = draw(st.integers(1, 10**9))
        return json.dumps(doc)
    if kind == "embedded":
        doc["dataset"]["embedded"] = True
        return json.dumps(doc)
    if kind == "verified_claim":
        doc["evaluated_by"] = "verified"
        return json.dumps(doc)
    if kind == "unknown_version":
        doc["dataset"]["version"] = draw(st.text(min_size=1, max_size=40).filter(lambda v: v != VERSION))
        return json.dumps(doc)
    if kind == "unknown_manifest":
        doc["dataset"]["manifest_sha256"] = draw(
            st.text("0123456789abcdef", min_size=64, max_size=64).filter(lambda h: h != MANIFEST)
        )
        return json.dumps(doc)
    if kind == "unknown_dataset":
        doc["dataset"]["name"] = draw(st.text(min_size=1, max_size=30).filter(lambda n: n != "fashion-mnist"))
        return json.dumps(doc)
    if kind == "bad_model_name":
        doc["model"]["name"] = draw(st.one_of(
            st.sampled_from(["../x", "..", "/abs", "a/../../b", "A", "x\\y", ".git", "con\x00"]),
            st.text(min_size=1, max_size=100).filter(lambda n: not SLUG_PATTERN.fullmatch(n)),
        ))  # fmt: skip
        return json.dumps(doc)
    if kind == "missing_scale":
        rows = doc["per_scale"]
        keep = draw(st.lists(st.integers(0, len(rows) - 1), min_size=1, max_size=len(rows) - 1, unique=True))
        doc["per_scale"] = [rows[i] for i in sorted(keep)]
        if doc["scale_selection"] is not None:
            sel = doc["scale_selection"]
            sel["test_scales"] = [sel["test_scales"][i] for i in sorted(keep)]
            sel["counts"] = [sel["counts"][i] for i in sorted(keep)]
            sel["spearman_rho"] = metrics.selection_spearman(
                sel["test_scales"], sel["channel_sigmas"], sel["counts"]
            )
            sel["slope_per_octave"] = metrics.selection_slope(sel["test_scales"], sel["counts"])
        return json.dumps(_resummarize(doc))
    if kind == "extra_scale":
        scale = draw(
            st.floats(0.01, 100).filter(lambda s: not any(math.isclose(s, c, rel_tol=1e-6) for c in SCALES))
        )
        doc["per_scale"].append({"scale": scale, "correct": 1, "total": 2, "accuracy": 0.5})
        doc["per_scale"].sort(key=lambda r: r["scale"])
        doc["scale_selection"] = None
        return json.dumps(_resummarize(doc))
    if kind == "other_train_scale":
        doc["dataset"]["train_scale"] = draw(st.sampled_from([s for s in SCALES if s != 1.0]))
        return json.dumps(_resummarize(doc))
    if kind == "schema_version":
        doc["schema_version"] = draw(
            st.one_of(st.text(max_size=8).filter(lambda v: v != "1.0"), st.integers(), st.none())
        )
        return json.dumps(doc)
    if kind == "wrong_type":
        path = draw(st.sampled_from(NUMERIC))
        _set(
            doc,
            path,
            draw(
                st.one_of(
                    st.text(max_size=4).filter(lambda t: not t.strip().lstrip("-").isdigit()),
                    st.lists(st.integers(), max_size=2),
                    st.none(),
                )
            ),
        )
        if path[0] in ("model", "training") and path[1] in ("config", "card", "recipe"):
            doc["limit"] = 5  # free-form fields accept any JSON; break the run another way too
        return json.dumps(doc)
    if kind == "missing_field":
        doc.pop(
            draw(
                st.sampled_from(
                    ["model", "dataset", "per_scale", "summary", "checkpoint_sha256", "seed", "timings"]
                )
            )
        )
        return json.dumps(doc)
    if kind == "duplicate":
        doc["created_at"] = draw(st.text(min_size=1, max_size=30))
        doc["timings"]["train_seconds"] = draw(st.floats(0, 1e6))
        return json.dumps(doc)
    if kind == "duplicate_key":
        text = json.dumps(doc)
        return text.replace('"seed": 0', f'"seed": 0, "seed": {draw(st.integers(1, 99))}', 1)
    if kind == "deep":
        depth = draw(st.integers(33, 5000))
        return json.dumps(doc).replace('"width": 8', '"width": ' + "[" * depth + "]" * depth, 1)
    if kind == "truncated":
        text = json.dumps(doc)
        return text[: draw(st.integers(0, len(text) - 1))]
    if kind == "garbage":
        return draw(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
    if kind == "not_object":
        return json.dumps(
            draw(
                st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=5), st.none())
            )
        )
    if kind == "oversize":
        return json.dumps(doc) + " " * (MAX_RESULTS_BYTES - len(json.dumps(doc)) + draw(st.integers(1, 1000)))
    raise AssertionError(kind)


KINDS = [
    "non_finite", "negative_count", "count_above_total", "negative_selection_count", "unknown_field",
    "wrong_summary", "wrong_accuracy", "wrong_rho", "smoke_run", "embedded", "verified_claim", "unknown_version",
    "unknown_manifest", "unknown_dataset", "bad_model_name", "missing_scale", "extra_scale", "other_train_scale",
    "schema_version", "wrong_type", "missing_field", "duplicate", "duplicate_key", "deep", "truncated", "garbage",
    "not_object", "oversize",
]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store holding the base run (seed 0), so that re-submitting it is a duplicate."""
    path = tmp_path_factory.mktemp("hostile") / "results"
    submit_runs([("base.json", run_text(make_run(seed=0, selection=True)))], path, known=KNOWN)
    return path


@pytest.mark.slow
@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(payload=hostile())
def test_hostile_submissions_are_rejected_and_leave_the_store_unchanged(store, payload):
    before = snapshot(store)
    with pytest.raises(ScalebenchError) as info:
        submit_runs([("hostile.json", payload)], store, known=KNOWN)
    assert "hostile.json" in str(info.value)
    assert snapshot(store) == before


def test_the_base_run_is_valid(tmp_path):
    """The base document passes (so each rejection above is caused by its mutation)."""
    fresh = tmp_path / "results"
    base = json.dumps(_copy())
    (out,) = submit_runs([("base.json", base)], fresh, known=KNOWN)
    assert out.status == "added"
    assert len(KINDS) == len(set(KINDS)) >= 25
