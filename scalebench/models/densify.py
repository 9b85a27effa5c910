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

The peers whose channels are a config *list* of scales :math:`a_0 < a_1 < \dots` (FovMax and FovAvg:
``channel_factors``; SESN: ``scales``) name that key in their card (``ModelCard.channel_grid``). Their list is
densified by keeping every value as it is and inserting F - 1 geometric interpolants between neighbours:

.. math:: a_i \, (a_{i+1} / a_i)^{j/F}, \qquad j = 1 .. F - 1,

so channel F i of the dense network is exactly channel i of the original (the same number), whatever the
spacing of the list.

Densifying must give the same network evaluated on more channels: the trained channels' class scores are
unchanged (``tests/models/test_densify_peers.py`` checks this for every peer that densifies). So:

- the weights are shared over channels: the state dict's parameters, and its buffers of the same shape, do not
  depend on the grid; a buffer whose shape does (SESN's basis at each scale) is made from the grid and is
  rebuilt for the dense one, and must equal the trained one on the trained channels (:func:`densify`);
- a card's ``densify_refusal`` says why a model cannot be densified (SI-ConvNet, SiCNN, DISCO, DSS), and a
  config whose layers mix neighbouring channels (``scale_kernel_size`` > 1: weights learned for the trained
  spacing) is refused too; each refusal is one :class:`~scalebench.checks.ScalebenchError` naming the model,
  the reason and what to do instead (:func:`dense_config`).
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from scalebench.checks import ScalebenchError

#: The config keys that define a scale-channel grid sigma0 * scale_ratio^i, i < num_scale_channels.
GRID_KEYS = ("num_scale_channels", "scale_ratio")

#: The config key of a layer that mixes this many neighbouring scale channels (SESN, DISCO, DSS:
#: :class:`~scalebench.models.scaleconv.ScaleConv`); above 1 its weights belong to the trained spacing.
COUPLING_KEY = "scale_kernel_size"

#: The largest densification factor accepted.
MAX_FACTOR = 8

#: Largest difference, relative to the buffer's largest value, between a grid-made buffer of the dense network on
#: the trained channels and the trained one (SESN's basis: 0; DISCO's, solved over the whole grid: 5 %).
BUFFER_TOLERANCE = 1e-5


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


def dense_list(values: Sequence[float], factor: int) -> list[float]:
    r"""``values`` :math:`a_0 < a_1 < \dots` with :math:`a_i (a_{i+1}/a_i)^{j/F}`, j = 1..F-1, inserted between
    each pair of neighbours; the given values are kept as they are.

    Example:
        >>> dense_list([1.0, 2.0, 8.0], 2)
        [1.0, 1.4142135623730951, 2.0, 4.0, 8.0]
    """
    out = [values[0]]
    for a, b in itertools.pairwise(values):
        out += [a * (b / a) ** (j / factor) for j in range(1, factor)]
        out.append(b)
    return out


def dense_config(name: str, config: dict[str, Any], factor: int) -> dict[str, Any]:
    """``config`` of model ``name`` with its scale-channel grid densified by ``factor`` (see the module doc): the
    GaussDer grid (``num_scale_channels``, ``scale_ratio``) or the list its card names (``channel_grid``).

    Example:
        >>> dense_config("gaussdernet", {"num_scale_channels": 8, "scale_ratio": 2**0.5}, 2)["num_scale_channels"]
        15
    """
    if all(k in config for k in GRID_KEYS):
        n, ratio = int(config["num_scale_channels"]), float(config["scale_ratio"])
        return {**config, "num_scale_channels": factor * (n - 1) + 1, "scale_ratio": ratio ** (1.0 / factor)}
    from scalebench.models.registry import get_model_card

    card = get_model_card(name)
    if card.densify_refusal:
        raise ScalebenchError(f"Model {name!r} cannot be densified at test time: {card.densify_refusal}")
    key = card.channel_grid
    if key is None or key not in config:
        raise ScalebenchError(
            f"Model {name!r} has no scale-channel grid to densify (its config lacks "
            f"{' and '.join(k for k in GRID_KEYS if k not in config)}, and its card names no channel_grid); "
            "--test-channels dense applies to scale-channel networks with weights shared over channels "
            "(gaussdernet, gaussderresnet, gaussderresnet_dw, fovmax, fovavg, sesn)."
        )
    coupling = config.get(COUPLING_KEY, 1)
    if coupling > 1:
        raise ScalebenchError(
            f"Model {name!r} with {COUPLING_KEY} {coupling} cannot be densified at test time: each layer mixes "
            f"{coupling} neighbouring scale channels with weights learned for the trained spacing, so on a denser "
            "grid the trained channels would mix other neighbours and compute other functions. Evaluate it with "
            f"--test-channels trained, or train it with {COUPLING_KEY} 1."
        )
    return {**config, key: _dense_channel_list(name, key, config[key], factor)}


def _dense_channel_list(name: str, key: str, values: Any, factor: int) -> list[float]:
    """:func:`dense_list` of the channel list ``values`` (config key ``key`` of model ``name``), checked: a list of
    increasing numbers before, a list the model's config admits after (e.g. no more channels than its limit)."""
    from scalebench.models.registry import resolve_config

    numeric = isinstance(values, list | tuple) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values
    )
    if not numeric or not values or any(b <= a for a, b in itertools.pairwise(values)):
        raise ScalebenchError(
            f"Model {name!r}: densifying needs its channel grid {key} as a list of increasing numbers, got "
            f"{values!r}; evaluate it with --test-channels trained (a model trained with its {key} in increasing "
            "order densifies)."
        )
    dense = dense_list(values, factor)
    try:
        resolve_config(name, {key: dense})
    except ScalebenchError as err:
        raise ScalebenchError(
            f"Model {name!r} densified by {factor} would have {len(dense)} scale channels, which its config does "
            f"not admit ({err}); use a smaller factor."
        ) from None
    return dense


