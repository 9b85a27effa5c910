"""N-Jet layer speed: separable N-Jet convolution against plain 3x3 / 5x5 convs and the dense reference.

Forward + backward (gradients for the input and every parameter, sigma included) of one layer with
B = 64, 96 -> 192 channels, 32 x 32, order 2, at sigma = 1 and sigma = 2, all measured in the same process:

- ``njet``: :class:`scalebench.models.njet.NJetConv2d` (separable basis responses + one 1x1 combination),
  channels_last input as in the N-JetNet models;
- ``dense``: :func:`scalebench.models.njet.njet_conv2d_dense`, the dense sigma-sized kernel the reference
  code builds (K x K multiply-adds per in/out pair);
- ``conv3`` / ``conv5``: ``nn.Conv2d(96, 192, k, padding=k // 2, bias=False)``, the best of NCHW and
  channels_last for each, so the plain conv is never handicapped by its layout.

Kernel sizes: the default rule 2 ceil(2 sigma) + 1 gives 5 x 5 at sigma = 1 and 9 x 9 at sigma = 2; the
reference rule 2 ceil(2 sigma + 0.5) + 1 gives 7 x 7 and 11 x 11 (both are measured). Targets:
N-Jet <= 1.0x a 5x5 conv at sigma = 1 and <= 1.2x at sigma = 2. Every figure is the best of ``repeats``
interleaved runs; the machine may be shared, so expect +-20 % between runs.

Usage:

    .venv/bin/python benchmarks/njet_layer.py [--repeats 3] [--no-dense] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from scalebench.models.njet import NJetConv2d, njet_conv2d_dense

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/timing.py, also when loaded by path
from timing import best_times, device_problem, tune_allocator


def _fwd_bwd(module_or_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, params: list) -> Callable:
    def run() -> None:
        x.grad = None
        for p in params:
            p.grad = None
        y = module_or_fn(x)
        y.backward(torch.ones_like(y))

    return run


def measure_njet_layer(
    *,
    batch: int = 64,
    in_channels: int = 96,
    out_channels: int = 192,
    size: int = 32,
    order: int = 2,
    sigmas: tuple[float, ...] = (1.0, 2.0),
    size_rules: tuple[str, ...] = ("paper", "reference"),
    repeats: int = 3,
    dense: bool = True,
    seed: int = 0,
    device: str = "cpu",
) -> dict:
    """Seconds per forward+backward of each variant and the ratios to the plain convs (see module docstring).

    Returns a dict with ``config``, ``seconds`` (name -> best time), ``kernel_size`` (N-Jet name -> K) and
    ``ratios`` (e.g. ``"njet[paper,sigma=1]/conv5"``).
    """
    torch.manual_seed(seed)
    x_nchw = torch.randn(batch, in_channels, size, size, device=device, requires_grad=True)
    x_cl = x_nchw.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    runs: dict[str, Callable[[], None]] = {}
    kernel_size: dict[str, int] = {}
    for k in (3, 5):
        conv = nn.Conv2d(in_channels, out_channels, k, padding=k // 2, bias=False).to(device)
        conv_cl = nn.Conv2d(in_channels, out_channels, k, padding=k // 2, bias=False).to(
            device=device, memory_format=torch.channels_last
        )
        runs[f"conv{k}_nchw"] = _fwd_bwd(conv, x_nchw, list(conv.parameters()))
        runs[f"conv{k}_cl"] = _fwd_bwd(conv_cl, x_cl, list(conv_cl.parameters()))
    for rule in size_rules:
        for sigma in sigmas:
            layer = NJetConv2d(in_channels, out_channels, order=order, size_rule=rule, init_sigma=sigma).to(
                device
            )
            name = f"njet[{rule},sigma={sigma:g}]"
            kernel_size[name] = layer.kernel_size
            runs[name] = _fwd_bwd(layer, x_cl, list(layer.parameters()))
            if dense:

                def dense_fn(x, layer=layer):
                    return njet_conv2d_dense(
                        x, layer.alphas, layer.sigma, order=order, k=layer.k, size_rule=layer.size_rule
                    )

                runs[f"dense[{rule},sigma={sigma:g}]"] = _fwd_bwd(dense_fn, x_nchw, list(layer.parameters()))
    best = best_times(runs, repeats, device=device)  # one warm-up each (allocator, primitive caches)
    seconds = {
        "conv3": min(best.pop("conv3_nchw"), best.pop("conv3_cl")),
        "conv5": min(best.pop("conv5_nchw"), best.pop("conv5_cl")),
        **best,
    }
    ratios: dict[str, float] = {}
    for name, t in seconds.items():
        if name.startswith(("njet", "dense")):
            ratios[f"{name}/conv5"] = t / seconds["conv5"]
            ratios[f"{name}/conv3"] = t / seconds["conv3"]
        if name.startswith("dense"):
            ratios[f"{name}/{name.replace('dense', 'njet')}"] = t / seconds[name.replace("dense", "njet")]
    return {
        "config": {
            "batch": batch,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "size": size,
            "order": order,
            "repeats": repeats,
            "threads": torch.get_num_threads(),
            "device": device,
            "torch": torch.__version__,
        },
        "seconds": seconds,
        "kernel_size": kernel_size,
        "ratios": ratios,
    }


def main() -> None:
    tune_allocator()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-dense", action="store_true", help="skip the dense reference (slow at sigma = 2)")
    p.add_argument("--json", action="store_true", help="print the result dict as JSON")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = p.parse_args()
    if problem := device_problem(args.device):
        p.error(problem)
    res = measure_njet_layer(
        batch=args.batch, repeats=args.repeats, dense=not args.no_dense, device=args.device
    )
    if args.json:
        print(json.dumps(res, indent=2))
        return
    cfg = res["config"]
    print(
        f"N-Jet layer, forward+backward, B={cfg['batch']}, {cfg['in_channels']}->{cfg['out_channels']}, "
        f"{cfg['size']}x{cfg['size']}, order {cfg['order']}, {cfg['threads']} threads, best of {cfg['repeats']}"
    )
    print(f"  conv3  {res['seconds']['conv3']:.3f} s   conv5  {res['seconds']['conv5']:.3f} s")
    for name, t in res["seconds"].items():
        if not name.startswith(("njet", "dense")):
            continue
        ks = res["kernel_size"][name.replace("dense", "njet")]
        line = (
            f"  {name:<26} K={ks:<3d} {t:.3f} s   {res['ratios'][name + '/conv5']:.2f}x conv5   "
            f"{res['ratios'][name + '/conv3']:.2f}x conv3"
        )
        if name.startswith("dense"):
            line += f"   {res['ratios'][name + '/' + name.replace('dense', 'njet')]:.1f}x the separable layer"
        print(line)
    print("  targets: njet <= 1.0x conv5 at sigma=1, <= 1.2x conv5 at sigma=2")


if __name__ == "__main__":
    main()
