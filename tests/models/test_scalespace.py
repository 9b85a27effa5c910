"""Tests of scalebench.models.scalespace: kernels against pyscsp and the formulas they state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pyscsp import discscsp
from scipy import ndimage

from scalebench.checks import ScalebenchError
from scalebench.models import scalespace as ss

PYSCSP_1D = {
    "discrete": discscsp.make1Ddiscgaussfilter,
    "sampled": discscsp.make1Dsamplgaussfilter,
    "normalised_sampled": discscsp.make1Dnormsamplgaussfilter,
    "integrated": discscsp.make1Dintgaussfilter,
}


class TestGaussianKernel1d:
    @pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
    def test_discrete_sum_and_variance(self, sigma: float) -> None:
        k = ss.gaussian_kernel1d(torch.tensor(sigma, dtype=torch.float64), epsilon=1e-12)
        x = torch.arange(k.numel(), dtype=torch.float64) - k.numel() // 2
        assert k.sum().item() == pytest.approx(1.0, abs=1e-11)
        assert (k * x * x).sum().item() == pytest.approx(sigma**2, abs=1e-9)

    @pytest.mark.parametrize("discretisation", list(PYSCSP_1D))
    @pytest.mark.parametrize("sigma", [0.5, 0.75, 1.0, 2.0, 5.6])
    @pytest.mark.parametrize(("epsilon", "dim"), [(1e-2, 1), (1e-3, 2), (1e-8, 1)])
    def test_matches_pyscsp(self, discretisation: str, sigma: float, epsilon: float, dim: int) -> None:
        ours = ss.gaussian_kernel1d(sigma, discretisation=discretisation, epsilon=epsilon, dim=dim)
        ref = PYSCSP_1D[discretisation](sigma, epsilon, dim)
        assert ours.shape == ref.shape
        assert (
            ss.truncation_radius(sigma, discretisation=discretisation, epsilon=epsilon, dim=dim)
            == len(ref) // 2
        )
        np.testing.assert_allclose(ours.numpy(), ref, atol=1e-6, rtol=0)

    def test_variances_of_the_other_discretisations(self) -> None:
        """Normalised sampled variance 0.2150 at sigma 0.5, integrated 1.0833 at sigma 1 (docs/models.md)."""

        def var(k: torch.Tensor) -> float:
            x = torch.arange(k.numel(), dtype=k.dtype) - k.numel() // 2
            return float((k * x * x).sum() / k.sum())

        f64 = torch.tensor(0.5, dtype=torch.float64)
        assert var(
            ss.gaussian_kernel1d(f64, discretisation="normalised_sampled", epsilon=1e-8)
        ) == pytest.approx(0.2150, abs=1e-4)
        one = torch.tensor(1.0, dtype=torch.float64)
        assert var(ss.gaussian_kernel1d(one, discretisation="integrated", epsilon=1e-8)) == pytest.approx(
            1.0833, abs=1e-4
        )

    @pytest.mark.parametrize("discretisation", list(PYSCSP_1D))
    def test_gradcheck_sigma(self, discretisation: str) -> None:
        s = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda s: ss.gaussian_kernel1d(s, discretisation=discretisation, radius=5), (s,)
        )

    def test_exception(self) -> None:
        with pytest.raises(ScalebenchError, match="discretisation"):
            ss.gaussian_kernel1d(1.0, discretisation="box")  # type: ignore[arg-type]
        with pytest.raises(ScalebenchError, match="sigma must be positive"):
            ss.gaussian_kernel1d(-1.0)
        with pytest.raises(ScalebenchError, match="epsilon"):
            ss.gaussian_kernel1d(1.0, epsilon=1.5)


class TestSampledGaussianDerivative:
    def test_njet_reference_values(self) -> None:
        """sigma = 1, radius 3, order 1 (the N-Jet sign convention, docs/models.md)."""
        k = ss.sampled_gaussian_derivative_kernel1d(1.0, 1, 3)
        expected = [0.0133, 0.10801, 0.24204, 0.0, -0.24204, -0.10801, -0.0133]
        np.testing.assert_allclose(k.numpy(), expected, atol=5e-5)

    @pytest.mark.parametrize("sigma", [0.5, 0.7, 1.0, 2.0, 3.3])
    @pytest.mark.parametrize("order", range(5))
    def test_matches_formula(self, sigma: float, order: int) -> None:
        """sigma^n g^(n)(x) of the sum-normalised sampled Gaussian (scipy's _gaussian_kernel1d), and the
        physicists' Hermite form (-1/(sqrt2 sigma))^n H_n(x/(sqrt2 sigma)) g(x) times sigma^n."""
        radius = int(np.ceil(2 * sigma + 0.5))
        ours = ss.sampled_gaussian_derivative_kernel1d(
            torch.tensor(sigma, dtype=torch.float64), order, radius
        )
        ref = sigma**order * ndimage._filters._gaussian_kernel1d(sigma, order, radius)
        np.testing.assert_allclose(ours.numpy(), ref, atol=1e-12)
        x = np.arange(-radius, radius + 1)
        g = np.exp(-(x**2) / (2 * sigma**2))
        g /= g.sum()
        phys = np.polynomial.hermite.hermval(x / (np.sqrt(2) * sigma), [0] * order + [1])
        np.testing.assert_allclose(ours.numpy(), (-1 / np.sqrt(2)) ** order * phys * g, atol=1e-12)

    def test_unnormalised_and_not_scale_normalised(self) -> None:
        s = 2.0
        k = ss.sampled_gaussian_derivative_kernel1d(s, 2, 6, normalise=False, scale_normalise=False)
        x = torch.arange(-6, 7, dtype=torch.float32)
        g = torch.exp(-(x**2) / (2 * s * s)) / (np.sqrt(2 * np.pi) * s)
        torch.testing.assert_close(k, (x**2 / s**4 - 1 / s**2) * g)

    def test_conv2d_sign(self) -> None:
        """Cross-correlation with the table gives (-1)^n d^n; with the flipped table +d^n (ramp: d/dx x = 1)."""
        ramp = torch.arange(32, dtype=torch.float64).view(1, 1, 1, 32)
        k = ss.sampled_gaussian_derivative_kernel1d(torch.tensor(1.0, dtype=torch.float64), 1, 4)
        raw = torch.nn.functional.conv2d(ramp, k.view(1, 1, 1, -1))
        flipped = torch.nn.functional.conv2d(ramp, k.flip(-1).view(1, 1, 1, -1))
        assert raw.mean().item() == pytest.approx(-1.0, abs=1e-3)
        assert flipped.mean().item() == pytest.approx(1.0, abs=1e-3)

    def test_gradcheck_sigma_parameter(self) -> None:
        s = torch.nn.Parameter(torch.tensor(1.2, dtype=torch.float64))
        for order in range(5):
            assert torch.autograd.gradcheck(
                lambda s, order=order: ss.sampled_gaussian_derivative_kernel1d(s, order, 4), (s,)
            )

    def test_batched_sigma(self) -> None:
        sig = torch.tensor([0.8, 1.6])
        k = ss.sampled_gaussian_derivative_kernel1d(sig, 2, 5)
        assert k.shape == (2, 11)
        torch.testing.assert_close(k[1], ss.sampled_gaussian_derivative_kernel1d(1.6, 2, 5))

    def test_exception(self) -> None:
        with pytest.raises(ScalebenchError, match="order"):
            ss.sampled_gaussian_derivative_kernel1d(1.0, 5, 3)


def _poly_image(fn, size: int = 16) -> torch.Tensor:
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij"
    )
    return fn(xx, yy).view(1, 1, size, size)


