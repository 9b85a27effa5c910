r"""Gaussian derivative layers, scale-channel pooling and the measured scale covariance of a layer or network.

Thin ``nn.Module`` wrappers over the pure functions of :mod:`scalebench.models.scalespace`:

- :class:`GaussianDerivativeLayer`: learned combinations of the scale-normalised N-jet at S scale channels
  (weights shared across channels), computed by separable smoothing plus one folded k x k convolution;
- scale-channel pooling (max or average), scale-channel dropout and the winning channel;
- :class:`ScaleChannelConfig`: the scale-channel settings shared by GaussDerNet and GaussDerResNet (sigma
  schedule, N-jet, discretisation, pooling, dropout, readout), one place for their defaults and checks;
- :class:`ScaleChannelNetwork`: the common head of GaussDerNet and GaussDerResNet (readout, pooling,
  ``forward_with_selection``, ``channel_sigmas``, ``layer_sigmas``);
- :func:`scale_covariance_error`: rescale a smooth test image by ``factor`` and measure how far the responses
  are from moving by exactly log(factor)/log(r) scale channels.

Scale covariance (Lindeberg 2022, JMIV 64(3), Sect. 4): for f'(x') = f(x' / S) with S = r^k, the responses
of channel i + k to f' at x' equal those of channel i to f at x = x' / S, when the channels are spaced by
the ratio r, every derivative is scale-normalised with gamma = 1 and the weights are shared. The discrete
layer satisfies this only approximately (discretisation, truncation, image borders, finite channel range),
hence the measurement.

References:
    - T. Lindeberg (2022), "Scale-covariant and scale-invariant Gaussian derivative networks", J. Math.
      Imaging Vis. 64(3): 223-242.
    - A. Perzanowski, T. Lindeberg (2025), "Scale generalisation properties of extended scale-covariant and
      scale-invariant Gaussian derivative networks on image datasets with spatial scaling variations",
      J. Math. Imaging Vis. 67 (arXiv 2409.11140): average pooling over scales, scale-channel dropout,
      spatial max pooling after the final layer.
    - A. Perzanowski, T. Lindeberg (2026), "Scale-invariant Gaussian derivative residual networks",
      arXiv 2603.02843.

Not implemented: learnable sigma in GaussDerNet layers (sigma is fixed per channel, as in the papers);
scale-channel dropout rate and placement are not stated in the available abstracts (our reading: whole
scale channels are dropped before the scale pooling).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

import scalebench.models.scalespace as ss
from scalebench.checks import ScalebenchError, check_choice, check_positive, check_shape
from scalebench.models.covariance import channel_shift, shifted_channel_error
from scalebench.models.registry import PROBABILITY, ConfigRule

ScalePooling = Literal["max", "avg"]
Readout = Literal["centre", "spatial_max"]
SCALE_POOLINGS: tuple[str, ...] = ("max", "avg")
READOUTS: tuple[str, ...] = ("centre", "spatial_max")


#: sigma0 (pixels) of the scale channel that suits a Fashion-MNIST object (28 px) at the training scale s = 1 on
#: the 72 x 72 canvas: the geometric mean of the winning channel's sigma0 over the scale-1 test images of the
#: default GaussDerNet, 2.64 px (docs/protocol.md, real run on ``fashion-mnist-limit500``; the channel is 2.83).
#: A measured, documented default: the channel suiting an object of D pixels is about D / 10.6.
MATCHED_SIGMA_FASHION_MNIST: float = 2.64

#: Largest sigma (px) of any scale channel in any layer: a discrete Gaussian kernel truncated at epsilon = 1e-3 is
#: about 7 sigma wide, so 256 px gives kernels far wider than every canvas of the benchmark (72 px classification,
#: 224 px segmentation). The defaults reach 8 px.
MAX_SIGMA: float = 256.0

#: Most scale channels of a network: they are folded into the batch, so memory and time grow linearly with them.
MAX_SCALE_CHANNELS: int = 64

#: Test scales span a factor 4 (1/2 .. 2), i.e. one octave on either side of the training scale: two sqrt(2)
#: steps of the channel grid (Perzanowski & Lindeberg 2025 protocol; docs/protocol.md).
OCTAVES_EACH_SIDE: float = 1.0


def covers_test_range(
    sigmas0: list[float], matched_sigma: float, octaves: float = OCTAVES_EACH_SIDE
) -> tuple[bool, str]:
    """Whether scale channels ``sigmas0`` span ``octaves`` below and above the channel matched to the training
    scale (the channel whose sigma0 is nearest to ``matched_sigma`` in log scale), and a sentence saying so.

    Objects rescaled by s in [2^-octaves, 2^octaves] need channels down to sigma_m * 2^-octaves and up to
    sigma_m * 2^octaves (Lindeberg 2022, Sect. 4: a rescaling by S moves the response by log(S)/log(r)
    channels); tolerance 1 %.

    Example:
        >>> covers_test_range(geometric_sigmas(2**-0.5, 2**0.5, 8), 2.64)[0]
        True
        >>> covers_test_range(geometric_sigmas(1.0, 2**0.5, 4), 2.64)
        (False, 'channels 1..2.83 do not reach 5.66 (an octave above the matched channel 2.83)')
    """
    matched = min(sigmas0, key=lambda s: abs(math.log(s / matched_sigma)))
    low, high = matched * 2.0**-octaves, matched * 2.0**octaves
    lo, hi = min(sigmas0), max(sigmas0)
    where = f"channels {lo:.3g}..{hi:.3g}"
    if lo > low * 1.01:
        return False, f"{where} do not reach {low:.3g} (an octave below the matched channel {matched:.3g})"
    if hi < high * 0.99:
        return False, f"{where} do not reach {high:.3g} (an octave above the matched channel {matched:.3g})"
    return True, f"{where} cover {low:.3g}..{high:.3g} around the matched channel {matched:.3g}"


def geometric_sigmas(sigma0: float, ratio: float, num: int) -> list[float]:
    """sigma_i = sigma0 * ratio^i, i = 0..num-1.

    Example:
        >>> [round(s, 3) for s in geometric_sigmas(2**-0.5, 2**0.5, 8)]
        [0.707, 1.0, 1.414, 2.0, 2.828, 4.0, 5.657, 8.0]
    """
    check_positive(sigma0, "sigma0")
    check_positive(ratio, "scale_ratio")
    try:
        whole = int(num) == num and num >= 1
    except (TypeError, ValueError):  # a string or None from a config override
        whole = False
    if not whole:
        raise ScalebenchError(f"num_scale_channels must be an integer >= 1, got {num!r}.")
    return [float(sigma0) * float(ratio) ** i for i in range(int(num))]


class GaussianDerivativeLayer(nn.Module):
    r"""Gaussian derivative layer: :math:`y_{o,s} = b_o + \sum_{i,\alpha} w_{o,i,\alpha}\,\sigma_s^{\gamma|\alpha|}
    \,\delta^\alpha (T_{\sigma_s} * x_{i,s})` at every scale channel s, with weights shared across channels.

    Lindeberg (2022), JMIV 64(3), Eq. 11. Input and output are scale-major folded batches (S*B, C, H, W).
    ``depthwise=True`` gives one combination per input channel (O = I, ``groups = I``), the depthwise half
    of a depthwise-separable layer (Perzanowski & Lindeberg 2026); the pointwise 1 x 1 half is a plain
    ``nn.Conv2d``, which is shared across scale channels because the channels live in the batch dimension.

    Weights are initialised N(0, 2 / (I/groups * J)) (He initialisation over the N-jet fan-in).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        sigmas: list[float],
        max_order: int = 2,
        *,
        discretisation: ss.Discretisation = "discrete",
        epsilon: float = 1e-3,
        gamma: float = 1.0,
        include_zero_order: bool = True,
        bias: bool = False,
        depthwise: bool = False,
        padding: ss.PaddingMode = "zeros",
        group_sigmas: list[list[float]] | None = None,
        group_smoothing: list[list[float]] | None = None,
    ) -> None:
        """``group_sigmas``: multi-resolution mode: the sigmas (in the pixels of each group's grid) of the groups
        of scale channels that run on subsampled grids (:func:`multires_groups`), which scale-normalise the
        derivatives; ``group_smoothing``: the sigmas this layer smooths with there (smaller in a first layer,
        whose input was smoothed before it was subsampled; default: ``group_sigmas``). ``forward(x, group=g)``
        then applies group g."""
        super().__init__()
        check_choice(discretisation, "discretisation", ss.DISCRETISATIONS)
        check_choice(padding, "padding", ss.PADDING_MODES)
        if depthwise and in_channels != out_channels:
            raise ScalebenchError(
                f"a depthwise Gaussian derivative layer needs in_channels == out_channels, got "
                f"{in_channels} and {out_channels}; add a 1x1 convolution to change the width."
            )
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.sigmas = [float(s) for s in sigmas]
        self.max_order = int(max_order)
        self.discretisation, self.epsilon, self.gamma = discretisation, float(epsilon), float(gamma)
        self.include_zero_order, self.depthwise, self.padding = include_zero_order, depthwise, padding
        self.groups = self.in_channels if depthwise else 1
        num_terms = len(ss.njet_multi_indices(self.max_order, include_zero_order=include_zero_order))
        fan_in = self.in_channels // self.groups
        self.weight = nn.Parameter(
            torch.randn(self.out_channels, fan_in, num_terms) * math.sqrt(2.0 / (fan_in * num_terms))
        )
        self.bias = nn.Parameter(torch.zeros(self.out_channels)) if bias else None
        # The kernels are values computed from sigma: when the layer is built on the meta device (the registry
        # checks a config's size that way) they are still computed, on the CPU; otherwise nothing changes.
        on_meta = torch.get_default_device().type == "meta"
        with torch.device("cpu") if on_meta else contextlib.nullcontext():
            kernels = ss.smoothing_kernels(self.sigmas, discretisation=discretisation, epsilon=epsilon, dim=2)
            groups = [
                ss.smoothing_kernels(g, discretisation=discretisation, epsilon=epsilon, dim=2)
                for g in (group_smoothing or group_sigmas or [])
            ]
        for s, kern in enumerate(kernels):
            self.register_buffer(f"smoothing_{s}", kern, persistent=False)
        self.group_sigmas = [[float(v) for v in g] for g in group_sigmas or []]
        for g, group in enumerate(groups):
            for s, kern in enumerate(group):
                self.register_buffer(f"smoothing_g{g}_{s}", kern, persistent=False)

    @property
    def num_scales(self) -> int:
        return len(self.sigmas)

    def smoothing_kernels(self) -> list[Tensor]:
        return [getattr(self, f"smoothing_{s}") for s in range(self.num_scales)]

    def forward(
        self, x: Tensor, window: tuple[int, int, int, int] | None = None, group: int | None = None
    ) -> Tensor:
        """``x`` (S*B, I, H, W) at every scale channel, or, with ``group``, the (S_g*B, I, h, w) of one group
        of the multi-resolution mode on its own grid."""
        if group is None:
            sigmas, kernels = self.sigmas, self.smoothing_kernels()
        else:
            sigmas = self.group_sigmas[group]
            kernels = [getattr(self, f"smoothing_g{group}_{s}") for s in range(len(sigmas))]
        return ss.gaussian_derivative_conv(
            x,
            self.weight,
            sigmas,
            self.max_order,
            kernels=kernels,
            gamma=self.gamma,
            include_zero_order=self.include_zero_order,
            bias=self.bias,
            groups=self.groups,
            padding=self.padding,
            window=window,
        )

    def extra_repr(self) -> str:
        sig = ", ".join(f"{s:.3g}" for s in self.sigmas)
        return (
            f"{self.in_channels}, {self.out_channels}, sigmas=[{sig}], max_order={self.max_order}, "
            f"discretisation={self.discretisation!r}, epsilon={self.epsilon:g}, gamma={self.gamma:g}, "
            f"zero_order={self.include_zero_order}, depthwise={self.depthwise}, bias={self.bias is not None}"
        )


