"""N-JetNet backbones: Network-in-Network as in the reference code, and a CIFAR ResNet-32 with N-Jet layers.

Every spatial convolution is an :class:`~scalebench.models.njet.NJetConv2d` with its own learned sigma;
1x1 convolutions stay ordinary. ``model.learned_sigmas()`` lists the current sigma of each N-Jet layer in
forward order (the benchmark reports it).

``njetnet_nin`` follows ``models/nin_shared_srf.py`` of the reference code (``SilviaLauraPintea/N-JetNet``;
the code "removed all padding and pooling" of NiN, Lin et al. 2014):

    N-Jet(C_in->192), BN, ReLU, 1x1(192->160), BN, ReLU, 1x1(160->96), BN, ReLU, Dropout(0.5)
    N-Jet(96->192),   BN, ReLU, 1x1(192->192), BN, ReLU, 1x1(192->192), BN, ReLU, Dropout(0.5)
    N-Jet(192->192),  BN, ReLU, 1x1(192->192), BN, ReLU, 1x1(192->classes), BN, ReLU, global mean

1x1 convolutions have no bias. Parameters at order 2, 3 input channels, 10 classes: 496,663, equal to the
count computed from the reference code (N-Jet layers F C_in C_out + 1 each, F = 6; batch-norm weight and
bias counted, running statistics not). Order 4: 999,511. The last block ends in BN + ReLU before the
spatial mean, as in NiN and the reference code, so logits are non-negative. The reference NiN does not
subsample; ``safe_subsample=True`` applies the paper's safe subsampling s (1/2)^(sigma / r) (r =
``subsample_r``, 4 in the paper) at each N-Jet layer, which the paper used for its NiN experiments.

``njetnet_resnet32`` is our construction after the paper's Sect. IV-A Exp. 3.2 (no reference code for it is
public): the CIFAR ResNet-32 of He et al. (2016) with every 3x3 convolution replaced by an N-Jet layer, and
the two stride-2 convolutions replaced by safe subsampling "only at the layers where the original network
subsamples" (paper). Shortcuts are option A (parameter-free): at a change of size the block input is
resized bilinearly (with anti-aliasing) to the size of the residual branch and zero-padded in channels.
With r = 4 and sigma = 1 a 32-pixel map becomes 26 then 21 pixels rather than 16 then 8, so this net costs
more than ResNet-32; that is the paper's rule.

References:
    - S. L. Pintea, N. Tomen, S. F. Goes, M. Loog, J. C. van Gemert (2021), "Resolution learning in deep
      convolutional networks using scale-space theory", IEEE TIP 30: 8342-8353 (arXiv 2106.03412).
    - M. Lin, Q. Chen, S. Yan (2014), "Network in network", ICLR 2014 (arXiv 1312.4400).
    - K. He, X. Zhang, S. Ren, J. Sun (2016), "Deep residual learning for image recognition", CVPR 2016.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalebench.checks import ScalebenchError
from scalebench.models.baselines import RESNET_RULES, cifar_resnet_plan
from scalebench.models.keywords import takes_keywords_of
from scalebench.models.njet import NJET_RULES, NJetConv2d
from scalebench.models.registry import (
    PROBABILITY,
    CardRecipe,
    ModelCard,
    builder_defaults,
    channels_rule,
    register_model,
)

_PAPER = (
    "S. L. Pintea, N. Tomen, S. F. Goes, M. Loog, J. C. van Gemert (2021), Resolution learning in deep "
    "convolutional networks using scale-space theory, IEEE Transactions on Image Processing 30: 8342-8353"
)
_BIBTEX = "pintea2021resolution"
_ARXIV = "2106.03412"
#: The reference code's CIFAR-10 recipe; its RandomCrop(32, padding=4) is a random shift of up to 4 pixels with
#: zero fill (``translate``), and its normalisation constants are kept as facts (builds are not normalised).
_PAPER_TRAINING = CardRecipe(
    optimizer="sgd",
    lr=0.1,
    momentum=0.9,
    weight_decay=5e-4,
    epochs=90,
    schedule="step",
    lr_milestones=[30, 60],
    lr_gamma=0.1,
    batch_size=128,
    augmentation="hflip+translate",
    translate_pixels=4,
    source="reference code demo.py / demo.sh (SilviaLauraPintea/N-JetNet)",
    facts={
        "augmentation_as_written": "RandomCrop(32, padding=4), RandomHorizontalFlip",
        "normalize_mean": [0.4914, 0.4822, 0.4465],
        "normalize_std": [0.2023, 0.1994, 0.2010],
    },
)


class _NJetNetBase(nn.Module):
    """Common helpers: the list of learned sigmas."""

    def njet_layers(self) -> list[NJetConv2d]:
        """The N-Jet layers in forward (registration) order."""
        return [m for m in self.modules() if isinstance(m, NJetConv2d)]

    def learned_sigmas(self) -> list[float]:
        """Current sigma of every N-Jet layer, in forward order."""
        return [float(m.sigma.detach()) for m in self.njet_layers()]


#: The keywords of :class:`~scalebench.models.njet.NJetConv2d` that are not the networks' config: the
#: subsampling radius is set per layer (from the network's ``subsample_r``), the rest keep their defaults.
_LAYER_ONLY = ("subsample_r", "alpha_std", "strategy")


def _conv1x1_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


@takes_keywords_of(NJetConv2d, exclude=_LAYER_ONLY)
class NJetNiN(_NJetNetBase):
    """Network-in-Network with N-Jet layers, as ``nin_shared_srf`` of the reference code (module docstring); the
    N-Jet keywords (``order``, ``k``, ``size_rule``, ``init_sigma``, ``learn_sigma``) are the layer's."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        channels: Sequence[int] = (192, 160, 96, 192, 192, 192, 192, 192),
        dropout: float = 0.5,
        safe_subsample: bool = False,
        subsample_r: float = 4.0,
        **nj: Any,
    ) -> None:
        super().__init__()
        c = [int(v) for v in channels]
        if len(c) != 8 or any(v < 1 for v in c):
            raise ScalebenchError(
                f"njetnet_nin channels must be 8 positive integers (N-Jet, 1x1, 1x1 per block, and the N-Jet "
                f"and first 1x1 of the last block), got {list(channels)!r}."
            )
        r = subsample_r if safe_subsample else None

        def njet(ci: int, co: int) -> list[nn.Module]:
            return [NJetConv2d(ci, co, subsample_r=r, **nj), nn.BatchNorm2d(co), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *njet(in_channels, c[0]),
            *_conv1x1_bn_relu(c[0], c[1]),
            *_conv1x1_bn_relu(c[1], c[2]),
            nn.Dropout(dropout),
            *njet(c[2], c[3]),
            *_conv1x1_bn_relu(c[3], c[4]),
            *_conv1x1_bn_relu(c[4], c[5]),
            nn.Dropout(dropout),
            *njet(c[5], c[6]),
            *_conv1x1_bn_relu(c[6], c[7]),
            *_conv1x1_bn_relu(c[7], num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return self.features(x).mean((-2, -1))


class NJetBasicBlock(nn.Module):
    """Basic residual block with two N-Jet layers; the first one safe-subsamples if ``subsample_r`` is set."""

    def __init__(self, in_channels: int, out_channels: int, subsample_r: float | None, njet: dict) -> None:
        super().__init__()
        self.conv1 = NJetConv2d(in_channels, out_channels, subsample_r=subsample_r, **njet)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = NJetConv2d(out_channels, out_channels, **njet)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.extra = out_channels - in_channels

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        short = x
        if short.shape[-2:] != y.shape[-2:]:
            short = F.interpolate(
                short, size=y.shape[-2:], mode="bilinear", align_corners=False, antialias=True
            )
        if self.extra > 0:
            short = F.pad(short, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(y + short)


@takes_keywords_of(NJetConv2d, exclude=_LAYER_ONLY)
class NJetResNet(_NJetNetBase):
    """CIFAR ResNet-(6n+2) with N-Jet layers and safe subsampling at the two stage transitions; the N-Jet keywords
    are the layer's."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        depth: int = 32,
        width: int = 16,
        subsample_r: float = 4.0,
        **nj: Any,
    ) -> None:
        super().__init__()
        plan = cifar_resnet_plan(depth, width, name="N-Jet ResNet")
        self.stem = nn.Sequential(
            NJetConv2d(in_channels, width, **nj), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.blocks = nn.Sequential(
            *(NJetBasicBlock(ci, co, subsample_r if sub else None, nj) for ci, co, sub in plan)
        )
        self.fc = nn.Linear(plan[-1][1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return self.fc(self.blocks(self.stem(x)).mean((-2, -1)))


_NJET_NOTES = (
    "sigma = 2^s learned per N-Jet layer (sigma = 1 at init); kernel size 2 ceil(k sigma) + 1 (size_rule "
    "'reference' gives the reference code's 2 ceil(k sigma + 0.5) + 1). Deviations from the reference code "
    "(detached extra_reg not added, safe subsampling by the paper's formula, separable evaluation) are "
    "listed in scalebench/models/njet.py. Not scale covariant: one sigma per layer, learned for the "
    "training scale."
)


def _njet_card(
    name: str, display_name: str, builder: type[nn.Module], *, quick: dict, num_params: int, notes: str
) -> ModelCard:
    """The card of an N-JetNet backbone: its default config is the signature of ``builder``."""
    return ModelCard(
        name=name,
        display_name=display_name,
        family="njet",
        paper=_PAPER,
        bibtex_key=_BIBTEX,
        arxiv=_ARXIV,
        code_url="https://github.com/SilviaLauraPintea/N-JetNet",
        default_config=builder_defaults(builder),
        quick_config=quick,
        input_size=(3, 32, 32),
        num_params=num_params,
        scale_covariant=False,
        reports_scale_selection=False,
        paper_training=_PAPER_TRAINING,
        notes=notes + _NJET_NOTES,
    )


njetnet_nin = register_model(
    _njet_card(
        "njetnet_nin",
        "N-JetNet (NiN)",
        NJetNiN,
        quick={"channels": (8, 8, 8, 8, 8, 8, 8, 8)},
        num_params=496_663,
        notes="NiN backbone as nin_shared_srf.py of the reference code (no pooling). ",
    ),
    rules={**NJET_RULES, "channels": channels_rule(min_items=8, max_items=8), "dropout": PROBABILITY},
)(NJetNiN)
"""N-JetNet with the NiN backbone of the reference code (registered builder: the class itself)."""

njetnet_resnet32 = register_model(
    _njet_card(
        "njetnet_resnet32",
        "N-JetNet (ResNet-32)",
        NJetResNet,
        quick={"depth": 8, "width": 4},
        num_params=310_441,
        notes=(
            "CIFAR ResNet-32 (He et al. 2016) with N-Jet layers and safe subsampling where ResNet strides "
            "(our construction after the paper's Exp. 3.2; no reference code). "
        ),
    ),
    rules={**NJET_RULES, **RESNET_RULES},
)(NJetResNet)
"""N-JetNet with a CIFAR ResNet-32 backbone (registered builder: the class itself)."""
