"""SESN (scalebench.models.sesn) and the shared scale-equivariant layers (scalebench.models.scaleconv).

Measured scale covariance: the lifting layer's response to ``scale_test_image(47, 2)`` (an exact 2x enlargement)
at scale index i + 3 (sigma x 2, the scales are 2 x 2^(i/3)) against the response to ``scale_test_image(47, 1)``
at index i, compared at corresponding points of a central disk (``shifted_channel_error``: exact subsampling for
the factor 2 on an odd canvas). A plain ``nn.Conv2d`` in the same comparison shows the test can fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scalebench.checks import ScalebenchError
from scalebench.models import count_parameters, create_model, get_model_card
from scalebench.models.covariance import shifted_channel_error
from scalebench.models.gaussder import scale_test_image
from scalebench.models.scaleconv import (
    DilatedScaleConv,
    ScaleConv,
    ScaleLiftingConv,
    conv2d_same,
    scale_windows,
)
from scalebench.models.sesn import hermite_gaussian_1d, sesn_basis, support_size

SIZE = 47  # odd: the factor-2 comparison then samples integer pixels


def first_layer_error(model: torch.nn.Module, factor: float, shift: int) -> torch.Tensor:
    """Relative L2 error of the first scale convolution's covariance, per compared scale pair (float64)."""

    def respond(img: torch.Tensor) -> torch.Tensor:
        x = model.stem(img) if model.stem is not None else img
        return model.convs[0](x).permute(2, 0, 1, 3, 4)  # (S, B, C, H, W)

    with torch.no_grad():
        a = respond(scale_test_image(SIZE, 1.0, dtype=torch.float64))
        b = respond(scale_test_image(SIZE, factor, dtype=torch.float64))
    return shifted_channel_error(a, b, factor, shift)


