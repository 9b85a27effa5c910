"""DSS (scalebench.models.dss): the Gaussian lifting, the dilated scale convolution, the model.

Measured scale covariance as in tests/models/test_sesn.py, with the base-2 semigroup: the first dilated scale
convolution (after the Gaussian lifting) at scale index i + 1 for the 2x enlarged test image against index i for
the original.
"""

from __future__ import annotations

import torch
from test_sesn import first_layer_error, plain_conv_error, quick

from scalebench.models import count_parameters, create_model, get_model_card
from scalebench.models.dss import GaussianLifting, lifting_kernel, lifting_variances
from scalebench.models.scalespace import separable_smooth


def test_lifting_variances_give_total_scales_sigma0_base_to_the_s():
    t = lifting_variances(4, 2, 0.25)
    assert t == [0.0, 0.1875, 0.9375, 3.9375]
    assert [round((0.25**2 + v) ** 0.5, 6) for v in t] == [0.25, 0.5, 1.0, 2.0]


def test_lifting_kernel_is_a_normalised_discrete_gaussian_of_that_variance():
    for t in (0.1875, 0.9375, 3.9375):
        k = lifting_kernel(t).double()
        r = (k.numel() - 1) // 2
        assert r == 4 * int(torch.tensor(t).sqrt().ceil())  # DSS's truncation radius
        n = torch.arange(-r, r + 1, dtype=torch.float64)
        assert abs(float(k.sum()) - 1.0) < 1e-6
        # the untruncated discrete Gaussian has variance exactly t; cut at about 4 sigma it keeps 99.5 % of it
        # (measured 0.9334 for t = 0.9375)
        assert abs(float((k * n * n).sum()) / t - 1) < 0.01


def test_gaussian_lifting_keeps_the_input_at_scale_zero_and_blurs_the_others():
    x = torch.randn(2, 3, 20, 20)
    y = GaussianLifting(3)(x)
    assert y.shape == (2, 3, 3, 20, 20)
    torch.testing.assert_close(y[:, :, 0], x)
    torch.testing.assert_close(y[:, :, 2], separable_smooth(x, lifting_kernel(0.9375)))


def test_forward_backward_parameter_count_and_determinism():
    model = create_model("dss", quick=True)
    y = model(torch.randn(2, 1, 24, 24))
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert count_parameters(create_model("dss")) == get_model_card("dss").num_params == 421_399
    assert count_parameters(model) == 26_738
    x = torch.randn(2, 1, 24, 24, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(quick("dss", 3)(x), quick("dss", 3)(x))
        assert not torch.equal(quick("dss", 4)(x), quick("dss", 3)(x))


def test_selection_and_channel_scales():
    model = quick("dss")
    assert model.channel_sigmas == [0.25, 0.5, 1.0, 2.0]
    assert [c.dilations for c in model.convs] == [[1, 2, 4, 8]] * 3
    x = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        logits, winner = model.forward_with_selection(x)
        torch.testing.assert_close(logits, model(x))
        assert winner.tolist() == model.scale_channel_logits(x).amax(-1).argmax(0).tolist()


def test_measured_scale_covariance_of_the_first_layer():
    err = first_layer_error(quick("dss"), 2.0, 1)
    assert err.shape == (3,)
    # pairs (0,1) and (1,2): measured 0.0043 and 0.0041 (the lifting's blur differs by 3/4 zero_scale^2 in
    # variance; the dilated kernels match exactly)
    assert float(err[:2].max()) < 0.01
    # pair (2,3): measured 0.0195: the dilation-8 kernel of the enlarged image reaches the zero-padded border
    # of the 47 x 47 canvas
    assert float(err[2]) < 0.04
    # a plain 7 x 7 convolution in the same comparison: measured 0.42
    assert plain_conv_error(7) > 0.2
