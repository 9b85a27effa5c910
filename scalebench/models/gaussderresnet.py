r"""GaussDerResNet: scale-covariant Gaussian derivative residual networks, standard and depthwise-separable.

Perzanowski & Lindeberg (2026), "Scale-invariant Gaussian derivative residual networks", arXiv 2603.02843.
Residual blocks of Gaussian derivative layers coupled in cascade; skip connections stay inside each scale
channel, so the network is scale covariant, and pooling over the scale channels at the end makes it scale
invariant. The depthwise-separable variant replaces each Gaussian derivative layer by a depthwise one (one
N-jet combination per channel) followed by a pointwise 1 x 1 convolution, with fewer parameters and FLOPs.

The block structure, widths, number of blocks and sigma schedule are NOT public (the paper's tables could
not be read); this module's choices are documented defaults, all exposed as config:

    stem:   GaussianDerivativeLayer(in -> stem_width) -> BN -> ReLU
    block:  y = BN(GD(ReLU(BN(GD(x)))));  out = ReLU(y + skip(x)),
            skip = identity, or 1x1 conv + BN when the width changes (pointwise, within each scale channel)
    stages: ``stage_widths`` with ``blocks_per_stage`` blocks each; no spatial subsampling
    head:   GaussianDerivativeLayer(last width -> classes, bias) -> centre readout or spatial max
            -> max or avg over scale channels

Every Gaussian derivative layer of one scale channel uses sigma0_i * q^l, with l counting the Gaussian
derivative layers from the stem (q = ``sigma_growth`` = 1 by default, as for GaussDerNet). Batch norm is
shared across scale channels (scale channels live in the batch dimension). Training per a third-party summary of the paper (unverified): AdamW with
label smoothing; other values unverified.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from scalebench.checks import ScalebenchError
from scalebench.models.gaussder import (
    LATER_SCALE_CHANNEL_KEYS,
    SCALE_CHANNEL_DEFAULTS,
    SCALE_CHANNEL_RULES,
    GaussianDerivativeLayer,
    ScaleChannelConfig,
    ScaleChannelNetwork,
    joint_batch_norm,
)
from scalebench.models.gaussdernet import QUICK_TRAINING
from scalebench.models.registry import CardRecipe, ConfigRule, ModelCard, channels_rule, register_model


class _GDConv(nn.Module):
    """One Gaussian derivative layer, or its depthwise-separable form (depthwise GD layer + 1x1 conv).
    ``kw`` holds the Gaussian derivative layer's settings, the multi-resolution group sigmas included."""

    def __init__(self, cin: int, cout: int, sigmas: list[float], depthwise: bool, **kw: Any) -> None:
        super().__init__()
        self.depthwise = depthwise
        if depthwise:
            self.gd = GaussianDerivativeLayer(cin, cin, sigmas, depthwise=True, **kw)
            self.pointwise: nn.Module = nn.Conv2d(cin, cout, 1, bias=False)
        else:
            self.gd = GaussianDerivativeLayer(cin, cout, sigmas, **kw)
            self.pointwise = nn.Identity()

    def forward(self, x: Tensor, group: int | None = None) -> Tensor:
        return self.pointwise(self.gd(x, group=group))


