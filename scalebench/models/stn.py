r"""Spatial transformer CNN: a learned affine warp of the input, then the zoo's plain CNN.

M. Jaderberg, K. Simonyan, A. Zisserman, K. Kavukcuoglu (2015), "Spatial transformer networks", NeurIPS 2015
(arXiv 1506.02025), Sect. 3: a localisation network regresses the parameters :math:`\theta` (2 x 3) of an affine
transformation; the grid generator maps every output pixel's normalised coordinates :math:`(x^t, y^t)` to
source coordinates :math:`(x^s, y^s)^\top = \theta\,(x^t, y^t, 1)^\top` (Eq. 1), and a differentiable sampler
(bilinear, Eq. 5) reads the input there. Here :func:`torch.nn.functional.affine_grid` and
:func:`torch.nn.functional.grid_sample` implement Eq. 1 and 5; ``align_corners`` and the border handling are
config keys.

Localisation network (scalebench's choice; the paper's differ per experiment): [3x3 conv -> 2x2 max pool ->
ReLU] per ``loc_widths``, adaptive average pooling to ``loc_pool`` x ``loc_pool`` (so any input size works),
a hidden fully-connected layer of ``loc_hidden`` units with ReLU, and the final linear layer to the 6 numbers
of :math:`\theta`, initialised to the identity (weights zero, bias (1, 0, 0, 0, 1, 0)), as STIR's
``SpatialTransformModel`` (``taltstidl/scale-equivariant-cnn`` ``siconvnet/models.py``, MIT, read for facts
only: conv3x3-16, max pool, ReLU, conv3x3-16, max pool, ReLU, flatten, linear 16, ReLU, linear 6, identity
initialisation, ``affine_grid`` + ``grid_sample`` with their defaults).

Parameter budget (default config, 1 input channel, 10 classes): localisation net
9*1*8 + 8 + 9*8*16 + 16 (convolutions with bias) + 16*4*4*32 + 32 + 32*6 + 6 = 9,670, plus the plain ``cnn``
classifier 21,114: 30,784 in all. ``scalebench.models.budget.budget_matched_cnn_config(30_784)`` gives the plain
CNN of the same budget (widths 20-20-29-29-39, 30,542 parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalebench.checks import check_choice, check_shape
from scalebench.models.baselines import LAYOUT_RULES, PlainCNN, _check_channels, check_layout
from scalebench.models.keywords import takes_keywords_of
from scalebench.models.registry import (
    EVERY_DATASET_AS_IS,
    ConfigRule,
    ModelCard,
    builder_defaults,
    channels_rule,
    register_model,
)
from scalebench.models.scale_channel_nets import STIR_TRAINING

#: Sampling modes of :func:`torch.nn.functional.grid_sample`.
SAMPLING_MODES: tuple[str, ...] = ("bilinear", "nearest", "bicubic")
#: Border handling of :func:`torch.nn.functional.grid_sample`.
SAMPLING_PADDINGS: tuple[str, ...] = ("zeros", "border", "reflection")
#: The identity affine transformation, row-major 2 x 3.
IDENTITY_THETA: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@takes_keywords_of(check_layout)
class SpatialTransformerCNN(nn.Module):
    """Localisation net -> affine_grid -> grid_sample -> plain CNN (see the module docstring), whose layout
    keywords are those of :func:`~scalebench.models.baselines.check_layout`."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        loc_widths: Sequence[int] = (8, 16),
        loc_pool: int = 4,
        loc_hidden: int = 32,
        sampling: str = "bilinear",
        sampling_padding: str = "zeros",
        align_corners: bool = False,
        **layout: Any,
    ) -> None:
        super().__init__()
        loc = _check_channels(loc_widths, "loc_widths")
        self.sampling = check_choice(sampling, "sampling", SAMPLING_MODES)
        self.sampling_padding = check_choice(sampling_padding, "sampling_padding", SAMPLING_PADDINGS)
        self.align_corners = bool(align_corners)
        layers: list[nn.Module] = []
        prev = int(in_channels)
        for c in loc:
            layers += [
                nn.Conv2d(prev, c, 3, padding=1),
                nn.MaxPool2d(2, ceil_mode=True),
                nn.ReLU(inplace=True),
            ]
            prev = c
        layers += [
            nn.AdaptiveAvgPool2d(int(loc_pool)),
            nn.Flatten(),
            nn.Linear(prev * int(loc_pool) ** 2, int(loc_hidden)),
            nn.ReLU(inplace=True),
        ]
        self.localisation = nn.Sequential(*layers)
        self.theta = nn.Linear(int(loc_hidden), 6)
        with torch.no_grad():
            self.theta.weight.zero_()
            self.theta.bias.copy_(torch.tensor(IDENTITY_THETA))
        self.classifier = PlainCNN(num_classes=num_classes, in_channels=in_channels, **layout)

    def affine(self, x: Tensor) -> Tensor:
        """The predicted transformation theta (B, 2, 3) (the identity at initialisation)."""
        return self.theta(self.localisation(x)).view(-1, 2, 3)

    def transform(self, x: Tensor) -> Tensor:
        """The input warped by the predicted affine transformation (B, C, H, W)."""
        check_shape(x, "B C H W")
        grid = F.affine_grid(self.affine(x), list(x.shape), align_corners=self.align_corners)
        return F.grid_sample(
            x, grid, mode=self.sampling, padding_mode=self.sampling_padding, align_corners=self.align_corners
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.transform(x))


