r"""SI-ConvNet and SiCNN: two early peers that handle scale by rescaling, re-implemented from the papers.

- ``si_convnet``: Kanazawa, Sharma, Jacobs (2014), "Locally scale-invariant convolutional neural networks",
  NIPS 2014 Deep Learning Workshop (arXiv 1412.5104). Every convolution becomes an SI-convolution
  (:class:`SIConv2d`): the input is rescaled to S scales, convolved with the *same* kernel, each response is
  rescaled back to the input's canvas, and the maximum over scales is taken per pixel and channel:

  .. math:: y = \max_{s \in \{s_1..s_S\}} Z_{1/s}\big(W * Z_s(x)\big)

  with :math:`Z_s` the zoom by s about the canvas centre that keeps the canvas size (:func:`zoom_keep_size`).
  No parameter is added: the network has the parameter count of the plain CNN with the same widths.

- ``sicnn``: Xu, Xiao, Zhang, Yang, Zhang (2014), "Scale-invariant convolutional neural networks",
  arXiv 1411.6369. A multi-column network: column j is the same CNN with every *kernel* rescaled by s_j
  (:func:`rescale_kernel`: :math:`K_j(u) = c_j \tilde W(u / s_j)`, :math:`\tilde W` the interpolant of the
  learned kernel, :math:`c_j = 1/s_j^2` by default, or restoring the L1 norm of each kernel slice as the
  re-implementations do: ``kernel_norm="l1"``), each column ends in the class
  layer and global pooling, and the columns' class scores are max-pooled. Kernels are shared by all columns;
  batch norms are per column (as in the MIT re-implementation, ``BatchNorm2d(C * S)``).

Both networks follow the layout of the zoo's plain ``cnn`` (3x3 kernels, widths 16-16-24-24-32, batch norm,
ReLU, 2x2 max pooling after layers 1 and 3, a 3x3 class layer, global average pooling), so that the only
difference to the baseline is the scale mechanism. The original networks differ (sesn's MNIST re-implementation:
three 7x7 layers of 32, 63, 95 channels, max pooling, batch norm after the pooling, a 256-unit
fully-connected layer with dropout 0.7).

Facts taken from the MIT-licensed re-implementations (read for facts only, no code copied):
``ISosnovik/sesn`` ``models/impl/scale_modules.py``, ``models/mnist_kanazawa.py``, ``models/mnist_xu.py``,
``models/stl_kanazawa.py``, ``models/stl_xu.py`` (MIT, (c) 2020 Sosnovik, Szmaja) and
``taltstidl/scale-equivariant-cnn`` ``siconvnet/contrib/kanazawa.py``, ``siconvnet/contrib/xu.py`` (MIT,
(c) 2022 Altstidl): the scale lists (MNIST [0.3, 0.45, 0.67, 1, 1.49, 2.23, 3.33]; STL-10 [0.5, 1, 2] for
SI-ConvNet, [0.67, 1, 1.5] for SiCNN); bilinear rescaling with zero padding to the input's size; max over
scales; kernel rescaling with the L1 norm of each kernel slice restored; max over columns at the end.

Choices the papers leave open here (all recorded in the cards' notes, marked unverified): the default scales
(scalebench's factor-4 test range, [0.5, 0.71, 1, 1.41, 2]), ``align_corners=False`` (the re-implementations
use True), no antialiasing, the kernel interpolant (bilinear; the re-implementations upscale kernels by
nearest neighbour) and its normalisation (1/s^2, the continuous rule; the re-implementations' L1 rule makes a
kernel shrunk to 1 x 1 dominate the max over columns: measured, an untrained SiCNN's scores then follow the
1 x 1 column), the exact geometry of the rescaling (:func:`zoom_keep_size`: sizes rounded so that every crop
or pad is symmetric).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalebench.checks import ScalebenchError, check_choice, check_shape
from scalebench.models.baselines import LAYOUT_RULES, check_layout
from scalebench.models.keywords import takes_keywords_of
from scalebench.models.registry import (
    CardRecipe,
    ConfigRule,
    ModelCard,
    builder_defaults,
    register_model,
)
from scalebench.models.sesn import SESN_MNIST_TRAINING

#: Interpolation modes of :func:`torch.nn.functional.interpolate` a config may name.
INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic", "nearest", "area")
#: Modes for which ``align_corners`` and ``antialias`` mean something.
_SMOOTH_MODES: tuple[str, ...] = ("bilinear", "bicubic")
#: Kernel interpolants of SiCNN (modes of :func:`torch.nn.functional.grid_sample`).
KERNEL_INTERPOLATIONS: tuple[str, ...] = ("bilinear", "nearest", "bicubic")
#: Normalisations of a rescaled SiCNN kernel (:func:`rescale_kernel`).
KERNEL_NORMS: tuple[str, ...] = ("area", "l1")
#: Canvas padding of a zoom-out (``zeros``: the re-implementations' constant padding).
PADDINGS: tuple[str, ...] = ("zeros", "replicate")

#: The scales of scalebench's factor-4 test range (1/2 .. 2), sqrt(2) apart: the default of both models.
FACTOR4_SCALES: tuple[float, ...] = (0.5, 2**-0.5, 1.0, 2**0.5, 2.0)
#: MNIST-scale scales of the sesn re-implementations of SI-ConvNet and SiCNN (``mnist_kanazawa_28``,
#: ``mnist_xu_28``).
SESN_MNIST_SCALES: tuple[float, ...] = (0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33)
#: STL-10 scales of the sesn re-implementations: SI-ConvNet (``wrn_16_8_kanazawa``) and SiCNN (``wrn_16_8_xu``).
SESN_STL_SCALES_SI_CONVNET: tuple[float, ...] = (0.5, 1.0, 2.0)
SESN_STL_SCALES_SICNN: tuple[float, ...] = (0.67, 1.0, 1.5)

#: Most scales of one layer (each is a full convolution: time grows linearly).
MAX_SCALES = 16
#: Range of a single scale factor.
SCALE_RULE = ConfigRule(low=1 / 16, high=16, min_items=1, max_items=MAX_SCALES)


# ---------------------------------------------------------------------------------------------------------
# centred resampling with F.interpolate


def parity_round(x: float, like: int) -> int:
    """The integer nearest to ``x`` with the parity of ``like`` (at least 1 or 2), so that a region of that size
    sits symmetrically in (or around) a canvas of ``like`` pixels: ``(like - n) / 2`` is an integer.

    Example:
        >>> parity_round(16.97, 24), parity_round(16.97, 25), parity_round(0.2, 24)
        (16, 17, 2)
    """
    n = like - 2 * math.floor((like - x) / 2 + 0.5)
    smallest = 2 if like % 2 == 0 else 1
    return max(n, smallest)


def check_interpolation(mode: str, antialias: bool, name: str = "interpolation") -> str:
    """Check an interpolation mode and that ``antialias`` is only asked of bilinear or bicubic."""
    check_choice(mode, name, INTERPOLATIONS)
    if antialias and mode not in _SMOOTH_MODES:
        raise ScalebenchError(
            f"antialias=true applies to bilinear and bicubic interpolation only, got {name}={mode!r}; set "
            "antialias=false (or use 'area', which averages when it shrinks)."
        )
    return mode


def interpolate(
    x: Tensor, size: tuple[int, int], *, mode: str, align_corners: bool, antialias: bool = False
) -> Tensor:
    """:func:`torch.nn.functional.interpolate` to ``size``; ``align_corners`` and ``antialias`` are passed only
    for the modes that take them (bilinear, bicubic). Returns ``x`` itself when it already has that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode in _SMOOTH_MODES:
        return F.interpolate(x, size=size, mode=mode, align_corners=align_corners, antialias=antialias)
    return F.interpolate(x, size=size, mode=mode)


