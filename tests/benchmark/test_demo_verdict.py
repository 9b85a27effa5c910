"""The demo's closing lines: a per-scale table of both models and a verdict computed from their numbers."""

from __future__ import annotations

from result_factories import make_run

from scalebench.demo import per_scale_table, verdict

SCALES = [0.5, 1.0, 2.0]


def _run(model: str, correct: list[int]):
    return make_run(correct, scales=SCALES, total=100, model=model)


def test_verdict_names_the_model_that_generalises_and_the_one_that_does_not():
    text = verdict([_run("gaussdernet", [66, 70, 64]), _run("cnn", [20, 72, 18])])
    assert text.startswith("Verdict: gaussdernet keeps 91 % of its training-scale accuracy (0.700)")
    assert "cnn keeps 25 %" in text
    assert text.endswith("So gaussdernet generalises over scales 0.5 to 2; cnn does not.")


def test_verdict_follows_the_numbers_either_way():
    assert verdict([_run("gaussdernet", [20, 70, 64]), _run("cnn", [20, 72, 18])]).endswith(
        "no model keeps 85 % of its accuracy over scales 0.5 to 2."
    )
    assert verdict([_run("a", [66, 70, 64]), _run("b", [70, 72, 70])]).endswith(
        "every model keeps at least 85 % over scales 0.5 to 2."
    )
    assert "an undefined share" in verdict([_run("a", [10, 0, 10])])


def test_table_has_a_row_per_model_and_a_column_per_scale():
    lines = per_scale_table([_run("gaussdernet", [66, 70, 64]), _run("cnn", [20, 72, 18])]).splitlines()
    assert lines[0].split()[:5] == ["test", "scale", "0.5", "1", "2"]
    assert lines[1].split() == ["gaussdernet", "0.660", "0.700", "0.640", "0.914"]
    assert lines[2].split() == ["cnn", "0.200", "0.720", "0.180", "0.250"]
