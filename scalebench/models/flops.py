"""FLOPs of a model per image, counted with ``torch.utils.flop_counter`` and a corrected grouped-conv formula.

One FLOP is one multiply or one add (a multiply-add counts 2), the convention of ``torch.utils.flop_counter``.
Operations without a formula there (batch norm, ReLU, pooling, resampling, the optimizer) count 0, so these
are the FLOPs of the convolutions and matrix products, which dominate every model of the zoo.

- :func:`training_flops_per_image`: one forward and backward pass (loss: cross entropy) per image, in
  training mode, at the given input size; what the results record as ``model.train_flops_per_image``;
- :func:`inference_flops_per_image`: one forward pass per image in eval mode.

The count is exact for a given input size and does not depend on the batch (every layer is per image).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils import flop_counter


def conv_backward_flops(
    grad_out_shape: torch.Size,
    x_shape: torch.Size,
    w_shape: torch.Size,
    _bias: object,
    _stride: object,
    _padding: object,
    _dilation: object,
    transposed: bool,
    _output_padding: object,
    _groups: int,
    output_mask: list[bool],
    out_shape: tuple,
    **_: object,
) -> int:
    """FLOPs of ``aten.convolution_backward`` (shapes in, like ``torch.utils.flop_counter``'s formulas).

    The input gradient is counted as torch counts it. The weight gradient takes exactly the multiply-adds of
    the forward convolution, ``2 * N * prod(out) * C_out * (C_in / groups) * prod(kernel)``; torch 2.14's
    ``conv_backward_flop`` leaves out the division by ``groups`` there, so a depthwise convolution's weight
    gradient was counted C times (for example 41.4 instead of 1.6 GFLOP in a ``gaussderresnet_dw`` training
    step of 8 images; pytorch/pytorch#183405 proposes the same correction).
    """
    flops = 0
    if output_mask[0]:
        flops += flop_counter.conv_flop_count(
            list(grad_out_shape), list(w_shape), list(out_shape[0]), transposed=not transposed
        )
    if output_mask[1]:
        flops += flop_counter.conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return flops


FLOP_CORRECTIONS: dict = {torch.ops.aten.convolution_backward: conv_backward_flops}
"""Formulas (shapes in) that replace ``torch.utils.flop_counter``'s in every count of scalebench."""
FLOP_FORMULAS: dict = {
    **flop_counter.flop_registry,
    **{op: flop_counter.shape_wrapper(f) for op, f in FLOP_CORRECTIONS.items()},
}
"""The flop formulas of ``torch.utils.flop_counter`` (tensors in), with :data:`FLOP_CORRECTIONS`."""


def flop_counter_mode() -> flop_counter.FlopCounterMode:
    """``FlopCounterMode`` (no display) with :data:`FLOP_CORRECTIONS`."""
    return flop_counter.FlopCounterMode(display=False, custom_mapping=FLOP_CORRECTIONS)


def _probe(model: nn.Module, input_size: Sequence[int], batch: int) -> torch.Tensor:
    p = next(iter(model.parameters()), None)
    device = p.device if p is not None else torch.device("cpu")
    return torch.zeros(batch, *input_size, device=device).contiguous(memory_format=torch.channels_last)


def training_flops_per_image(
    model: nn.Module, input_size: Sequence[int], num_classes: int, *, batch: int = 2
) -> int:
    """FLOPs of one training step per image: forward in training mode, cross-entropy loss, backward.

    Gradients are accumulated into ``.grad`` and then cleared; batch-norm running statistics are saved and
    restored, so the model is left as it was found.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> training_flops_per_image(net, (1, 2, 2), 3)  # forward 2*4*3, weight gradient as much (no input grad)
        48
    """
    was_training = model.training
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    x = _probe(model, input_size, batch)
    y = torch.zeros(batch, dtype=torch.long, device=x.device).clamp_max(num_classes - 1)
    model.train()
    try:
        with flop_counter_mode() as fc:
            F.cross_entropy(model(x), y).backward()
    finally:
        model.train(was_training)
        with torch.no_grad():
            for k, v in model.named_buffers():
                v.copy_(buffers[k])
        for n, p in model.named_parameters():
            p.grad = grads[n]
    return int(fc.get_total_flops()) // batch


@torch.no_grad()
def inference_flops_per_image(model: nn.Module, input_size: Sequence[int], *, batch: int = 2) -> int:
    """FLOPs of one forward pass per image in eval mode.

    Example:
        >>> inference_flops_per_image(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), (1, 2, 2))
        24
    """
    was_training = model.training
    model.eval()
    try:
        with flop_counter_mode() as fc:
            model(_probe(model, input_size, batch))
    finally:
        model.train(was_training)
    return int(fc.get_total_flops()) // batch
