r"""Scale-channel networks on rescaled inputs: FovMax / FovAvg (Jansson & Lindeberg) and the input pyramid (STIR).

**FovMax / FovAvg** (Y. Jansson, T. Lindeberg (2022), "Scale-invariant scale-channel networks: deep networks
that generalise to previously unseen scales", J. Math. Imaging Vis. 64: 506-536, arXiv 2106.06418; shortened in
ICPR 2020: 1181-1188, arXiv 2004.01536). A weight-shared base CNN :math:`\Gamma` is applied to S rescaled copies
of the image and the class scores are pooled over the copies ("scale channels"):

.. math:: z_i = \Gamma\big(C_N(Z_{1/s_i} f)\big), \qquad z = \max_i z_i \;(\text{FovMax}) \;\text{ or }\;
          \tfrac1S \textstyle\sum_i z_i \;(\text{FovAvg})

with :math:`Z_{1/s_i}` the rescaling by :math:`1/s_i` about the image centre and :math:`C_N` the central
N x N crop (zero padding where the rescaled image is smaller): the *foveated* channels. Channel i sees a
central region of :math:`N s_i` pixels at resolution :math:`1/s_i`, so coarser channels see larger areas at lower
resolution and all channels feed the base net the same N x N input. An object enlarged by :math:`s_k / s_i`
appears to channel k as it appeared to channel i, so the channel scores move by k - i channels
(scale covariance), and the max or average over a channel set that covers the scale range is invariant up to
discretisation and the range's ends (the papers' Sect. 3-4 argument; measured in
``tests/models/test_scale_channel_nets.py``). ``channel_sigmas`` are the :math:`s_i` (a channel with a larger
:math:`s_i` suits a larger object).

N is ``fovea_fraction`` times the input side (parity kept, so every crop is symmetric); the region of channel i,
:math:`N s_i`, is rounded to the input's parity (:func:`~scalebench.models.rescaling_peers.parity_round`), so its
effective factor is within 1/N of :math:`s_i`. Each channel is one call of
:func:`torch.nn.functional.interpolate` with the configured mode, antialias and align_corners.

No public code exists: written from the abstracts (the papers' full texts could not be read). Unverified: the
papers' channel factors (we use sqrt(2) spacing, 1/4 .. 4 by default: a factor 4 beyond each side of the
training scale, so the factor-4 test range 1/2 .. 2 is covered with an octave to spare), the fovea size, the
interpolation and antialiasing, the base network (here the zoo's plain ``cnn``), where pooling happens (we pool
class scores, i.e. logits).

**Input pyramid** (the ``EnsembleModel`` of STIR: T. Altstidl et al. (2023), "Just a matter of scale?
Reevaluating scale equivariance in convolutional neural networks", IJCNN 2023, arXiv 2211.10288; code
``taltstidl/scale-equivariant-cnn``, MIT, read for facts only): the same shared base net applied to every level
of an image pyramid, the *whole* image downscaled by :math:`r^{-l}` (no fixed-size crop: the difference from
FovAvg), and the mean of the class scores. STIR builds the pyramid with ``kornia.geometry.build_pyramid(x,
max_level=3)``: three levels 1, 1/2, 1/4, each a 5x5 binomial blur then bilinear halving. Here each level is
one :func:`torch.nn.functional.interpolate` of the input (bilinear with antialiasing by default: the blur's
role), levels ``[0, 1, 2]`` and ratio 2 by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from scalebench.checks import ScalebenchError, check_choice, check_shape
from scalebench.models.baselines import LAYOUT_RULES, PlainCNN, check_layout
from scalebench.models.bibtex import BIBTEX
from scalebench.models.gaussder import SCALE_POOLINGS, winning_scale_channel
from scalebench.models.keywords import takes_keywords_of
from scalebench.models.registry import (
    EVERY_DATASET_AS_IS,
    CardRecipe,
    ConfigRule,
    ModelCard,
    builder_defaults,
    register_model,
)
from scalebench.models.rescaling_peers import (
    INTERPOLATIONS,
    PADDINGS,
    check_interpolation,
    crop_or_pad_centre,
    interpolate,
    parity_round,
)

#: Most scale channels (each is a full pass of the base net).
MAX_CHANNELS_S = 32
#: Default channel factors of FovMax / FovAvg: sqrt(2) apart from 1/4 to 4 (9 channels).
DEFAULT_CHANNEL_FACTORS: tuple[float, ...] = tuple(2.0 ** (k / 2) for k in range(-4, 5))


def _check_factors(factors: Any, name: str) -> list[float]:
    try:
        out = [float(s) for s in factors]
    except (TypeError, ValueError):
        out = []
    if not out or any(not (s > 0 and math.isfinite(s)) for s in out) or isinstance(factors, str):
        raise ScalebenchError(f"{name} must be a non-empty list of positive numbers, got {factors!r}.")
    if len(set(out)) != len(out):
        raise ScalebenchError(f"{name} lists a factor twice: {factors!r}.")
    return out


class _ScaleChannelHead(nn.Module):
    """Shared part: the base net, pooling over channels, ``forward_with_selection``."""

    base: nn.Module
    scale_pooling: str

    def scale_channel_logits(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def channel_sigmas(self) -> list[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _pool(self, logits: Tensor) -> Tensor:
        return logits.amax(0) if self.scale_pooling == "max" else logits.mean(0)

    def forward(self, x: Tensor) -> Tensor:
        return self._pool(self.scale_channel_logits(x))

    def forward_with_selection(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(pooled logits (B, K), winning scale channel LongTensor[B]: the channel holding the max logit)."""
        per = self.scale_channel_logits(x)
        return self._pool(per), winning_scale_channel(per.detach())