def plain_conv_error(kernel_size: int, factor: float = 2.0) -> float:
    """The same comparison for a plain convolution (no scale axis: the response is compared with itself)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 8, kernel_size, padding=kernel_size // 2).double()
    with torch.no_grad():
        a = conv(scale_test_image(SIZE, 1.0, dtype=torch.float64)).unsqueeze(0)
        b = conv(scale_test_image(SIZE, factor, dtype=torch.float64)).unsqueeze(0)
    return float(shifted_channel_error(a, b, factor, 0)[0])


def quick(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, quick=True).double().eval()


# ---------------------------------------------------------------------------------------------------------
# shared layers


@pytest.mark.parametrize("method", ["direct", "fft"])
@pytest.mark.parametrize("dilation", [1, 2])
def test_conv2d_same_equals_conv2d_and_its_gradients_are_exact(method: str, dilation: int):
    if method == "fft" and dilation > 1:
        with pytest.raises(ScalebenchError, match="undilated"):
            conv2d_same(torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3), dilation=2, method="fft")
        return
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 9, 11, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(9, 2, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    ref = F.conv2d(x, w, padding=2 * dilation, dilation=dilation, groups=3)
    out = conv2d_same(x, w, groups=3, dilation=dilation, method=method)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    # the custom backward (direct) and the FFT's autograd against the reference gradients
    grad = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    expected = torch.autograd.grad(ref, (x, w), grad)
    for got, want in zip(torch.autograd.grad(out, (x, w), grad), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-11)


def test_scale_windows_pads_the_scale_axis_with_zeros():
    x = torch.arange(6.0).view(1, 2, 3, 1, 1)  # channel c, scale s: 3c + s
    win = scale_windows(x, 2)  # (B, S, 2C, H, W), channel j * C + c
    assert win.shape == (1, 3, 4, 1, 1)
    assert win[0, :, :, 0, 0].tolist() == [[0, 3, 1, 4], [1, 4, 2, 5], [2, 5, 0, 0]]


def test_lifting_and_scale_conv_equal_per_scale_conv2d_with_synthesised_kernels():
    torch.manual_seed(0)
    basis = torch.randn(3, 4, 5, 5)
    lift = ScaleLiftingConv(2, 3, basis).double()
    conv = ScaleConv(3, 2, basis, scale_kernel_size=2).double()
    torch.nn.init.normal_(lift.bias)
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    y = lift(x)
    assert y.shape == (2, 3, 3, 8, 8)
    for s in range(3):
        k = torch.einsum("oif,fhw->oihw", lift.weight, basis[s].double())
        torch.testing.assert_close(y[:, :, s], F.conv2d(x, k, lift.bias, padding=2))
    z = conv(y)
    for s in range(3):
        ref = conv.bias.view(1, -1, 1, 1).expand(2, -1, 8, 8).clone()
        for j in range(2):
            if s + j < 3:
                k = torch.einsum("oif,fhw->oihw", conv.weight[:, :, j], basis[s].double())
                ref = ref + F.conv2d(y[:, :, s + j], k, padding=2)
        torch.testing.assert_close(z[:, :, s], ref)


def test_dilated_scale_conv_equals_conv2d_with_zero_stuffed_kernels():
    torch.manual_seed(0)
    layer = DilatedScaleConv(2, 3, 3, 3, base=2).double()
    x = torch.randn(1, 2, 3, 20, 20, dtype=torch.float64)
    y = layer(x)
    w = layer.weight[:, 0]  # (O, I, 3, 3)
    for s, d in enumerate([1, 2, 4]):
        stuffed = torch.zeros(3, 2, 2 * d + 1, 2 * d + 1, dtype=torch.float64)
        stuffed[..., ::d, ::d] = w
        torch.testing.assert_close(y[:, :, s], F.conv2d(x[:, :, s], stuffed, padding=d))


# ---------------------------------------------------------------------------------------------------------
# SESN basis


def test_hermite_gaussian_matches_numpy_hermite_e():
    t = torch.linspace(-6, 6, 13, dtype=torch.float64)
    for order in range(5):
        ref = (
            np.exp(-(t.numpy() ** 2) / (2 * 2.5**2))
            / 2.5
            * np.polynomial.hermite_e.hermeval(t.numpy() / 2.5, [0] * order + [1])
        )
        np.testing.assert_allclose(hermite_gaussian_1d(t, 2.5, order).numpy(), ref, rtol=1e-12, atol=1e-12)


def test_sesn_basis_supports_separability_and_normalisation():
    scales = [2.0, 2.52, 3.17, 4.0]
    basis = sesn_basis(15, scales, 7)
    assert basis.shape == (4, 49, 15, 15)
    # the support grows with the scale: 7, 9, 11, 15 pixels (SESN's rule), zero outside
    for s, sigma in enumerate(scales):
        n = support_size(15, sigma, 4.0)
        assert n == [7, 9, 11, 15][s]
        pad = (15 - n) // 2
        if pad:
            assert basis[s, :, :pad].abs().max() == 0 and basis[s, :, :, -pad:].abs().max() == 0
    # separable: every function has rank 1 (up to float32 rounding); unit norm at the smallest scale
    singular = torch.linalg.svdvals(basis[1].double())
    assert float((singular[:, 1] / singular[:, 0]).max()) < 1e-6
    torch.testing.assert_close(basis[0].pow(2).sum((-2, -1)), torch.ones(49))
    # basis B: the first function is the plain Gaussian at sigma, 1/sigma^2 relative to the smallest scale
    c = 7
    ratio = basis[3, 0, c, c] / basis[0, 0, c, c]
    assert float(ratio) == pytest.approx((2.0 / 4.0) ** 2, rel=1e-5)


def test_sesn_basis_rejects_a_support_too_small_for_its_functions():
    with pytest.raises(ScalebenchError, match="effective_size 7 needs at least 7 pixels"):
        sesn_basis(9, [1.0, 2.0], 7, kind="A")


# ---------------------------------------------------------------------------------------------------------
# the registered model


def test_forward_backward_on_a_tiny_input_and_parameter_count():
    model = create_model("sesn", quick=True)
    x = torch.randn(2, 1, 24, 24)
    y = model(x)
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert count_parameters(create_model("sesn")) == get_model_card("sesn").num_params == 421_589
    assert count_parameters(model) == 26_786


def test_deterministic_given_a_seed():
    x = torch.randn(2, 1, 24, 24, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(quick("sesn", 3)(x), quick("sesn", 3)(x))
        assert not torch.equal(quick("sesn", 4)(x), quick("sesn", 3)(x))


def test_quick_config_keeps_the_scales_and_kernels():
    default, fast = create_model("sesn"), create_model("sesn", quick=True)
    assert fast.channel_sigmas == default.channel_sigmas == [2.0, 2.52, 3.17, 4.0]
    assert torch.equal(fast.convs[0].basis, default.convs[0].basis)


def test_selection_winner_is_the_scale_of_the_largest_per_scale_logit():
    model = quick("sesn")
    x = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        logits, winner = model.forward_with_selection(x)
        per_scale = model.scale_channel_logits(x)
        torch.testing.assert_close(logits, model(x))
    assert per_scale.shape == (4, 3, 10)
    assert winner.tolist() == per_scale.amax(-1).argmax(0).tolist()


def test_per_scale_logits_leave_the_running_statistics_alone_in_training_mode():
    model = quick("sesn").train()
    before = [b.clone() for b in model.head.buffers()]
    model.scale_channel_logits(torch.randn(4, 1, 24, 24, dtype=torch.float64))
    assert model.training and all(
        torch.equal(a, b) for a, b in zip(before, model.head.buffers(), strict=True)
    )


def test_measured_scale_covariance_of_the_lifting_layer():
    model = quick("sesn")
    # factor 2 = scale index + 3 (ratio 2^(1/3)): measured 0.075 (seed 0; 0.055-0.084 over seeds 0-4)
    err2 = first_layer_error(model, 2.0, 3)
    assert err2.shape == (1,) and float(err2[0]) < 0.12
    # factor 2^(1/3) = index + 1 (sampled bicubically): measured 0.059, 0.027, 0.064
    err_third = first_layer_error(model, 2 ** (1 / 3), 1)
    assert err_third.shape == (3,) and float(err_third.max()) < 0.10
    # a plain 15 x 15 convolution in the same factor-2 comparison: measured 0.80
    conv_err = plain_conv_error(15)
    assert conv_err > 0.5 and conv_err > 4 * float(err2[0])


def test_flops_are_counted_as_the_direct_convolution():
    """The FFT path would hide its transforms from torch's FLOP counter: under the counter it is conv2d."""
    from torch.utils.flop_counter import FlopCounterMode

    layer = ScaleConv(3, 5, torch.randn(4, 6, 9, 9))
    assert layer.method == "auto"  # the FFT on the CPU outside the counter
    with FlopCounterMode(display=False) as counter:
        layer(torch.randn(1, 3, 4, 16, 16))
    conv = 2 * 4 * 5 * 3 * 9 * 9 * 16 * 16  # 2 x S x O x I x k^2 x H x W
    assert counter.get_total_flops() >= conv
    assert counter.get_total_flops() < conv * 1.1  # plus the kernel synthesis (a small einsum)