STN_RULES: dict[str, ConfigRule] = {
    **LAYOUT_RULES,
    "loc_widths": channels_rule(),
    "loc_pool": ConfigRule(low=1, high=16),
    "loc_hidden": channels_rule(),
    "sampling": ConfigRule(choices=SAMPLING_MODES),
    "sampling_padding": ConfigRule(choices=SAMPLING_PADDINGS),
}

register_model(
    ModelCard(
        name="stn_cnn",
        display_name="Spatial transformer CNN",
        family="baseline",
        paper=(
            "M. Jaderberg, K. Simonyan, A. Zisserman, K. Kavukcuoglu (2015), Spatial transformer networks, "
            "NeurIPS 2015 (arXiv 1506.02025)"
        ),
        bibtex_key="jaderberg2015spatial",
        arxiv="1506.02025",
        code_url=None,
        licence="MIT (STIR's SpatialTransformModel, taltstidl/scale-equivariant-cnn, consulted for facts only)",
        default_config=builder_defaults(SpatialTransformerCNN),
        quick_config={"widths": (8, 8, 12, 12), "loc_widths": (4, 8), "loc_hidden": 16},
        dataset_configs=EVERY_DATASET_AS_IS,
        num_params=30_784,
        scale_covariant=False,
        reports_scale_selection=False,
        paper_training=STIR_TRAINING,
        notes=(
            "A baseline as in STIR (taltstidl/scale-equivariant-cnn siconvnet/models.py SpatialTransformModel, "
            "MIT, facts only): a full affine spatial transformer (Jaderberg et al. 2015, Sect. 3, Eq. 1 and 5) "
            "with identity initialisation (last layer weights zero, bias 1,0,0,0,1,0) in front of the zoo's plain "
            "cnn. Localisation net (scalebench's choice): conv3x3-8, max pool, ReLU, conv3x3-16, max pool, ReLU, "
            "adaptive average pool 4x4 (any input size), linear 32, ReLU, linear 6. Parameter budget: 9,670 "
            "(localisation) + 21,114 (cnn) = 30,784; budget_matched_cnn_config(30_784) gives the plain CNN of the "
            "same budget (widths 20-20-29-29-39, 30,542). Sampling bilinear, zero padding outside the image, align_corners=false (config keys, "
            "recorded; torch's defaults, which STIR uses). The paper's localisation nets and training differ per "
            "experiment and were not read. Quick config speed (72x72, batch 32, forward+backward, 2 threads, best of 6 rounds interleaved with the cnn's quick config on a 2-core CPU shared with a training job, cnn quick 90 img/s in that run): 66 img/s (0.73 x cnn)."
        ),
    ),
    rules=STN_RULES,
)(SpatialTransformerCNN)