@takes_keywords_of(check_layout)
class FoveatedScaleChannelNet(_ScaleChannelHead):
    """Foveated scale channels (see the module docstring), pooled by the subclass's ``SCALE_POOLING``:
    :class:`FovMax` or :class:`FovAvg`.

    Channels are folded into the batch, so the base net (and its batch norm) runs once on S x B crops. The
    base net's layout keywords are those of :func:`~scalebench.models.baselines.check_layout`."""

    SCALE_POOLING: str

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        channel_factors: Sequence[float] = DEFAULT_CHANNEL_FACTORS,
        fovea_fraction: float = 0.5,
        interpolation: str = "bilinear",
        antialias: bool = True,
        align_corners: bool = False,
        padding: str = "zeros",
        **layout: Any,
    ) -> None:
        super().__init__()
        self.scale_pooling = check_choice(self.SCALE_POOLING, "scale_pooling", SCALE_POOLINGS)
        self.factors = _check_factors(channel_factors, "channel_factors")
        if not 0 < float(fovea_fraction) <= 4:
            raise ScalebenchError(f"fovea_fraction must be in (0, 4], got {fovea_fraction!r}.")
        self.fovea_fraction = float(fovea_fraction)
        self.interpolation = check_interpolation(interpolation, antialias)
        self.antialias, self.align_corners = bool(antialias), bool(align_corners)
        self.padding = check_choice(padding, "padding", PADDINGS)
        self.base = PlainCNN(num_classes=num_classes, in_channels=in_channels, **layout)

    @property
    def channel_sigmas(self) -> list[float]:
        """The rescaling factor s_i of every channel (the image is shrunk by 1/s_i; larger s_i, larger objects)."""
        return list(self.factors)

    def fovea_size(self, h: int, w: int) -> tuple[int, int]:
        """N x N: ``fovea_fraction`` of the input side, with the input's parity."""
        return parity_round(h * self.fovea_fraction, h), parity_round(w * self.fovea_fraction, w)

    def channel_inputs(self, x: Tensor) -> Tensor:
        r"""The base net's input of every channel, (S, B, C, N, N): the central :math:`N s_i` region of ``x``
        (cropped or zero-padded, rounded to the input's parity), resized to N x N."""
        check_shape(x, "B C H W")
        h, w = x.shape[-2:]
        fh, fw = self.fovea_size(h, w)
        out = []
        for s in self.factors:
            region = (parity_round(fh * s, h), parity_round(fw * s, w))
            y = crop_or_pad_centre(x, region, self.padding)
            out.append(
                interpolate(
                    y, (fh, fw), mode=self.interpolation, align_corners=self.align_corners,
                    antialias=self.antialias,
                )
            )  # fmt: skip
        return torch.stack(out)

    def scale_channel_logits(self, x: Tensor) -> Tensor:
        """Class scores of every channel, (S, B, K), before pooling over channels."""
        crops = self.channel_inputs(x)
        s, b = crops.shape[:2]
        return self.base(crops.flatten(0, 1)).reshape(s, b, -1)