class TestCentralDifferences:
    @pytest.mark.parametrize(
        ("order", "fn", "expected"),
        [
            (1, lambda x: 3 * x + 2, lambda x: 3 + 0 * x),  # ramp
            (1, lambda x: x * x, lambda x: 2 * x),  # quadratic
            (2, lambda x: x * x - 4 * x, lambda x: 2 + 0 * x),
            (2, lambda x: x**3, lambda x: 6 * x),
            (3, lambda x: x**3, lambda x: 6 + 0 * x),
        ],
    )
    def test_exact_on_polynomials(self, order, fn, expected) -> None:
        x = torch.arange(12, dtype=torch.float64)
        mask = ss.central_difference_stencil1d(order, dtype=torch.float64)
        y = torch.nn.functional.conv1d(fn(x).view(1, 1, -1), mask.view(1, 1, -1)).flatten()
        r = mask.numel() // 2
        torch.testing.assert_close(y, expected(x[r:-r]))

    def test_masks_match_pyscsp(self) -> None:
        """Same masks as pyscsp; y points down here, up in pyscsp (odd y orders flip sign)."""
        st = ss.derivative_stencils2d(2, dtype=torch.float64).numpy()
        idx = ss.njet_multi_indices(2)
        np.testing.assert_allclose(st[idx.index((1, 0))][1], discscsp.dxmask()[0])
        np.testing.assert_allclose(st[idx.index((2, 0))][1], discscsp.dxxmask()[0])
        np.testing.assert_allclose(st[idx.index((0, 1))][:, 1], -discscsp.dymask()[:, 0])
        np.testing.assert_allclose(st[idx.index((0, 2))][:, 1], discscsp.dyymask()[:, 0])
        np.testing.assert_allclose(st[idx.index((1, 1))], -discscsp.dxymask())
        st3 = ss.derivative_stencils2d(3, dtype=torch.float64).numpy()
        np.testing.assert_allclose(st3[ss.njet_multi_indices(3).index((3, 0))][2], discscsp.dxxxmask()[0])

    def test_2d_stencils_on_polynomials(self) -> None:
        """f = x^2 y + 3 y^2 x (degree <= 2 in each variable): every N-jet component up to order 3, exactly."""
        f = _poly_image(lambda x, y: x * x * y + 3 * y * y * x)
        st = ss.derivative_stencils2d(3, dtype=torch.float64)
        d = torch.nn.functional.conv2d(f, st.unsqueeze(1))[0]  # (J, 12, 12), pixels 2..13
        yy, xx = torch.meshgrid(
            torch.arange(2, 14, dtype=torch.float64), torch.arange(2, 14, dtype=torch.float64), indexing="ij"
        )
        exact = {
            (0, 0): xx * xx * yy + 3 * yy * yy * xx,
            (1, 0): 2 * xx * yy + 3 * yy * yy,
            (0, 1): xx * xx + 6 * yy * xx,
            (2, 0): 2 * yy,
            (1, 1): 2 * xx + 6 * yy,
            (0, 2): 6 * xx,
            (3, 0): 0 * xx,
            (2, 1): 2 + 0 * xx,
            (1, 2): 6 + 0 * xx,
            (0, 3): 0 * xx,
        }
        for j, a in enumerate(ss.njet_multi_indices(3)):
            torch.testing.assert_close(d[j], exact[a], msg=f"multi-index {a}")

    def test_scale_normalised_njet_of_ramp_and_quadratic(self) -> None:
        """sigma^|a| d^a of smoothed x and y^2: sigma*1 for L_x and sigma^2*2 for L_yy."""
        sig = [1.0, 2.0, 3.0]
        f = _poly_image(lambda x, y: x + 0.5 * y * y, size=64)
        jet = ss.scale_normalised_njet(ss.fold_scale_channels(f, 3), sig, 2, epsilon=1e-10, padding="zeros")
        idx = ss.njet_multi_indices(2)
        centre = jet[:, 0, :, 32, 32]
        for s, sigma in enumerate(sig):
            assert centre[s, idx.index((1, 0))].item() == pytest.approx(sigma, rel=1e-6)
            assert centre[s, idx.index((0, 2))].item() == pytest.approx(sigma**2, rel=1e-6)
            assert centre[s, idx.index((1, 1))].item() == pytest.approx(0.0, abs=1e-8)
            # L of 0.5 y^2 smoothed with variance s^2 gains 0.5 s^2 (discrete Gaussian: exact variance)
            assert centre[s, 0].item() == pytest.approx(32 + 0.5 * 32**2 + 0.5 * sigma**2, rel=1e-6)

    def test_gamma(self) -> None:
        f = ss.scale_normalisation_factors([2.0], ss.njet_multi_indices(2), gamma=0.5)
        torch.testing.assert_close(f[0], torch.tensor([1.0, 2**0.5, 2**0.5, 2.0, 2.0, 2.0]))


