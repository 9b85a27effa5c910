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
        """models.md §10: normalised sampled var 0.2150 at sigma 0.5, integrated 1.0833 at sigma 1."""

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
        """models.md §11: sigma = 1, radius 3, order 1 (N-Jet sign)."""
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
