r"""Scale-space operations as pure tensor functions: one place for each formula.

What this module holds:

- 1-D Gaussian kernels in four discretisations (discrete analogue, sampled, normalised sampled,
  integrated), truncated by a bound on the tail mass (:func:`gaussian_kernel1d`, :func:`truncation_radius`);
- sampled Gaussian derivative kernels through Hermite polynomials, the N-Jet basis
  (:func:`sampled_gaussian_derivative_kernel1d`), differentiable in sigma.

References:
    - T. Lindeberg (1990), "Scale-space for discrete signals", IEEE TPAMI 12(3): 234-254
      (the discrete analogue of the Gaussian, T(n; s) = e^{-s} I_n(s)).
    - T. Lindeberg (1993), *Scale-Space Theory in Computer Vision*, Springer (the integrated Gaussian,
      Eq. 3.89; central differences).
    - T. Lindeberg (2022), "Scale-covariant and scale-invariant Gaussian derivative networks",
      J. Math. Imaging Vis. 64(3): 223-242 (GaussDerNet: scale-normalised N-jet, gamma = 1).
    - S. L. Pintea, N. Tomen, S. F. Goes, M. Loog, J. C. van Gemert (2021), "Resolution learning in deep
      convolutional networks using scale-space theory", IEEE TIP 30: 8342-8353 (N-Jet: sampled Gaussian
      derivatives through Hermite polynomials, sigma learned).
    - pyscsp 1.0.3 (T. Lindeberg), the numerical reference of the tests (truncation rule, kernels).

Sign convention (the whole package):
    Images are tensors ``(..., H, W)``. The coordinate x runs along W (columns, left to right) and y runs
    along H (rows, top to bottom, i.e. array index order; pyscsp's ``dymask`` points y *up*, so its
    odd-order y derivatives have the opposite sign). Every function that returns *derivatives of an image*
    returns the true derivative +d^n/dx^n in these coordinates.

    A 1-D *kernel table* ``h`` holds the mathematical convolution kernel h(x) at x = -r..r in that order
    (for derivatives h(x) = sigma^n g^(n)(x), the N-Jet layout). ``torch.nn.functional.conv2d`` computes a
    cross-correlation: applying ``h`` unflipped with ``conv2d`` gives (-1)^n sigma^n d^n L, which is what the
    N-Jet reference code does; applying ``h.flip(-1)`` (equal to (-1)^n h, by the parity of g^(n)) gives
    +sigma^n d^n L. Learned layers absorb the sign in their weights, so only equivalence tests care.

Limitations:
    The discrete analogue is differentiable in sigma through the identity
    dT(n; s)/ds = (T(n-1; s) + T(n+1; s))/2 - T(n; s) at a fixed truncation radius; its values are
    computed with ``scipy.special.ive`` in float64, on the CPU.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from scipy.special import erfcinv, ive
from torch import Tensor

from scalebench.checks import ScalebenchError, check_choice

Discretisation = Literal["discrete", "sampled", "normalised_sampled", "integrated"]
"""Gaussian discretisations. pyscsp names: ``discrete`` = 'discgauss' (``make1Ddiscgaussfilter``),
``sampled`` = 'samplgauss', ``normalised_sampled`` = 'normsamplgauss', ``integrated`` = 'intgauss'."""

DISCRETISATIONS: tuple[str, ...] = ("discrete", "sampled", "normalised_sampled", "integrated")
MAX_HERMITE_ORDER = 4


# ---------------------------------------------------------------------------------------------------------
# helpers


def _sigma_tensor(sigma: Tensor | float, dtype: torch.dtype | None = None) -> Tensor:
    """``sigma`` as a floating tensor (0-d or (S,)), checked positive; keeps the autograd graph."""
    if isinstance(sigma, Tensor):
        s = sigma if sigma.is_floating_point() else sigma.to(torch.get_default_dtype())
        if dtype is not None:
            s = s.to(dtype)
    else:
        s = torch.as_tensor(float(sigma), dtype=dtype or torch.get_default_dtype())
    if s.dim() > 1:
        raise ScalebenchError(
            f"sigma must be a number or a tensor of shape (S,), got shape {tuple(s.shape)}."
        )
    if not bool(torch.all(torch.isfinite(s) & (s > 0))):
        raise ScalebenchError(f"sigma must be positive and finite, got {s.detach().tolist()}.")
    return s


def _eps_1d(epsilon: float, dim: int) -> float:
    """Turn a bound on the truncated mass over ``dim`` dimensions into a 1-D bound: 1 - (1 - eps)^(1/D)."""
    if not (0 < epsilon < 1):
        raise ScalebenchError(f"epsilon (bound on the truncated tail mass) must be in (0, 1), got {epsilon}.")
    if dim < 1:
        raise ScalebenchError(f"dim (spatial dimensions of the truncation bound) must be >= 1, got {dim}.")
    return 1.0 - (1.0 - epsilon) ** (1.0 / dim)


def _continuous_radius(sigma: float, epsilon: float, dim: int) -> float:
    """sqrt(2) sigma erfcinv(eps_1D): the half-width beyond which a continuous Gaussian has mass eps_1D."""
    return math.sqrt(2.0) * sigma * float(erfcinv(_eps_1d(epsilon, dim)))


# ---------------------------------------------------------------------------------------------------------
# truncation


def truncation_radius(
    sigma: float, *, discretisation: Discretisation = "discrete", epsilon: float = 1e-3, dim: int = 1
) -> int:
    r"""Half-width N of a truncated 1-D Gaussian kernel (the kernel has 2N+1 taps), pyscsp's rule.

    The bound on the truncated mass over ``dim`` dimensions becomes the 1-D bound
    :math:`\varepsilon_1 = 1 - (1-\varepsilon)^{1/D}` (separable filtering). Then

    - ``sampled``, ``normalised_sampled``, ``integrated``: :math:`N = \lceil 1.1\,\sqrt{2}\,\sigma\,
      \mathrm{erfcinv}(\varepsilon_1) \rceil`;
    - ``discrete``: the smallest N with :math:`\sum_{|n| \le N} T(n; \sigma^2) \ge 1 - \varepsilon_1`.

    Args:
        sigma: scale (standard deviation) in pixels.
        discretisation: one of ``discrete``, ``sampled``, ``normalised_sampled``, ``integrated``.
        epsilon: bound on the truncated tail mass.
        dim: number of spatial dimensions the bound refers to (2 for separable 2-D smoothing).

    Example:
        >>> truncation_radius(1.0, discretisation="discrete", epsilon=1e-3)
        4
        >>> truncation_radius(1.0, discretisation="sampled", epsilon=1e-3)
        4
    """
    check_choice(discretisation, "discretisation", DISCRETISATIONS)
    sigma = float(sigma)
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ScalebenchError(f"sigma must be positive and finite, got {sigma}.")
    n_cont = _continuous_radius(sigma, epsilon, dim)
    if discretisation != "discrete":
        return max(1, math.ceil(1.1 * n_cont))
    eps1 = _eps_1d(epsilon, dim)
    half = ive(np.arange(0, math.ceil(1 + 1.5 * n_cont) + 1), sigma * sigma)
    total = half[0]
    i = 1
    while total < 1 - eps1 and i < len(half):
        total += 2 * half[i]
        i += 1
    return i - 1


# ---------------------------------------------------------------------------------------------------------
# the discrete analogue of the Gaussian, differentiable in sigma


class _DiscreteGaussian(torch.autograd.Function):
    """T(n; s) = e^{-s} I_n(s) for n = -N..N, with dT/ds = (T(n-1) + T(n+1))/2 - T(n) (heat equation)."""

    @staticmethod
    def forward(ctx, s: Tensor, radius: int) -> Tensor:  # type: ignore[override]
        s64 = s.detach().to("cpu", torch.float64).numpy()
        n = np.arange(-radius - 1, radius + 2)
        vals = ive(np.abs(n)[None, :], s64.reshape(-1, 1)).reshape(*s64.shape, -1)
        full = torch.from_numpy(np.ascontiguousarray(vals)).to(device=s.device)
        ctx.save_for_backward(full)
        return full[..., 1:-1].to(s.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (full,) = ctx.saved_tensors
        dtds = 0.5 * (full[..., :-2] + full[..., 2:]) - full[..., 1:-1]
        return (grad.to(torch.float64) * dtds).sum(-1).to(grad.dtype), None


def discrete_gaussian_kernel1d(sigma: Tensor | float, radius: int) -> Tensor:
    r"""Discrete analogue of the Gaussian, :math:`T(n; s) = e^{-s} I_n(s)`, s = sigma^2, n = -radius..radius.

    Lindeberg (1990), IEEE TPAMI 12(3): 234-254. Untruncated it has sum 1, variance exactly s and the exact
    cascade (semi-group) property. Computed with the exponentially scaled Bessel function
    ``scipy.special.ive`` (finite at every sigma). Differentiable in sigma via
    :math:`\partial_s T(n;s) = \tfrac12 (T(n-1;s) + T(n+1;s)) - T(n;s)`.

    Args:
        sigma: a number, a 0-d tensor or a tensor of shape (S,).
        radius: half-width N >= 0.

    Returns:
        Taps of shape (2N+1,), or (S, 2N+1).

    Example:
        >>> [round(v, 4) for v in discrete_gaussian_kernel1d(1.0, 2).tolist()]
        [0.0499, 0.2079, 0.4658, 0.2079, 0.0499]
    """
    s = _sigma_tensor(sigma)
    return _DiscreteGaussian.apply(s * s, int(radius))


# ---------------------------------------------------------------------------------------------------------
# 1-D Gaussian kernels


def gaussian_kernel1d(
    sigma: Tensor | float,
    *,
    discretisation: Discretisation = "discrete",
    epsilon: float = 1e-3,
    dim: int = 1,
    radius: int | None = None,
) -> Tensor:
    r"""1-D Gaussian smoothing kernel at scale ``sigma``, truncated at tail mass ``epsilon``.

    ============================  ==================================================  ===============  =======
    ``discretisation``            taps                                                pyscsp name      var
    ============================  ==================================================  ===============  =======
    ``discrete``                  :math:`e^{-s} I_n(s)`, s = sigma^2                  ``discgauss``    s
    ``sampled``                   :math:`g(n;\sigma) = e^{-n^2/2\sigma^2}/\sqrt{2\pi}\sigma`
                                                                                      ``samplgauss``   ~s
    ``normalised_sampled``        :math:`g(n) / \sum_m g(m)`                          ``normsamplgauss`` ~s
    ``integrated``                :math:`\int_{n-1/2}^{n+1/2} g(x)\,dx`               ``intgauss``     s+1/12
    ============================  ==================================================  ===============  =======

    + discrete: sum 1 and variance exactly s (untruncated), semi-group property, no spurious extrema.
    - sampled: sums to more than 1 at small sigma (1.0144 at sigma = 0.5); normalised sampled loses variance
      at small sigma (0.215 instead of 0.25 at sigma = 0.5); integrated adds about 1/12 to the variance.

    The radius follows :func:`truncation_radius` unless ``radius`` is given. Every discretisation is
    differentiable in sigma (the radius itself is not).

    Args:
        sigma: scale in pixels, a number or a 0-d tensor (also a ``Parameter``).
        discretisation: see the table.
        epsilon: bound on the truncated tail mass over ``dim`` dimensions.
        dim: dimensions of the truncation bound (1 as in pyscsp's default; 2 for separable 2-D smoothing).
        radius: fixed half-width, overriding the truncation rule.

    Returns:
        Taps of shape (2N+1,).

    Example:
        >>> k = gaussian_kernel1d(1.0, discretisation="discrete", epsilon=1e-3)
        >>> [round(v, 4) for v in k.tolist()]
        [0.001, 0.0082, 0.0499, 0.2079, 0.4658, 0.2079, 0.0499, 0.0082, 0.001]
    """
    check_choice(discretisation, "discretisation", DISCRETISATIONS)
    s = _sigma_tensor(sigma)
    if s.dim() != 0:
        raise ScalebenchError(f"gaussian_kernel1d takes one sigma (0-d), got shape {tuple(s.shape)}.")
    if radius is None:
        radius = truncation_radius(float(s), discretisation=discretisation, epsilon=epsilon, dim=dim)
    if discretisation == "discrete":
        return discrete_gaussian_kernel1d(s, radius)
    x = torch.arange(-radius, radius + 1, dtype=s.dtype, device=s.device)
    if discretisation == "integrated":
        scale = math.sqrt(2.0) * s
        return 0.5 * (torch.erf((x + 0.5) / scale) - torch.erf((x - 0.5) / scale))
    g = torch.exp(-(x * x) / (2 * s * s)) / (math.sqrt(2 * math.pi) * s)
    if discretisation == "normalised_sampled":
        g = g / g.sum()
    return g


# ---------------------------------------------------------------------------------------------------------
# Hermite polynomials and sampled Gaussian derivatives (N-Jet basis)


def hermite_probabilists(order: int, x: Tensor) -> Tensor:
    r"""Probabilists' Hermite polynomial :math:`He_n(x)`, by :math:`He_{n+1} = x He_n - n He_{n-1}`.

    Relation to the physicists' :math:`H_n`: :math:`H_n(x) = 2^{n/2} He_n(\sqrt{2} x)`.

    Example:
        >>> hermite_probabilists(3, torch.tensor([1.0, 2.0, 3.0])).tolist()
        [-2.0, 2.0, 18.0]
    """
    if order < 0:
        raise ScalebenchError(f"Hermite order must be >= 0, got {order}.")
    prev, cur = torch.ones_like(x), x
    if order == 0:
        return prev
    for n in range(1, order):
        prev, cur = cur, x * cur - n * prev
    return cur


def sampled_gaussian_derivative_kernel1d(
    sigma: Tensor | float,
    order: int,
    radius: int,
    *,
    normalise: bool = True,
    scale_normalise: bool = True,
) -> Tensor:
    r"""Sampled Gaussian derivative kernel :math:`\sigma^n g^{(n)}(x)` on x = -radius..radius (N-Jet basis).

    Pintea et al. (2021), IEEE TIP 30: 8342-8353. With :math:`g` the sampled Gaussian (divided by its sum
    over the grid when ``normalise``), the n-th derivative is, through Hermite polynomials,

    .. math::
        g^{(n)}(x) = \left(\frac{-1}{\sigma}\right)^n He_n\!\left(\frac{x}{\sigma}\right) g(x)
                   = \left(\frac{-1}{\sqrt2\,\sigma}\right)^n H_n\!\left(\frac{x}{\sqrt2\,\sigma}\right) g(x),

    (probabilists' :math:`He_n`, physicists' :math:`H_n`), and scale normalisation (gamma = 1) multiplies by
    :math:`\sigma^n`, so the returned taps are :math:`(-1)^n He_n(x/\sigma)\,g(x)`. The Hermite factor is
    applied to the normalised Gaussian, as in the N-Jet reference code.

    Sign: the table is the convolution kernel h(x) = sigma^n g^(n)(x) in x order (see the module docstring).
    ``conv2d`` (cross-correlation) with it gives (-1)^n sigma^n d^n L, the N-Jet reference sign; flip it for
    +d^n. Differentiable in sigma (a 0-d ``Parameter`` works); the radius is fixed by the caller.

    Args:
        sigma: a number, a 0-d tensor or a tensor of shape (S,).
        order: derivative order n, 0..4.
        radius: half-width; the kernel has 2*radius+1 taps.
        normalise: divide the sampled Gaussian by its sum on the grid (N-Jet) before differentiating.
        scale_normalise: multiply by sigma^n (gamma = 1).

    Returns:
        Taps of shape (2*radius+1,), or (S, 2*radius+1).

    Example:
        >>> k = sampled_gaussian_derivative_kernel1d(1.0, 1, 3)
        >>> [round(v, 5) + 0.0 for v in k.tolist()]  # + 0.0 prints -0.0 as 0.0
        [0.0133, 0.10801, 0.24204, 0.0, -0.24204, -0.10801, -0.0133]
    """
    if not (0 <= int(order) <= MAX_HERMITE_ORDER) or int(order) != order:
        raise ScalebenchError(f"order must be an integer in 0..{MAX_HERMITE_ORDER}, got {order!r}.")
    if int(radius) != radius or radius < 0:
        raise ScalebenchError(f"radius must be an integer >= 0, got {radius!r}.")
    s = _sigma_tensor(sigma)
    sig = s.unsqueeze(-1)  # (..., 1)
    x = torch.arange(-radius, radius + 1, dtype=s.dtype, device=s.device)
    u = x / sig
    g = torch.exp(-0.5 * u * u)
    if normalise:
        g = g / g.sum(-1, keepdim=True)
    else:
        g = g / (math.sqrt(2 * math.pi) * sig)
    k = (-1.0) ** order * hermite_probabilists(int(order), u) * g
    if not scale_normalise:
        k = k / sig**order
    return k
