r"""Test-time densification of the scale channels of a trained network (no training cost).

A scale-channel network with weights shared over its channels (GaussDerNet, GaussDerResNet and its depthwise
variant) evaluates channel i at :math:`\sigma_i = \sigma_0 r^i`, i = 0..S-1. The same weights can be evaluated
on a finer grid over the same range: densifying by an integer factor F gives

.. math:: \sigma'_j = \sigma_0 (r^{1/F})^j, \qquad j = 0 .. F(S-1),

so channel F i of the dense network is channel i of the original (up to rounding of the powers) and F - 1 new
channels lie between each pair. Test scales s = 2^(k/4) between two √2-spaced channels then meet a channel of
their own, which is meant to remove the accuracy "ripple" between on-grid and off-grid test scales
(:func:`scalebench.results.metrics.scale_ripple`). No published scale-channel code does this; scalebench's
own extension.

A model supports densification when its config has ``num_scale_channels`` and ``scale_ratio`` (the grid) and
its state dict does not depend on them (weights shared over channels); :func:`dense_config` checks the first,
:func:`densify` the second.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from scalebench.checks import ScalebenchError

#: The config keys that define a scale-channel grid sigma0 * scale_ratio^i, i < num_scale_channels.
GRID_KEYS = ("num_scale_channels", "scale_ratio")

#: The largest densification factor accepted.
MAX_FACTOR = 8


def parse_test_channels(text: str | None) -> int:
    """The densification factor of a ``--test-channels`` value: ``trained`` (or None) -> 1, ``dense`` -> 2,
    ``dense:F`` -> F.

    Example:
        >>> parse_test_channels("dense"), parse_test_channels("dense:4"), parse_test_channels(None)
        (2, 4, 1)
    """
    if text is None or text == "trained":
        return 1
    head, _, factor = text.partition(":")
    try:
        value = int(factor) if factor else 2
    except ValueError:
        value = 0
    if head != "dense" or not 1 <= value <= MAX_FACTOR:
        raise ScalebenchError(
            f"--test-channels takes 'trained', 'dense' (factor 2) or 'dense:F' with an integer F in "
            f"1..{MAX_FACTOR}, got {text!r}."
        )
    return value


def dense_config(name: str, config: dict[str, Any], factor: int) -> dict[str, Any]:
    """``config`` of model ``name`` with its scale-channel grid densified by ``factor`` (see the module doc).

    Example:
        >>> dense_config("gaussdernet", {"num_scale_channels": 8, "scale_ratio": 2**0.5}, 2)["num_scale_channels"]
        15
    """
    if any(k not in config for k in GRID_KEYS):
        raise ScalebenchError(
            f"Model {name!r} has no scale-channel grid to densify (its config lacks "
            f"{' and '.join(k for k in GRID_KEYS if k not in config)}); --test-channels dense applies to "
            "scale-channel networks with weights shared over channels (gaussdernet, gaussderresnet, ...)."
        )
    n, ratio = int(config["num_scale_channels"]), float(config["scale_ratio"])
    return {**config, "num_scale_channels": factor * (n - 1) + 1, "scale_ratio": ratio ** (1.0 / factor)}


def densify(
    name: str, config: dict[str, Any], trained: nn.Module, factor: int, *, num_classes: int, in_channels: int
) -> nn.Module:
    """The network ``name`` built on the densified grid, holding the weights of ``trained``, in eval mode.
    ``factor`` 1 returns ``trained`` itself."""
    if factor == 1:
        return trained
    from scalebench.models.registry import create_model

    dense = create_model(name, num_classes=num_classes, in_channels=in_channels,
                         **dense_config(name, config, factor))  # fmt: skip
    weights, shapes = trained.state_dict(), dense.state_dict()
    if weights.keys() != shapes.keys() or any(weights[k].shape != shapes[k].shape for k in weights):
        raise ScalebenchError(
            f"Model {name!r} has weights that depend on its scale-channel grid, so it cannot be densified at "
            "test time; evaluate it on its trained channels."
        )
    dense.load_state_dict(weights)
    first = next(trained.parameters(), None)
    if first is not None:
        dense = dense.to(first.device)
    return dense.eval()
