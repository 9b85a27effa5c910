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

import functools
import math
from typing import Any, Literal

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


# ---------------------------------------------------------------------------------------------------------
# central differences and the scale-normalised N-jet


def njet_multi_indices(max_order: int, *, include_zero_order: bool = True) -> list[tuple[int, int]]:
    """Multi-indices (order in x, order in y) of the N-jet up to ``max_order``, by total order, x first.

    Example:
        >>> njet_multi_indices(2)
        [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]
    """
    if not (0 <= int(max_order) <= 3) or int(max_order) != max_order:
        raise ScalebenchError(
            f"max_order of the central-difference N-jet must be in 0..3, got {max_order!r}."
        )
    out = [(n - j, j) for n in range(int(max_order) + 1) for j in range(n + 1)]
    return out if include_zero_order else out[1:]


_STENCILS_1D: dict[int, tuple[float, ...]] = {
    0: (1.0,),
    1: (-0.5, 0.0, 0.5),
    2: (1.0, -2.0, 1.0),
    3: (-0.5, 1.0, 0.0, -1.0, 0.5),
}


def central_difference_stencil1d(order: int, *, dtype: torch.dtype | None = None) -> Tensor:
    r"""Central-difference mask for the ``order``-th derivative, as a cross-correlation mask.

    :math:`\delta_x = (-\tfrac12, 0, \tfrac12)`, :math:`\delta_{xx} = (1, -2, 1)`,
    :math:`\delta_{xxx} = \delta_x * \delta_{xx} = (-\tfrac12, 1, 0, -1, \tfrac12)` (Lindeberg 1993, ch. 5;
    pyscsp ``dxmask``, ``dxxmask``, ``dxxxmask``). Correlating a signal with the mask (``conv2d``) gives
    +d^n/dx^n: exact on polynomials of degree n + 1 (a ramp for n = 1, a quadratic for n = 2).

    Example:
        >>> central_difference_stencil1d(3).tolist()
        [-0.5, 1.0, 0.0, -1.0, 0.5]
    """
    if order not in _STENCILS_1D:
        raise ScalebenchError(f"central-difference order must be in 0..3, got {order!r}.")
    return torch.tensor(_STENCILS_1D[order], dtype=dtype or torch.get_default_dtype())


def derivative_stencils2d(
    max_order: int, *, include_zero_order: bool = True, dtype: torch.dtype | None = None
) -> Tensor:
    r"""2-D central-difference masks of the N-jet, shape (J, k, k), k = 3 (max_order <= 2) or 5 (order 3).

    The mask of :math:`\partial_{x^i y^j}` is the outer product of :math:`\delta^{(j)}` along H (y, rows,
    downwards) and :math:`\delta^{(i)}` along W (x, columns), centred; e.g. :math:`\delta_{xy}` =
    [[1/4, 0, -1/4], [0, 0, 0], [-1/4, 0, 1/4]] (pyscsp's ``dxymask`` has y up, hence the opposite sign).
    Order of the J masks: :func:`njet_multi_indices`.

    Example:
        >>> derivative_stencils2d(1).shape
        torch.Size([3, 3, 3])
    """
    njet_multi_indices(max_order, include_zero_order=include_zero_order)  # validates max_order
    masks = _derivative_stencils2d_f64(int(max_order), bool(include_zero_order))
    return masks.to(dtype or torch.get_default_dtype(), copy=True)  # a copy: the cached masks stay intact


@functools.lru_cache(maxsize=16)
def _derivative_stencils2d_f64(max_order: int, include_zero_order: bool) -> Tensor:
    """The masks of :func:`derivative_stencils2d` in float64, built once per (max_order, zero order): every
    Gaussian derivative layer asks for them on every call (0.3 ms each to build)."""
    idx = njet_multi_indices(max_order, include_zero_order=include_zero_order)
    k = 5 if max_order >= 3 else 3
    out = torch.zeros(len(idx), k, k, dtype=torch.float64)
    for n, (i, j) in enumerate(idx):
        dx = central_difference_stencil1d(i, dtype=torch.float64)
        dy = central_difference_stencil1d(j, dtype=torch.float64)
        h0, w0 = (k - dy.numel()) // 2, (k - dx.numel()) // 2
        out[n, h0 : h0 + dy.numel(), w0 : w0 + dx.numel()] = torch.outer(dy, dx)
    return out