class TestGaussianDerivativeConv:
    def _setup(self, order: int = 2, groups: int = 1):
        torch.manual_seed(0)
        sig = [0.8, 1.6, 3.2]
        x = torch.randn(3 * 2, 4, 20, 17, dtype=torch.float64)
        j = len(ss.njet_multi_indices(order))
        w = torch.randn(4 if groups > 1 else 5, 4 // groups, j, dtype=torch.float64)
        return sig, x, w

    @pytest.mark.parametrize("order", [1, 2, 3])
    @pytest.mark.parametrize("padding", ["zeros", "reflect", "replicate"])
    def test_equals_materialised_njet(self, order: int, padding: str) -> None:
        """The folded k x k kernel equals the explicit combination of the scale-normalised N-jet."""
        sig, x, w = self._setup(order)
        y = ss.gaussian_derivative_conv(x, w, sig, order, padding=padding)
        jet = ss.scale_normalised_njet(x, sig, order, padding=padding)  # (S*B, I, J, H, W)
        torch.testing.assert_close(y, torch.einsum("oij,bijhw->bohw", w, jet))

    def test_depthwise_groups(self) -> None:
        sig, x, w = self._setup(2, groups=4)
        y = ss.gaussian_derivative_conv(x, w, sig, 2, groups=4)
        jet = ss.scale_normalised_njet(x, sig, 2)
        torch.testing.assert_close(y, torch.einsum("cj,bcjhw->bchw", w[:, 0], jet))

    @pytest.mark.parametrize("padding", ["zeros", "reflect"])
    def test_window_equals_full(self, padding: str) -> None:
        sig, x, w = self._setup(2)
        full = ss.gaussian_derivative_conv(x, w, sig, 2, padding=padding)
        for window in [ss.centre_window(20, 17), (0, 3, 14, 3)]:
            h0, nh, w0, nw = window
            part = ss.gaussian_derivative_conv(x, w, sig, 2, padding=padding, window=window)
            torch.testing.assert_close(part, full[..., h0 : h0 + nh, w0 : w0 + nw])

    @pytest.mark.parametrize("padding", ["zeros", "reflect"])
    def test_window_gradients_are_exact_and_keep_channels_last(self, padding: str) -> None:
        """The windowed layer (centre readout) has exact gradients, and a channels_last input gets a
        channels_last gradient (autograd's slice backward gave NCHW, which slowed the ReLU before it 8x)."""
        torch.manual_seed(2)
        x = torch.randn(4, 3, 12, 11, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
        w = torch.randn(2, 3, 6, dtype=torch.float64)
        win = ss.centre_window(12, 11)

        def layer(x: torch.Tensor) -> torch.Tensor:
            return ss.gaussian_derivative_conv(x, w, [0.8, 1.6], 2, window=win, padding=padding)

        x.requires_grad_()
        assert torch.autograd.gradcheck(layer, (x,), fast_mode=True)
        layer(x).sum().backward()
        assert x.grad is not None and x.grad.is_contiguous(memory_format=torch.channels_last)

    def test_gradcheck(self) -> None:
        torch.manual_seed(1)
        x = torch.randn(2, 2, 5, 4, dtype=torch.float64, requires_grad=True)
        w = torch.randn(2, 2, 6, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda x, w: ss.gaussian_derivative_conv(x, w, [0.7, 1.4], 2), (x, w), fast_mode=True
        )

    def test_channels_last_same_values(self) -> None:
        sig, x, w = self._setup(2)
        y = ss.gaussian_derivative_conv(x.contiguous(memory_format=torch.channels_last), w, sig, 2)
        torch.testing.assert_close(y, ss.gaussian_derivative_conv(x, w, sig, 2))

    def test_matrix_smoothing_equals_depthwise(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Few-channel inputs are smoothed by banded matrices: same values as the depthwise passes, and a
        1-channel input still gives channels_last output (else the whole network falls back to NCHW)."""
        sig, x, w = self._setup(2)
        x1 = x[:, :1].contiguous()
        monkeypatch.setattr(ss, "MATRIX_SMOOTHING_MAX_CHANNELS", 0)
        want = ss.gaussian_derivative_conv(x1, w[:, :1], sig, 2)
        monkeypatch.setattr(ss, "MATRIX_SMOOTHING_MAX_CHANNELS", 4)
        got = ss.gaussian_derivative_conv(x1, w[:, :1], sig, 2)
        torch.testing.assert_close(got, want)
        assert got.is_contiguous(memory_format=torch.channels_last)
        kern = ss.gaussian_kernel1d(1.3)
        r = (kern.numel() - 1) // 2
        impulses = torch.nn.functional.conv1d(torch.eye(9).unsqueeze(1), kern.view(1, 1, -1), padding=r + 1)
        torch.testing.assert_close(ss.smoothing_matrix(kern, 9, extra=1), impulses[:, 0].T)

    def test_many_channels_by_matrices_as_on_cuda(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """On CUDA every input is smoothed by matrix products (MATRIX_SMOOTHING_MAX_CHANNELS_CUDA): with the
        CPU threshold raised the same path runs here and must equal the depthwise passes, gradients too."""
        sig, _, _ = self._setup(2)
        x = torch.randn(3 * 2, 7, 20, 17, dtype=torch.float64)  # more channels than the CPU threshold
        w = torch.randn(5, 7, len(ss.njet_multi_indices(2)), dtype=torch.float64)
        outs = []
        for limit in (0, 1 << 30):
            monkeypatch.setattr(ss, "MATRIX_SMOOTHING_MAX_CHANNELS", limit)
            xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
            y = ss.gaussian_derivative_conv(xg.contiguous(memory_format=torch.channels_last), wg, sig, 2)
            y.square().sum().backward()
            outs.append((y.detach(), xg.grad, wg.grad))
        for got, want in zip(outs[1], outs[0], strict=True):
            torch.testing.assert_close(got, want)
        assert ss.MATRIX_SMOOTHING_MAX_CHANNELS_CUDA >= 1 << 16  # the CUDA default: every input

    def test_exception(self) -> None:
        sig, x, w = self._setup(2)
        with pytest.raises(ScalebenchError, match="N-jet coefficients"):
            ss.gaussian_derivative_conv(x, w[..., :4], sig, 2)
        with pytest.raises(ScalebenchError, match="multiple of the number of scale channels"):
            ss.gaussian_derivative_conv(x[:5], w, sig, 2)
        with pytest.raises(ScalebenchError, match="reflect padding"):
            ss.gaussian_derivative_conv(x[:, :, :6, :6], w, [4.0, 4.0, 4.0], 2, padding="reflect")