# ---------------------------------------------------------------------------------------------------------
# scale-channel pooling, dropout, selection


def scale_channel_dropout_mask(
    num_scales: int, batch: int, p: float, *, device: torch.device | None = None, generator=None
) -> Tensor:
    """Bernoulli keep-mask (S, B) dropping each scale channel of each image with probability ``p``.

    At least one channel per image is kept (a fully dropped image keeps one channel drawn uniformly).
    """
    if not (0.0 <= p < 1.0):
        raise ScalebenchError(f"scale_dropout must be in [0, 1), got {p}.")
    keep = torch.rand(num_scales, batch, device=device, generator=generator) >= p
    empty = ~keep.any(0)
    if bool(empty.any()):
        pick = torch.randint(num_scales, (batch,), device=device, generator=generator)
        keep[pick[empty], torch.nonzero(empty).flatten()] = True
    return keep


def scale_channel_pool(logits: Tensor, mode: ScalePooling = "max", keep: Tensor | None = None) -> Tensor:
    """Pool (S, B, K) per-channel scores over the scale channels: max or average; ``keep`` (S, B) masks
    dropped channels (excluded from the max and from the mean).

    Example:
        >>> scale_channel_pool(torch.tensor([[[1.0, 5.0]], [[3.0, 2.0]]]), "max").tolist()
        [[3.0, 5.0]]
    """
    check_choice(mode, "scale_pooling", SCALE_POOLINGS)
    if keep is None:
        return logits.amax(0) if mode == "max" else logits.mean(0)
    m = keep.unsqueeze(-1).to(logits.dtype)
    if mode == "max":
        return logits.masked_fill(m == 0, float("-inf")).amax(0)
    return (logits * m).sum(0) / m.sum(0)


