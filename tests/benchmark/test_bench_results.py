"""The results schema and the metrics it recomputes: round trip, strictness, recomputation, JSON Schema export."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from bench_factories import make_result
from scipy import stats

from scalebench.checks import ScalebenchError
from scalebench.results import (
    SCHEMA_VERSION,
    load_results,
    metrics,
    parse_results,
    results_json_schema,
    results_to_json,
    save_results,
)

DOCS_SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "results-schema.json"


def _mutated(mutate) -> str:
    data = json.loads(results_to_json(make_result(selection=[[4, 1, 0], [1, 4, 1], [0, 1, 4]])))
    mutate(data)
    return json.dumps(data)


def test_round_trip(tmp_path):
    result = make_result(selection=[[4, 1, 0], [1, 4, 1], [0, 1, 4]])
    path = save_results(result, tmp_path / "r.json")
    assert load_results(path) == result
    assert result.schema_version == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d["model"].update(flops=3), "model.flops"),
        (lambda d: d.update(schema_version="0.9"), "schema_version '0.9' is not supported"),
        (lambda d: d["per_scale"][0].update(correct=51), "exceeds total"),
        (lambda d: d["per_scale"][0].update(correct=-1), "per_scale.0.correct"),
        (lambda d: d["per_scale"][1].update(accuracy=0.91), "accuracy 0.91 != correct/total"),
        (lambda d: d["summary"].update(mean_accuracy=0.8), "summary.mean_accuracy is 0.8"),
        (lambda d: d["summary"].update(generalisation_ratio=None), "summary.generalisation_ratio"),
        (lambda d: d["scale_selection"].update(spearman_rho=0.1), "spearman_rho 0.1 != recomputed"),
        (lambda d: d["scale_selection"]["counts"][0].append(1), "3 x 3 matrix"),
        (lambda d: d["dataset"].update(train_scale=1.5), "Training scale 1.5 is not among the test scales"),
        (lambda d: d["per_scale"].reverse(), "sorted by scale"),
        (lambda d: d.update(checkpoint_sha256="xyz"), "checkpoint_sha256"),
        (lambda d: d.update(evaluated_by="me"), "evaluated_by"),
    ],
)
def test_rejects_inconsistent_or_unknown_fields(mutate, message):
    with pytest.raises(ScalebenchError, match="not a valid scalebench results file") as err:
        parse_results(_mutated(mutate), source="sub.json")
    assert message in str(err.value)
    assert "sub.json" in str(err.value)


@pytest.mark.parametrize("text", ['{"summary": NaN}', "[1, 2]", "{not json", '{"x": Infinity}'])
def test_rejects_non_json_and_non_finite(text):
    with pytest.raises(ScalebenchError, match=r"sub\.json"):
        parse_results(text, source="sub.json")


def test_a_file_of_another_task_names_the_commands_that_read_it():
    text = results_to_json(make_result())
    with pytest.raises(ScalebenchError) as err:
        parse_results(text, source="run.json", tasks=("segmentation",))
    message = str(err.value)
    assert (
        "run.json holds 'classification' results" in message
        and "reads 'segmentation' results only" in message
    )
    assert "classification results are read by `scalebench plot`" in message and "valid tasks" not in message
    with pytest.raises(
        ScalebenchError, match=r"holds 'depth' results.*valid tasks: classification, segmentation"
    ):
        parse_results(text.replace('"task": "classification"', '"task": "depth"'), source="run.json")


def test_rejects_non_finite_inside_free_form_config():
    result = make_result()
    data = result.model_dump()
    data["model"]["config"]["lr"] = float("nan")
    with pytest.raises(Exception, match="non-finite"):
        type(result).model_validate(data)


def test_rejects_oversized_file(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(" " * (5 * 1024 * 1024))
    with pytest.raises(ScalebenchError, match="byte limit"):
        load_results(path)


def test_summary_formulas():
    m = metrics.summarize_counts([0.5, 1.0, 2.0], [30, 45, 35], [50, 50, 50], 1.0)
    assert m.train_scale_accuracy == 0.9
    assert m.mean_accuracy == pytest.approx((0.6 + 0.9 + 0.7) / 3)
    assert (m.worst_accuracy, m.worst_scale) == (0.6, 0.5)
    assert m.generalisation_ratio == pytest.approx(0.6 / 0.9)
    assert metrics.summarize([1.0, 2.0], [0.0, 0.0], 1.0).generalisation_ratio is None
    with pytest.raises(ScalebenchError, match="include it in --scales"):
        metrics.summarize([0.5, 2.0], [0.1, 0.2], 1.0)


def test_weighted_spearman_equals_scipy_on_expanded_sample():
    rng = np.random.default_rng(0)
    for _ in range(20):
        counts = rng.integers(0, 6, size=(5, 4))
        x, y = np.log2([0.5, 0.71, 1.0, 1.41, 2.0]), np.log2([1.0, 1.41, 2.0, 2.83])
        xs = np.repeat(np.repeat(x, 4), counts.ravel())
        ys = np.repeat(np.tile(y, 5), counts.ravel())
        expected = stats.spearmanr(xs, ys).statistic
        assert metrics.weighted_spearman(x, y, counts.tolist()) == pytest.approx(expected, abs=1e-12)
    assert metrics.weighted_spearman([0.0, 1.0], [0.0, 1.0], [[3, 0], [2, 0]]) is None


def test_selection_slope_counts_channels_per_octave():
    diag = [[0] * 9 for _ in range(5)]
    for i in range(5):
        diag[i][2 * i] = 7  # one octave = 2 channels of a sqrt(2) grid; scales 2^(k/2)
    scales = [2 ** (k / 2) for k in range(-2, 3)]
    assert metrics.selection_slope(scales, diag) == pytest.approx(4.0)
    assert metrics.selection_spearman(scales, [2 ** (j / 2) for j in range(9)], diag) == pytest.approx(1.0)
    assert metrics.selection_slope(scales, [[1] + [0] * 8] + [[0] * 9] * 4) is None


def test_mean_std_uses_sample_std():
    mean, std = metrics.mean_std([0.7, 0.8, 0.9])
    assert mean == pytest.approx(0.8)
    assert std == pytest.approx(0.1)
    assert metrics.mean_std([0.5]) == (0.5, 0.0)
    assert not math.isnan(metrics.mean_std([0.5])[1])


def test_docs_json_schema_is_current():
    assert DOCS_SCHEMA.is_file(), (
        "run: python -c 'from scalebench.results import export_json_schema as e; e(\"docs/results-schema.json\")'"
    )
    assert json.loads(DOCS_SCHEMA.read_text()) == results_json_schema(), (
        "docs/results-schema.json is stale; regenerate it with "
        "python -c 'from scalebench.results import export_json_schema as e; e(\"docs/results-schema.json\")'"
    )
