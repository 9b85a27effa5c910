r"""Scale-equivariance error of any classifier, measured on the build's own test images.

The test copies of a build hold the same images at scales s = 2^(k/4); copies two steps apart differ by a
factor sqrt(2), rescaled exactly as the build rescales (its interpolation, anti-aliasing and centring). For
the first :data:`EQUIVARIANCE_IMAGES` test images and every such pair (s, s sqrt(2)):

- **invariance** (every model): how far rescaling moves the logits, relative to how far they lie apart
  between images, :math:`\overline{\lVert z(x_{s\sqrt2}) - z(x_s) \rVert_2} \,/\,
  (\overline{\lVert z(x_s) - \bar z(x_s) \rVert_2^2})^{1/2}` (bars: means over the images); a network whose
  logits barely depend on the image (untrained, dominated by biases) is not called invariant;
- **output** and **per layer** (the first :data:`LAYER_IMAGES` images; models with scale channels: ``layer_responses(x)`` -> list of (S, B, C, H, W)
  and/or ``scale_channel_logits(x)`` -> (S, B, K), with ``channel_sigmas`` of constant ratio r): the error of
  the covariance identity :math:`R_{i+k}(x_{s\sqrt2})(c + \sqrt2 (p - c)) = R_i(x_s)(p)`, sqrt(2) = r^k
  (:func:`scalebench.models.covariance.shifted_channel_error`), averaged over the channels i.

Each figure is the mean over the pairs. The protocol records them at initialisation and after training
(``equivariance`` of the results); real images make this the covariance a user's data sees, unlike analytic
test patterns (STIR's ``scale_equivariance`` measures real objects too: Altstidl et al. 2023, IJCNN).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.scales import same_scale
from scalebench.models.covariance import channel_shift, shifted_channel_error

#: Test images per scale the equivariance error is measured on (the first ones of the test split).
EQUIVARIANCE_IMAGES = 32

#: Test images per scale the per-layer maps are compared on (maps of every layer are large).
LAYER_IMAGES = 8

#: The rescaling compared: two steps of the 2^(1/4) test grid.
EQUIVARIANCE_FACTOR = math.sqrt(2)


def scale_pairs(scales: list[float], factor: float = EQUIVARIANCE_FACTOR) -> list[tuple[float, float]]:
    """The pairs (s, s factor) among ``scales`` (the one definition of "the same scale").

    Example:
        >>> scale_pairs([0.5, 0.707107, 1.0, 1.414214, 2.0])
        [(0.5, 0.707107), (0.707107, 1.0), (1.0, 1.414214), (1.414214, 2.0)]
    """
    return [(a, b) for a in scales for b in scales if same_scale(b, a * factor)]


def _channel_shift(model: nn.Module, factor: float) -> int | None:
    sigmas = getattr(model, "channel_sigmas", None)
    if not sigmas or len(sigmas) < 2:
        return None
    try:
        return channel_shift([float(s) for s in sigmas], factor)
    except ScalebenchError:  # channels whose ratio is not a root of sqrt(2): no covariance comparison
        return None


@torch.no_grad()
def measure_equivariance(
    model: nn.Module,
    built: Any,
    scales: list[float],
    device: torch.device,
    *,
    images: int = EQUIVARIANCE_IMAGES,
) -> dict[str, Any] | None:
    """The errors of the module docstring for ``model`` on ``built``'s test copies at ``scales``; None when no
    two of the scales are sqrt(2) apart. The model is evaluated in eval mode and restored."""
    pairs = scale_pairs(sorted(scales))
    if not pairs:
        return None
    needed = sorted({s for pair in pairs for s in pair})
    shift = _channel_shift(model, EQUIVARIANCE_FACTOR)
    covariant_layers = (  # maps of every layer on one grid (not in a multi-resolution mode)
        shift is not None
        and callable(getattr(model, "layer_responses", None))
        and not getattr(model, "multires", False)
    )
    covariant_logits = shift is not None and callable(getattr(model, "scale_channel_logits", None))

    def read(s: float, n: int) -> torch.Tensor:
        ds = built.dataset("test", s)
        return ds.read_batch(list(range(min(n, len(ds)))))[0].to(device).float()

    invariance, output, layers = [], [], []
    was_training = model.training
    model.eval()
    try:
        first = read(needed[0], images)
        logits = {s: model(first if s == needed[0] else read(s, images)).float().cpu() for s in needed}
        for a, b in pairs:
            za, zb = logits[a], logits[b]
            spread = (za - za.mean(0)).pow(2).sum(1).mean().sqrt().clamp_min(1e-30)
            invariance.append(float((zb - za).norm(dim=1).mean() / spread))
            if covariant_logits:
                ca, cb = (
                    model.scale_channel_logits(read(a, images)),
                    model.scale_channel_logits(read(b, images)),
                )
                output.append(float(shifted_channel_error(ca, cb, EQUIVARIANCE_FACTOR, shift).mean()))
            if covariant_layers:  # maps of every layer: fewer images, one pair at a time (memory)
                ra, rb = (
                    model.layer_responses(read(a, LAYER_IMAGES)),
                    model.layer_responses(read(b, LAYER_IMAGES)),
                )
                layers.append([float(shifted_channel_error(u.float(), v.float(), EQUIVARIANCE_FACTOR, shift).mean())
                               for u, v in zip(ra, rb, strict=True)])  # fmt: skip
    finally:
        model.train(was_training)
    return {
        "images": len(first),
        "pairs": [[a, b] for a, b in pairs],
        "invariance": sum(invariance) / len(invariance),
        "output": sum(output) / len(output) if output else None,
        "per_layer": [sum(col) / len(col) for col in zip(*layers, strict=True)] if layers else None,
    }
