"""benchmarks/step_breakdown.py and timing.py's flop count: kinds, FLOPs that agree with the counter, bounds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from scalebench.models import create_model, get_model_card


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "step_breakdown.py"
    spec = importlib.util.spec_from_file_location("step_breakdown_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import timing  # benchmarks/timing.py, put on the path by the script

    mod.timing = timing
    return mod


def test_convolutions_are_told_apart_by_their_weights(bench):
    assert bench.conv_kind([32, 24, 3, 3], 1) == "conv 3x3"
    assert bench.conv_kind([24, 1, 57, 1], 24) == "smoothing (k,1)/(1,k)"
    assert bench.conv_kind([24, 1, 1, 41], 24) == "smoothing (k,1)/(1,k)"
    assert bench.conv_kind([24, 1, 3, 3], 24) == "conv depthwise 3x3"
    assert bench.conv_kind([10, 32, 1, 1], 1) == "conv 1x1"
    assert bench.conv_kind([8, 4, 3, 3], 2) == "conv 3x3"  # grouped, not depthwise


def test_gaussdernet_step_flops_match_the_flop_counter(bench):
    res = bench.breakdown("gaussdernet", batch=2, steps=1, quick=True)
    kinds = res["kinds"]
    for kind in ("conv 3x3 forward", "conv 3x3 backward", "batch norm", "ReLU"):
        assert kinds[kind]["calls"] > 0 and kinds[kind]["ms"] > 0, kind
    # input and weight gradients: twice the forward FLOPs, less the first layer's input gradient (the
    # image needs none)
    assert kinds["conv 3x3 forward"]["gflop"] < kinds["conv 3x3 backward"]["gflop"]
    assert kinds["conv 3x3 backward"]["gflop"] < 2 * kinds["conv 3x3 forward"]["gflop"]
    assert kinds["batch norm"]["gflop"] == 0

    torch.manual_seed(0)
    model = create_model("gaussdernet", num_classes=10, in_channels=1, quick=True)
    model = model.to(memory_format=torch.channels_last).train()
    x = torch.randn(2, *get_model_card("gaussdernet").input_size).contiguous(
        memory_format=torch.channels_last
    )
    with bench.timing.flop_counter_mode() as fc:
        F.cross_entropy(model(x), torch.zeros(2, dtype=torch.long)).backward()
    total = sum(v["gflop"] for v in kinds.values())
    assert total == pytest.approx(fc.get_total_flops() / 1e9, rel=1e-9)
    assert sum(v["ms"] for v in kinds.values()) <= res["step_ms"]


def test_bounds_are_the_flops_over_the_right_times(bench):
    res = {
        "step_ms": 100.0,
        "kinds": {
            "conv 3x3 forward": {"ms": 20.0, "gflop": 2.0, "calls": 1},
            "smoothing (k,1)/(1,k) forward": {"ms": 20.0, "gflop": 1.0, "calls": 1},
            "batch norm": {"ms": 50.0, "gflop": 0.0, "calls": 1},
        },
    }
    b = bench.bounds(res, peak=100.0)
    assert b["achieved_fraction"] == pytest.approx(3.0 / 0.1 / 100)  # 3 GFLOP in 100 ms
    assert b["kernel_bound_fraction"] == pytest.approx(3.0 / 0.04 / 100)  # batch norm free
    assert b["dense_conv_fraction"] == pytest.approx(2.0 / 0.02 / 100)


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_grouped_convolution_backward_counts_the_forward_multiply_adds_per_gradient(bench, groups):
    x = torch.randn(2, 6, 9, 9, requires_grad=True)
    w = torch.randn(12, 6 // groups, 3, 3, requires_grad=True)
    forward = 2 * 2 * 7 * 7 * 12 * (6 // groups) * 9  # 2 N prod(out) C_out (C_in / groups) prod(kernel)
    with bench.timing.flop_counter_mode() as fc:
        F.conv2d(x, w, groups=groups).sum().backward()
    assert fc.get_total_flops() == 3 * forward  # forward, input gradient, weight gradient
