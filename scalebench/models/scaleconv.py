r"""Scale-equivariant layers on tensors shaped (B, C, S, H, W), shared by SESN, DISCO and DSS.

A feature map on the scale-translation group is a tensor (B, C, S, H, W): S scale channels, the same C
feature channels at every scale. The layers here are basis-agnostic: a kernel at scale s is a linear
combination of fixed basis functions at that scale, with coefficients learned once and shared by every scale.

- :class:`ScaleLiftingConv` (Z2 -> scale group): (B, I, H, W) -> (B, O, S, H, W),

  .. math:: y_{o,s} = b_o + \sum_i \sum_f w_{o,i,f}\; (x_i \star \psi_{s,f})

  with the basis :math:`\psi` a tensor (S, F, k, k) (Sosnovik, Szmaja & Smeulders 2020, ICLR: a
  kernel :math:`\kappa_\sigma = \sum_f w_f \psi_{\sigma, f}` expanded in a steerable basis).
- :class:`ScaleConv` (scale group -> scale group): (B, I, S, H, W) -> (B, O, S, H, W),

  .. math:: y_{o,s} = b_o + \sum_i \sum_{j=0}^{K-1} \sum_f w_{o,i,j,f}\; (x_{i,s+j} \star \psi_{s,f})

  with the "scale kernel size" K mixing K neighbouring scales (inputs beyond the last scale are zeros,
  as in the SESN code); K = 1 is the per-scale convolution used by the SESN/DISCO MNIST models.
- :class:`DilatedScaleConv` (DSS, Worrall & Welling 2019, NeurIPS): the same scale mixing with a
  learned k x k kernel dilated by :math:`\text{base}^s` at scale s (no basis: the dilation is done by
  ``conv2d``, so the cost does not grow with the dilation).
- batch norm over C shared across scales (``nn.BatchNorm3d`` on (B, C, S, H, W)), spatial pooling per
  scale (:func:`scale_pool2d`), the scale max-projection :math:`\max_s` (:func:`scale_max_projection`).
- :class:`ScaleEquivariantCNN`: the small network of the three peers (convolutions, ReLU, pooling, batch
  norm, max-projection over scales, global spatial pooling, an MLP head), with the scale-selection
  interface of the benchmark (``channel_sigmas``, ``scale_channel_logits``, ``forward_with_selection``).

Every convolution zero-pads to keep H x W ("same" size, stride 1).

References:
    - I. Sosnovik, M. Szmaja, A. Smeulders (2020), "Scale-equivariant steerable networks", ICLR 2020
      (arXiv 1910.11093).
    - I. Sosnovik, A. Moskalev, A. Smeulders (2021), "DISCO: accurate discrete scale convolutions",
      BMVC 2021 (arXiv 2106.02733).
    - D. E. Worrall, M. Welling (2019), "Deep scale-spaces: equivariance over scale", NeurIPS 2019
      (arXiv 1905.11697).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalebench.checks import ScalebenchError, check_choice, check_shape

SpatialPool = Literal["max", "avg"]
SPATIAL_POOLS: tuple[str, ...] = ("max", "avg")


def _check_basis(basis: Tensor) -> None:
    if basis.dim() != 4 or basis.shape[-1] != basis.shape[-2] or basis.shape[-1] % 2 == 0:
        raise ScalebenchError(
            f"a scale basis must be a tensor (S, F, k, k) with an odd kernel size k, got shape {tuple(basis.shape)}."
        )


def _check_scale_input(x: Tensor, channels: int, scales: int, name: str) -> None:
    check_shape(x, "B C S H W", name)
    if x.shape[1] != channels or x.shape[2] != scales:
        raise ScalebenchError(
            f"{name} has {x.shape[1]} channels and {x.shape[2]} scales, the layer takes {channels} channels "
            f"and {scales} scales; shape {tuple(x.shape)} (B, C, S, H, W)."
        )


def scale_windows(x: Tensor, size: int) -> Tensor:
    """Stack the scale neighbourhoods s .. s+size-1 of every scale s: (B, C, S, H, W) -> (B, S, size*C, H, W).

    Scales beyond the last are zeros (the SESN code pads the scale axis with zeros at the end); the channel
    index of the result is j * C + c for neighbour j and input channel c.

    Example:
        >>> x = torch.arange(3.0).view(1, 1, 3, 1, 1)
        >>> scale_windows(x, 2).flatten().tolist()
        [0.0, 1.0, 1.0, 2.0, 2.0, 0.0]
    """
    b, c, s, h, w = x.shape
    if size == 1:
        return x.transpose(1, 2)
    padded = F.pad(x, (0, 0, 0, 0, 0, size - 1))
    win = torch.stack([padded[:, :, j : j + s] for j in range(size)], 1)  # (B, size, C, S, H, W)
    return win.permute(0, 3, 1, 2, 4, 5).reshape(b, s, size * c, h, w)


# ---------------------------------------------------------------------------------------------------------
# "same" convolutions with large kernels


ConvMethod = Literal["auto", "direct", "fft"]
CONV_METHODS: tuple[str, ...] = ("auto", "direct", "fft")

#: Basis layers with kernels at least this large run by FFT on the CPU (:func:`conv2d_same`, method ``auto``).
FFT_MIN_KERNEL = 9


def _fft_size(n: int) -> int:
    """The smallest m >= n of the form 2^a 3^b 5^c (fast FFT lengths)."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