def scale_normalisation_factors(
    sigmas: Tensor | list[float], multi_indices: list[tuple[int, int]], *, gamma: float = 1.0
) -> Tensor:
    r"""Factors :math:`\sigma^{\gamma |\alpha|}` of the scale-normalised derivatives, shape (S, J).

    Lindeberg (1998), IJCV 30(2): :math:`\partial_\xi = \sigma^\gamma \partial_x`; gamma = 1 gives perfect
    scale covariance of the N-jet (Lindeberg 2022, JMIV 64(3), Eq. 11 without the 1/2 of its second-order
    template, which the learned weights absorb).

    Example:
        >>> scale_normalisation_factors([1.0, 2.0], njet_multi_indices(2)).tolist()[1]
        [1.0, 2.0, 2.0, 4.0, 4.0, 4.0]
    """
    s = torch.as_tensor(sigmas, dtype=torch.get_default_dtype()) if not isinstance(sigmas, Tensor) else sigmas
    orders = torch.tensor([i + j for i, j in multi_indices], dtype=s.dtype, device=s.device)
    return s.reshape(-1, 1) ** (gamma * orders)


# ---------------------------------------------------------------------------------------------------------
# scale channels folded into the batch dimension


def fold_scale_channels(x: Tensor, num_scales: int) -> Tensor:
    """Repeat a batch (B, ...) for S scale channels as (S*B, ...), scale-major (the layout of the layers)."""
    return x.unsqueeze(0).expand(num_scales, *x.shape).reshape(num_scales * x.shape[0], *x.shape[1:])


