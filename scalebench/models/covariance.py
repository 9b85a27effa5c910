r"""Scale-covariance error of scale-channel responses: the one comparison every measurement uses.

A network with scale channels of ratio r is scale covariant when rescaling its input by r^k moves every
response k channels up and enlarges it spatially by r^k about the image centre c:

.. math:: R_{i+k}(f_{S})(c + S (x - c)) = R_i(f)(x), \qquad S = r^k.

:func:`shifted_channel_error` measures the relative L2 error of that identity between the responses to an
image and to its rescaled copy (class scores (S, B, K) compare channel i with channel i + k directly; maps
(S, B, C, H, W) are compared at corresponding points of a central disk, bicubic samples of the rescaled
response). Used by :func:`scalebench.models.gaussder.scale_covariance_error` (analytic test images) and
:func:`scalebench.benchmark.equivariance.measure_equivariance` (built test images).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from scalebench.checks import ScalebenchError


def channel_shift(channel_scales: Sequence[float], factor: float) -> int:
    """k with factor = r^k, r the ratio of neighbouring scale channels; one error when there is no such k.

    Example:
        >>> channel_shift([1.0, 2**0.5, 2.0, 2**1.5], 2.0)
        2
    """
    if len(channel_scales) < 2:
        raise ScalebenchError("A scale-covariance error needs at least 2 scale channels.")
    ratio = channel_scales[1] / channel_scales[0]
    exact = math.log(factor) / math.log(ratio)
    shift = round(exact)
    if abs(shift - exact) > 1e-6 or shift < 1 or shift >= len(channel_scales):
        raise ScalebenchError(
            f"factor {factor:g} must be r^k for an integer 1 <= k < {len(channel_scales)} (channel ratio "
            f"r = {ratio:g}); got k = {exact:.4g}."
        )
    return shift


def _resample(maps: Tensor, factor: float, grid: Tensor) -> Tensor:
    """Bicubic samples of maps (N, C, H, W) at the points c + factor (p - c), p in grid (P, 2) as (y, x)."""
    h, w = maps.shape[-2:]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    py, px = cy + factor * (grid[:, 0] - cy), cx + factor * (grid[:, 1] - cx)
    g = torch.stack([2 * px / (w - 1) - 1, 2 * py / (h - 1) - 1], -1).to(maps.dtype)
    g = g.view(1, 1, -1, 2).expand(maps.shape[0], 1, -1, 2)
    return torch.nn.functional.grid_sample(maps, g, mode="bicubic", align_corners=True)[:, :, 0, :]


def shifted_channel_error(
    original: Tensor, rescaled: Tensor, factor: float, shift: int, *, interior_radius: float | None = None
) -> Tensor:
    r"""Per channel i, :math:`\lVert R_{i+k}(f_S) - R_i(f) \rVert_2 / \lVert R_i(f) \rVert_2`.

    Args:
        original: responses to the image, (S, B, K) class scores or (S, B, C, H, W) maps.
        rescaled: the same responses to the image rescaled by ``factor`` about its centre.
        factor: the rescaling, S = r^``shift``.
        interior_radius: maps only: the disk of pixels compared (default H / (4 factor), where the rescaled
            image's content is away from the canvas border).

    Returns:
        (S - shift,): entry i compares channel i of ``original`` with channel i + shift of ``rescaled``, over
        the batch and every feature channel.
    """
    a, b = original[: original.shape[0] - shift], rescaled[shift:]
    if a.dim() == 3:
        return (b - a).flatten(1).norm(dim=1) / a.flatten(1).norm(dim=1).clamp_min(1e-30)
    s, bsz, ch, h, w = a.shape
    rad = interior_radius if interior_radius is not None else min(h, w) / (4 * factor)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    inside = (yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2 <= rad**2
    grid = torch.stack([yy[inside], xx[inside]], -1).to(torch.float64).to(a.device)
    ref = a[..., inside.to(a.device)].reshape(s, -1)
    moved = _resample(b.reshape(s * bsz, ch, h, w), factor, grid).reshape(s, -1)
    return (moved - ref).norm(dim=1) / ref.norm(dim=1).clamp_min(1e-30)