class _DirectConvSame(torch.autograd.Function):
    r"""``conv2d`` with dilation d and zero padding d (k//2) whose weight gradient is itself one grouped ``conv2d``.

    On the CPU, torch's own backward of a 15 x 15 convolution took 4-5x longer than this (batch 32, a 1 -> 32
    lifting at 72 x 72: 1153 against 215 ms; measured on this project's 2-core CPU): the weight gradient
    :math:`\partial L/\partial w_{o,i}(u) = \sum_{b,p} x_{b,i}(p + d u - d k/2)\, g_{b,o}(p)` is a correlation of
    the padded input with the output gradient at stride d, computed here with the batch as the channel axis.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, groups: int, dilation: int) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.groups, ctx.dilation = groups, dilation
        return F.conv2d(
            x, weight, padding=dilation * (weight.shape[-1] // 2), dilation=dilation, groups=groups
        )

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        g, d = ctx.groups, ctx.dilation
        p = d * (weight.shape[-1] // 2)
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = F.conv_transpose2d(grad, weight, padding=p, dilation=d, groups=g)
        if ctx.needs_input_grad[1]:
            b, gi, h, w = x.shape
            i, o = gi // g, weight.shape[0] // g
            xp = F.pad(x, (p, p, p, p)).view(b, g, i, h + 2 * p, w + 2 * p)
            xx = xp.permute(2, 1, 0, 3, 4).reshape(i, g * b, h + 2 * p, w + 2 * p)
            gg = grad.reshape(b, g, o, h, w).permute(1, 2, 0, 3, 4).reshape(g * o, b, h, w)
            gw = F.conv2d(xx, gg, stride=d, groups=g).transpose(0, 1).contiguous()  # (G*O, I, k, k)
        return gx, gw, None, None


def _fft_conv_same(x: Tensor, weight: Tensor, groups: int) -> Tensor:
    r"""``conv2d(x, weight, padding=k//2, groups=groups)`` through real FFTs of size >= H + k - 1 (no wrap-around).

    Cross-correlation with w is the convolution with the flipped kernel; the full linear convolution is cropped
    to the "same" window from k//2. Costs do not grow with k^2: for a 32 -> 63 scale convolution with 15 x 15
    kernels at 36 x 36 (4 scales, batch 32) forward + backward took 2.2 s against 12-22 s for ``conv2d`` on
    this project's 2-core CPU. Half-precision inputs are computed in float32.
    """
    b, _, h, w = x.shape
    go, i, k, _ = weight.shape
    o = go // groups
    hp, wp = _fft_size(h + k - 1), _fft_size(w + k - 1)
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    spec_x = torch.fft.rfft2(xf.reshape(b, groups, i, h, w), s=(hp, wp))
    spec_w = torch.fft.rfft2(weight.to(xf.dtype).flip(-1, -2).reshape(groups, o, i, k, k), s=(hp, wp))
    spec_y = torch.einsum("bgihw,goihw->bgohw", spec_x, spec_w)
    y = torch.fft.irfft2(spec_y, s=(hp, wp))[..., k // 2 : k // 2 + h, k // 2 : k // 2 + w]
    return y.reshape(b, go, h, w)


def _in_dispatch_mode() -> bool:
    """Whether a torch dispatch mode (a FLOP counter, fake tensors) is active."""
    try:
        from torch.utils._python_dispatch import is_in_torch_dispatch_mode
    except ImportError:  # pragma: no cover - older torch
        return False
    return bool(is_in_torch_dispatch_mode())


def conv2d_same(
    x: Tensor, weight: Tensor, *, groups: int = 1, dilation: int = 1, method: ConvMethod = "direct"
) -> Tensor:
    """Cross-correlation with zero padding d (k//2) (output H x W), as
    ``F.conv2d(x, weight, padding=d * (k//2), dilation=d, groups=groups)``.

    ``method``: ``direct`` (``conv2d``; on the CPU with the faster weight gradient of :class:`_DirectConvSame`),
    ``fft`` (:func:`_fft_conv_same`, dilation 1 only), or ``auto`` (``fft`` on the CPU for undilated kernels
    of at least :data:`FFT_MIN_KERNEL` pixels with more than one input channel per group, else ``direct``).
    All give the same values up to float rounding (about 1e-6 relative). Under a torch dispatch mode (the FLOP
    counter of :mod:`scalebench.models.flops`) it is plain ``conv2d``, so FLOPs are those of the direct
    convolution (the FFT path would count only its frequency-domain products, not the transforms).
    """
    check_choice(method, "method", CONV_METHODS)
    k = weight.shape[-1]
    if _in_dispatch_mode():  # e.g. torch.utils.flop_counter: count the convolution, not FFT internals
        return F.conv2d(x, weight, padding=dilation * (k // 2), dilation=dilation, groups=groups)
    if method == "auto":
        big = k >= FFT_MIN_KERNEL and weight.shape[1] > 1 and dilation == 1
        method = "fft" if big and x.device.type == "cpu" else "direct"
    if method == "fft":
        if dilation != 1:
            raise ScalebenchError(
                f"method 'fft' computes undilated convolutions only, got dilation {dilation}."
            )
        return _fft_conv_same(x, weight, groups).to(x.dtype)
    if x.device.type == "cpu" and (x.requires_grad or weight.requires_grad):
        return _DirectConvSame.apply(x, weight, groups, dilation)
    return F.conv2d(x, weight, padding=dilation * (k // 2), dilation=dilation, groups=groups)


class _BasisConv(nn.Module):
    """What :class:`ScaleLiftingConv` and :class:`ScaleConv` hold alike: the checked ``method``, the channel
    counts, the basis (S, F, k, k) as a buffer, the weights (O, I, *axes, F) (``kaiming_uniform_``, a = sqrt(5))
    and the bias (zeros, or None)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        basis: Tensor,
        axes: tuple[int, ...],
        bias: bool,
        method: str,
    ) -> None:
        super().__init__()
        _check_basis(basis)
        self.method = check_choice(method, "method", CONV_METHODS)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.register_buffer("basis", basis.detach().clone().float())
        self.num_scales, self.num_functions, self.kernel_size = (int(n) for n in basis.shape[:3])
        self.weight = nn.Parameter(
            torch.empty(self.out_channels, self.in_channels, *axes, self.num_functions)
        )
        self.bias = nn.Parameter(torch.zeros(self.out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))


class ScaleLiftingConv(_BasisConv):
    r"""Lifting convolution Z2 -> scale group with a fixed basis: (B, I, H, W) -> (B, O, S, H, W).

    :math:`y_{o,s} = b_o + \sum_{i,f} w_{o,i,f}\,(x_i \star \psi_{s,f})` (cross-correlation, zero padding
    k//2). The basis (S, F, k, k) is a buffer; the weights (O, I, F) are initialised as the SESN code does
    (``kaiming_uniform_`` with a = sqrt(5), i.e. torch's default for convolutions), the bias at zero.
    ``method``: how the convolution is computed (:func:`conv2d_same`; the values do not depend on it).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        basis: Tensor,
        *,
        bias: bool = True,
        method: ConvMethod = "auto",
    ) -> None:
        super().__init__(in_channels, out_channels, basis, (), bias, method)

    def kernels(self) -> Tensor:
        """The synthesised kernels (O, S, I, k, k)."""
        return torch.einsum("oif,sfhw->osihw", self.weight, self.basis.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        check_shape(x, "B C H W")
        k = self.kernel_size
        kernel = self.kernels().reshape(self.out_channels * self.num_scales, self.in_channels, k, k)
        y = conv2d_same(x, kernel.to(x.dtype), method=self.method)  # channel o * S + s: no permute needed
        y = y.view(x.shape[0], self.out_channels, self.num_scales, *y.shape[-2:])
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1, 1).to(y.dtype)
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}->{self.out_channels}, scales={self.num_scales}, "
            f"functions={self.num_functions}, kernel_size={self.kernel_size}"
        )


class ScaleConv(_BasisConv):
    r"""Scale convolution scale group -> scale group with a fixed basis: (B, I, S, H, W) -> (B, O, S, H, W).

    :math:`y_{o,s} = b_o + \sum_{i,j,f} w_{o,i,j,f}\,(x_{i,s+j} \star \psi_{s,f})`, j = 0..K-1
    (``scale_kernel_size`` K; zeros beyond the last scale). Computed as one grouped ``conv2d`` with S groups.
    Weights (O, I, K, F), initialised like :class:`ScaleLiftingConv`; ``method`` as there.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        basis: Tensor,
        *,
        scale_kernel_size: int = 1,
        bias: bool = True,
        method: ConvMethod = "auto",
    ) -> None:
        if int(scale_kernel_size) < 1:
            raise ScalebenchError(f"scale_kernel_size must be >= 1, got {scale_kernel_size!r}.")
        super().__init__(in_channels, out_channels, basis, (int(scale_kernel_size),), bias, method)
        self.scale_kernel_size = int(scale_kernel_size)

    def kernels(self) -> Tensor:
        """The synthesised kernels (S, O, K, I, k, k)."""
        return torch.einsum("oijf,sfhw->sojihw", self.weight, self.basis.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        _check_scale_input(x, self.in_channels, self.num_scales, "ScaleConv input")
        b, _, s, h, w = x.shape
        k, kk = self.kernel_size, self.scale_kernel_size
        kernel = self.kernels().reshape(s * self.out_channels, kk * self.in_channels, k, k)
        xs = scale_windows(x, kk).reshape(b, s * kk * self.in_channels, h, w)
        y = conv2d_same(xs, kernel.to(x.dtype), groups=s, method=self.method)
        y = y.view(b, s, self.out_channels, h, w).transpose(1, 2)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1, 1).to(y.dtype)
        return y.contiguous()

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}->{self.out_channels}, scales={self.num_scales}, "
            f"scale_kernel_size={self.scale_kernel_size}, functions={self.num_functions}, "
            f"kernel_size={self.kernel_size}"
        )


