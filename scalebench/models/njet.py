r"""The N-Jet convolution: learned combinations of Gaussian derivatives up to order N with a learned scale.

A filter of the N-Jet layer is a truncated local Taylor expansion (the N-jet) at one scale sigma per layer
(Pintea et al. 2021, Sect. III):

.. math::
    F_{c,o}(x, y) = \sum_{0 \le i + j \le N} \alpha_{(i,j),c,o}\;
                    \sigma^{i+j}\, g^{(i)}(x; \sigma)\, g^{(j)}(y; \sigma),
    \qquad \sigma = 2^{s},

with :math:`g` the sampled Gaussian normalised to sum 1 on the grid, :math:`g^{(n)}` its n-th derivative
through Hermite polynomials (:func:`scalebench.models.scalespace.sampled_gaussian_derivative_kernel1d`, the
one place of that formula), :math:`\sigma^n` the scale normalisation (gamma = 1) and
F = (N+1)(N+2)/2 basis filters (N = 2: 6). The learned parameters are alpha, of shape (F, C_in, C_out),
and the scalar s = log2(sigma) (sigma = 1 at init). The kernel size is tied to sigma and recomputed at every
forward pass from the current sigma (the size itself is not differentiated; the taps are, so sigma gets a
gradient):

- ``size_rule="paper"`` (default): 2 ceil(k sigma) + 1 (the paper's formula, Sect. III-C);
- ``size_rule="reference"``: 2 ceil(k sigma + 0.5) + 1 (the reference code; sigma = 1, k = 2 gives 7x7).

**Efficient application.** The layer never builds the dense (C_out, C_in, K, K) kernel. Because every basis
filter is separable, each input channel is filtered once along x with g^(0..N) and then along y, giving the
F basis responses per input channel (depthwise 1-D convolutions, about (N+1+F)K multiply-adds per input
pixel), and one 1x1 convolution mixes the C_in F responses into C_out outputs: F multiply-adds per in/out
pair (6 for N = 2) instead of K^2 (25 or 49). When C_out < C_in the order is swapped ("mix_first"): one 1x1
convolution makes F maps per output channel, which are then filtered separably and summed, so that the
depthwise passes run over min(C_in, C_out) channels. :func:`njet_conv2d_dense` is the dense reference
used by the tests and the benchmark.

**Safe subsampling** (Pintea et al. 2021, Sect. IV): a feature map of size s is resized to
:math:`\bar s = s\,(1/2)^{\sigma / r}` (rounded down, at least 1), r a hyper-parameter (4 in the paper).
We subsample the *smoothed* basis responses (bilinear), i.e. after the Gaussian at scale sigma has removed
the frequencies the coarser grid cannot hold, which is what makes it safe; since resizing and the 1x1 mixing
are both linear and per-channel, this equals convolving at full size and resizing the output.

Sign and axes: the kernel tables are h(x) = sigma^n g^(n)(x) applied unflipped by ``conv2d``
(cross-correlation), so odd orders respond with -d^n (the reference code's sign; alpha absorbs it).
Multi-index (i, j) = (order along x = W, order along y = H), the package convention of
:mod:`scalebench.models.scalespace`; the reference code puts its "x" factor along H, which only permutes
the basis.

Deviations from the reference code (``SilviaLauraPintea/N-JetNet``, ``srf/structured_conv_layer.py``; notes
in the project's research file, Sect. 4):

- default kernel size 2 ceil(k sigma) + 1 as in the paper; the reference 2 ceil(k sigma + 0.5) + 1 is
  ``size_rule="reference"``;
- safe subsampling uses the paper's s (1/2)^(sigma/r). The reference computes the factor as
  max(1, 2^sigma / r) with sigma already equal to 2^s (so 2^(2^s)), subsamples the *input* before the
  convolution with nearest-neighbour interpolation, and takes a lexicographic list max for the size;
- the reference adds ``extra_reg = (sigma + ||alpha||).item()`` times the weight decay to the loss; ``.item()``
  detaches it, so it never had a gradient effect. We do not add it; ordinary weight decay on alpha and s is
  the optimiser's business;
- separable evaluation instead of dense sigma-sized kernels (same function to float tolerance);
- ``groups`` > 1 of the reference layer is not implemented.

Reference:
    S. L. Pintea, N. Tomen, S. F. Goes, M. Loog, J. C. van Gemert (2021), "Resolution learning in deep
    convolutional networks using scale-space theory", IEEE Transactions on Image Processing 30: 8342-8353
    (arXiv 2106.03412).
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalebench.checks import ScalebenchError, check_choice, check_positive, check_shape
from scalebench.models.registry import ConfigRule
from scalebench.models.scalespace import sampled_gaussian_derivative_kernel1d

SizeRule = Literal["paper", "reference"]
Strategy = Literal["auto", "basis_first", "mix_first", "dense"]
SIZE_RULES: tuple[str, ...] = ("paper", "reference")
STRATEGIES: tuple[str, ...] = ("auto", "basis_first", "mix_first", "dense")
MAX_NJET_ORDER = 4
#: Largest initial sigma (px) of an N-Jet layer in a config: with k <= MAX_NJET_K the kernel is then at most
#: 2 * 8 * 32 + 1 = 513 px wide, beyond every canvas of the benchmark (the default: sigma 1, 5 px).
MAX_NJET_SIGMA = 32.0
#: Largest kernel extent k (in sigmas) in a config (the paper's is 2).
MAX_NJET_K = 8.0

#: Valid values of the N-Jet settings of a config (checked by the registry before anything is built).
NJET_RULES: dict[str, ConfigRule] = {
    "order": ConfigRule(low=0, high=MAX_NJET_ORDER, limit="scalebench.models.njet.MAX_NJET_ORDER"),
    "k": ConfigRule(low=0, low_open=True, high=MAX_NJET_K, limit="scalebench.models.njet.MAX_NJET_K"),
    "size_rule": ConfigRule(choices=SIZE_RULES),
    "init_sigma": ConfigRule(
        low=0, low_open=True, high=MAX_NJET_SIGMA, limit="scalebench.models.njet.MAX_NJET_SIGMA"
    ),
    "subsample_r": ConfigRule(low=0, low_open=True, high=64),
}


# ---------------------------------------------------------------------------------------------------------
# the basis


def _check_order(order: int) -> int:
    if int(order) != order or not (0 <= int(order) <= MAX_NJET_ORDER):
        raise ScalebenchError(f"N-Jet order must be an integer in 0..{MAX_NJET_ORDER}, got {order!r}.")
    return int(order)


def njet_num_basis(order: int) -> int:
    """Number of basis filters F = (N+1)(N+2)/2 of the N-jet up to ``order`` N.

    Example:
        >>> [njet_num_basis(n) for n in range(5)]
        [1, 3, 6, 10, 15]
    """
    n = _check_order(order)
    return (n + 1) * (n + 2) // 2


def njet_basis_indices(order: int) -> list[tuple[int, int]]:
    """Multi-indices (order along x = W, order along y = H) of the basis, by total order, x first.

    Example:
        >>> njet_basis_indices(2)
        [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]
    """
    n = _check_order(order)
    return [(m - j, j) for m in range(n + 1) for j in range(m + 1)]


def njet_radius(sigma: float | Tensor, k: float = 2.0, size_rule: SizeRule = "paper") -> int:
    """Half-width r of the N-Jet kernel (size 2r+1): ceil(k sigma) ("paper") or ceil(k sigma + 0.5) ("reference").

    ``sigma`` may be a tensor; its value is used (the size is not differentiated).

    Example:
        >>> [2 * njet_radius(s) + 1 for s in (0.5, 1.0, 2.0)], 2 * njet_radius(1.0, size_rule="reference") + 1
        ([3, 5, 9], 7)
    """
    check_choice(size_rule, "size_rule", SIZE_RULES)
    s = float(sigma.detach()) if isinstance(sigma, Tensor) else float(sigma)
    check_positive(s, "sigma")
    check_positive(k, "k (N-Jet kernel extent in sigmas)")
    # round first so that k * sigma = 2.0000000001 from float noise does not add a tap
    ks = round(k * s + (0.5 if size_rule == "reference" else 0.0), 9)
    return max(1, math.ceil(ks))


def njet_basis1d(sigma: float | Tensor, order: int, radius: int) -> Tensor:
    """The 1-D N-Jet kernels sigma^n g^(n)(x), n = 0..order, on x = -radius..radius: shape (order+1, 2r+1).

    Rows come from :func:`scalebench.models.scalespace.sampled_gaussian_derivative_kernel1d` (normalised
    sampled Gaussian, scale-normalised); differentiable in ``sigma``.

    Example:
        >>> [round(v, 5) for v in njet_basis1d(1.0, 2, 3)[2].tolist()]
        [0.03546, 0.16202, 0.0, -0.39905, 0.0, 0.16202, 0.03546]
    """
    n = _check_order(order)
    return torch.stack([sampled_gaussian_derivative_kernel1d(sigma, m, radius) for m in range(n + 1)])


def njet_basis2d(sigma: float | Tensor, order: int, radius: int) -> Tensor:
    """The 2-D basis filters, shape (F, 2r+1, 2r+1): basis[f, y, x] = k_j(y) k_i(x) for (i, j) = indices[f].

    Example:
        >>> b = njet_basis2d(1.0, 2, 2)
        >>> tuple(b.shape), round(float(b[0].sum()), 6)
        ((6, 5, 5), 1.0)
    """
    k1 = njet_basis1d(sigma, order, radius)
    return torch.stack([torch.outer(k1[j], k1[i]) for i, j in njet_basis_indices(order)])


# ---------------------------------------------------------------------------------------------------------
# safe subsampling


def safe_subsample_size(size: int, sigma: float | Tensor, r: float = 4.0) -> int:
    r"""New size :math:`\lfloor s\,(1/2)^{\sigma/r} \rfloor` (at least 1) of a feature map of size s.

    Pintea et al. (2021), Sect. IV ("safely subsampling"); r = 4 in their experiments.

    Example:
        >>> [safe_subsample_size(32, s) for s in (0.5, 1.0, 2.0, 4.0)]
        [29, 26, 22, 16]
    """
    s = float(sigma.detach()) if isinstance(sigma, Tensor) else float(sigma)
    check_positive(r, "safe subsampling r")
    return max(1, math.floor(round(size * 0.5 ** (s / r), 9)))


def safe_subsample(x: Tensor, sigma: float | Tensor, r: float = 4.0) -> Tensor:
    """Resize ``x`` (B, C, H, W) bilinearly to the safe-subsampled size of H and W (no-op if unchanged).

    Meant for maps already smoothed at scale ``sigma`` (see the module docstring).
    """
    size = (safe_subsample_size(x.shape[-2], sigma, r), safe_subsample_size(x.shape[-1], sigma, r))
    if size == tuple(x.shape[-2:]):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


# ---------------------------------------------------------------------------------------------------------
# the convolution


def _depthwise(x: Tensor, taps: Tensor, axis: Literal["x", "y"]) -> Tensor:
    """Zero-padded 'same' correlation of every channel of ``x`` with one 1-D kernel along W ("x") or H ("y")."""
    c, kk = x.shape[1], taps.shape[-1]
    r = kk // 2
    if axis == "x":
        return F.conv2d(x, taps.reshape(1, 1, 1, kk).expand(c, 1, 1, kk), padding=(0, r), groups=c)
    return F.conv2d(x, taps.reshape(1, 1, kk, 1).expand(c, 1, kk, 1), padding=(r, 0), groups=c)


def _check_njet_args(x: Tensor, alphas: Tensor, order: int) -> None:
    check_shape(x, "B C H W", "N-Jet input")
    nb = njet_num_basis(order)
    if alphas.dim() != 3 or alphas.shape[0] != nb or alphas.shape[1] != x.shape[1]:
        raise ScalebenchError(
            f"N-Jet alphas must have shape (F={nb}, C_in={x.shape[1]}, C_out) for order {order}, "
            f"got {tuple(alphas.shape)}."
        )


def njet_conv2d(
    x: Tensor,
    alphas: Tensor,
    sigma: float | Tensor,
    *,
    order: int = 2,
    k: float = 2.0,
    size_rule: SizeRule = "paper",
    subsample_r: float | None = None,
    strategy: Strategy = "auto",
) -> Tensor:
    r"""N-Jet convolution of ``x`` with filters :math:`\sum_f \alpha_{f,c,o} B_f` (separable evaluation).

    Args:
        x: input of shape (B, C_in, H, W).
        alphas: basis weights of shape (F, C_in, C_out), F = (N+1)(N+2)/2, in the order of
            :func:`njet_basis_indices`.
        sigma: scale (a number or a 0-d tensor; differentiable).
        order: N, 0..4.
        k: kernel extent in sigmas; size 2r+1 with r from :func:`njet_radius`.
        size_rule: "paper" (2 ceil(k sigma) + 1) or "reference" (2 ceil(k sigma + 0.5) + 1).
        subsample_r: if given, safe-subsample the output to s (1/2)^(sigma / subsample_r).
        strategy: "basis_first" (depthwise passes over the C_in inputs, then a 1x1), "mix_first" (1x1 to
            F C_out maps, then depthwise passes and a sum), "dense" (:func:`njet_conv2d_dense`: one dense
            K x K kernel per in/out pair) or "auto": on a CUDA device "dense" (cuDNN's dense convolutions
            beat the memory-bound depthwise passes there: 0.41-0.51x the separable time on an H100,
            ``docs/performance.md``, GPU figures), elsewhere the separable variant with fewer depthwise channels.

    Returns:
        Output of shape (B, C_out, H', W'), H' = H and W' = W unless subsampled, in channels_last memory
        format (the input is converted: the depthwise passes are several times faster that way). Zero
        padding.

    Example:
        >>> x, a = torch.randn(2, 3, 8, 8), torch.randn(6, 3, 4)
        >>> y = njet_conv2d(x, a, 1.0)
        >>> tuple(y.shape), bool(torch.allclose(y, njet_conv2d_dense(x, a, 1.0), atol=1e-5))
        ((2, 4, 8, 8), True)
    """
    _check_njet_args(x, alphas, order)
    check_choice(strategy, "strategy", STRATEGIES)
    radius = njet_radius(sigma, k, size_rule)
    if strategy == "dense" or (strategy == "auto" and x.is_cuda):
        basis = njet_basis2d(sigma, order, radius).to(dtype=x.dtype, device=x.device)
        out = F.conv2d(x, torch.einsum("fco,fyx->ocyx", alphas.to(x.dtype), basis), padding=radius)
        return out if subsample_r is None else safe_subsample(out, sigma, subsample_r)
    c_in, c_out = alphas.shape[1], alphas.shape[2]
    taps = njet_basis1d(sigma, order, radius).to(dtype=x.dtype, device=x.device)
    indices = njet_basis_indices(order)
    if strategy == "auto":
        strategy = "basis_first" if c_in <= c_out else "mix_first"
    # depthwise 1-D passes are several times faster on channels_last tensors (oneDNN); a no-op if already so
    x = x.contiguous(memory_format=torch.channels_last)
    if strategy == "basis_first":
        along_x = [_depthwise(x, taps[i], "x") for i in range(order + 1)]
        responses = torch.cat([_depthwise(along_x[i], taps[j], "y") for i, j in indices], dim=1)
        if subsample_r is not None:
            responses = safe_subsample(responses, sigma, subsample_r)
        weight = alphas.permute(2, 0, 1).reshape(c_out, -1, 1, 1)  # input channel index f * C_in + c
        return F.conv2d(responses, weight.to(x.dtype))
    # mix_first: maps v_f = alpha_f^T x, then sum_j g_j(y) * (sum_{i} g_i(x) * v_(i,j))
    mixed = F.conv2d(x, alphas.permute(0, 2, 1).reshape(-1, c_in, 1, 1).to(x.dtype))
    out = None
    for j in range(order + 1):
        acc = None
        for f, (i, jj) in enumerate(indices):
            if jj != j:
                continue
            term = _depthwise(mixed[:, f * c_out : (f + 1) * c_out], taps[i], "x")
            acc = term if acc is None else acc + term
        term = _depthwise(acc, taps[j], "y")
        out = term if out is None else out + term
    if subsample_r is not None:
        out = safe_subsample(out, sigma, subsample_r)
    return out


njet_conv2d_dense = functools.partial(njet_conv2d, strategy="dense")
"""Reference N-Jet convolution with the dense (C_out, C_in, K, K) kernel, as the reference code does:
:func:`njet_conv2d` with ``strategy="dense"`` (same arguments and result; K^2 multiply-adds per in/out pair)."""


class NJetConv2d(nn.Module):
    """N-Jet convolution layer with one learned scale sigma = 2^s (see :func:`njet_conv2d`).

    Parameters: ``alphas`` (F, C_in, C_out), initialised N(0, ``alpha_std``^2) as in the reference code
    (std 1; the layer is meant to be followed by batch norm), and ``log2_sigma`` (a 0-d tensor, s; sigma
    = 2^s), trainable when ``learn_sigma``. Parameter count F C_in C_out + 1.

    Example:
        >>> layer = NJetConv2d(3, 8, order=2)
        >>> layer(torch.zeros(1, 3, 16, 16)).shape, layer.kernel_size, sum(p.numel() for p in layer.parameters())
        (torch.Size([1, 8, 16, 16]), 5, 145)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        order: int = 2,
        k: float = 2.0,
        size_rule: SizeRule = "paper",
        init_sigma: float = 1.0,
        learn_sigma: bool = True,
        subsample_r: float | None = None,
        alpha_std: float = 1.0,
        strategy: Strategy = "auto",
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.order = _check_order(order)
        self.k = check_positive(k, "k (N-Jet kernel extent in sigmas)")
        self.size_rule = check_choice(size_rule, "size_rule", SIZE_RULES)
        self.subsample_r = None if subsample_r is None else check_positive(subsample_r, "subsample_r")
        self.strategy = check_choice(strategy, "strategy", STRATEGIES)
        init_sigma = check_positive(init_sigma, "init_sigma")
        self.alphas = nn.Parameter(torch.randn(njet_num_basis(order), in_channels, out_channels) * alpha_std)
        self.log2_sigma = nn.Parameter(torch.tensor(math.log2(init_sigma)), requires_grad=learn_sigma)

    @property
    def sigma(self) -> Tensor:
        """sigma = 2^s, a 0-d tensor carrying the gradient."""
        return 2.0**self.log2_sigma

    @property
    def kernel_size(self) -> int:
        """Current kernel size 2r+1 (follows sigma)."""
        return 2 * njet_radius(self.sigma, self.k, self.size_rule) + 1

    def forward(self, x: Tensor) -> Tensor:
        return njet_conv2d(
            x,
            self.alphas,
            self.sigma,
            order=self.order,
            k=self.k,
            size_rule=self.size_rule,
            subsample_r=self.subsample_r,
            strategy=self.strategy,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, order={self.order}, sigma={float(self.sigma.detach()):.4g}, "
            f"k={self.k:g}, size_rule={self.size_rule!r}, kernel_size={self.kernel_size}, "
            f"learn_sigma={self.log2_sigma.requires_grad}, subsample_r={self.subsample_r}"
        )
