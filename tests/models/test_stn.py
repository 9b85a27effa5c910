"""Spatial transformer CNN (scalebench.models.stn): identity initialisation, the affine sampler against an exact
enlargement, gradients into the localisation net, the parameter budget, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from scalebench.models import count_parameters, create_model
from scalebench.models.budget import budget_matched_cnn_config, cnn_param_count
from scalebench.models.gaussder import scale_test_image

N = 48


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _model(seed: int = 0, **config) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("stn_cnn", quick=True, **config)


def test_the_transformer_starts_as_the_identity():
    """Last layer zero, bias (1, 0, 0, 0, 1, 0): the warp samples every pixel centre. Measured: 5.7e-7."""
    model = _model().eval()
    x = torch.randn(3, 1, 40, 40)
    with torch.no_grad():
        theta = model.affine(x)
        torch.testing.assert_close(theta, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(3, 2, 3))
        assert float((model.transform(x) - x).abs().max()) < 1e-5
        torch.testing.assert_close(model(x), model.classifier(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("factor", [math.sqrt(2), 2.0], ids=["sqrt2", "2"])
def test_a_shrinking_theta_enlarges_the_image_as_the_exact_enlargement(factor: float):
    """theta = diag(1/S) samples the central 1/S of the image: the S-times enlargement. Measured against
    scale_test_image(N, S): 0.0106 (sqrt 2), 0.0156 (2), bilinear, align_corners=false."""
    model = _model().eval()
    with torch.no_grad():
        model.theta.bias.copy_(torch.tensor([1 / factor, 0, 0, 0, 1 / factor, 0]))
        warped = model.transform(scale_test_image(N, 1.0))
    exact = scale_test_image(N, factor)
    assert float((warped - exact).norm() / exact.norm()) < 0.025


def test_gradients_reach_the_localisation_net():
    model = _model()
    y = model(torch.randn(2, 1, 24, 24))
    y.logsumexp(1).sum().backward()
    assert float(model.theta.weight.grad.abs().sum()) > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_documented_budget_and_the_plain_cnn_at_that_budget():
    model = create_model("stn_cnn")
    loc = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("classifier."))
    assert (loc, count_parameters(model)) == (9_670, 30_784)
    cfg = budget_matched_cnn_config(30_784)
    assert cfg == {"widths": [20, 20, 29, 29, 39]}
    assert count_parameters(create_model("cnn", **cfg)) == cnn_param_count(cfg["widths"]) == 30_542


def test_determinism_given_a_seed():
    x = torch.randn(2, 1, 24, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = _model(7).eval()(x), _model(7).eval()(x)
    assert torch.equal(a, b)
