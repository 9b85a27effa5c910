"""The one scale identity (``scales.py``): the rule, its users, and no other rule anywhere in the package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.scales import (
    DEFAULT_TEST_SCALES,
    find_scale,
    match_scales,
    same_scale,
    same_scales,
    scale_tag,
    unique_scales,
)

PACKAGE = Path(__file__).resolve().parents[2] / "scalebench"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (1.0, 1.0004, True),  # one tag, 1p000
        (1.0, 0.9996, True),
        (1.0, 1.001, False),  # 1p000 and 1p001
        (1.0, 1.0006, False),  # rounds to 1p001
        (2**0.25, 1.189, True),  # a default scale and its 3-decimal value
        (2**0.25, 1.19, False),
        (0.5, 0.5, True),
    ],
)
def test_a_scale_is_its_three_decimal_tag(a, b, same):
    assert same_scale(a, b) is same and same_scale(b, a) is same
    assert (scale_tag(a) == scale_tag(b)) is same


def test_lists_of_scales():
    assert [scale_tag(s) for s in DEFAULT_TEST_SCALES] == [
        "0p500", "0p595", "0p707", "0p841", "1p000", "1p189", "1p414", "1p682", "2p000"
    ]  # fmt: skip
    assert same_scales([0.5, 1.0], [0.5002, 0.9999]) and not same_scales([0.5, 1.0], [0.5, 1.001])
    assert not same_scales([1.0], [1.0, 2.0])
    assert find_scale(DEFAULT_TEST_SCALES, 0.841) == 3 and find_scale(DEFAULT_TEST_SCALES, 0.84) is None
    assert unique_scales([2.0, 1.0004, 1.0, 0.5]) == [0.5, 1.0004, 2.0]  # the first value of a tag is kept
    assert match_scales([1.0004, 0.5], DEFAULT_TEST_SCALES, "b") == [0.5, 1.0]  # the built values
    assert match_scales(None, [2.0, 1.0], "b") == [1.0, 2.0]
    with pytest.raises(ScalebenchError, match=r"Scale\(s\) 1.001 are not in the built set of 'b'"):
        match_scales([1.001], [1.0], "b")


def test_the_results_and_the_leaderboard_use_the_rule():
    from scalebench.leaderboard.validate import check_run  # noqa: F401  (imports the rule)
    from scalebench.results import metrics

    assert metrics.summarize([0.5, 1.0, 2.0], [0.6, 0.9, 0.45], 1.0004).train_scale_accuracy == 0.9
    with pytest.raises(ScalebenchError, match=r"Training scale 1\.001 is not among the test scales"):
        metrics.summarize([0.5, 1.0, 2.0], [0.6, 0.9, 0.45], 1.001)


#: Comparisons of scales by any other rule than scales.py's (tolerances, tags or floats compared by hand).
STRAY = re.compile(
    r"math\.isclose|rel_tol|abs_tol|SCALE_RTOL|\bisclose\(|scale_tag\([^)]*\)\s*[!=]=|"
    r"scales?\w*\)?\s*[!=]=\s*[\w.\[\]]*scales?\b|scales?\b[\w.\[\]]*\s*[!=]=\s*[\w.]*scales?\w*|"
    r"abs\([^#]*scale[^#]*\)\s*[<>]|\btag\w*\W{0,2}\s*[!=]=|[!=]=\s*\w*tag\b"
)


def test_no_other_scale_rule_in_the_package():
    stray = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "scales.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if STRAY.search(code) and not code.strip().startswith('"'):
                stray.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not stray, "compare scales with scalebench.datasets_builders.scales:\n" + "\n".join(stray)


def test_the_rule_is_cheap_to_import():
    """``scalebench.results`` imports the rule: importing it loads neither torch nor h5py."""
    code = (
        "import sys, scalebench.datasets_builders.scales, scalebench.results; "
        "print(sorted({'torch', 'h5py'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
