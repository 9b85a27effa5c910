"""budget_matched_cnn_config: the plain cnn whose widths are the defaults times one factor, at the parameter count
nearest to a target; its formula checked against the built model."""

from __future__ import annotations

import pytest

from scalebench.checks import ScalebenchError
from scalebench.models import count_parameters, create_model
from scalebench.models.budget import CNN_DEFAULT_WIDTHS, budget_matched_cnn_config, cnn_param_count


@pytest.mark.parametrize(("in_channels", "num_classes"), [(1, 10), (3, 10), (3, 100)])
def test_formula_equals_the_built_cnn(in_channels: int, num_classes: int):
    for widths in ([16, 16, 24, 24, 32], [3, 5, 7], [1]):
        model = create_model(
            "cnn", widths=widths, pool_after=[0], in_channels=in_channels, num_classes=num_classes
        )
        assert count_parameters(model) == cnn_param_count(
            widths, in_channels=in_channels, num_classes=num_classes
        )


@pytest.mark.parametrize("target", [5_000, 21_114, 22_010, 30_784, 50_272, 494_549])
def test_matched_widths_are_the_nearest_single_factor_scaling(target: int):
    widths = budget_matched_cnn_config(target)["widths"]
    count = count_parameters(create_model("cnn", widths=widths))
    # brute force over a fine grid of factors: none gets closer
    best = min(
        abs(cnn_param_count([max(1, int(f / 1000 * w + 0.5)) for w in CNN_DEFAULT_WIDTHS]) - target)
        for f in range(1, 12_000)
    )
    assert abs(count - target) == best
    ratios = [w / d for w, d in zip(widths, CNN_DEFAULT_WIDTHS, strict=True)]
    assert max(ratios) - min(ratios) < 1 / 16 + 1e-9  # one factor, up to rounding
    assert abs(count - target) / target < 0.02


def test_the_default_budget_gives_the_default_widths_and_rgb_counts_differ():
    assert budget_matched_cnn_config(21_114) == {"widths": list(CNN_DEFAULT_WIDTHS)}
    rgb = budget_matched_cnn_config(21_114, in_channels=3)["widths"]
    # 21,402: the first layer has 3x the weights
    default_rgb = cnn_param_count(CNN_DEFAULT_WIDTHS, in_channels=3)
    assert abs(cnn_param_count(rgb, in_channels=3) - 21_114) < abs(default_rgb - 21_114)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "100"])
def test_bad_targets_are_errors(bad):
    with pytest.raises(ScalebenchError, match="target_params must be a positive integer"):
        budget_matched_cnn_config(bad)
