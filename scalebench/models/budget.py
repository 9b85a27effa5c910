r"""A plain CNN at a given parameter budget: the zoo's ``cnn`` with all default widths scaled by one factor.

Peer papers compare against a plain CNN "with the same parameter budget" (SESN, DISCO, SS-CNN, STIR). The
registered ``cnn`` (:mod:`scalebench.models.baselines`) has, for widths :math:`C_1..C_L`, input channels
:math:`C_0` and K classes,

.. math:: P(C) = \sum_{l=1}^{L} \big(9\,C_{l-1} C_l + 2\,C_l\big) + 9\,C_L K + K

(3x3 convolutions without bias, batch norm scale and shift, a 3x3 class layer with bias). The default widths
(16, 16, 24, 24, 32) give 21,114 at one input channel and 10 classes. :func:`budget_matched_cnn_config` scales
them by one factor f, :math:`C_l = \max(1, \mathrm{round}(f\,C_l^{\mathrm{default}}))`, and picks the f whose
count is nearest to the target (every distinct rounding is tried: the candidates are the midpoints between the
factors at which some width changes).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from scalebench.checks import ScalebenchError

#: The default widths of the registered ``cnn``.
CNN_DEFAULT_WIDTHS: tuple[int, ...] = (16, 16, 24, 24, 32)


def cnn_param_count(widths: Sequence[int], *, in_channels: int = 1, num_classes: int = 10) -> int:
    """Trainable parameters of the registered ``cnn`` with these widths (the module docstring's formula).

    Example:
        >>> cnn_param_count((16, 16, 24, 24, 32))
        21114
    """
    total, prev = 0, int(in_channels)
    for c in widths:
        total += 9 * prev * c + 2 * c
        prev = c
    return total + 9 * prev * num_classes + num_classes


def _widths(factor: float) -> list[int]:
    return [max(1, math.floor(factor * w + 0.5)) for w in CNN_DEFAULT_WIDTHS]


def budget_matched_cnn_config(
    target_params: int, in_channels: int = 1, num_classes: int = 10
) -> dict[str, Any]:
    """The ``cnn`` config (``{"widths": [...]}``) whose parameter count is nearest to ``target_params``, the
    default widths scaled by one factor (ties: the smaller network). Use it as
    ``create_model("cnn", **budget_matched_cnn_config(n))``.

    Example:
        >>> budget_matched_cnn_config(21_114)
        {'widths': [16, 16, 24, 24, 32]}
        >>> cfg = budget_matched_cnn_config(30_784)  # the stn_cnn budget
        >>> cfg["widths"], cnn_param_count(cfg["widths"])
        ([20, 20, 29, 29, 39], 30542)
    """
    if isinstance(target_params, bool) or not isinstance(target_params, int) or target_params < 1:
        raise ScalebenchError(f"target_params must be a positive integer, got {target_params!r}.")
    # the count grows like f^2 * sum 9 C_{l-1} C_l (>= 9 * 16 * 16 f^2): past this factor every count is too big
    f_max = math.sqrt(target_params / (9 * 16 * 16)) + 2
    # factors where some width changes its rounding: f * w = n + 1/2
    breaks = sorted(
        {(n + 0.5) / w for w in set(CNN_DEFAULT_WIDTHS) for n in range(0, math.ceil(f_max * w) + 1)}
    )
    candidates = [breaks[0] / 2] + [(a + b) / 2 for a, b in itertools.pairwise(breaks)]
    best: tuple[int, int, list[int]] | None = None
    for f in candidates:
        widths = _widths(f)
        n = cnn_param_count(widths, in_channels=in_channels, num_classes=num_classes)
        key = (abs(n - target_params), n, widths)
        if best is None or key[:2] < best[:2]:
            best = key
    assert best is not None
    return {"widths": best[2]}