def unfold_scale_channels(x: Tensor, num_scales: int) -> Tensor:
    """(S*B, ...) -> (S, B, ...)."""
    if x.shape[0] % num_scales:
        raise ScalebenchError(
            f"batch dimension {x.shape[0]} is not a multiple of the number of scale channels {num_scales}."
        )
    return x.reshape(num_scales, x.shape[0] // num_scales, *x.shape[1:])


def smoothing_kernels(
    sigmas: list[float],
    *,
    discretisation: Discretisation = "discrete",
    epsilon: float = 1e-3,
    dim: int = 2,
) -> list[Tensor]:
    """One truncated 1-D Gaussian kernel per scale channel (lengths differ), see :func:`gaussian_kernel1d`."""
    return [
        gaussian_kernel1d(float(s), discretisation=discretisation, epsilon=epsilon, dim=dim) for s in sigmas
    ]


PaddingMode = Literal["zeros", "reflect", "replicate"]
PADDING_MODES: tuple[str, ...] = ("zeros", "reflect", "replicate")


def separable_smooth(x: Tensor, kernel: Tensor, *, extra: int = 0, padding: PaddingMode = "zeros") -> Tensor:
    r"""Smooth (B, C, H, W) with the separable kernel k(y) k(x): depthwise (k,1) then (1,k) convolution.

    The image is extended by ``padding`` (zeros, reflect, replicate) and the result has ``extra`` pixels more
    on every side (H + 2 extra, W + 2 extra): what a following valid ``extra``-radius stencil needs to
    return H x W values of the same extended image. Kernels are symmetric, so correlation = convolution.

    Example:
        >>> x = torch.zeros(1, 1, 15, 15)
        >>> x[..., 7, 7] = 1
        >>> y = separable_smooth(x, gaussian_kernel1d(1.0, epsilon=1e-6))
        >>> round(float(y.sum()), 5), tuple(y.shape)
        (1.0, (1, 1, 15, 15))
    """
    check_choice(padding, "padding", PADDING_MODES)
    c = x.shape[1]
    r = (kernel.numel() - 1) // 2
    kh = kernel.to(x.dtype).reshape(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = kernel.to(x.dtype).reshape(1, 1, 1, -1).expand(c, 1, 1, -1)
    p = r + extra
    if padding == "zeros":
        y = torch.nn.functional.conv2d(x, kh, padding=(p, 0), groups=c)
        return torch.nn.functional.conv2d(y, kw, padding=(0, p), groups=c)
    h, w = x.shape[-2:]
    if padding == "reflect" and p >= min(h, w):
        raise ScalebenchError(
            f"reflect padding of {p} pixels needs an image larger than {p} pixels, got {h}x{w}; "
            "use padding='zeros' or 'replicate', or a smaller sigma/epsilon."
        )
    xp = torch.nn.functional.pad(x, (p, p, p, p), mode=padding)
    return torch.nn.functional.conv2d(torch.nn.functional.conv2d(xp, kh, groups=c), kw, groups=c)


def scale_normalised_njet(
    x: Tensor,
    sigmas: list[float],
    max_order: int,
    *,
    discretisation: Discretisation = "discrete",
    epsilon: float = 1e-3,
    gamma: float = 1.0,
    include_zero_order: bool = True,
    padding: PaddingMode = "zeros",
    kernels: list[Tensor] | None = None,
) -> Tensor:
    r"""The scale-normalised N-jet :math:`\sigma^{\gamma|\alpha|}\,\delta^\alpha (T_\sigma * f)` at S scales.

    GaussDerNet discretisation (Lindeberg 2022, JMIV 64(3)): smooth with the 1-D ``discretisation`` kernel
    along y then x, then apply the central-difference masks of :func:`derivative_stencils2d` (true sign,
    x along W, y down). Scale channels are folded into the batch dimension, scale-major.

    This materialises the N-jet (J maps per channel); networks use :func:`gaussian_derivative_conv`, which
    folds the learned combination into one small kernel per scale instead.

    Args:
        x: (S*B, C, H, W); chunk s of the batch is smoothed at ``sigmas[s]`` (use
            :func:`fold_scale_channels` to give every channel the same batch).
        sigmas: S scales in pixels.
        max_order: highest total derivative order, 0..3.
        kernels: precomputed smoothing kernels (overrides discretisation/epsilon).

    Returns:
        (S*B, C, J, H, W), J = len(njet_multi_indices(max_order)).

    Example:
        >>> ramp = torch.arange(32.0).expand(1, 1, 32, 32)  # f(x, y) = x
        >>> jet = scale_normalised_njet(fold_scale_channels(ramp, 2), [1.0, 2.0], 1, epsilon=1e-6)
        >>> [round(v, 3) + 0.0 for v in jet[:, 0, :, 16, 16].flatten().tolist()]  # L, sigma Lx, sigma Ly
        [16.0, 1.0, 0.0, 16.0, 2.0, 0.0]
    """
    num_scales = len(sigmas)
    if kernels is None:
        kernels = smoothing_kernels(sigmas, discretisation=discretisation, epsilon=epsilon)
    idx = njet_multi_indices(max_order, include_zero_order=include_zero_order)
    stencils = derivative_stencils2d(max_order, include_zero_order=include_zero_order, dtype=x.dtype)
    stencils = stencils.to(x.device)
    norm = scale_normalisation_factors(torch.tensor(sigmas, dtype=x.dtype), idx, gamma=gamma).to(x.device)
    b = unfold_scale_channels(x, num_scales).shape[1]  # checks S divides the batch
    xs = x.split(b)  # split (not select): its backward is one cat, not S zero-filled copies
    c = x.shape[1]
    k = stencils.shape[-1]
    out = []
    for s in range(num_scales):
        sm = separable_smooth(xs[s], kernels[s].to(x.device), extra=k // 2, padding=padding)
        w = (stencils * norm[s].view(-1, 1, 1)).unsqueeze(1).repeat(c, 1, 1, 1)  # (C*J, 1, k, k)
        d = torch.nn.functional.conv2d(sm, w, groups=c)
        out.append(d.reshape(b, c, len(idx), *d.shape[-2:]))
    return torch.cat(out, 0)


def fold_njet_kernels(
    weight: Tensor,
    sigmas: list[float],
    max_order: int,
    *,
    gamma: float = 1.0,
    include_zero_order: bool = True,
) -> Tensor:
    r"""Fold :math:`\sum_\alpha w_\alpha \sigma^{\gamma|\alpha|} \delta^\alpha` into one k x k kernel per scale.

    Because the central-difference masks and the learned combination are linear, the layer
    :math:`\sum_\alpha w_{o,i,\alpha}\,\sigma^{|\alpha|}\,\delta^\alpha (T_\sigma * f_i)` equals a single
    k x k (3 x 3 up to order 2, 5 x 5 for order 3) cross-correlation of the smoothed input.

    Args:
        weight: (O, I, J) combination weights.

    Returns:
        (S, O, I, k, k).
    """
    idx = njet_multi_indices(max_order, include_zero_order=include_zero_order)
    if weight.shape[-1] != len(idx):
        raise ScalebenchError(
            f"weight has {weight.shape[-1]} N-jet coefficients, expected {len(idx)} for max_order={max_order}, "
            f"include_zero_order={include_zero_order}."
        )
    stencils = derivative_stencils2d(max_order, include_zero_order=include_zero_order, dtype=weight.dtype)
    norm = scale_normalisation_factors(torch.tensor(sigmas, dtype=weight.dtype), idx, gamma=gamma)
    scaled = norm.to(weight.device)[:, None, None, :] * weight.unsqueeze(0)  # (S, O, I, J)
    return torch.einsum("soij,jhw->soihw", scaled, stencils.to(weight.device))


def gaussian_derivative_conv(
    x: Tensor,
    weight: Tensor,
    sigmas: list[float],
    max_order: int,
    *,
    kernels: list[Tensor] | None = None,
    discretisation: Discretisation = "discrete",
    epsilon: float = 1e-3,
    gamma: float = 1.0,
    include_zero_order: bool = True,
    bias: Tensor | None = None,
    groups: int = 1,
    padding: PaddingMode = "zeros",
    window: tuple[int, int, int, int] | None = None,
) -> Tensor:
    r"""A Gaussian derivative layer: learned combinations of the scale-normalised N-jet, at S scales.

    .. math::
        y_{o,s} = b_o + \sum_i \sum_{|\alpha| \le N} w_{o,i,\alpha}\, \sigma_s^{\gamma|\alpha|}\,
                  \delta^\alpha (T_{\sigma_s} * x_{i,s})

    (Lindeberg 2022, JMIV 64(3), Eq. 11; Perzanowski & Lindeberg 2025, JMIV 67). Computed efficiently: per
    scale channel, separable smoothing (depthwise (k,1) then (1,k) convolution; for inputs with at most
    ``MATRIX_SMOOTHING_MAX_CHANNELS`` channels (``..._CUDA`` on a GPU) and zero padding, two batched products with banded Toeplitz
    matrices, :func:`smoothing_matrix`, which give the same values), then one folded k x k
    convolution (:func:`fold_njet_kernels`); the N-jet is never materialised and no dense
    sigma-sized 2-D kernel is built. Weights are shared across scale channels.

    Args:
        x: (S*B, I, H, W), scale-major (see :func:`fold_scale_channels`).
        weight: (O, I/groups, J).
        sigmas: S scales.
        kernels: precomputed smoothing kernels (one per scale), overriding discretisation/epsilon.
        groups: as in ``conv2d`` (groups = I = O for a depthwise layer).
        window: ``(h0, nh, w0, nw)``: compute only the output pixels [h0, h0+nh) x [w0, w0+nw), equal to the
            same pixels of the full output (used by the centre readout of the networks).

    Returns:
        (S*B, O, H, W), or (S*B, O, nh, nw) with ``window``.

    Example:
        >>> x = fold_scale_channels(torch.arange(32.0).expand(1, 1, 32, 32), 2)  # f(x, y) = x
        >>> w = torch.tensor([[[0.0, 1.0, 0.0]]])  # picks sigma * Lx
        >>> y = gaussian_derivative_conv(x, w, [1.0, 2.0], 1, epsilon=1e-6)
        >>> [round(v, 3) for v in y[:, 0, 16, 16].tolist()]
        [1.0, 2.0]
    """
    num_scales = len(sigmas)
    if kernels is None:
        kernels = smoothing_kernels(sigmas, discretisation=discretisation, epsilon=epsilon)
    folded = fold_njet_kernels(weight, sigmas, max_order, gamma=gamma, include_zero_order=include_zero_order)
    folded = folded.to(x.dtype)
    if x.is_contiguous(memory_format=torch.channels_last):
        folded = _channels_last_weight(folded)
    k = folded.shape[-1]
    b = unfold_scale_channels(x, num_scales).shape[1]  # checks S divides the batch
    if window is None and padding == "zeros" and _smooth_by_matrix_products(x):
        smoothed = _smooth_by_matrices(x, kernels, extra=k // 2).split(b)
    else:
        smoothed = None
    xs = x.split(b)  # split (not select): its backward is one cat, not S zero-filled copies
    weights = folded.unbind(0)  # likewise: one stack backward instead of S zero-filled (S, O, I, k, k) grads
    out = []
    for s in range(num_scales):
        kern = kernels[s].to(device=x.device)
        if smoothed is not None:
            sm = smoothed[s]
        elif window is None:
            sm = separable_smooth(xs[s], kern, extra=k // 2, padding=padding)
        else:
            pad = (kern.numel() - 1) // 2 + k // 2
            sm = _smooth_valid(_extended_crop(xs[s], pad, window, padding), kern)
        out.append(torch.nn.functional.conv2d(sm, weights[s], bias, groups=groups))
    return torch.cat(out, 0)


def _channels_last_weight(folded: Tensor) -> Tensor:
    """Folded kernels (S, O, I, k, k) whose slices read as channels_last weights also when I = 1.

    ``conv2d`` returns channels_last output when its input or its weight is channels_last. With one input
    channel (a network's first layer) both are ambiguous, the output fell back to NCHW and so did every
    later layer: the long (1, k) depthwise smoothing passes then ran up to 20x slower (measured,
    ``docs/performance.md``). Restriding the size-1 channel dimension is a view: no copy, same values.
    """
    if folded.shape[2] != 1:
        return folded  # a channels_last input with I > 1 already gives channels_last output
    f = folded.contiguous()
    _, o, _, kh, kw = f.shape
    return f.as_strided(f.shape, (o * kh * kw, kh * kw, 1, kw, 1))


MATRIX_SMOOTHING_MAX_CHANNELS = 4
"""Inputs with at most this many channels are smoothed by matrix products (:func:`_smooth_by_matrices`)."""
MATRIX_SMOOTHING_MAX_CHANNELS_CUDA = 1 << 30
"""The same threshold on a CUDA device: every input. On an H100 the 16 -> 16 layer (8 scales x 64 images,
72 x 72, forward + backward) took 8.3 ms smoothed by matrix products against 20 ms by depthwise passes,
and GaussDerNet trained at 924 against 547 img/s (``benchmarks/models.py --device cuda``, docs/models.md)."""


def _smooth_by_matrix_products(x: Tensor) -> bool:
    """Whether :func:`gaussian_derivative_conv` smooths ``x`` by matrix products (the device's threshold)."""
    limit = MATRIX_SMOOTHING_MAX_CHANNELS_CUDA if x.is_cuda else MATRIX_SMOOTHING_MAX_CHANNELS
    return x.shape[1] <= limit


def smoothing_matrix(kernel: Tensor, size: int, *, extra: int = 0) -> Tensor:
    r"""The zero-padded 1-D smoothing of a length-``size`` signal as a banded Toeplitz matrix.

    :math:`M_{pq} = k(q - p + \text{extra})` for :math:`|q - p + \text{extra}| \le r` (r the kernel radius),
    else 0; shape (size + 2 extra, size). ``M @ f`` equals ``separable_smooth``'s pass along one axis with
    zero padding and ``extra`` outputs more on each side (the matrix encodes the truncation and the
    border exactly).

    Example:
        >>> smoothing_matrix(torch.tensor([0.25, 0.5, 0.25]), 3).tolist()
        [[0.5, 0.25, 0.0], [0.25, 0.5, 0.25], [0.0, 0.25, 0.5]]
    """
    r = (kernel.numel() - 1) // 2
    p = torch.arange(size + 2 * extra, device=kernel.device).unsqueeze(1)
    q = torch.arange(size, device=kernel.device).unsqueeze(0)
    offset = q - p + extra  # tap index relative to the centre
    inside = offset.abs() <= r
    return torch.where(inside, kernel[(offset + r).clamp(0, 2 * r)], kernel.new_zeros(()))


def _smooth_by_matrices(x: Tensor, kernels: list[Tensor], *, extra: int) -> Tensor:
    """Zero-padded separable smoothing of every scale channel as two batched matrix products.

    For (S*B, C, H, W) scale-major input: Y_s = G_H,s X G_W,s^T per image and channel, with the
    :func:`smoothing_matrix` of each scale. Used for inputs with few channels (a network's first layer),
    where oneDNN's depthwise convolutions take a slow path (8 ms per (k, 1) pass of a 1-channel batch of
    8 images at 72 x 72, against under 1 ms for 16 channels; measured, ``docs/performance.md``).
    Returns (S*B, C, H + 2 extra, W + 2 extra).
    """
    n, c, h, w = x.shape
    num_scales = len(kernels)
    gh = torch.stack(
        [smoothing_matrix(kern.to(device=x.device, dtype=x.dtype), h, extra=extra) for kern in kernels]
    )
    gw = torch.stack(
        [smoothing_matrix(kern.to(device=x.device, dtype=x.dtype), w, extra=extra) for kern in kernels]
    )
    xs = x.reshape(num_scales, (n // num_scales) * c, h, w)
    y = torch.matmul(torch.matmul(gh.unsqueeze(1), xs), gw.transpose(1, 2).unsqueeze(1))
    return y.reshape(n, c, h + 2 * extra, w + 2 * extra)


def _smooth_valid(x: Tensor, kernel: Tensor) -> Tensor:
    """Separable smoothing without padding (output shrinks by the kernel radius on every side)."""
    c = x.shape[1]
    kh = kernel.to(x.dtype).reshape(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = kernel.to(x.dtype).reshape(1, 1, 1, -1).expand(c, 1, 1, -1)
    return torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, kh, groups=c), kw, groups=c)


class _Crop(torch.autograd.Function):
    """``x[..., r0:r1, c0:c1]`` whose gradient keeps ``x``'s memory format.

    Autograd's own slice backward scatters into a new NCHW tensor, so a channels_last network got an NCHW
    gradient from its centre readout, and the ReLU backward before it, mixing the two layouts, took 8x
    longer (33 against 4.3 ms for 64 x 32 x 72 x 72 here; ``docs/performance.md``).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, r0: int, r1: int, c0: int, c1: int) -> Tensor:
        ctx.box = (r0, r1, c0, c1)
        ctx.shape = x.shape
        ctx.channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        return x[..., r0:r1, c0:c1]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        r0, r1, c0, c1 = ctx.box
        fmt = torch.channels_last if ctx.channels_last else torch.contiguous_format
        out = torch.empty(ctx.shape, dtype=grad.dtype, device=grad.device, memory_format=fmt).zero_()
        out[..., r0:r1, c0:c1] = grad
        return out, None, None, None, None


def _extended_crop(x: Tensor, pad: int, window: tuple[int, int, int, int], padding: str) -> Tensor:
    """Rows [h0 - pad, h0 + nh + pad) and columns likewise of the image extended by ``padding``."""
    check_choice(padding, "padding", PADDING_MODES)
    h0, nh, w0, nw = window
    h, w = x.shape[-2:]
    if not (0 <= h0 and h0 + nh <= h and 0 <= w0 and w0 + nw <= w and nh > 0 and nw > 0):
        raise ScalebenchError(f"window {window} (h0, nh, w0, nw) does not fit an image of {h}x{w} pixels.")
    if padding == "zeros":
        r0, r1, c0, c1 = h0 - pad, h0 + nh + pad, w0 - pad, w0 + nw + pad
        crop = _Crop.apply(x, max(r0, 0), min(r1, h), max(c0, 0), min(c1, w))
        return torch.nn.functional.pad(crop, (max(-c0, 0), max(c1 - w, 0), max(-r0, 0), max(r1 - h, 0)))
    if padding == "reflect" and pad >= min(h, w):
        raise ScalebenchError(
            f"reflect padding of {pad} pixels needs an image larger than {pad} pixels, got {h}x{w}; "
            "use padding='zeros' or 'replicate', or a smaller sigma/epsilon."
        )
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode=padding)
    return _Crop.apply(xp, h0, h0 + nh + 2 * pad, w0, w0 + nw + 2 * pad)


def centre_window(height: int, width: int) -> tuple[int, int, int, int]:
    """The central pixel (odd size) or central 2 pixels (even size) per axis, as ``(h0, nh, w0, nw)``.

    Example:
        >>> centre_window(72, 71)
        (35, 2, 35, 1)
    """
    nh, nw = 2 - height % 2, 2 - width % 2
    return (height - nh) // 2, nh, (width - nw) // 2, nw