class GaussDerResidualBlock(nn.Module):
    """out = ReLU(BN(GD2(ReLU(BN(GD1(x))))) + skip(x)); skip is pointwise, so it acts within each scale channel.

    ``groups1`` / ``groups2``: the multi-resolution group settings of GD1 / GD2
    (:meth:`~scalebench.models.gaussder.ScaleChannelNetwork.group_layer_kwargs`)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        sigmas1: list[float],
        sigmas2: list[float],
        depthwise: bool,
        groups1: dict[str, Any] | None = None,
        groups2: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__()
        momentum = kw.pop("bn_momentum", 0.1)
        self.conv1 = _GDConv(cin, cout, sigmas1, depthwise, **(groups1 or {}), **kw)
        self.bn1 = nn.BatchNorm2d(cout, momentum=momentum)
        self.conv2 = _GDConv(cout, cout, sigmas2, depthwise, **(groups2 or {}), **kw)
        self.bn2 = nn.BatchNorm2d(cout, momentum=momentum)
        self.skip: nn.Module = (
            nn.Identity()
            if cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout, momentum=momentum))
        )

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.skip(x))

    def forward_groups(self, xs: list[Tensor]) -> list[Tensor]:
        """The multi-resolution mode: the block on each group's own grid, every batch norm with statistics over
        all groups together (:func:`~scalebench.models.gaussder.joint_batch_norm`)."""
        ys = [torch.relu(y) for y in joint_batch_norm(self.bn1, [self.conv1(x, g) for g, x in enumerate(xs)])]
        zs = joint_batch_norm(self.bn2, [self.conv2(y, g) for g, y in enumerate(ys)])
        if isinstance(self.skip, nn.Sequential):
            conv, bn = self.skip
            skips = joint_batch_norm(bn, [conv(x) for x in xs])
        else:
            skips = xs
        return [torch.relu(z + k) for z, k in zip(zs, skips, strict=True)]


class GaussDerResNet(ScaleChannelNetwork):
    """Gaussian derivative residual network (see the module docstring for the documented structure)."""

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_channels: int = 1,
        stem_width: int = 16,
        stage_widths: Any = (16, 24, 32),
        blocks_per_stage: int = 2,
        depthwise: bool = False,
        **scale_channels: Any,
    ) -> None:
        """``scale_channels``: the settings of :class:`~scalebench.models.gaussder.ScaleChannelConfig`
        (``num_scale_channels``, ``sigma0``, ``scale_ratio``, ``sigma_growth``, ``max_order``, ...)."""
        try:
            widths = [int(w) for w in stage_widths]
        except (TypeError, ValueError):
            widths = None
        if widths is None or widths != list(stage_widths):  # never truncate 8.7 to 8
            raise ScalebenchError(f"stage_widths must be a list of positive integers, got {stage_widths!r}.")
        if not widths or min(widths) < 1 or int(blocks_per_stage) < 1 or int(stem_width) < 1:
            raise ScalebenchError(
                f"stage_widths ({stage_widths!r}), stem_width ({stem_width!r}) and blocks_per_stage "
                f"({blocks_per_stage!r}) must be positive."
            )
        layers = 2 + 2 * len(widths) * int(blocks_per_stage)  # stem, two per block, head
        super().__init__(
            ScaleChannelConfig.from_kwargs(**scale_channels), in_channels=in_channels, num_layers=layers
        )
        kw = self.layer_kwargs
        self.stem = GaussianDerivativeLayer(
            int(in_channels), int(stem_width), self.layer_sigmas(0), **self.group_layer_kwargs(0), **kw
        )
        self.stem_bn = nn.BatchNorm2d(int(stem_width), momentum=self.bn_momentum)
        blocks = []
        cin, depth = int(stem_width), 1
        for w in widths:
            for _ in range(int(blocks_per_stage)):
                blocks.append(
                    GaussDerResidualBlock(
                        cin,
                        w,
                        self.layer_sigmas(depth),
                        self.layer_sigmas(depth + 1),
                        depthwise,
                        self.group_layer_kwargs(depth),
                        self.group_layer_kwargs(depth + 1),
                        bn_momentum=self.bn_momentum,
                        **kw,
                    )
                )
                cin, depth = w, depth + 2
        self.blocks = nn.ModuleList(blocks)
        self.head = GaussianDerivativeLayer(
            cin, int(num_classes), self.layer_sigmas(depth), bias=True, **self.group_layer_kwargs(depth), **kw
        )

    def features(self, x: Tensor) -> list[Tensor]:
        x = torch.relu(self.stem_bn(self.stem(x)))
        out = [x]
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def features_groups(self, xs: list[Tensor]) -> list[list[Tensor]]:
        """The multi-resolution mode: the stem and every block on each group's own grid (skips stay within a
        group, so no resampling is needed anywhere)."""
        stem = [self.stem(x, group=g) for g, x in enumerate(xs)]
        xs = [torch.relu(y) for y in joint_batch_norm(self.stem_bn, stem)]
        out = [xs]
        for block in self.blocks:
            xs = block.forward_groups(xs)
            out.append(xs)
        return out


def _build(*, num_classes: int, in_channels: int, **config: Any) -> GaussDerResNet:
    return GaussDerResNet(num_classes=num_classes, in_channels=in_channels, **config)


def _build_dw(*, num_classes: int, in_channels: int, **config: Any) -> GaussDerResNet:
    return GaussDerResNet(num_classes=num_classes, in_channels=in_channels, depthwise=True, **config)


_COMMON: dict[str, Any] = {
    "stem_width": 16,
    "stage_widths": [16, 24, 32],
    "blocks_per_stage": 2,
    **SCALE_CHANNEL_DEFAULTS,
}
#: Quick config (the ``quick`` preset, the lite track): narrower and shallower, with the default's scale
#: channels (8, sigma0 0.71..8), which the factor-4 test range needs (tests/models/test_scale_range.py).
_QUICK: dict[str, Any] = {"stem_width": 8, "stage_widths": [8, 12], "blocks_per_stage": 1}
_PAPER = (
    "A. Perzanowski, T. Lindeberg (2026), Scale-invariant Gaussian derivative residual networks, "
    "arXiv 2603.02843"
)
_TRAINING = CardRecipe(
    optimizer="adamw",
    lr=0.001,
    weight_decay=0.05,
    schedule="cosine",
    epochs=40,
    batch_size=16,
    label_smoothing=0.1,
    unverified=["lr", "weight_decay", "schedule", "epochs", "batch_size", "label_smoothing"],
)
_NOTES = (
    "Block structure, widths, blocks and sigma schedule are not public (documented choice, unverified): "
    "stem GD 16 + 3 stages (16, 24, 32) x 2 residual blocks [GD-BN-ReLU-GD-BN + skip, ReLU], no "
    "subsampling, same sigma in every layer, centre readout, max over 8 scale channels (sigma0 0.71..8). "
    "AdamW + label smoothing per a third-party summary (unverified). Parameters at (1,72,72), 10 classes: "
    "standard {std:,}, depthwise-separable {dw:,}."
)

_STD_PARAMS, _DW_PARAMS = 45_754, 12_506


def _card(name: str, display_name: str, paper: str, num_params: int) -> ModelCard:
    """The card shared by both variants, which differ only in name, paper note and parameter count."""
    return ModelCard(
        name=name,
        display_name=display_name,
        family="gaussderresnet",
        identity_optional=LATER_SCALE_CHANNEL_KEYS,
        paper=paper,
        bibtex_key="perzanowski2026gaussderresnet",
        arxiv="2603.02843",
        default_config=dict(_COMMON),
        quick_config=dict(_QUICK),
        quick_training=QUICK_TRAINING,
        num_params=num_params,
        scale_covariant=True,
        scale_invariant=True,
        reports_scale_selection=True,
        paper_training=_TRAINING,
        notes=_NOTES.format(std=_STD_PARAMS, dw=_DW_PARAMS),
    )


#: Valid values of both variants' configs (checked by the registry before anything is built).
RULES: dict[str, ConfigRule] = {
    **SCALE_CHANNEL_RULES,
    "stem_width": channels_rule(),
    "stage_widths": channels_rule(),
    "blocks_per_stage": ConfigRule(low=1, high=64),
}

register_model(_card("gaussderresnet", "GaussDerResNet", _PAPER, _STD_PARAMS), rules=RULES)(_build)
register_model(
    _card(
        "gaussderresnet_dw",
        "GaussDerResNet-DW",
        _PAPER + " (depthwise-separable variant, ablation)",
        _DW_PARAMS,
    ),
    rules=RULES,
)(_build_dw)