def winning_scale_channel(logits: Tensor) -> Tensor:
    """Index (LongTensor[B]) of the scale channel holding the largest logit of each image; logits (S, B, K).

    Example:
        >>> winning_scale_channel(torch.tensor([[[1.0, 5.0]], [[3.0, 2.0]]])).tolist()
        [0]
    """
    return logits.amax(-1).argmax(0)


@dataclasses.dataclass(frozen=True)
class ScaleChannelConfig:
    """Scale-channel settings shared by GaussDerNet and GaussDerResNet, with their defaults.

    Channel i of layer l uses sigma_{i,l} = sigma0 * scale_ratio^i * sigma_growth^l
    (i = 0..num_scale_channels-1). Every Gaussian derivative layer takes the N-jet up to ``max_order``
    (with or without the zero-order term), the smoothing ``discretisation`` truncated at ``epsilon``,
    scale normalisation ``gamma`` and border ``padding``; batch norms use ``bn_momentum``. The head reads
    out the final layer (``readout``), drops whole scale channels in training (``scale_dropout``) and pools
    over the scale channels (``scale_pooling``). The defaults are the measured ones of docs/models.md.

    Example:
        >>> cfg = ScaleChannelConfig.from_kwargs(num_scale_channels=3, sigma0=1.0, scale_ratio=2.0)
        >>> cfg.sigmas0(), cfg.scale_pooling
        ([1.0, 2.0, 4.0], 'max')
    """

    max_order: int = 2
    include_zero_order: bool = True
    num_scale_channels: int = 8
    sigma0: float = 2**-0.5
    scale_ratio: float = 2**0.5
    sigma_growth: float = 1.0
    scale_pooling: ScalePooling = "max"
    scale_dropout: float = 0.0
    readout: Readout = "centre"
    discretisation: ss.Discretisation = "discrete"
    epsilon: float = 1e-3
    gamma: float = 1.0
    padding: ss.PaddingMode = "zeros"
    bn_momentum: float = 0.1
    multires: bool = False
    multires_min_sigma: float = 1.0
    multires_max_factor: int = 8

    def __post_init__(self) -> None:
        check_choice(self.scale_pooling, "scale_pooling", SCALE_POOLINGS)
        check_choice(self.readout, "readout", READOUTS)
        if not (0.0 <= self.scale_dropout < 1.0):
            raise ScalebenchError(f"scale_dropout must be in [0, 1), got {self.scale_dropout}.")
        check_positive(self.sigma_growth, "sigma_growth")
        if self.max_order == 0 and not self.include_zero_order:
            raise ScalebenchError(
                "max_order=0 with include_zero_order=false leaves no N-jet term; raise max_order or include the "
                "zero-order term."
            )

    def check_sigma_range(self, num_layers: int) -> None:
        """Raise unless every sigma_{i,l} of ``num_layers`` Gaussian derivative layers is at most :data:`MAX_SIGMA`.

        Computed in log space, so that no power overflows (e.g. ``num_scale_channels=100000``).

        Example:
            >>> ScaleChannelConfig().check_sigma_range(6)  # the default: sigma up to 8 px
        """
        check_positive(self.sigma0, "sigma0")
        check_positive(self.scale_ratio, "scale_ratio")
        geometric_sigmas(1.0, 1.0, self.num_scale_channels)  # checks the count is an integer >= 1
        log_max = (
            math.log(self.sigma0)
            + max(0.0, (self.num_scale_channels - 1) * math.log(self.scale_ratio))
            + max(0.0, (num_layers - 1) * math.log(self.sigma_growth))
        )
        if log_max > math.log(MAX_SIGMA) + 1e-9:  # tolerance: 2^-0.5 * 2^0.5^7 * 2^5 is 256 up to rounding
            largest = f"{math.exp(log_max):.4g}" if log_max < 700 else "more than 1e300"
            raise ScalebenchError(
                f"The largest sigma of this config, sigma0 * scale_ratio^(num_scale_channels - 1) * "
                f"sigma_growth^(layers - 1) = {largest} px ({self.num_scale_channels} scale channels, {num_layers} "
                f"layers), exceeds scalebench.models.gaussder.MAX_SIGMA = {MAX_SIGMA:g} px; lower sigma0, "
                "scale_ratio, num_scale_channels or sigma_growth."
            )

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> ScaleChannelConfig:
        """The config from keyword arguments; an unknown name raises a ScalebenchError listing the valid ones."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise ScalebenchError(
                f"unknown scale-channel setting(s) {', '.join(unknown)}; valid: {', '.join(names)}."
            )
        return cls(**kwargs)

    def as_dict(self) -> dict[str, Any]:
        """Every setting by name, in declaration order (the shared part of a model card's default config)."""
        return dataclasses.asdict(self)

    def sigmas0(self) -> list[float]:
        """sigma0 * scale_ratio^i of every scale channel i (the scale of its first layer)."""
        return geometric_sigmas(self.sigma0, self.scale_ratio, self.num_scale_channels)

    def layer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of every :class:`GaussianDerivativeLayer` of the network."""
        return {
            "max_order": self.max_order,
            "discretisation": self.discretisation,
            "epsilon": self.epsilon,
            "gamma": self.gamma,
            "include_zero_order": self.include_zero_order,
            "padding": self.padding,
        }


#: Scale-channel settings added after the first runs were recorded (the multi-resolution mode): at their
#: defaults they are left out of a run's config, so earlier runs keep their identity (``ModelCard.identity_optional``).
LATER_SCALE_CHANNEL_KEYS = ["multires", "multires_min_sigma", "multires_max_factor"]

SCALE_CHANNEL_DEFAULTS: dict[str, Any] = ScaleChannelConfig().as_dict()
"""Default scale-channel settings, the part of the GaussDerNet and GaussDerResNet cards that they share."""

SCALE_CHANNEL_RULES: dict[str, ConfigRule] = {
    "max_order": ConfigRule(low=0, high=3),
    "num_scale_channels": ConfigRule(
        low=1, high=MAX_SCALE_CHANNELS, limit="scalebench.models.gaussder.MAX_SCALE_CHANNELS"
    ),
    "sigma0": ConfigRule(low=0, low_open=True, high=MAX_SIGMA, limit="scalebench.models.gaussder.MAX_SIGMA"),
    "scale_ratio": ConfigRule(low=0, low_open=True, high=16),
    "sigma_growth": ConfigRule(low=0, low_open=True, high=16),
    "scale_pooling": ConfigRule(choices=SCALE_POOLINGS),
    "scale_dropout": PROBABILITY,
    "readout": ConfigRule(choices=READOUTS),
    "discretisation": ConfigRule(choices=ss.DISCRETISATIONS),
    "epsilon": ConfigRule(low=0, low_open=True, high=1, high_open=True),
    "gamma": ConfigRule(low=0, high=4),
    "padding": ConfigRule(choices=ss.PADDING_MODES),
    "bn_momentum": ConfigRule(low=0, high=1),
    "multires_min_sigma": ConfigRule(low=0.6, high=MAX_SIGMA),
    "multires_max_factor": ConfigRule(choices=(1, 2, 4, 8, 16)),
}
"""Valid values of the scale-channel settings (checked by the registry before anything is built); the largest
sigma over channels and layers is checked against :data:`MAX_SIGMA` by the network itself."""


def presmoothing_variance(factor: int) -> float:
    """Variance (pixels^2) a group's input has before its grid is subsampled by ``factor``: the discrete
    Gaussian of sigma f / 2 (anti-aliasing at half the new pixel spacing) plus the f x f block mean ((f^2 - 1)/12
    per axis). 0 for f = 1. Layer 0 of the group smooths the rest, so that its total is sigma_i^2 (semigroup).

    Example:
        >>> presmoothing_variance(1), round(presmoothing_variance(2), 4)
        (0.0, 1.25)
    """
    return 0.0 if factor == 1 else (factor / 2) ** 2 + (factor**2 - 1) / 12


def multires_groups(sigmas0: list[float], min_sigma: float, max_factor: int) -> list[tuple[list[int], int]]:
    r"""The groups of scale channels of the multi-resolution mode: (channel indices, subsampling factor f).

    Channel i runs on a grid subsampled by the largest power of two f <= ``max_factor`` for which its
    first-layer sigma on that grid, :math:`\sqrt{\sigma_i^2 - v_f} / f` (v_f: :func:`presmoothing_variance`),
    is still at least ``min_sigma`` pixels; later layers have sigmas at least as large (sigma_growth >= 1).
    Channels with one factor form one group (consecutive: sigma grows with i).

    Example:
        >>> multires_groups([0.71, 1.0, 1.41, 2.0, 2.83, 4.0, 5.66, 8.0], 1.0, 8)
        [([0, 1, 2, 3], 1), ([4, 5], 2), ([6, 7], 4)]
    """
    groups: list[tuple[list[int], int]] = []
    for i, sigma in enumerate(sigmas0):
        f = 1
        while 2 * f <= max_factor and sigma**2 - presmoothing_variance(2 * f) >= (2 * f * min_sigma) ** 2:
            f *= 2
        if groups and groups[-1][1] == f:
            groups[-1][0].append(i)
        else:
            groups.append(([i], f))
    return groups


def joint_batch_norm(bn: nn.BatchNorm2d, parts: list[Tensor]) -> list[Tensor]:
    """Batch norm of several (N_g, C, H_g, W_g) tensors with statistics over all of them at once, as one
    batch of every scale channel would have (every pixel counts once, whatever its grid)."""
    if len(parts) == 1 or not bn.training:
        return [bn(p) for p in parts]
    c = parts[0].shape[1]
    flat = torch.cat([p.permute(0, 2, 3, 1).reshape(-1, c) for p in parts])
    normed = torch.nn.functional.batch_norm(
        flat, bn.running_mean, bn.running_var, bn.weight, bn.bias, True, bn.momentum or 0.0, bn.eps
    )
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    out, start = [], 0
    for p in parts:
        n, _, h, w = p.shape
        out.append(normed[start : start + n * h * w].reshape(n, h, w, c).permute(0, 3, 1, 2))
        start += n * h * w
    return out


class ScaleChannelNetwork(nn.Module):
    """Common head of scale-channel networks: readout of the final layer, pooling over scale channels.

    Built from a :class:`ScaleChannelConfig`. Subclasses define ``self.head`` (the final
    :class:`GaussianDerivativeLayer`, outputs = classes) and ``features(x) -> list of (S*B, C, H, W)`` (the
    response of every hidden layer, the last one feeds the head), building their Gaussian derivative layers
    with ``self.layer_sigmas(l)`` and ``**self.layer_kwargs``. Readout: ``centre`` evaluates the head only at
    the central pixel (odd canvas) or the central 2 x 2 block (even canvas, averaged), which equals the full
    head there; ``spatial_max`` takes the spatial maximum of the full head output (Perzanowski & Lindeberg
    2025).
    """

    head: GaussianDerivativeLayer

    def __init__(
        self, config: ScaleChannelConfig, *, in_channels: int = 1, num_layers: int | None = None
    ) -> None:
        """``num_layers``: the number of Gaussian derivative layers (head included), to check the largest sigma
        (:meth:`ScaleChannelConfig.check_sigma_range`) before any layer is built."""
        if num_layers is not None:
            config.check_sigma_range(num_layers)
        super().__init__()
        self.config = config
        self._sigmas0 = config.sigmas0()
        self.features_in_channels = int(in_channels)
        self.sigma_growth = float(config.sigma_growth)
        self.layer_kwargs = config.layer_kwargs()
        self.bn_momentum = float(config.bn_momentum)
        self.scale_pooling, self.scale_dropout = config.scale_pooling, float(config.scale_dropout)
        self.readout = config.readout
        self.groups: list[tuple[list[int], int]] = (
            multires_groups(self._sigmas0, config.multires_min_sigma, config.multires_max_factor)
            if config.multires
            else [(list(range(len(self._sigmas0))), 1)]
        )

    @property
    def multires(self) -> bool:
        """Some scale channels run on subsampled grids (the multi-resolution mode)."""
        return any(f > 1 for _, f in self.groups)

    def group_layer_kwargs(self, layer: int) -> dict[str, list[list[float]] | None]:
        """Multi-resolution mode: per group, the sigmas of layer ``layer`` in the pixels of the group's grid
        (``group_sigmas``: sigma_i / f, which normalise the derivatives) and the sigmas it smooths with
        (``group_smoothing``: in layer 0 net of the smoothing done before subsampling,
        sqrt(sigma_i^2 - v_f) / f, :func:`presmoothing_variance`); None outside the mode."""
        if not self.multires:
            return {"group_sigmas": None, "group_smoothing": None}
        sigmas = self.layer_sigmas(layer)
        pre = [presmoothing_variance(f) if layer == 0 else 0.0 for _, f in self.groups]
        return {
            "group_sigmas": [[sigmas[i] / f for i in idx] for idx, f in self.groups],
            "group_smoothing": [[math.sqrt(sigmas[i] ** 2 - v) / f for i in idx]
                                for (idx, f), v in zip(self.groups, pre, strict=True)],
        }  # fmt: skip

    def _group_inputs(self, x: Tensor) -> list[Tensor]:
        """Multi-resolution mode: the input of each group of channels, smoothed (discrete Gaussian, sigma f / 2)
        and subsampled by f x f block means (which keep the canvas centre), folded for its channels."""
        out = []
        for idx, f in self.groups:
            xg = x
            if f > 1:
                kern = ss.gaussian_kernel1d(f / 2, discretisation=self.layer_kwargs["discretisation"],
                                            epsilon=self.layer_kwargs["epsilon"]).to(x.device)  # fmt: skip
                xg = torch.nn.functional.avg_pool2d(ss.separable_smooth(x, kern), f, ceil_mode=True)
            out.append(ss.fold_scale_channels(xg, len(idx)).contiguous(memory_format=torch.channels_last))
        return out

    def layer_sigmas(self, layer: int) -> list[float]:
        """sigma of every scale channel in Gaussian derivative layer ``layer`` (0-based): sigma0_i * q^layer."""
        return [s * self.sigma_growth**layer for s in self._sigmas0]

    @property
    def channel_sigmas(self) -> list[float]:
        """sigma0 of each scale channel (the scale of its first layer)."""
        return list(self._sigmas0)

    @property
    def num_scales(self) -> int:
        return len(self._sigmas0)

    def features(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_input(self, x: Tensor) -> None:
        check_shape(x, "B C H W")
        want = self.features_in_channels
        if x.shape[1] != want:
            raise ScalebenchError(
                f"input has {x.shape[1]} channels, the model was built for in_channels={want}; "
                f"rebuild it with in_channels={x.shape[1]}."
            )

    def _fold(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (S*B, C, H, W) in channels_last memory (3.6x faster 3x3 convolutions on CPU,
        docs/performance.md); the layout does not change any value."""
        return ss.fold_scale_channels(x, self.num_scales).contiguous(memory_format=torch.channels_last)

    def features_groups(self, xs: list[Tensor]) -> list[list[Tensor]]:  # pragma: no cover - abstract
        """Multi-resolution mode: :meth:`features` of every group (one list of groups per layer)."""
        raise ScalebenchError(f"{type(self).__name__} has no multi-resolution mode; set multires=false.")

    def layer_responses(self, x: Tensor) -> list[Tensor]:
        """Every hidden layer's response plus the full head output, each (S, B, C, H, W) (single-grid mode;
        in the multi-resolution mode the groups' maps have different sizes)."""
        if self.multires:
            raise ScalebenchError("layer_responses needs every scale channel on one grid (multires=false).")
        self._check_input(x)
        feats = self.features(self._fold(x))
        outs = [*feats, self.head(feats[-1])]
        return [ss.unfold_scale_channels(f, self.num_scales) for f in outs]

    def _readout(self, feat: Tensor, group: int | None = None) -> Tensor:
        if self.readout == "centre":
            return self.head(feat, window=ss.centre_window(*feat.shape[-2:]), group=group).mean((-2, -1))
        return self.head(feat, group=group).amax((-2, -1))

    def scale_channel_logits(self, x: Tensor) -> Tensor:
        """Per-scale-channel class scores (S, B, K) before pooling over scale channels (in the multi-resolution
        mode each group reads out on its own grid: no upsampling)."""
        self._check_input(x)
        if not self.multires:
            out = self._readout(self.features(self._fold(x))[-1])
            return ss.unfold_scale_channels(out, self.num_scales)
        last = self.features_groups(self._group_inputs(x))[-1]
        parts = [
            ss.unfold_scale_channels(self._readout(feat, g), len(idx))
            for g, (feat, (idx, _)) in enumerate(zip(last, self.groups, strict=True))
        ]
        return torch.cat(parts, 0)

    def _pool(self, logits: Tensor) -> Tensor:
        keep = None
        if self.training and self.scale_dropout > 0:
            keep = scale_channel_dropout_mask(
                logits.shape[0], logits.shape[1], self.scale_dropout, device=logits.device
            )
        return scale_channel_pool(logits, self.scale_pooling, keep)

    def forward(self, x: Tensor) -> Tensor:
        return self._pool(self.scale_channel_logits(x))

    def forward_with_selection(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(pooled logits (B, K), winning scale channel LongTensor[B]: the channel holding the max logit)."""
        per_scale = self.scale_channel_logits(x)
        return self._pool(per_scale), winning_scale_channel(per_scale.detach())


# ---------------------------------------------------------------------------------------------------------
# measured scale covariance


def scale_test_image(size: int, scale: float = 1.0, *, in_channels: int = 1, dtype=torch.float32) -> Tensor:
    r"""A smooth test pattern of three anisotropic Gaussian blobs near the centre, rescaled by ``scale``.

    :math:`f_S(x) = f(c + (x - c)/S)` with c the canvas centre ((size-1)/2), evaluated analytically (no
    interpolation), so ``scale_test_image(n, S)`` is the exact S-times enlargement of
    ``scale_test_image(n, 1)``. Blob widths 2.5 to 4 pixels at scale 1, all within 7 pixels of the centre.

    Returns:
        (1, in_channels, size, size).
    """
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij"
    )
    u, v = (xx - c) / scale, (yy - c) / scale
    blobs = (  # amplitude, centre (x, y), widths (along x, along y)
        (1.0, (0.0, 0.0), (4.0, 2.5)),
        (-0.6, (5.0, -4.0), (2.5, 3.0)),
        (0.5, (-4.0, 5.0), (3.0, 3.0)),
    )
    chans = []
    for ch in range(in_channels):
        img = torch.zeros(size, size, dtype=torch.float64)
        for n, (a, (mx, my), (wx, wy)) in enumerate(blobs):
            amp = a * (1.0 if ch == 0 else (0.5 + 0.25 * ((n + ch) % 3)))
            img += amp * torch.exp(-0.5 * (((u - mx) / wx) ** 2 + ((v - my) / wy) ** 2))
        chans.append(img)
    return torch.stack(chans).unsqueeze(0).to(dtype)


@torch.no_grad()
def scale_covariance_error(
    layer_or_model: nn.Module,
    factor: float = 2**0.5,
    *,
    layer: int | None = None,
    size: int = 64,
    in_channels: int | None = None,
    interior_radius: float | None = None,
) -> Tensor:
    r"""Relative error of the scale covariance of a layer or network, per scale channel, on analytic images.

    Renders :func:`scale_test_image` at scale 1 and at ``factor`` = r^k (r the ratio between neighbouring
    scale channels; k must be an integer), and compares channel i of the original with channel i + k of the
    rescaled image (:func:`scalebench.models.covariance.shifted_channel_error`: at corresponding points of a
    central disk of radius ``interior_radius``, default size / (4 factor)). For a network with ``layer=None`` the per-scale-channel class scores
    (before pooling over scale channels) are compared instead of maps. Modules are evaluated in eval mode
    (batch norm with running statistics) and restored.

    Args:
        layer_or_model: a :class:`GaussianDerivativeLayer` or a :class:`ScaleChannelNetwork`.
        factor: rescaling factor of the image, an integer power of the channel ratio r.
        layer: for networks, index into :meth:`ScaleChannelNetwork.layer_responses`; None = class scores.
        size: canvas size of the test image.
        in_channels: image channels (default: what the module takes).

    Returns:
        Tensor (S - k,): entry i compares channel i (original) with channel i + k (rescaled).
    """
    if isinstance(layer_or_model, GaussianDerivativeLayer):
        sigmas = layer_or_model.sigmas
        chans = in_channels or layer_or_model.in_channels

        def respond(img: Tensor) -> Tensor:
            y = layer_or_model(ss.fold_scale_channels(img, len(sigmas)))
            return ss.unfold_scale_channels(y, len(sigmas))

    elif isinstance(layer_or_model, ScaleChannelNetwork):
        sigmas = layer_or_model.channel_sigmas
        chans = in_channels or layer_or_model.features_in_channels

        def respond(img: Tensor) -> Tensor:
            if layer is None:
                return layer_or_model.scale_channel_logits(img)
            return layer_or_model.layer_responses(img)[layer]

    else:
        raise ScalebenchError(
            f"scale_covariance_error takes a GaussianDerivativeLayer or a ScaleChannelNetwork, "
            f"got {type(layer_or_model).__name__}."
        )
    shift = channel_shift(sigmas, factor)
    was_training = layer_or_model.training
    layer_or_model.eval()
    try:
        p = next(layer_or_model.parameters())
        a = respond(scale_test_image(size, 1.0, in_channels=chans, dtype=p.dtype).to(p.device))
        b = respond(scale_test_image(size, factor, in_channels=chans, dtype=p.dtype).to(p.device))
    finally:
        layer_or_model.train(was_training)
    return shifted_channel_error(a, b, factor, shift, interior_radius=interior_radius)
