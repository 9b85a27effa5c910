"""Tests of GaussDerNet: scale covariance and invariance as measured, readouts, pooling, selection, config."""

from __future__ import annotations

import pytest
import torch

from scalebench.checks import ScalebenchError
from scalebench.models import create_model, get_model_card
from scalebench.models.gaussder import (
    scale_channel_pool,
    scale_covariance_error,
    scale_test_image,
    winning_scale_channel,
)
from scalebench.models.gaussdernet import GaussDerNet
from scalebench.models.registry import count_parameters

TINY = {"widths": [4, 4], "num_scale_channels": 3, "sigma0": 1.0}


@pytest.fixture(scope="module")
def default_net() -> GaussDerNet:
    torch.manual_seed(0)
    return GaussDerNet().eval()


class TestScaleCovariance:
    def test_first_layer_and_output(self, default_net: GaussDerNet) -> None:
        """Default GaussDerNet (8 channels, r = sqrt 2, sigma0 0.71..8), test image rescaled by sqrt 2, 72 px.

        Measured relative errors, channel i (original) vs i + 1 (rescaled), seed 0:
          first layer:  0.009 0.010 0.011 0.011 0.009 0.008 0.006
          class scores: 0.023 0.019 0.011 0.010 0.011 0.005 0.052 (the last pair touches sigma = 8, where
          the 72 px canvas border matters). Seeds 1 and 2: first layer <= 0.012 / 0.010, class scores of
          channels 0..5 <= 0.018 / 0.035. Bounds asserted: 0.05 (first layer, all channels) and 0.15
          (class scores, interior channels 0..5); the issue's targets are 5 % and 15 %.
        """
        first = scale_covariance_error(default_net.layers[0], size=72)  # the first Gaussian derivative layer
        out = scale_covariance_error(default_net, size=72)
        assert first.shape == out.shape == (7,)
        assert float(first.max()) <= 0.05
        assert float(out[:6].max()) <= 0.15

    def test_wrong_scale_normalisation_is_detected(self) -> None:
        """With gamma = 0.5 the class scores stop moving with the image: measured 0.08-0.14 (vs <= 0.035)."""
        torch.manual_seed(0)
        bad = scale_covariance_error(GaussDerNet(gamma=0.5, widths=[8, 8, 8]), size=72)
        torch.manual_seed(0)
        good = scale_covariance_error(GaussDerNet(widths=[8, 8, 8]), size=72)
        assert float(bad[:6].mean()) > 2.5 * float(good[:6].mean())

    def test_pooled_logits_nearly_invariant(self) -> None:
        """Pooled scores are invariant when each class's best channel is inside the channel range.

        A derivative-only GaussDerNet (include_zero_order=False; with the zero-order term, an untrained net's
        scores peak at the finest channel for this image) selects an interior channel; rescaling by sqrt 2
        moves the winning channel by exactly one (measured: 4 -> 5). The top pooled score changes by 2.0 %
        (seeds 2, 3: 1.3 %, 1.3 %; bound 5 %), the pooled scores of the classes whose best channel is
        interior in both images by 5.6 % (relative L2; seeds 2, 3: 8.5 %, 7.8 %; bound 12 %): an untrained
        net's per-channel profiles are flat near their peak, so small covariance errors move the maxima.
        """
        torch.manual_seed(1)
        net = GaussDerNet(include_zero_order=False).eval()
        a, b = scale_test_image(72, 1.0), scale_test_image(72, 2**0.5)
        with torch.no_grad():
            pa, pb = net.scale_channel_logits(a), net.scale_channel_logits(b)  # (S, 1, K)
        la, lb = scale_channel_pool(pa, "max"), scale_channel_pool(pb, "max")
        wa, wb = winning_scale_channel(pa), winning_scale_channel(pb)
        ca, cb = pa[:, 0].argmax(0), pb[:, 0].argmax(0)
        assert 0 < wa.item() < 7 and wb.item() == wa.item() + 1
        interior = (ca > 0) & (ca < 6) & (cb == ca + 1)
        assert int(interior.sum()) >= 3
        top = abs(float(la.max()) - float(lb.max())) / float(la.max())
        assert top <= 0.05
        rel = (la[0, interior] - lb[0, interior]).norm() / la[0, interior].norm()
        assert float(rel) <= 0.12