def crop_or_pad_centre(x: Tensor, size: tuple[int, int], padding: str = "zeros") -> Tensor:
    """The central ``size`` region of ``x`` (B, C, H, W): a symmetric crop, or a symmetric pad (zeros or
    replicated border). ``H - size[0]`` and ``W - size[1]`` must be even (see :func:`parity_round`)."""
    h, w = x.shape[-2:]
    dh, dw = h - size[0], w - size[1]
    if dh % 2 or dw % 2:
        raise ValueError(f"crop_or_pad_centre: {(h, w)} -> {size} is not symmetric")
    if dh > 0:
        x = x[..., dh // 2 : h - dh // 2, :]
    if dw > 0:
        x = x[..., dw // 2 : w - dw // 2]
    ph, pw = max(-dh // 2, 0), max(-dw // 2, 0)
    if ph or pw:
        x = F.pad(x, (pw, pw, ph, ph), mode="constant" if padding == "zeros" else "replicate")
    return x


def zoom_keep_size(
    x: Tensor,
    factor: float,
    *,
    mode: str = "bilinear",
    align_corners: bool = False,
    antialias: bool = False,
    padding: str = "zeros",
) -> Tensor:
    r"""Zoom ``x`` (B, C, H, W) by ``factor`` about the canvas centre, keeping H x W:
    :math:`y(p) = x(c + (p - c)/\text{factor})`.

    ``factor < 1``: the whole canvas is resized to h = ``parity_round(H * factor, H)`` rows (likewise columns)
    and padded back to H; ``factor > 1``: the central ``parity_round(H / factor, H)`` rows are cropped and
    resized to H. Sizes keep the parity of the canvas, so every crop and pad is symmetric and the centre stays
    fixed; the effective factor is h / H (or H / h), within 1 / H of ``factor``. ``zoom(zoom(x, s), 1/s)``
    uses the same h both ways, so the back-zoom is the exact geometric inverse (as SI-ConvNet needs).
    """
    if factor == 1:
        return x
    h, w = x.shape[-2:]
    if factor < 1:
        small = (parity_round(h * factor, h), parity_round(w * factor, w))
        y = interpolate(x, small, mode=mode, align_corners=align_corners, antialias=antialias)
        return crop_or_pad_centre(y, (h, w), padding)
    region = (parity_round(h / factor, h), parity_round(w / factor, w))
    y = crop_or_pad_centre(x, region, padding)
    return interpolate(y, (h, w), mode=mode, align_corners=align_corners, antialias=antialias)


def check_scales(scales: Any, named: dict[str, tuple[float, ...]], name: str = "scales") -> list[float]:
    """A list of positive scale factors, or the name of one of ``named`` (e.g. ``"sesn_mnist"``)."""
    if isinstance(scales, str):
        check_choice(scales, name, list(named))
        return list(named[scales])
    try:
        out = [float(s) for s in scales]
    except (TypeError, ValueError):
        out = []
    if not out or any(not (s > 0 and math.isfinite(s)) for s in out):
        raise ScalebenchError(
            f"{name} must be a non-empty list of positive numbers or one of {sorted(named)}, got {scales!r}."
        )
    if len(set(out)) != len(out):
        raise ScalebenchError(f"{name} lists a scale twice: {scales!r}.")
    return out


def _check_kernel_size(k: int) -> int:
    if int(k) != k or k < 1 or k % 2 == 0:
        raise ScalebenchError(f"kernel_size must be an odd positive integer, got {k!r}.")
    return int(k)


# ---------------------------------------------------------------------------------------------------------
# SI-ConvNet (Kanazawa et al. 2014)


class SIConv2d(nn.Conv2d):
    r"""Locally scale-invariant convolution (Kanazawa et al. 2014, Sect. 3):
    :math:`y = \max_s Z_{1/s}(W * Z_s(x))` with one kernel W for all scales (:func:`zoom_keep_size`).

    The S rescaled inputs are folded into the batch, so the S convolutions are one call. 'same' padding.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        scales: Sequence[float],
        *,
        bias: bool = False,
        mode: str = "bilinear",
        align_corners: bool = False,
        antialias: bool = False,
        padding: str = "zeros",
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
        self.scales = [float(s) for s in scales]
        self.zoom = {"mode": mode, "align_corners": align_corners, "antialias": antialias, "padding": padding}

    def scale_responses(self, x: Tensor) -> Tensor:
        """The response at every scale, rescaled back to the input canvas: (S, B, C_out, H, W).

        Scales >= 1 share one convolution call on the H x W canvas. A scale s < 1 with zero padding is convolved
        on the shrunk image itself (h x h, the convolution's own zero padding), which equals the central h x h of
        the convolution of the zero-padded canvas that the back-zoom reads: the same values, s^2 of the cost."""
        h, w = x.shape[-2:]
        resize = {k: v for k, v in self.zoom.items() if k != "padding"}
        out: list[Tensor | None] = [None] * len(self.scales)
        full = [i for i, s in enumerate(self.scales) if s >= 1 or self.zoom["padding"] != "zeros"]
        if full:
            b = x.shape[0]
            y = super().forward(torch.cat([zoom_keep_size(x, self.scales[i], **self.zoom) for i in full]))
            for n, i in enumerate(full):
                out[i] = zoom_keep_size(y[n * b : (n + 1) * b], 1 / self.scales[i], **self.zoom)
        for i, s in enumerate(self.scales):
            if out[i] is None:
                small = (parity_round(h * s, h), parity_round(w * s, w))
                y = super().forward(interpolate(x, small, **resize))
                out[i] = interpolate(y, (h, w), **resize)
        return torch.stack(out)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        return self.scale_responses(x).max(0).values  # max with indices: a cheaper backward than amax

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scales={[round(s, 3) for s in self.scales]}, {self.zoom}"


@takes_keywords_of(check_layout)
class SIConvNet(nn.Module):
    """SI-ConvNet in the layout of the zoo's plain ``cnn``: [SIConv2d -> BN -> ReLU (-> 2x2 max pool)] per width,
    a plain 3x3 class layer (with bias) and global pooling (see the module docstring); the layout keywords are
    those of :func:`~scalebench.models.baselines.check_layout`."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        kernel_size: int = 3,
        scales: Any = FACTOR4_SCALES,
        interpolation: str = "bilinear",
        align_corners: bool = False,
        antialias: bool = False,
        padding: str = "zeros",
        **layout: Any,
    ) -> None:
        super().__init__()
        channels, pools, self.global_pool = check_layout(**layout)
        k = _check_kernel_size(kernel_size)
        self.scales = check_scales(scales, SI_CONVNET_SCALE_SETS)
        check_interpolation(interpolation, antialias)
        check_choice(padding, "padding", PADDINGS)
        layers: list[nn.Module] = []
        prev = int(in_channels)
        for i, c in enumerate(channels):
            layers += [
                SIConv2d(
                    prev, c, k, self.scales, mode=interpolation, align_corners=align_corners,
                    antialias=antialias, padding=padding,
                ),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
            ]  # fmt: skip
            if i in pools:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            prev = c
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(prev, num_classes, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        check_shape(x, "B C H W")
        y = self.classifier(self.features(x))
        return y.mean((-2, -1)) if self.global_pool == "avg" else y.amax((-2, -1))


SI_CONVNET_SCALE_SETS: dict[str, tuple[float, ...]] = {
    "factor4": FACTOR4_SCALES,
    "sesn_mnist": SESN_MNIST_SCALES,
    "sesn_stl": SESN_STL_SCALES_SI_CONVNET,
}
"""Named scale lists a config may give instead of numbers (``scales="sesn_mnist"``)."""


# ---------------------------------------------------------------------------------------------------------
# SiCNN (Xu et al. 2014)


def kernel_support_radius(scale: float, kernel_size: int) -> int:
    r"""Radius r of the rescaled kernel (size 2r + 1): the interpolant of a k x k kernel with a zero ring is
    non-zero for :math:`|v| < (k+1)/2`, so :math:`K(u) = \tilde W(u/s)` is non-zero for
    :math:`|u| < s (k+1)/2`.

    Example:
        >>> [2 * kernel_support_radius(s, 3) + 1 for s in (0.5, 2**-0.5, 1, 2**0.5, 2)]
        [1, 3, 3, 5, 7]
    """
    return max(0, math.ceil(scale * (kernel_size + 1) / 2 - 1e-9) - 1)


def kernel_grid(scale: float, kernel_size: int) -> Tensor:
    """grid_sample coordinates (1, n, n, 2) of the points u / scale, u = -r..r, in the zero-ringed kernel
    ((k + 2) x (k + 2), align_corners=True: -1 and 1 are the centres of the ring's pixels)."""
    r = kernel_support_radius(scale, kernel_size)
    u = torch.arange(-r, r + 1, dtype=torch.float32, device="cpu") / scale / ((kernel_size + 1) / 2)
    gy, gx = torch.meshgrid(u, u, indexing="ij")
    return torch.stack([gx, gy], -1).unsqueeze(0)


def rescale_kernel(
    weight: Tensor,
    grid: Tensor,
    scale: float,
    *,
    mode: str = "bilinear",
    norm: str = "area",
    eps: float = 1e-12,
) -> Tensor:
    r"""The kernel rescaled by ``scale`` (its ``grid``, :func:`kernel_grid`), :math:`K(u) = c\,\tilde W(u/s)`.

    ``norm="area"``: :math:`c = 1/s^2`, the continuous rule under which the rescaled kernel's response to the
    rescaled image equals the original response at corresponding points (the integral of the kernel is kept).
    ``norm="l1"``: :math:`c = \lVert W\rVert_1 / \lVert \tilde W(\cdot/s)\rVert_1` per (out, in) slice (the
    re-implementations' rule; for a kernel shrunk to 1 x 1 it puts the whole L1 mass of a mixed-sign kernel into
    one same-signed weight, so that column's response to smooth images dwarfs the others').

    ``weight`` (O, I, k, k) -> (O, I, n, n), n = 2 r + 1. Differentiable in ``weight``.
    """
    o, i, k, _ = weight.shape
    flat = F.pad(weight.reshape(o * i, 1, k, k), (1, 1, 1, 1))
    g = grid.to(weight.dtype).expand(o * i, -1, -1, -1)
    out = F.grid_sample(flat, g, mode=mode, padding_mode="zeros", align_corners=True)
    n = out.shape[-1]
    out = out.reshape(o, i, n, n)
    if norm == "area":
        return out / scale**2
    l1 = weight.abs().sum((-2, -1), keepdim=True)
    return out * l1 / out.abs().sum((-2, -1), keepdim=True).clamp_min(eps)


class MultiColumnConv2d(nn.Module):
    """One learned k x k kernel, rescaled for each column (:func:`rescale_kernel`); input and output are
    (S, B, C, H, W) stacks of the columns ('same' padding, so every column keeps the canvas)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        scales: Sequence[float],
        *,
        bias: bool = False,
        mode: str = "bilinear",
        norm: str = "area",
    ) -> None:
        super().__init__()
        self.kernel_size, self.scales, self.mode = int(kernel_size), [float(s) for s in scales], mode
        self.norm = norm
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's initialisation
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        for j, s in enumerate(self.scales):
            self.register_buffer(f"grid_{j}", kernel_grid(s, self.kernel_size), persistent=False)

    def kernels(self) -> list[Tensor]:
        """The kernel of every column."""
        out = []
        for j, s in enumerate(self.scales):
            if s == 1:
                out.append(self.weight)
            else:
                out.append(
                    rescale_kernel(self.weight, getattr(self, f"grid_{j}"), s, mode=self.mode, norm=self.norm)
                )
        return out

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack(
            [
                F.conv2d(xj, kj, self.bias, padding=kj.shape[-1] // 2)
                for xj, kj in zip(x, self.kernels(), strict=True)
            ]
        )

    def extra_repr(self) -> str:
        sizes = [2 * kernel_support_radius(s, self.kernel_size) + 1 for s in self.scales]
        return (
            f"{self.weight.shape[1]}, {self.weight.shape[0]}, kernel_size={self.kernel_size}, "
            f"scales={[round(s, 3) for s in self.scales]}, column kernel sizes={sizes}, mode={self.mode!r}, "
            f"norm={self.norm!r}"
        )


class ColumnBatchNorm(nn.Module):
    """Batch norm with its own statistics and affine parameters per column, on (S, B, C, H, W)."""

    def __init__(self, channels: int, columns: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels * columns)
        self.columns = columns

    def forward(self, x: Tensor) -> Tensor:
        s, b, c, h, w = x.shape
        y = self.bn(x.permute(1, 0, 2, 3, 4).reshape(b, s * c, h, w))
        return y.reshape(b, s, c, h, w).permute(1, 0, 2, 3, 4)


@takes_keywords_of(check_layout)
class SiCNN(nn.Module):
    """SiCNN (Xu et al. 2014) in the layout of the zoo's plain ``cnn``: S columns, each [kernel-rescaled conv ->
    BN (per column) -> ReLU (-> 2x2 max pool)] per width, then the rescaled 3x3 class layer and global pooling;
    the class scores are max-pooled over columns (see the module docstring). The layout keywords are those of
    :func:`~scalebench.models.baselines.check_layout`.

    ``channel_sigmas`` are the column scales (a column whose kernels are s times larger suits objects s times
    larger); ``scale_channel_logits`` gives the columns' scores (S, B, K).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        kernel_size: int = 3,
        scales: Any = FACTOR4_SCALES,
        kernel_interpolation: str = "bilinear",
        kernel_norm: str = "area",
        **layout: Any,
    ) -> None:
        super().__init__()
        channels, self.pools, self.global_pool = check_layout(**layout)
        k = _check_kernel_size(kernel_size)
        self.scales = check_scales(scales, SICNN_SCALE_SETS)
        check_choice(kernel_interpolation, "kernel_interpolation", KERNEL_INTERPOLATIONS)
        check_choice(kernel_norm, "kernel_norm", KERNEL_NORMS)
        s = len(self.scales)
        col = {"mode": kernel_interpolation, "norm": kernel_norm}
        chans = [int(in_channels), *channels]
        self.convs = nn.ModuleList(
            MultiColumnConv2d(chans[n], chans[n + 1], k, self.scales, **col) for n in range(len(channels))
        )
        self.norms = nn.ModuleList(ColumnBatchNorm(c, s) for c in channels)
        self.classifier = MultiColumnConv2d(chans[-1], int(num_classes), 3, self.scales, bias=True, **col)

    @property
    def channel_sigmas(self) -> list[float]:
        """The scale of every column (its kernels are that many times larger than the learned ones)."""
        return list(self.scales)

    def scale_channel_logits(self, x: Tensor) -> Tensor:
        """Class scores of every column, (S, B, K), before the max over columns."""
        check_shape(x, "B C H W")
        y = x.unsqueeze(0).expand(len(self.scales), *x.shape)
        for n, (conv, bn) in enumerate(zip(self.convs, self.norms, strict=True)):
            y = torch.relu(bn(conv(y)))
            if n in self.pools:
                s, b = y.shape[:2]
                y = F.max_pool2d(y.flatten(0, 1), 2, ceil_mode=True)
                y = y.reshape(s, b, *y.shape[1:])
        y = self.classifier(y)
        return y.mean((-2, -1)) if self.global_pool == "avg" else y.amax((-2, -1))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale_channel_logits(x).amax(0)

    def forward_with_selection(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(logits (B, K), winning column LongTensor[B]: the column holding the largest logit)."""
        per = self.scale_channel_logits(x)
        return per.amax(0), per.detach().amax(-1).argmax(0)


SICNN_SCALE_SETS: dict[str, tuple[float, ...]] = {
    "factor4": FACTOR4_SCALES,
    "sesn_mnist": SESN_MNIST_SCALES,
    "sesn_stl": SESN_STL_SCALES_SICNN,
}
"""Named scale lists a config may give instead of numbers (``scales="sesn_mnist"``)."""


# ---------------------------------------------------------------------------------------------------------
# registration

_COMMON_RULES: dict[str, ConfigRule] = {**LAYOUT_RULES, "kernel_size": ConfigRule(low=1, high=15)}

SI_CONVNET_RULES: dict[str, ConfigRule] = {
    **_COMMON_RULES,
    "scales": ConfigRule(
        low=SCALE_RULE.low, high=SCALE_RULE.high, max_items=MAX_SCALES, choices=tuple(SI_CONVNET_SCALE_SETS)
    ),
    "interpolation": ConfigRule(choices=INTERPOLATIONS),
    "padding": ConfigRule(choices=PADDINGS),
}
SICNN_RULES: dict[str, ConfigRule] = {
    **_COMMON_RULES,
    "scales": ConfigRule(
        low=SCALE_RULE.low, high=SCALE_RULE.high, max_items=MAX_SCALES, choices=tuple(SICNN_SCALE_SETS)
    ),
    "kernel_interpolation": ConfigRule(choices=KERNEL_INTERPOLATIONS),
    "kernel_norm": ConfigRule(choices=KERNEL_NORMS),
}

#: The quick config (the CPU lite track): narrower and shallower, pooling after layers 0 and 1 so that the S
#: rescaled convolutions run on 36 x 36 and 18 x 18 maps after the first layer; the scales are the default's.
#: Measured (72 x 72, batch 32, forward + backward, 2 threads, best of rounds interleaved with the cnn's quick
#: config on a shared CPU): see the cards' notes.
_QUICK = {"widths": (8, 12, 16), "pool_after": (0, 1)}
#: The MNIST-scale protocol under which the SESN paper compared these peers (recalled, not read): Adam, lr 0.01
#: divided by 10 every 20 epochs, 60 epochs, batch 128, the recipe of the authors' own runs
#: (:data:`~scalebench.models.sesn.SESN_MNIST_TRAINING`) without its augmentation field.
_PEER_FIELDS = {k: v for k, v in SESN_MNIST_TRAINING.fields().items() if k != "augmentation"}
_UNVERIFIED_TRAINING = CardRecipe(
    **_PEER_FIELDS,
    source="the SESN paper's MNIST-scale protocol for all peers (Sosnovik et al. 2020), recalled: the recipe of "
    "the authors' own MNIST-scale runs",
    unverified=list(_PEER_FIELDS),
)


def _sesn_stl_scales_on_rgb(scales: Sequence[float]) -> dict[str, dict[str, Any]]:
    """``dataset_configs``: the default scales on Fashion-MNIST, the sesn STL-10 scales on CIFAR-10 and STL-10."""
    return {"fashion-mnist": {}, "cifar10": {"scales": list(scales)}, "stl10": {"scales": list(scales)}}


def _peer_card(
    builder: type[nn.Module], stl_scales: tuple[float, ...], licence_note: str, **fields: Any
) -> ModelCard:
    """A card with the fields the SI-ConvNet and SiCNN cards share: the re-implementations consulted (licence),
    the builder's defaults as the config, the quick config, the sesn re-implementation's STL-10 scales on the
    RGB builds, no scale covariance, and the recalled MNIST-scale protocol as the paper recipe."""
    return ModelCard(
        licence=f"MIT (re-implementations consulted: ISosnovik/sesn, taltstidl/scale-equivariant-cnn); {licence_note}",
        default_config=builder_defaults(builder),
        quick_config=_QUICK,
        dataset_configs=_sesn_stl_scales_on_rgb(stl_scales),
        scale_covariant=False,
        paper_training=_UNVERIFIED_TRAINING,
        **fields,
    )


register_model(
    _peer_card(
        SIConvNet,
        SESN_STL_SCALES_SI_CONVNET,
        "the authors' Caffe code has no licence file and was not read",
        name="si_convnet",
        display_name="SI-ConvNet",
        family="si-convnet",
        paper=(
            "A. Kanazawa, A. Sharma, D. W. Jacobs (2014), Locally scale-invariant convolutional neural networks, "
            "NIPS 2014 Deep Learning and Representation Learning Workshop (arXiv 1412.5104)"
        ),
        bibtex_key="kanazawa2014locally",
        arxiv="1412.5104",
        code_url="https://github.com/akanazawa/si-convnet",
        num_params=21_114,
        reports_scale_selection=False,
        densify_refusal="SI-ConvNet takes the maximum over its scales inside every layer, so it has no scale "
        "channels to add: a denser scales list changes every layer's output, i.e. the network. Evaluate it with "
        "--test-channels trained, or train it with a denser scales list.",
        notes=(
            "Unofficial re-implementation from the paper (Sect. 3: rescale the input to several scales, "
            "convolve with the same kernel, rescale back, max over scales) in the layout of the zoo's plain cnn "
            "(3x3 kernels, widths 16-16-24-24-32, BN, ReLU, max pooling after layers 1 and 3, plain 3x3 class "
            "layer, global average pooling): same parameter count as cnn (21,114), S times its convolution cost. "
            "Facts from the MIT re-implementations ISosnovik/sesn models/impl/scale_modules.py, "
            "models/mnist_kanazawa.py, models/stl_kanazawa.py and taltstidl/scale-equivariant-cnn "
            "siconvnet/contrib/kanazawa.py (read for facts only): MNIST scales "
            "[0.3, 0.45, 0.67, 1, 1.49, 2.23, 3.33] (scales='sesn_mnist'), STL-10 [0.5, 1, 2] ('sesn_stl', "
            "used for cifar10/stl10), bilinear rescaling, zero padding, canvas kept, max over scales. "
            "Unverified / scalebench's choices: default scales [0.5, 0.71, 1, 1.41, 2] (the factor-4 test "
            "range, sqrt 2 apart); align_corners=false (the re-implementations use true); no antialiasing; "
            "sizes of the rescaled canvases rounded to the canvas parity so that crops and pads are symmetric "
            "(effective scale within 1/H of the nominal one); the paper's own scales, kernel sizes and "
            "interpolation could not be read. Training recipe: the sesn MNIST protocol, unverified here. "
            "Quick config: widths 8-12-16, pooling after layers 0 and 1 (scales unchanged). Quick config speed (72x72, batch 32, forward+backward, 2 threads, best of 6 rounds interleaved with the cnn's quick config on a 2-core CPU shared with a training job, cnn quick 90 img/s in that run): 35 img/s "
            "(0.38 x cnn). One layer (7x7, 32 -> 32 + BN, 50,272 parameters, the count of Rahman & Yeh's timing "
            "table) at batch 200, 28x28, forward+backward on this CPU: 4.5 s with the 7 MNIST scales (plain "
            "conv: 0.63 s; their table, other hardware: 0.200 s)."
        ),
    ),
    rules=SI_CONVNET_RULES,
)(SIConvNet)

register_model(
    _peer_card(
        SiCNN,
        SESN_STL_SCALES_SICNN,
        "no official code",
        name="sicnn",
        display_name="SiCNN",
        family="sicnn",
        paper=(
            "Y. Xu, T. Xiao, J. Zhang, K. Yang, Z. Zhang (2014), Scale-invariant convolutional neural "
            "networks, arXiv 1411.6369"
        ),
        bibtex_key="xu2014scale",
        arxiv="1411.6369",
        code_url=None,
        num_params=22_010,
        reports_scale_selection=True,
        densify_refusal="SiCNN's columns have batch norms of their own (statistics and affine parameters per "
        "column), so a column between two trained ones would have no trained normalisation. Evaluate it with "
        "--test-channels trained, or train it with a denser scales list.",
        notes=(
            "Unofficial re-implementation from the paper (multi-column network whose columns share one set of "
            "filters, rescaled per column; max over columns) in the layout of the zoo's plain cnn. Each layer "
            "learns 3x3 kernels; column j uses K_j(u) = c_j W~(u / s_j) (W~ the bilinear interpolant of the "
            "kernel with a zero ring, sampled by grid_sample; c_j = 1/s_j^2, the continuous rule that keeps "
            "the response to a correspondingly rescaled image; kernel_norm='l1' restores the L1 norm of each "
            "kernel slice instead, as the re-implementations do), "
            "so the default columns have kernels of 1, 3, 3, 5, 7 pixels. Batch norm per column (as the "
            "re-implementation's BatchNorm2d(C*S)): 22,010 parameters against cnn's 21,114. Class scores "
            "are max-pooled over columns; the winning column is the scale selection (channel_sigmas = column "
            "scales). Facts from the MIT re-implementations ISosnovik/sesn models/impl/scale_modules.py "
            "(XU_SIConv2d), models/mnist_xu.py, models/stl_xu.py and taltstidl/scale-equivariant-cnn "
            "siconvnet/contrib/xu.py (read for facts only): MNIST scales [0.3 .. 3.33] ('sesn_mnist'), "
            "STL-10 [0.67, 1, 1.5] ('sesn_stl'), L1-norm-preserving kernel rescaling (bilinear down, nearest "
            "up), columns pooled by max at the end. Unverified / scalebench's choices: default scales "
            "[0.5, 0.71, 1, 1.41, 2]; the 1/s^2 normalisation (with the L1 rule an untrained network's scores "
            "follow the 1x1 column, whose kernels carry the whole L1 mass in one same-signed weight); bilinear "
            "interpolant for up- and down-scaling (the re-implementations "
            "upscale by nearest neighbour, which they say gives the paper's minimum-norm solution); columns "
            "pooled on class scores (the sesn re-implementation pools features before a shared linear layer); "
            "kernel support radius ceil(s (k+1)/2) - 1. A 1x1 column kernel (scale 0.5 of a 3x3 kernel) keeps "
            "only the centre weight: small kernels cannot be shrunk much. Measured covariance of a layer "
            "(tests/models/test_rescaling_peers.py): column 2 on an image enlarged by 2 matches column 1 within "
            "0.034 (the same column: 0.50); the sqrt 2 pair 1 -> 1.41 only within 0.20-0.69. The paper calls the "
            "network scale-invariant; with pooling fixed in pixels and 3x3 kernels it is not measurably so at "
            "initialisation (pooled scores on an image and its sqrt 2 enlargement: 0.70, the plain cnn 0.48-0.72), "
            "hence scale_invariant=false here. Quick config: widths 8-12-16, pooling after layers 0 and 1 (scales "
            "unchanged). Quick config speed (72x72, batch 32, forward+backward, 2 threads, best of 6 rounds interleaved with the cnn's quick config on a 2-core CPU shared with a training job, cnn quick 90 img/s in that run): 27 img/s (0.30 x cnn). One layer (7x7, 32 -> 32, per-column BN) at "
            "batch 200, 28x28, forward+backward: 12.2 s with the default 5 scales (kernels up to 15x15), 32.5 s "
            "with the 7 MNIST scales (kernels up to 27x27; plain conv 0.63 s)."
        ),
    ),
    rules=SICNN_RULES,
)(SiCNN)