class FovMax(FoveatedScaleChannelNet):
    """FovMax (Jansson & Lindeberg 2022): foveated scale channels, max over channels of the class scores."""

    SCALE_POOLING = "max"


class FovAvg(FoveatedScaleChannelNet):
    """FovAvg (Jansson & Lindeberg 2022): foveated scale channels, average over channels of the class scores."""

    SCALE_POOLING = "avg"


@takes_keywords_of(check_layout, global_pool="max")
class InputPyramidNet(_ScaleChannelHead):
    """Input-pyramid ensemble (STIR's ``EnsembleModel``): the shared base net on every pyramid level, the whole
    image resized by ``level_ratio ** -l`` for l in ``levels``; mean (or max) of the class scores. The base net
    pools globally by max (STIR's), so that a level's scores do not depend on its canvas area; its other layout
    keywords are those of :func:`~scalebench.models.baselines.check_layout`."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        levels: Sequence[int] = (0, 1, 2),
        level_ratio: float = 2.0,
        scale_pooling: str = "avg",
        interpolation: str = "bilinear",
        antialias: bool = True,
        align_corners: bool = False,
        **layout: Any,
    ) -> None:
        super().__init__()
        self.levels = [int(v) for v in levels]
        if not self.levels or len(set(self.levels)) != len(self.levels):
            raise ScalebenchError(f"levels must be a non-empty list of distinct integers, got {levels!r}.")
        if not float(level_ratio) > 1:
            raise ScalebenchError(f"level_ratio must be > 1, got {level_ratio!r}.")
        self.level_ratio = float(level_ratio)
        self.scale_pooling = check_choice(scale_pooling, "scale_pooling", SCALE_POOLINGS)
        self.interpolation = check_interpolation(interpolation, antialias)
        self.antialias, self.align_corners = bool(antialias), bool(align_corners)
        self.base = PlainCNN(num_classes=num_classes, in_channels=in_channels, **layout)

    @property
    def channel_sigmas(self) -> list[float]:
        """level_ratio ** l of every level (level l shrinks the image by it: it suits objects that much larger)."""
        return [self.level_ratio**v for v in self.levels]

    def pyramid(self, x: Tensor) -> list[Tensor]:
        """Every level of the pyramid: the whole image resized to round(H / r^l) x round(W / r^l) (at least 1)."""
        check_shape(x, "B C H W")
        h, w = x.shape[-2:]
        out = []
        for f in self.channel_sigmas:
            size = (max(1, round(h / f)), max(1, round(w / f)))
            out.append(
                interpolate(
                    x,
                    size,
                    mode=self.interpolation,
                    align_corners=self.align_corners,
                    antialias=self.antialias,
                )
            )
        return out

    def scale_channel_logits(self, x: Tensor) -> Tensor:
        """Class scores of every level, (S, B, K). Levels differ in size, so the base net runs once per level."""
        return torch.stack([self.base(level) for level in self.pyramid(x)])


# ---------------------------------------------------------------------------------------------------------
# registration


FOVEATED_RULES: dict[str, ConfigRule] = {
    **LAYOUT_RULES,
    "channel_factors": ConfigRule(low=1 / 64, high=64, max_items=MAX_CHANNELS_S),
    "fovea_fraction": ConfigRule(low=0, low_open=True, high=4),
    "interpolation": ConfigRule(choices=INTERPOLATIONS),
    "padding": ConfigRule(choices=PADDINGS),
}
PYRAMID_RULES: dict[str, ConfigRule] = {
    **LAYOUT_RULES,
    "levels": ConfigRule(low=-4, high=8, max_items=13),
    "level_ratio": ConfigRule(low=1, low_open=True, high=4),
    "scale_pooling": ConfigRule(choices=SCALE_POOLINGS),
    "interpolation": ConfigRule(choices=INTERPOLATIONS),
}

_QUICK = {"widths": (8, 8, 12, 12)}
_JL_PAPER = (
    "Y. Jansson, T. Lindeberg (2022), Scale-invariant scale-channel networks: deep networks that generalise to "
    "previously unseen scales, J. Math. Imaging Vis. 64: 506-536 (arXiv 2106.06418); shortened version: "
    "Exploring the ability of CNNs to generalise to previously unseen scales over wide scale ranges, ICPR 2020: "
    "1181-1188 (arXiv 2004.01536)"
)
_JL_TRAINING = CardRecipe(
    optimizer="adam",
    lr=0.001,
    schedule="constant",
    epochs=20,
    batch_size=16,
    weight_decay=0.0,
    source="not read (the papers' experimental sections were unavailable); plausible defaults",
    unverified=["optimizer", "lr", "schedule", "epochs", "batch_size", "weight_decay"],
)
#: STIR's protocol (scripts/train.py, read for facts): Adam, lr 1e-2 or 1e-3 chosen per cell by validation
#: accuracy, at most 200 epochs with early stopping after 10 epochs without a validation gain (scalebench has no
#: early stopping: 200 epochs); the batch size was not read.
STIR_TRAINING = CardRecipe(
    optimizer="adam",
    lr=0.001,
    schedule="constant",
    epochs=200,
    batch_size=64,
    weight_decay=0.0,
    facts={"lr_grid": [0.01, 0.001], "early_stopping_patience": 10},
    source="taltstidl/scale-equivariant-cnn scripts/train.py (MIT, facts only)",
    unverified=["batch_size", "weight_decay", "epochs"],
)
_FOV_DATASETS = {
    "fashion-mnist": {},
    "cifar10": {"fovea_fraction": 1.0},
    "stl10": {"fovea_fraction": 1.0},
}


def _fov_notes(pool: str) -> str:
    return (
        f"Unofficial re-implementation from the abstracts (no public code exists; the papers' full texts could "
        f"not be read). {pool} over the class scores of scale channels that share one base net, the zoo's plain "
        "cnn (widths 16-16-24-24-32, BN, ReLU, max pooling after layers 1 and 3, 3x3 class layer, global "
        "average pooling: 21,114 parameters, the cnn's). Foveated channels: channel i crops (or zero-pads) the "
        "central N s_i pixels and resizes them to N x N with torch.nn.functional.interpolate (N = "
        "fovea_fraction x input side, parity kept; the region rounded to the input's parity, effective factor "
        "within 1/N of s_i). channel_sigmas = s_i. Unverified / scalebench's choices: channel factors "
        "2^(k/2), k = -4..4 (1/4 .. 4, sqrt 2 apart: the factor-4 test range 1/2 .. 2 with an octave to spare "
        "on each side; the papers use sqrt(2) or 2^(1/4) spacings over wider ranges); fovea_fraction 0.5 on "
        "72x72 Fashion-MNIST (channel 1 sees the central 36 px, the 28 px object at the training scale) and 1.0 "
        "on cifar10/stl10 (objects fill the image); bilinear interpolation with antialiasing, "
        "align_corners=false, zero padding; the base net; pooling of logits (not of softmax outputs). Cost: S "
        "passes of the base net on N x N inputs (9 x 36^2 per 72x72 image = 2.25 cnn passes). Quick config speed (72x72, batch 32, forward+backward, 2 threads, best of 6 rounds interleaved with the cnn's quick config on a 2-core CPU shared with a training job, cnn quick 90 img/s in that run): "
        "about 45-50 img/s (0.5 x cnn). Measured invariance (untrained quick model, scores on an image and its "
        "exact sqrt 2 enlargement, minus a blank image's): FovMax 0.12-0.21, FovAvg 0.23-0.26, cnn 0.48-0.72; "
        "channel covariance within 0.052 (tests/models/test_scale_channel_nets.py)."
    )


for _name, _display, _builder, _pool in (
    ("fovmax", "FovMax", FovMax, "Max"),
    ("fovavg", "FovAvg", FovAvg, "Average"),
):
    register_model(
        ModelCard(
            name=_name,
            display_name=_display,
            family="scale-channel",
            paper=_JL_PAPER,
            bibtex_key="jansson2022scale",
            bibtex=BIBTEX["jansson2022scale"] + "\n\n" + BIBTEX["jansson2021exploring"],
            arxiv="2106.06418",
            code_url=None,
            licence=None,
            default_config=builder_defaults(_builder),
            quick_config=_QUICK,
            dataset_configs=_FOV_DATASETS,
            num_params=21_114,
            scale_covariant=True,
            scale_invariant=True,
            reports_scale_selection=True,
            channel_grid="channel_factors",
            paper_training=_JL_TRAINING,
            notes=_fov_notes(_pool),
        ),
        rules=FOVEATED_RULES,
    )(_builder)

register_model(
    ModelCard(
        name="input_pyramid",
        display_name="Input pyramid (mean of logits)",
        family="baseline",
        paper=(
            "Baseline as in T. Altstidl, A. Nguyen, L. Schwinn, F. Koeferl, C. Mutschler, B. Eskofier, D. Zanca "
            "(2023), Just a matter of scale? Reevaluating scale equivariance in convolutional neural networks, "
            "IJCNN 2023 (arXiv 2211.10288): the 'ensemble' model"
        ),
        bibtex_key="altstidl2023just",
        arxiv="2211.10288",
        code_url="https://github.com/taltstidl/scale-equivariant-cnn",
        licence="MIT (taltstidl/scale-equivariant-cnn, consulted for facts only)",
        default_config=builder_defaults(InputPyramidNet),
        quick_config=_QUICK,
        dataset_configs=EVERY_DATASET_AS_IS,
        num_params=21_114,
        scale_covariant=False,
        reports_scale_selection=True,
        paper_training=STIR_TRAINING,
        notes=(
            "Facts from taltstidl/scale-equivariant-cnn siconvnet/models.py (EnsembleModel; MIT, read for facts "
            "only): one base net shared by the levels of kornia.geometry.build_pyramid(x, max_level=3) (levels "
            "1, 1/2, 1/4: 5x5 binomial blur, then bilinear halving), mean of the class scores. Here: the zoo's "
            "plain cnn as base net with global *max* pooling, as STIR's base (21,114 parameters; STIR's base is "
            "conv7-16, conv7-32, global max, linear): with average pooling the levels' different canvas sizes "
            "change the scores by the area ratio, so level l+1 of an image enlarged by 2 would not match level l "
            "of the original (measured in tests/models/test_scale_channel_nets.py), "
            "each level one torch.nn.functional.interpolate of the whole image to round(H / 2^l) "
            "(bilinear, antialias=true standing in for the blur, align_corners=false), levels [0, 1, 2]. "
            "Unlike FovAvg there is no fixed-size crop: the levels shrink, so small objects (test scale < 1) get "
            "no help unless levels include negative l (upsampling). channel_sigmas = 2^l; the winning level is "
            "the scale selection. Cost: 1 + 1/4 + 1/16 = 1.31 cnn passes. Quick config speed (72x72, batch 32, forward+backward, 2 threads, best of 6 rounds interleaved with the cnn's quick config on a 2-core CPU shared with a training job, cnn quick 90 img/s in that run): 56 img/s (0.62 x cnn)."
        ),
    ),
    rules=PYRAMID_RULES,
)(InputPyramidNet)