class TestGaussDerNet:
    def test_shapes_selection_and_sigmas(self) -> None:
        torch.manual_seed(0)
        net = GaussDerNet(num_classes=7, in_channels=3, **TINY)
        x = torch.randn(2, 3, 21, 18)  # any canvas, odd and even sides
        logits, win = net.forward_with_selection(x)
        assert logits.shape == (2, 7) and win.dtype == torch.long and win.shape == (2,)
        assert bool(((win >= 0) & (win < 3)).all())
        assert net.channel_sigmas == pytest.approx([1.0, 2**0.5, 2.0])
        torch.testing.assert_close(net(x), logits)
        net(x).sum().backward()
        assert net.layers[0].weight.grad is not None

    def test_centre_readout_equals_full_head(self) -> None:
        torch.manual_seed(0)
        net = GaussDerNet(**TINY).eval()
        x = torch.randn(2, 1, 16, 15)
        with torch.no_grad():
            full = net.layer_responses(x)[-1]  # (S, B, K, H, W)
            centre = net.scale_channel_logits(x)
        torch.testing.assert_close(centre, full[..., 7:9, 7:8].mean((-2, -1)))
        net.readout = "spatial_max"
        with torch.no_grad():
            torch.testing.assert_close(net.scale_channel_logits(x), full.amax((-2, -1)))

    def test_avg_pooling_and_scale_dropout(self) -> None:
        torch.manual_seed(0)
        net = GaussDerNet(scale_pooling="avg", scale_dropout=0.5, **TINY)
        x = torch.randn(4, 1, 12, 12)
        net.eval()
        with torch.no_grad():
            per = net.scale_channel_logits(x)
            torch.testing.assert_close(net(x), per.mean(0))
            torch.testing.assert_close(net(x), net(x))  # no dropout in eval mode
        net.train()
        torch.manual_seed(3)
        y1 = net(x)
        torch.manual_seed(4)
        y2 = net(x)
        assert not torch.allclose(y1, y2)  # channels dropped at random in training

    def test_batchnorm_is_shared_across_scale_channels(self) -> None:
        net = GaussDerNet(**TINY)
        assert [bn.num_features for bn in net.norms] == [4, 4]
        net.train()
        x = torch.randn(3, 1, 10, 10)
        h = net.layers[0](net._fold(x))
        net(x)  # running mean of the first BN = mean over batch x scale channels x pixels
        expected = 0.1 * h.detach().mean((0, 2, 3))
        torch.testing.assert_close(net.norms[0].running_mean, expected, rtol=1e-4, atol=1e-6)

    def test_sigma_growth(self) -> None:
        net = GaussDerNet(sigma_growth=2**0.25, **TINY)
        assert net.layers[1].sigmas == pytest.approx([s * 2**0.25 for s in net.channel_sigmas])
        assert net.head.sigmas == pytest.approx([s * 2**0.5 for s in net.channel_sigmas])

    def test_parameter_counts(self) -> None:
        """Weights: 6 N-jet coefficients per (in, out) pair; BN 2 per channel; head bias."""
        net = GaussDerNet()
        pairs = 1 * 16 + 16 * 16 + 16 * 24 + 24 * 24 + 24 * 32 + 32 * 10
        assert count_parameters(net) == 6 * pairs + 2 * (16 + 16 + 24 + 24 + 32) + 10
        paper = GaussDerNet(widths="lindeberg2022")
        pairs = 1 * 12 + 12 * 14 + 14 * 16 + 16 * 20 + 20 * 64 + 64 * 10
        assert count_parameters(paper) == 6 * pairs + 2 * (12 + 14 + 16 + 20 + 64) + 10
        order3 = GaussDerNet(max_order=3, include_zero_order=False, widths=[4])
        assert order3.layers[0].weight.shape == (4, 1, 9)

    def test_card_and_registry(self) -> None:
        card = get_model_card("gaussdernet")
        assert card.scale_covariant and card.scale_invariant and card.reports_scale_selection
        assert card.input_size == (1, 72, 72)
        assert {"discretisation", "epsilon", "gamma"} <= set(card.default_config)
        assert count_parameters(create_model("gaussdernet")) == card.num_params
        quick = create_model("gaussdernet", quick=True, in_channels=3)
        assert quick(torch.randn(2, 3, 24, 24)).shape == (2, 10)

    @pytest.mark.parametrize("discretisation", ["sampled", "normalised_sampled", "integrated"])
    def test_discretisations(self, discretisation: str) -> None:
        net = GaussDerNet(discretisation=discretisation, **TINY)
        assert net(torch.randn(1, 1, 12, 12)).shape == (1, 10)

    def test_exception(self) -> None:
        with pytest.raises(ScalebenchError, match="scale_pooling"):
            GaussDerNet(scale_pooling="median")
        with pytest.raises(ScalebenchError, match="widths"):
            GaussDerNet(widths="lindeberg2021")
        with pytest.raises(ScalebenchError, match="in_channels=1"):
            GaussDerNet(**TINY)(torch.randn(1, 3, 12, 12))
