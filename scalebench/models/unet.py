r"""Small U-Nets for the multi-scale segmentation track: the baseline, its capacity variants, and the N-Jet U-Net.

Architecture (Pintea et al. 2021, Experiment 1.1(B), after Ronneberger, Fischer & Brox 2015, "U-Net:
convolutional networks for biomedical image segmentation", MICCAI, LNCS 9351: 234-241): ``levels`` encoder
levels of two convolutions each followed by ReLU; ``width`` channels at the first level, doubling after every
2x2 max pooling; a decoder that upsamples bilinearly (to the skip's size), concatenates the skip and applies
two convolutions + ReLU per level; 'same' padding everywhere, no batch norm; a 1x1 convolution to the classes.
With 3 levels that is 10 spatial convolutions (6 in the encoder, 4 in the decoder), as in the paper.

- ``unet``: 3x3 kernels, 3 levels, width 64;
- capacity baselines of Experiment 1.2(B): kernel sizes 4 and 5 (``unet-k4``, ``unet-k5``; an even kernel
  pads asymmetrically, (k - 1) // 2 before and k // 2 after, as PyTorch's ``padding="same"``:
  :class:`SameConv2d`), and 4 or 5 levels with halved or quartered widths
  (``unet-l4-w32``, ``unet-l4-w16``, ``unet-l5-w32``, ``unet-l5-w16``);
- ``njet-unet`` / ``njet-unet-o4``: every spatial convolution replaced by an N-Jet layer
  (:class:`scalebench.models.njet.NJetConv2d`) of basis order 2 / 4 with one learned σ per layer, plus a
  bias. Without batch norm, the N-Jet coefficients are initialised with standard deviation
  :math:`\sqrt{2 / C_\mathrm{in}}` (He et al. 2015's gain for ReLU, counted on the zeroth-order basis, which
  dominates on smooth images) instead of the reference code's 1.

Receptive field at the end of the encoder (Experiment 1.2(B)): :math:`r = 1 + \sum_i (k_i - 1) j_i` over the
encoder's convolutions and poolings, with :math:`j_i` the product of the strides before layer i and
:math:`k_i` the kernel size (2 for the pooling; for an N-Jet layer its current support
:math:`2\lceil k\sigma\rceil + 1`), see Araujo, Norris & Sim (2019), "Computing receptive fields of
convolutional neural networks", Distill.

Not implemented: the transposed-convolution decoder of the original U-Net and cropping ("valid" padding).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalebench.checks import ScalebenchError
from scalebench.models.keywords import takes_keywords_of
from scalebench.models.njet import NJET_RULES, NJetConv2d
from scalebench.models.registry import CardRecipe, ConfigRule, ModelCard, channels_rule, register_model

_PAPER = (
    "S. L. Pintea, N. Tomen, S. F. Goes, M. Loog and J. C. van Gemert (2021), Resolution learning in deep "
    "convolutional networks using scale-space theory, IEEE Transactions on Image Processing 30: 8342-8353"
)
_BIBTEX = "pintea2021resolution"
_ARXIV = "2106.03412"
_PAPER_TRAINING = CardRecipe(
    optimizer="adam",
    lr=1e-4,
    batch_size=1,
    epochs=50,
    weight_decay=0.0,
    schedule="constant",
    source="Pintea et al. 2021, Experiment 1.1(B): Adam, lr 1e-4, betas (0.9, 0.999), batch 1, 50 epochs",
)
#: The quick preset (CPU): the paper's optimiser and learning rate, small batches, two epochs.
_QUICK_TRAINING = CardRecipe(
    optimizer="adam",
    lr=1e-4,
    batch_size=4,
    micro_batch_size=None,
    eval_batch_size=4,
    epochs=2,
    weight_decay=0.0,
    schedule="constant",
    source="the paper's optimiser and learning rate (Pintea et al. 2021), sized for a CPU",
)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d(c_in, c_out, k, padding="same")`` without PyTorch's warning for even kernels.

    An odd kernel pads k // 2 on every side. An even kernel pads (k - 1) // 2 before and k // 2 after along
    each axis, as ``padding="same"`` does, but explicitly (``F.pad``) instead of through the copy that makes
    PyTorch warn on every model built with it. Parameters and state-dict keys are those of ``nn.Conv2d``.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int) -> None:
        k = int(kernel_size)
        super().__init__(c_in, c_out, k, padding=k // 2 if k % 2 else 0)
        before, after = (k - 1) // 2, k // 2
        self.same_pad: tuple[int, int, int, int] | None = None if k % 2 else (before, after, before, after)

    def forward(self, x: Tensor) -> Tensor:
        if self.same_pad is not None:
            x = F.pad(x, self.same_pad)
        return super().forward(x)


class _NJetBlockConv(nn.Module):
    """An N-Jet layer plus a bias: the drop-in for ``nn.Conv2d(c_in, c_out, k, padding="same")``."""

    def __init__(self, c_in: int, c_out: int, **njet: Any) -> None:
        super().__init__()
        self.njet = NJetConv2d(c_in, c_out, alpha_std=math.sqrt(2.0 / c_in), **njet)
        self.bias = nn.Parameter(torch.zeros(c_out))

    @property
    def kernel_size(self) -> int:
        return self.njet.kernel_size

    def forward(self, x: Tensor) -> Tensor:
        return self.njet(x) + self.bias.view(1, -1, 1, 1)


@takes_keywords_of(NJetConv2d, exclude=("size_rule", "subsample_r", "alpha_std", "strategy"))
class UNet(nn.Module):
    """The small U-Net (module docstring). ``conv="njet"`` replaces every spatial convolution by an N-Jet layer,
    whose keywords (``order``, ``k``, ``init_sigma``, ``learn_sigma``) are :class:`NJetConv2d`'s.

    Example:
        >>> net = UNet(num_classes=11, in_channels=1, levels=3, width=4)
        >>> net(torch.zeros(2, 1, 24, 24)).shape, net.encoder_receptive_field()
        (torch.Size([2, 11, 24, 24]), 32)
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        levels: int = 3,
        width: int = 64,
        kernel_size: int = 3,
        conv: str = "standard",
        **njet: Any,
    ) -> None:
        super().__init__()
        if levels < 1 or width < 1 or kernel_size < 1:
            raise ScalebenchError(
                f"U-Net: levels, width and kernel_size must be >= 1, got {levels}, {width}, {kernel_size}."
            )
        self.levels, self.width, self.conv_type = int(levels), int(width), conv
        self.kernel = int(kernel_size)

        def make(c_in: int, c_out: int) -> nn.Module:
            if conv == "njet":
                return _NJetBlockConv(c_in, c_out, **njet)
            return SameConv2d(c_in, c_out, self.kernel)

        widths = [width * 2**i for i in range(levels)]
        self.encoder = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.encoder.append(nn.ModuleList([make(c, w), make(w, w)]))
            c = w
        self.decoder = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.decoder.append(nn.ModuleList([make(c + w, w), make(w, w)]))
            c = w
        self.head = nn.Conv2d(c, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, (c1, c2) in enumerate(self.encoder):
            x = F.relu(c2(F.relu(c1(x))))
            if i < self.levels - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for c1, c2 in self.decoder:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = F.relu(c2(F.relu(c1(torch.cat([skip, x], dim=1)))))
        return self.head(x)

    def spatial_convs(self) -> list[nn.Module]:
        """The spatial convolutions in forward order (encoder, then decoder)."""
        return [c for level in [*self.encoder, *self.decoder] for c in level]

    def encoder_receptive_field(self) -> int:
        """Receptive field (pixels) of one unit at the end of the encoder: 1 + sum (k_i - 1) j_i."""
        r, j = 1, 1
        for i, level in enumerate(self.encoder):
            for conv in level:
                k = conv.kernel_size if isinstance(conv, _NJetBlockConv) else conv.kernel_size[0]
                r += (int(k) - 1) * j
            if i < self.levels - 1:
                r += j
                j *= 2
        return r

    def learned_sigmas(self) -> list[float]:
        """σ of every N-Jet layer in forward order (empty for the standard U-Net)."""
        return [float(c.njet.sigma.detach()) for c in self.spatial_convs() if isinstance(c, _NJetBlockConv)]

    def extra_repr(self) -> str:
        return f"levels={self.levels}, width={self.width}, conv={self.conv_type!r}, kernel_size={self.kernel}"


def _card(name: str, family: str, default: dict, num_params: int, notes: str) -> ModelCard:
    return ModelCard(
        name=name,
        family=family,
        task="segmentation",
        paper=_PAPER,
        display_name={"unet": "U-Net", "njet-unet": "N-Jet U-Net"}.get(name),
        bibtex_key=_BIBTEX,
        arxiv=_ARXIV,
        code_url="https://github.com/SilviaLauraPintea/N-JetNet",
        default_config=default,
        quick_config={"width": 4},
        input_size=(1, 224, 224),
        num_classes=11,
        num_params=num_params,
        scale_covariant=False,
        reports_scale_selection=False,
        quick_training=_QUICK_TRAINING,
        paper_training=_PAPER_TRAINING,
        notes=notes,
    )


_BASE_NOTE = (
    "Small U-Net of Pintea et al. 2021, Exp. 1.1(B): 'same' padding, bilinear upsampling, no batch norm."
)


#: The plain U-Net and the capacity baselines of Exp. 1.2(B): (name, levels, width, kernel size, parameter
#: count of the default config, description). Levels L have 4L - 2 convolutions.
_UNET_VARIANTS = (
    ("unet", 3, 64, 3, 1_882_635, "the baseline U-Net: 3 levels, width 64, 3x3 kernels"),
    ("unet-k4", 3, 64, 4, 3_345_355, "capacity baseline: 4x4 kernels"),
    ("unet-k5", 3, 64, 5, 5_225_995, "capacity baseline: 5x5 kernels"),
    ("unet-l4-w32", 4, 32, 3, 1_946_635, "capacity baseline: 4 levels (14 convolutions), halved width"),
    ("unet-l4-w16", 4, 16, 3, 487_179, "capacity baseline: 4 levels (14 convolutions), quartered width"),
    ("unet-l5-w32", 5, 32, 3, 7_846_411, "capacity baseline: 5 levels (18 convolutions), halved width"),
    ("unet-l5-w16", 5, 16, 3, 1_962_507, "capacity baseline: 5 levels (18 convolutions), quartered width"),
)


def build_unet(*, num_classes: int, in_channels: int, levels: int, width: int, kernel_size: int) -> UNet:
    """Builder shared by every plain U-Net variant; the defaults of each variant are in its card."""
    return UNet(
        num_classes=num_classes, in_channels=in_channels, levels=levels, width=width, kernel_size=kernel_size
    )


#: Valid values of the U-Net configs (checked by the registry before anything is built); level l has
#: width * 2^l channels, which the registry's parameter limit bounds.
UNET_RULES: dict[str, ConfigRule] = {
    "levels": ConfigRule(low=1, high=8),
    "width": channels_rule(),
    "kernel_size": ConfigRule(low=1, high=31),
}

for _name, _levels, _width, _k, _params, _doc in _UNET_VARIANTS:
    _default = {"levels": _levels, "width": _width, "kernel_size": _k}
    # a partial per variant: its signature shows the variant's defaults, as the card does
    register_model(
        _card(_name, "unet", _default, _params, f"{_BASE_NOTE} Variant: {_doc}."), rules=UNET_RULES
    )(functools.partial(build_unet, **_default))


_NJET_DEFAULT = {"levels": 3, "width": 64, "order": 2, "k": 2.0, "init_sigma": 1.0, "learn_sigma": True}
NJET_UNET_RULES: dict[str, ConfigRule] = {
    **{k: v for k, v in NJET_RULES.items() if k in _NJET_DEFAULT},
    "levels": UNET_RULES["levels"],
    "width": UNET_RULES["width"],
}
_NJET_NOTE = (
    "Every spatial convolution of the small U-Net is an N-Jet layer with one learned sigma per layer and a bias; "
    "coefficients initialised with std sqrt(2 / C_in) (no batch norm)."
)


def build_njet_unet(
    *,
    num_classes: int,
    in_channels: int,
    levels: int,
    width: int,
    order: int,
    k: float,
    init_sigma: float,
    learn_sigma: bool,
) -> UNet:
    """Builder shared by the N-Jet U-Net variants; the defaults of each variant are in its card."""
    return UNet(num_classes=num_classes, in_channels=in_channels, levels=levels, width=width, conv="njet",
                order=order, k=k, init_sigma=init_sigma, learn_sigma=learn_sigma)  # fmt: skip


#: (name, basis order, parameter count of the default config): order 2 has 6 basis filters per kernel,
#: order 4 has 15.
for _name, _order, _params in (("njet-unet", 2, 1_255_765), ("njet-unet-o4", 4, 3_136_405)):
    _default = {**_NJET_DEFAULT, "order": _order}
    register_model(_card(_name, "njet", _default, _params, _NJET_NOTE), rules=NJET_UNET_RULES)(
        functools.partial(build_njet_unet, **_default)
    )
