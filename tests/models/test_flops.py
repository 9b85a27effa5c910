"""FLOP counts per image (scalebench.models.flops): exact on hand-countable models, side-effect free."""

from __future__ import annotations

import torch
from torch import nn

from scalebench.models import create_model
from scalebench.models.flops import inference_flops_per_image, training_flops_per_image


def test_conv_net_counts_match_the_formula():
    # conv 1->4, 3x3, 'same' on 8x8: 2 * 64 * 4 * 9 forward; training adds the weight gradient (same) only,
    # since the input needs no gradient; the linear layer 256 -> 2 adds 2 * 256 * 2 forward, and twice that
    # in backward (weight and input gradients).
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(256, 2, bias=False)
    )
    conv, lin = 2 * 64 * 4 * 9, 2 * 256 * 2
    assert inference_flops_per_image(net, (1, 8, 8)) == conv + lin
    assert training_flops_per_image(net, (1, 8, 8), 2) == 2 * conv + 3 * lin


def test_grouped_weight_gradient_is_not_multiplied_by_groups():
    """torch 2.14 counts a depthwise conv's weight gradient `groups` times; scalebench counts it once."""
    net = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
    fwd = 2 * 64 * 4 * 1 * 9
    assert inference_flops_per_image(net, (4, 8, 8)) == fwd
    # weight gradient = forward; the input gradient is not needed for the network input
    wrap = nn.Sequential(net, nn.Flatten(), nn.Linear(256, 2, bias=False))
    assert training_flops_per_image(wrap, (4, 8, 8), 2) == 2 * fwd + 3 * 2 * 256 * 2


def test_counting_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = create_model("gaussdernet", quick=True, num_classes=10, in_channels=1, widths=[4])
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train = training_flops_per_image(model, (1, 24, 24), 10)
    infer = inference_flops_per_image(model, (1, 24, 24))
    assert train > infer > 0
    assert not model.training
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
