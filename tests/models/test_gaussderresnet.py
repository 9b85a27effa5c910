"""Tests of GaussDerResNet and its depthwise-separable variant."""

from __future__ import annotations

import pytest
import torch

from scalebench.checks import ScalebenchError
from scalebench.models import create_model, get_model_card
from scalebench.models.gaussder import scale_covariance_error
from scalebench.models.gaussderresnet import GaussDerResidualBlock, GaussDerResNet
from scalebench.models.registry import count_parameters

SMALL = {"stem_width": 8, "stage_widths": [8, 12], "blocks_per_stage": 1}


def test_parameter_counts_of_both_variants() -> None:
    """Standard: 6 coefficients per (in, out) pair. Depthwise-separable: 6 per channel + a 1x1 conv."""
    std = GaussDerResNet(**SMALL)
    dw = GaussDerResNet(depthwise=True, **SMALL)
    bn = 2 * (8 + 8 + 8 + 12 + 12 + 12)  # stem, block 1 (2), block 2 (2) + its skip BN
    gd_pairs = 1 * 8 + 8 * 8 + 8 * 8 + 8 * 12 + 12 * 12 + 12 * 10
    assert count_parameters(std) == 6 * gd_pairs + bn + 8 * 12 + 10
    dw_weights = (6 * 8 + 8 * 8) * 2 + (6 * 8 + 8 * 12) + (6 * 12 + 12 * 12)
    assert count_parameters(dw) == 6 * (1 * 8 + 12 * 10) + dw_weights + bn + 8 * 12 + 10
    assert count_parameters(dw) < count_parameters(std)
    for name in ("gaussderresnet", "gaussderresnet_dw"):
        card = get_model_card(name)
        assert card.num_params == count_parameters(create_model(name))
        assert card.scale_covariant and card.reports_scale_selection
        assert card.paper_training.unverified and card.paper_training.label_smoothing > 0


def test_skip_connection_is_identity_at_equal_width() -> None:
    block = GaussDerResidualBlock(4, 4, [1.0, 2.0], [1.0, 2.0], False)
    assert isinstance(block.skip, torch.nn.Identity)
    torch.nn.init.zeros_(block.bn2.weight)  # residual branch off: out = ReLU(x)
    x = torch.randn(4, 4, 9, 9)
    torch.testing.assert_close(block(x), torch.relu(x))


@pytest.mark.parametrize("depthwise", [False, True])
def test_scale_covariance(depthwise: bool) -> None:
    """Class scores move by one channel under a sqrt 2 rescaling (72 px, 8 channels, seed 0).

    Measured: standard 0.014 0.011 0.029 0.024 0.016 0.006 0.004; depthwise-separable 0.015 0.021 0.021
    0.020 0.014 0.007 0.004. Bound on channels 0..5: 0.15.
    """
    torch.manual_seed(0)
    net = GaussDerResNet(depthwise=depthwise, **SMALL)
    err = scale_covariance_error(net, size=72)
    assert float(err[:6].max()) <= 0.15


def test_forward_backward_selection_rgb() -> None:
    torch.manual_seed(0)
    net = create_model("gaussderresnet_dw", quick=True, in_channels=3, num_classes=5)
    logits, win = net.forward_with_selection(torch.randn(2, 3, 17, 20))
    assert logits.shape == (2, 5) and win.shape == (2,) and win.dtype == torch.long
    logits.sum().backward()
    assert net.stem.weight.grad is not None
    assert len(net.channel_sigmas) == 8  # the quick config keeps the default scale channels


def test_exception() -> None:
    with pytest.raises(ScalebenchError, match="stage_widths"):
        GaussDerResNet(stage_widths="wide")
    with pytest.raises(ScalebenchError, match="readout"):
        GaussDerResNet(readout="center", **SMALL)