class DilatedScaleConv(nn.Module):
    r"""Semigroup scale convolution with dilated kernels (DSS): (B, I, S, H, W) -> (B, O, S, H, W).

    .. math:: y_{o,s}(x) = b_o + \sum_{i,j} \sum_{u} w_{o,i,j}(u)\; x_{i,s+j}(x + \text{base}^s u)

    u on the k x k grid (Worrall & Welling 2019, NeurIPS: the semigroup scale-space correlation,
    where the kernel at scale s is the kernel of scale 0 dilated by base^s). Padding base^s (k//2) keeps
    H x W. Weights (O, K, I, k, k) initialised He-normal, std sqrt(2 / (k^2 K I)), as the DSS code.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_scales: int,
        *,
        base: int = 2,
        scale_kernel_size: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ScalebenchError(f"kernel_size must be an odd integer >= 1, got {kernel_size!r}.")
        if int(base) < 2:
            raise ScalebenchError(f"the dilation base must be an integer >= 2, got {base!r}.")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.num_scales, self.base = int(kernel_size), int(num_scales), int(base)
        self.scale_kernel_size = int(scale_kernel_size)
        k, kk = self.kernel_size, self.scale_kernel_size
        self.weight = nn.Parameter(torch.empty(self.out_channels, kk, self.in_channels, k, k))
        self.bias = nn.Parameter(torch.zeros(self.out_channels)) if bias else None
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / (k * k * kk * self.in_channels)))

    @property
    def dilations(self) -> list[int]:
        """base^s for s = 0..S-1."""
        return [self.base**s for s in range(self.num_scales)]

    def forward(self, x: Tensor) -> Tensor:
        _check_scale_input(x, self.in_channels, self.num_scales, "DilatedScaleConv input")
        kk, k = self.scale_kernel_size, self.kernel_size
        xs = scale_windows(x, kk)  # (B, S, K*I, H, W)
        weight = self.weight.reshape(self.out_channels, kk * self.in_channels, k, k).to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        y = torch.stack([conv2d_same(xs[:, i], weight, dilation=d) for i, d in enumerate(self.dilations)], 2)
        return y if bias is None else y + bias.view(1, -1, 1, 1, 1)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}->{self.out_channels}, kernel_size={self.kernel_size}, "
            f"dilations={self.dilations}, scale_kernel_size={self.scale_kernel_size}"
        )


def basis_scale_convs(
    in_channels: int, widths: Sequence[int], basis: Tensor, scale_kernel_size: int = 1
) -> list[nn.Module]:
    """The scale convolutions of a network on one steerable basis (SESN, DISCO): a lifting convolution from the
    image to ``widths[0]`` channels, then a scale convolution between each pair of consecutive widths."""
    convs: list[nn.Module] = [ScaleLiftingConv(in_channels, widths[0], basis)]
    for a, b in itertools.pairwise(widths):
        convs.append(ScaleConv(a, b, basis, scale_kernel_size=scale_kernel_size))
    return convs


def scale_max_projection(x: Tensor) -> Tensor:
    """Max over the scale axis: (B, C, S, H, W) -> (B, C, H, W) (SESN's ``SESMaxProjection``)."""
    return x.amax(2)


def scale_pool2d(x: Tensor, size: int, mode: SpatialPool = "max") -> Tensor:
    """Spatial pooling (window and stride ``size``, ceil mode) of every scale: (B, C, S, H, W) -> (B, C, S, H', W')."""
    b, c, s, h, w = x.shape
    flat = x.reshape(b, c * s, h, w)
    if mode == "max":
        y = F.max_pool2d(flat, size, ceil_mode=True)
    else:
        y = F.avg_pool2d(flat, size, ceil_mode=True, count_include_pad=False)
    return y.view(b, c, s, *y.shape[-2:])


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Run ``module`` in eval mode (batch-norm running statistics, no dropout), then restore its mode."""
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


class ScaleEquivariantCNN(nn.Module):
    r"""The small scale-equivariant CNN of the SESN, DISCO and DSS models of the zoo.

    ``x -> stem (optional, parameter-free, e.g. DSS's Gaussian lifting) -> conv_0 -> [ReLU -> pool (layers in
    pool_after) -> BatchNorm3d -> conv_l] ... -> max over scales -> ReLU -> global spatial pooling -> head``,
    head = ``BatchNorm1d -> Linear(C, hidden, no bias) -> BatchNorm1d -> ReLU -> Dropout -> Linear(hidden, K)``
    (``hidden = 0``: ``BatchNorm1d -> Dropout -> Linear(C, K)``), the layout of the authors' MNIST models
    (``ISosnovik/sesn``: ``models/mnist_ses.py``, ``mnist_dss.py``; ``ISosnovik/disco``:
    ``models/mnist_disco_models.py``) made fully convolutional: their last spatial max pooling to 2 x 2 and
    flattening (4 C inputs to the first linear layer) become a global pooling (C inputs), so the network runs
    at any input size.

    Scale selection: :meth:`scale_channel_logits` applies the head to each scale slice of the last layer
    (ReLU, global pooling, head; in eval mode, so the call never changes the running statistics) before the
    max-projection; the winner of :meth:`forward_with_selection` is the scale holding the largest of those
    logits, and its logits are those of :meth:`forward` (max-projection first, as the papers do). With
    ``global_pool="max"`` the pooled features of :meth:`forward` are exactly the max over scales of the
    per-scale pooled features (ReLU, max over scales and the spatial max commute).

    Args:
        make_convs: ``make_convs(widths, scale_kernel_size)`` makes the scale convolutions, one per width; the
            first takes the (stem's) input, the others (B, C, S, H, W).
        channel_sigmas: the scale of each scale channel (what :attr:`channel_sigmas` reports).
        spatial_pool: the pooling after the layers in ``pool_after``.
        stem: a parameter-free module applied first (None: the first conv lifts the image itself).

    The keywords from ``widths`` on are the config that the SESN, DISCO and DSS networks share (with the
    defaults of the authors' MNIST models); they take them through
    :func:`~scalebench.models.keywords.takes_keywords_of`.
    """

    def __init__(
        self,
        make_convs: Callable[[list[int], int], Sequence[nn.Module]],
        *,
        num_classes: int,
        channel_sigmas: Sequence[float],
        spatial_pool: SpatialPool,
        stem: nn.Module | None = None,
        widths: Sequence[int] = (32, 63, 95),
        scale_kernel_size: int = 1,
        pool_after: Sequence[int] = (0, 1),
        global_pool: SpatialPool = "max",
        hidden: int = 256,
        dropout: float = 0.7,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        convs = make_convs(widths, int(scale_kernel_size))
        if len(convs) != len(widths) or not convs:
            raise ScalebenchError(f"one width per convolution is needed, got {len(widths)} for {len(convs)}.")
        bad = [int(i) for i in pool_after if not 0 <= int(i) < len(widths) - 1]
        if bad:
            raise ScalebenchError(
                f"pool_after lists layers {bad}; pooling follows one of the layers 0..{len(widths) - 2} "
                "(every layer but the last)."
            )
        self.spatial_pool = check_choice(spatial_pool, "spatial_pool", SPATIAL_POOLS)
        self.global_pool = check_choice(global_pool, "global_pool", SPATIAL_POOLS)
        self.pool_after = frozenset(int(i) for i in pool_after)
        self.stem = stem
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(nn.BatchNorm3d(int(w)) for w in widths[:-1])
        self.channel_sigmas = [
            float(s) for s in channel_sigmas
        ]  # the scale of each scale channel (the card's)
        c = int(widths[-1])
        hidden = int(hidden)
        if hidden > 0:
            layers: list[nn.Module] = [
                nn.BatchNorm1d(c),
                nn.Linear(c, hidden, bias=False),
                nn.BatchNorm1d(hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(hidden, num_classes),
            ]
        else:
            layers = [nn.BatchNorm1d(c), nn.Dropout(dropout), nn.Linear(c, num_classes)]
        self.head = nn.Sequential(*layers)

    @property
    def num_scales(self) -> int:
        return len(self.channel_sigmas)

    def scale_features(self, x: Tensor) -> Tensor:
        """The last scale convolution's output (B, C, S, H', W'), before ReLU and the max-projection."""
        check_shape(x, "B C H W")
        y = self.stem(x) if self.stem is not None else x
        for i, conv in enumerate(self.convs):
            if i > 0:
                y = torch.relu(y)
                if i - 1 in self.pool_after:
                    y = scale_pool2d(y, 2, self.spatial_pool)
                y = self.norms[i - 1](y)
            y = conv(y)
        return y

    def _global_pool(self, y: Tensor) -> Tensor:
        return y.amax((-2, -1)) if self.global_pool == "max" else y.mean((-2, -1))

    def _logits_from(self, feats: Tensor) -> Tensor:
        return self.head(self._global_pool(torch.relu(scale_max_projection(feats))))

    def _per_scale_logits(self, feats: Tensor) -> Tensor:
        b, c, s = feats.shape[:3]
        pooled = self._global_pool(torch.relu(feats))  # (B, C, S)
        with _eval_mode(self.head):
            out = self.head(pooled.permute(2, 0, 1).reshape(s * b, c))
        return out.view(s, b, -1)

    def forward(self, x: Tensor) -> Tensor:
        return self._logits_from(self.scale_features(x))

    def scale_channel_logits(self, x: Tensor) -> Tensor:
        """Class scores of each scale channel (S, B, K): the head applied to each scale slice (eval mode)."""
        return self._per_scale_logits(self.scale_features(x))

    def forward_with_selection(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(logits (B, K) of :meth:`forward`, winning scale channel LongTensor[B]: the channel whose
        per-scale logits hold the largest value)."""
        feats = self.scale_features(x)
        per_scale = self._per_scale_logits(feats.detach())
        return self._logits_from(feats), per_scale.amax(-1).argmax(0)