def _refusal(name: str, reason: str) -> ScalebenchError:
    return ScalebenchError(
        f"Model {name!r} cannot be densified at test time: {reason}. Evaluate it on its trained channels "
        "(--test-channels trained)."
    )


def _grid_axes(trained: nn.Module, dense: nn.Module, factor: int, name: str) -> dict[str, int]:
    """The dense network's buffers whose shape depends on the grid, with their channel axis (S trained entries,
    F(S-1)+1 dense ones). Any other difference between the two state dicts (keys, a parameter's shape) means
    weights that are not shared over channels: refused."""
    weights, shapes = trained.state_dict(), dense.state_dict()
    params = {k for k, _ in trained.named_parameters()}
    if weights.keys() != shapes.keys():
        raise _refusal(name, "its state dict names other weights on a denser grid")
    out = {}
    for k, w in weights.items():
        d = shapes[k]
        if w.shape == d.shape:
            continue
        axes = [i for i in range(w.dim()) if w.shape[i] != d.shape[i]] if w.dim() == d.dim() else []
        if k in params or len(axes) != 1 or d.shape[axes[0]] != factor * (w.shape[axes[0]] - 1) + 1:
            raise _refusal(name, f"its weights depend on its scale-channel grid ({k}: {tuple(w.shape)} -> "
                                 f"{tuple(d.shape)})")  # fmt: skip
        out[k] = axes[0]
    return out


def _trained_channels(t: torch.Tensor, axis: int, factor: int) -> torch.Tensor:
    """Entries 0, F, 2F, ... of ``t`` along ``axis``: the trained channels of a dense buffer."""
    return t.index_select(axis, torch.arange(0, t.shape[axis], factor, device=t.device))


def _keep_trained_state(dense: nn.Module, axes: dict[str, int], factor: int, name: str) -> None:
    """Give ``dense`` the trained network's state dict, so that the trained checkpoint loads into it as it is: a
    buffer made from the grid (``axes``, :func:`_grid_axes`) is saved as its trained channels, and a loaded one
    must equal them (to :data:`BUFFER_TOLERANCE` of its largest value), the dense network keeping its own."""

    def save(module: nn.Module, state: dict[str, Any], prefix: str, meta: Any) -> None:
        for k, axis in axes.items():
            state[prefix + k] = _trained_channels(state[prefix + k], axis, factor)

    def load(module: nn.Module, state: dict[str, Any], prefix: str, *_: Any) -> None:
        for k, axis in axes.items():
            given, own = state.get(prefix + k), dense.get_buffer(k)
            if given is None:
                continue  # a strict load reports it missing
            kept = _trained_channels(own, axis, factor).to(given.device, given.dtype)
            if kept.shape != given.shape or float((kept - given).abs().max()) > BUFFER_TOLERANCE * max(
                float(given.abs().max()), 1e-30
            ):
                raise _refusal(name, f"its {k} on the trained channels changes when channels are added")
            state[prefix + k] = own.detach().clone()

    dense._register_state_dict_hook(save)
    dense._register_load_state_dict_pre_hook(load, with_module=True)


def densify(
    name: str, config: dict[str, Any], trained: nn.Module, factor: int, *, num_classes: int, in_channels: int
) -> nn.Module:
    """The network ``name`` built on the densified grid, holding the weights of ``trained``, in eval mode.
    ``factor`` 1 returns ``trained`` itself. Its state dict is that of ``trained``: a buffer made from the grid
    (SESN's basis) is rebuilt for the dense grid and checked on the trained channels (:func:`_keep_trained_state`)."""
    if factor == 1:
        return trained
    from scalebench.models.registry import create_model

    dense = create_model(name, num_classes=num_classes, in_channels=in_channels,
                         **dense_config(name, config, factor))  # fmt: skip
    axes = _grid_axes(trained, dense, factor, name)
    if axes:
        _keep_trained_state(dense, axes, factor, name)
    dense.load_state_dict(trained.state_dict())
    first = next(trained.parameters(), None)
    if first is not None:
        dense = dense.to(first.device)
    return dense.eval()
