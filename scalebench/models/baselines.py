"""Baselines of the zoo: a plain CNN with the depth and width of the default GaussDerNet, and CIFAR ResNets.

- ``cnn``: L layers of 3x3 convolution (no bias) + batch norm + ReLU, with the channel widths of the default
  GaussDerNet, 2x2 max pooling after the layers listed in ``pool_after`` (GaussDerNet itself has no
  subsampling; a plain CNN without it would see only 2L+1 pixels), then a 3x3 class layer (with bias) and
  global spatial pooling (average or max). It is *not* scale covariant: its receptive field is fixed in
  pixels, which is the point of the baseline.

  Parameter budget (default config, 1 input channel, 10 classes; widths (16, 16, 24, 24, 32)):
  sum_l 9 C_{l-1} C_l + 2 C_l (batch norm) + 9 C_L * 10 + 10 = 21,114. A GaussDerNet layer of order 2
  learns 6 numbers per in/out pair against the CNN's 9, so the CNN has about 1.5x the weights of the
  default GaussDerNet (14,154 at the time of writing; ``tests/models/test_zoo.py`` checks that the widths
  stay equal).

- ``resnet20`` / ``resnet32``: the CIFAR ResNet of He et al. (2016), Sect. 4.2: a 3x3 stem with 16
  channels, three stages of n basic blocks (two 3x3 conv + BN, ReLU) with 16, 32, 64 channels, stride 2 at
  the first block of stages 2 and 3, global average pooling and a linear layer; depth 6n + 2. Shortcuts are
  option A of the paper (identity; at a change of size, the input subsampled by 2 and zero-padded in
  channels), so shortcuts have no parameters. ``width`` scales the 16-32-64 channels.

  Parameter budget (3 input channels, 10 classes): ResNet-20 269,722; ResNet-32 464,154 (the paper's
  "0.27M" and "0.46M").

Reference:
    K. He, X. Zhang, S. Ren, J. Sun (2016), "Deep residual learning for image recognition", CVPR 2016:
    770-778 (arXiv 1512.03385).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from scalebench.checks import ScalebenchError, check_choice
from scalebench.models.keywords import takes_keywords_of
from scalebench.models.registry import (
    MAX_CHANNELS,
    MAX_LAYERS,
    PROBABILITY,
    CardRecipe,
    ConfigRule,
    ModelCard,
    builder_defaults,
    channels_rule,
    register_model,
)

GLOBAL_POOLS: tuple[str, ...] = ("avg", "max")

#: Valid values of the layout keywords of :func:`check_layout` (checked by the registry before anything is built).
LAYOUT_RULES: dict[str, ConfigRule] = {
    "widths": channels_rule(),
    "pool_after": ConfigRule(low=0, high=MAX_LAYERS - 1, min_items=0),
    "global_pool": ConfigRule(choices=GLOBAL_POOLS),
}


def _check_channels(channels: Sequence[int], name: str) -> list[int]:
    bad = isinstance(channels, (str, bytes)) or not hasattr(channels, "__iter__")
    out = [] if bad else [int(c) for c in channels if isinstance(c, (int, float)) and int(c) == c]
    if bad or not out or len(out) != len(channels) or any(c < 1 for c in out):
        raise ScalebenchError(f"{name} must be a non-empty list of positive integers, got {channels!r}.")
    return out


def check_layout(
    *,
    widths: Sequence[int] = (16, 16, 24, 24, 32),
    pool_after: Sequence[int] = (1, 3),
    global_pool: str = "avg",
) -> tuple[list[int], set[int], str]:
    """The checked layout of a plain-CNN-shaped network: its widths (positive integers), the indices of the
    layers followed by 2x2 max pooling (each within the widths) and its global pooling (:data:`GLOBAL_POOLS`).

    Its keywords, with their defaults (the registered ``cnn``'s: the widths of the default GaussDerNet, pooling
    after layers 1 and 3), are the layout config of every plain-CNN-shaped network of the zoo, which takes them
    through :func:`~scalebench.models.keywords.takes_keywords_of`."""
    channels = _check_channels(widths, "widths")
    bad = [i for i in pool_after if not 0 <= int(i) < len(channels)]
    if bad:
        raise ScalebenchError(
            f"pool_after lists layer indices {bad} outside 0..{len(channels) - 1} (one per entry of widths)."
        )
    return channels, {int(i) for i in pool_after}, check_choice(global_pool, "global_pool", GLOBAL_POOLS)


@takes_keywords_of(check_layout)
class PlainCNN(nn.Module):
    """3x3 conv + BN + ReLU layers, optional 2x2 max pooling, a 3x3 class layer and global pooling; the layout
    keywords (``widths``, ``pool_after``, ``global_pool``) are those of :func:`check_layout`."""

    def __init__(self, *, num_classes: int, in_channels: int, dropout: float = 0.0, **layout: Any) -> None:
        super().__init__()
        channels, pools, self.global_pool = check_layout(**layout)
        layers: list[nn.Module] = []
        prev = in_channels
        for i, c in enumerate(channels):
            layers += [nn.Conv2d(prev, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            if i in pools:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            prev = c
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(prev, num_classes, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.classifier(self.features(x))
        return y.mean((-2, -1)) if self.global_pool == "avg" else y.amax((-2, -1))


_CNN_CARD = ModelCard(
    name="cnn",
    display_name="plain CNN",
    family="cnn",
    paper=(
        "Baseline: a plain CNN (3x3 convolutions, batch norm, ReLU) with the depth and channel widths of the "
        "default GaussDerNet (Lindeberg 2022, J. Math. Imaging Vis. 64(3): 223-242)"
    ),
    bibtex_key="scalebench_cnn_baseline",
    default_config=builder_defaults(PlainCNN),
    quick_config={"widths": (8, 8, 12, 12)},
    num_params=21_114,
    scale_covariant=False,
    reports_scale_selection=False,
    paper_training=CardRecipe(
        optimizer="adamw",
        lr=1e-3,
        weight_decay=5e-4,
        epochs=40,
        batch_size=64,
        source="scalebench's default (the baseline has no paper)",
        unverified=["optimizer", "lr", "weight_decay", "epochs", "batch_size"],
    ),
    notes=(
        "Not from a paper: the scalebench reference baseline. Widths 16-16-24-24-32 + class layer, as the "
        "default GaussDerNet; 3x3 "
        "kernels; 2x2 max pooling after layers 1 and 3 (0-based) so that the receptive field covers the "
        "object; class layer then global average pooling. Parameter budget documented in "
        "scalebench/models/baselines.py. Training recipe is scalebench's default, not a paper's."
    ),
)


#: Valid values of the ``cnn`` config (checked by the registry before anything is built).
CNN_RULES: dict[str, ConfigRule] = {**LAYOUT_RULES, "dropout": PROBABILITY}

cnn = register_model(_CNN_CARD, rules=CNN_RULES)(PlainCNN)
"""Plain CNN baseline (see the module docstring; registered builder: the class itself)."""

#: Random rescaling of the scale-augmentation baseline: the "+" setting of SESN and DISCO (Sosnovik et al.
#: 2020, ICLR; 2021, BMVC): scale factor U(0.5, 2), bicubic, which covers the factor-4 test range 1/2 .. 2.
SCALE_AUGMENTATION = {"scale_augmentation": [0.5, 2.0], "scale_augmentation_interpolation": "bicubic"}

cnn_scale_aug = register_model(
    _CNN_CARD.model_copy(
        update={
            "name": "cnn_scale_aug",
            "display_name": "plain CNN + scale augmentation",
            "bibtex_key": "scalebench_cnn_baseline",
            "quick_training": CardRecipe(
                **SCALE_AUGMENTATION,
                source="SESN/DISCO '+' setting (random scaling U(0.5, 2), bicubic); the sampling law "
                "(log-uniform here) is scalebench's choice",
            ),
            "paper_training": CardRecipe(
                **_CNN_CARD.paper_training.fields(),
                **SCALE_AUGMENTATION,
                source=_CNN_CARD.paper_training.source,
                unverified=[*_CNN_CARD.paper_training.unverified, "scale_augmentation"],
            ),
            "notes": "The plain CNN (same config and parameters as `cnn`), trained with every training image "
            "randomly rescaled about its centre by a factor in [0.5, 2] (log-uniform, bicubic, anti-aliased "
            "when shrinking, zero fill). The baseline reviewers ask for: it sees every test scale in training, "
            "so it is ranked on the augmented track, never with single-scale training. Range and "
            "interpolation are recorded in each run's recipe.",
        }
    ),
    rules=CNN_RULES,
)(PlainCNN)
"""The scale-augmentation baseline: the plain CNN trained with random rescaling (the augmented track)."""


# ---------------------------------------------------------------------------------------------------------
# CIFAR ResNet (He et al. 2016, Sect. 4.2)


class _ShortcutA(nn.Module):
    """Option A shortcut: subsample by ``stride`` and zero-pad the channels up to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.extra, self.stride = out_channels - in_channels, stride

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[..., :: self.stride, :: self.stride]
        if self.extra > 0:
            x = F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return x


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus an option-A shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = _ShortcutA(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


def cifar_resnet_plan(depth: int, width: int, *, name: str = "CIFAR ResNet") -> list[tuple[int, int, bool]]:
    """The blocks of a CIFAR ResNet-(6n+2) (He et al. 2016, Sect. 4.2) as (in, out channels, subsamples).

    Three stages of n = (depth - 2) / 6 blocks with ``width``, 2 ``width`` and 4 ``width`` channels; the first
    block of stages 2 and 3 subsamples. Shared by :class:`CifarResNet` and the N-Jet ResNet
    (:class:`scalebench.models.njetnet.NJetResNet`); ``name`` names the network in errors.

    Example:
        >>> cifar_resnet_plan(8, 16)
        [(16, 16, False), (16, 32, True), (32, 64, True)]
    """
    if depth < 8 or (depth - 2) % 6 != 0:
        raise ScalebenchError(f"{name} depth must be 6n+2 with n >= 1 (8, 20, 32, 44, 56, 110), got {depth}.")
    if width < 1:
        raise ScalebenchError(f"{name} width must be a positive integer, got {width}.")
    n = (depth - 2) // 6
    plan, prev = [], width
    for stage, w in enumerate([width, 2 * width, 4 * width]):
        for b in range(n):
            plan.append((prev, w, stage > 0 and b == 0))
            prev = w
    return plan


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for small images: stem, three stages of n basic blocks, global average pool, linear."""

    def __init__(self, *, num_classes: int, in_channels: int, depth: int = 20, width: int = 16) -> None:
        super().__init__()
        plan = cifar_resnet_plan(depth, width)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(*(BasicBlock(ci, co, stride=2 if sub else 1) for ci, co, sub in plan))
        self.fc = nn.Linear(plan[-1][1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.blocks(self.stem(x)).mean((-2, -1)))


_RESNET_PAPER = (
    "K. He, X. Zhang, S. Ren, J. Sun (2016), Deep residual learning for image recognition, CVPR 2016: 770-778"
)
#: He et al. (2016), Sect. 4.2: SGD, lr 0.1 divided by 10 at 32k and 48k iterations, 64k iterations at batch
#: 128 on a 45k/5k train/val split, weight decay 1e-4, momentum 0.9, 4-pixel padding + random 32x32 crop +
#: horizontal flip. Iterations are converted to epochs of the 45k training images (64k x 128 / 45k = 182;
#: milestones 91 and 137, rounded), so the schedule keeps its shape on a build of another size.
_RESNET_TRAINING = CardRecipe(
    optimizer="sgd",
    lr=0.1,
    momentum=0.9,
    weight_decay=1e-4,
    batch_size=128,
    epochs=182,
    schedule="step",
    lr_milestones=[91, 137],
    lr_gamma=0.1,
    augmentation="hflip+translate",
    translate_pixels=4,
    source="He et al. 2016, Sect. 4.2 (iterations converted to epochs of 45k images)",
    facts={"iterations": 64_000, "lr_milestones_iterations": [32_000, 48_000], "train_images": 45_000},
)


def _resnet_card(depth: int, num_params: int) -> ModelCard:
    return ModelCard(
        name=f"resnet{depth}",
        display_name=f"ResNet-{depth}",
        family="resnet",
        paper=_RESNET_PAPER,
        bibtex_key="he2016deep",
        arxiv="1512.03385",
        default_config={"depth": depth, "width": 16},
        quick_config={"width": 4},
        input_size=(3, 32, 32),
        num_params=num_params,
        scale_covariant=False,
        reports_scale_selection=False,
        paper_training=_RESNET_TRAINING,
        notes=(
            f"CIFAR ResNet-{depth} (Sect. 4.2 of the paper): 16-32-64 channels, option-A (parameter-free) "
            "shortcuts, global average pooling. Works at any input size (fully convolutional)."
        ),
    )


#: Valid values of the CIFAR ResNet configs: depth 6n+2 up to He et al.'s ResNet-1202 (the builder checks 6n+2);
#: ``width`` channels in the first stage and 4 ``width`` in the last.
RESNET_RULES: dict[str, ConfigRule] = {
    "depth": ConfigRule(low=8, high=1202),
    "width": ConfigRule(low=1, high=MAX_CHANNELS // 4, limit="scalebench.models.registry.MAX_CHANNELS / 4"),
}


def resnet20(*, num_classes: int, in_channels: int, depth: int = 20, width: int = 16) -> CifarResNet:
    """CIFAR ResNet-20 of He et al. (2016)."""
    return CifarResNet(num_classes=num_classes, in_channels=in_channels, depth=depth, width=width)


def resnet32(*, num_classes: int, in_channels: int, depth: int = 32, width: int = 16) -> CifarResNet:
    """CIFAR ResNet-32 of He et al. (2016), the plain counterpart of ``njetnet_resnet32``."""
    return CifarResNet(num_classes=num_classes, in_channels=in_channels, depth=depth, width=width)


register_model(_resnet_card(20, 269_722), rules=RESNET_RULES)(resnet20)
register_model(_resnet_card(32, 464_154), rules=RESNET_RULES)(resnet32)
