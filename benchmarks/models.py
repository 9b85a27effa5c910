"""Model-zoo speed: one Gaussian derivative layer against its references, and every model's throughput.

Measured in one process (figures are comparable only within one run; the machine may be shared, so
every figure is the best of ``--repeats`` interleaved runs, and +-20 % between runs is normal):

1. **fp32 matmul peak** of this machine: best GFLOP/s of 2048 x 2048 ``torch.mm``, the reference for the
   "fraction of peak" figures.
2. **One Gaussian derivative layer**, forward + backward (input and weight gradients), 72 x 72, 8 scale
   channels (sigma 0.71 ... 8, discrete Gaussian, epsilon 1e-3), 16 -> 16 channels, N-jet order 2,
   batch ``--batch`` per scale channel, channels_last:
   - ``separable``: :func:`scalebench.models.scalespace.gaussian_derivative_conv` (depthwise (k,1) and (1,k)
     smoothing, then one folded 3 x 3 convolution per scale channel);
   - ``dense`` (reference, (a)): per scale channel one dense (2R+3) x (2R+3) kernel per (in, out) pair, the
     smoothing kernel convolved with the folded stencil, built every call as a learned layer must, NCHW
     input (its best layout here), timed once (target: separable >= 50x faster);
   - ``conv3x3`` ((b)): ``conv2d`` 16 -> 16, 3 x 3, same output tensor (S*B, 16, 72, 72), channels_last
     (target: separable <= 2x its cost).
   The dense and separable outputs are checked to agree before timing.
3. **Throughput** (the matmul peak is re-measured before each model; the best reading so far is the
   reference) of every registered classification model at Fashion-MNIST size (1 x 72 x 72, 10 classes):
   training (forward + backward + SGD step) and inference (eval, no grad), micro-batches of ``--batch``,
   channels_last input; FLOPs of one step from ``torch.utils.flop_counter.FlopCounterMode`` (grouped
   convolutions' weight gradients corrected: ``timing.conv_backward_flops``); achieved
   GFLOP/s and fraction of the matmul peak (target >= 50 % for GaussDerNet training).
4. ``measure_njet_layer()`` from ``benchmarks/njet_layer.py`` (part B's N-Jet layer benchmark), if present.
5. ``--peers``: each peer and reviewers' baseline (:data:`PEER_FAMILIES`) against the registered ``cnn`` at
   the peer's parameter budget and against the default GaussDerNet, both timed in the same run (target: every
   peer trains at >= 1/4 of the default GaussDerNet's images per second).

The script sets ``OMP_WAIT_POLICY=PASSIVE`` before importing torch unless the environment sets it (spinning
OpenMP threads doubled the layer's cost on the shared 2-core machine), and prints the load average at the
start and the end, and CPU-time ratios beside the wall-time ones.

Usage:

    .venv/bin/python benchmarks/models.py [--threads 2] [--batch 8] [--repeats 3] [--layer-repeats 15] [--models 'gaussder*']
        [--quick] [--compile] [--no-dense] [--no-njet] [--njet-batch 64] [--json out.json]
        [--device cuda [--amp]] [--matrix-smoothing C]

On a CUDA device every timing is taken after ``torch.cuda.synchronize()``, the reference peaks are the fp32,
TF32 and bf16 matrix-product rates of the device (models are compared with TF32, or bf16 with ``--amp``),
and ``benchmarks/gpu/throughput.sh`` is the command used for the figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning. Must be set before torch starts its OpenMP runtime; an
# OMP_WAIT_POLICY already in the environment wins. On a shared 2-core machine a spinning thread that waits
# at a barrier for its descheduled partner burns the other job's core: the Gaussian derivative layer (about
# 60 parallel operations per step against 3 for one 3 x 3 conv) measured 3.4-4.2x a plain conv with the
# default policy and 1.9-2.1x with PASSIVE, interleaved runs at load average 8 (docs/performance.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F

from scalebench.models import create_model, get_model_card, list_models
from scalebench.models import scalespace as ss
from scalebench.models.gaussder import geometric_sigmas

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/timing.py, also when loaded by path
from timing import (
    best_times,
    device_problem,
    device_sync,
    flop_counter_mode,
    matmul_peak_gflops,
    tune_allocator,
)


def _load() -> str:
    """The 1, 5 and 15 minute load averages (``uptime``): how shared the machine was."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def gpu_peaks(device: str) -> dict[str, float]:
    """fp32 (TF32 off), TF32 and bf16 matmul peaks (GFLOP/s, 8192^3 products) of a CUDA device.

    cuDNN convolutions run in TF32 by default (``torch.backends.cudnn.allow_tf32``), so fp32 models are
    compared with the TF32 peak and ``--amp`` (bf16 autocast) models with the bf16 peak.
    """
    old = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        fp32 = matmul_peak_gflops(8192, 10, device)
        torch.backends.cuda.matmul.allow_tf32 = True
        tf32 = matmul_peak_gflops(8192, 10, device)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    bf16 = matmul_peak_gflops(8192, 10, device, torch.bfloat16)
    return {"fp32": fp32, "tf32": tf32, "bf16": bf16}


def dense_gaussian_derivative_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    sigmas: list[float],
    kernels: list[torch.Tensor],
    max_order: int = 2,
) -> torch.Tensor:
    """Reference only: the same layer with one dense (2R+k) x (2R+k) kernel per scale and (in, out) pair."""
    folded = ss.fold_njet_kernels(weight, sigmas, max_order)  # (S, O, I, k, k)
    k = folded.shape[-1]
    out = []
    for s, xs in enumerate(x.split(x.shape[0] // len(sigmas))):
        g = kernels[s].to(x.dtype)
        g2 = torch.outer(g, g)
        r = (g.numel() - 1) // 2
        o, i = folded.shape[1:3]
        # full 2-D convolution of the separable Gaussian with each folded stencil (both symmetric-compatible)
        dense = F.conv2d(
            g2.expand(1, 1, -1, -1), folded[s].reshape(o * i, 1, k, k).flip(-1, -2), padding=k - 1
        ).reshape(o, i, 2 * r + k, 2 * r + k)
        out.append(F.conv2d(xs, dense, padding=r + k // 2))
    return torch.cat(out, 0)


def measure_layer(
    *, batch: int, repeats: int, dense: bool, channels: int = 16, size: int = 72, device: str = "cpu"
) -> dict:
    torch.manual_seed(0)
    sigmas = geometric_sigmas(2**-0.5, 2**0.5, 8)
    kernels = [
        k.to(device) for k in ss.smoothing_kernels(sigmas, discretisation="discrete", epsilon=1e-3, dim=2)
    ]
    x = torch.randn(len(sigmas) * batch, channels, size, size, device=device)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    w = (torch.randn(channels, channels, 6, device=device) * 0.1).requires_grad_()
    w3 = (torch.randn(channels, channels, 3, 3, device=device) * 0.1).requires_grad_()

    def step(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            x.grad = w.grad = w3.grad = None
            y = fn()
            y.backward(torch.ones_like(y))

        return run

    def matrix_smoothed() -> torch.Tensor:
        """The layer with every input smoothed by matrix products (both devices' thresholds raised)."""
        old = ss.MATRIX_SMOOTHING_MAX_CHANNELS, ss.MATRIX_SMOOTHING_MAX_CHANNELS_CUDA
        ss.MATRIX_SMOOTHING_MAX_CHANNELS = ss.MATRIX_SMOOTHING_MAX_CHANNELS_CUDA = channels
        try:
            return ss.gaussian_derivative_conv(x, w, sigmas, 2, kernels=kernels)
        finally:
            ss.MATRIX_SMOOTHING_MAX_CHANNELS, ss.MATRIX_SMOOTHING_MAX_CHANNELS_CUDA = old

    fns = {
        "separable": step(lambda: ss.gaussian_derivative_conv(x, w, sigmas, 2, kernels=kernels)),
        "matrix_smoothing": step(matrix_smoothed),
        "conv3x3": step(lambda: F.conv2d(x, w3, padding=1)),
    }
    res: dict = {"batch_per_scale": batch, "channels": channels, "size": size, "sigmas": sigmas}
    res["radii"] = [(k.numel() - 1) // 2 for k in kernels]
    if dense:
        with torch.no_grad():
            a = ss.gaussian_derivative_conv(x[: len(sigmas)], w, sigmas, 2, kernels=kernels)
            b = dense_gaussian_derivative_conv(x[: len(sigmas)], w, sigmas, kernels)
        res["dense_max_abs_diff"] = float((a - b).abs().max())
    cpu: dict[str, float] = {}
    t = best_times(fns, repeats, device=device, cpu=cpu)
    res["cpu_seconds"] = cpu
    res["separable_over_conv3x3_cpu"] = cpu["separable"] / cpu["conv3x3"]
    if dense:  # minutes per call: one timed call, no warm-up (a warm-up changes nothing at this size)
        # NCHW input: mkldnn's channels_last backward for 59 x 59 kernels took ~10x longer (216 s vs 24 s
        # for one sigma = 8 scale channel, B = 8, measured here), so the reference gets its best layout.
        xn = x.detach().contiguous().requires_grad_()
        run = step(lambda: dense_gaussian_derivative_conv(xn, w, sigmas, kernels))
        t0 = time.perf_counter()
        run()
        device_sync(device)()
        t["dense"] = time.perf_counter() - t0
    res["seconds"] = t
    res["separable_over_conv3x3"] = t["separable"] / t["conv3x3"]
    if dense:
        res["dense_over_separable"] = t["dense"] / t["separable"]
    return res


def measure_model(
    name: str,
    *,
    batch: int,
    repeats: int,
    quick: bool,
    compile_: bool,
    peak: float,
    device: str = "cpu",
    amp: bool = False,
    config: dict | None = None,
) -> dict:
    torch.manual_seed(0)
    card = get_model_card(name)
    model = create_model(name, num_classes=10, in_channels=1, quick=quick, **(config or {})).to(device)
    with contextlib.suppress(RuntimeError):  # models with 5-D weights (scale convolutions) stay contiguous
        model = model.to(memory_format=torch.channels_last)
    x = torch.randn(batch, 1, 72, 72, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    train_model = torch.compile(model) if compile_ else model

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()

    def train() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(train_model(x), y)
        loss.backward()
        opt.step()

    def infer() -> None:
        with torch.no_grad(), autocast():
            train_model(x)

    model.train()
    with flop_counter_mode() as fc:
        F.cross_entropy(model(x), y).backward()
    train_flops = fc.get_total_flops()
    opt.zero_grad(set_to_none=True)
    t_compile = time.perf_counter()
    train()  # warm-up (compiles with --compile)
    device_sync(device)()
    t_compile = time.perf_counter() - t_compile
    cpu: dict[str, float] = {}
    t_train = best_times({"train": train}, repeats, device=device, cpu=cpu)["train"]
    model.eval()
    with flop_counter_mode() as fc, torch.no_grad():
        model(x)
    infer_flops = fc.get_total_flops()
    t_infer = best_times({"infer": infer}, repeats, device=device, cpu=cpu)["infer"]
    return {
        "model": name,
        "quick": quick,
        "num_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "card_input_size": list(card.input_size),
        "train_img_per_s": batch / t_train,
        "infer_img_per_s": batch / t_infer,
        "train_gflop_per_img": train_flops / batch / 1e9,
        "infer_gflop_per_img": infer_flops / batch / 1e9,
        "train_gflops": train_flops / t_train / 1e9,
        "infer_gflops": infer_flops / t_infer / 1e9,
        "train_fraction_of_peak": train_flops / t_train / 1e9 / peak,
        "train_cpu_s_per_step": cpu["train"],
        "infer_fraction_of_peak": infer_flops / t_infer / 1e9 / peak,
        "first_step_s": t_compile,
    }


#: Model families of the field's peers and the reviewers' baselines, compared with a plain CNN of
#: the same parameter budget and with the default GaussDerNet.
PEER_FAMILIES = ("sesn", "disco", "dss", "si-convnet", "sicnn", "scale-channel", "baseline")


def measure_peers(rows: list[dict], args: argparse.Namespace) -> list[dict]:
    """Each peer measured above against (a) the registered ``cnn`` at the peer's parameter budget
    (:func:`scalebench.models.budget.budget_matched_cnn_config`) and (b) the default GaussDerNet, both timed
    now, in the same run (target: every peer trains at >= 1/4 of the default GaussDerNet's images per second)."""
    from scalebench.models.budget import budget_matched_cnn_config

    common = {"batch": args.batch, "repeats": args.repeats, "compile_": args.compile, "peak": 1.0,
              "device": args.device, "amp": args.amp}  # fmt: skip
    reference = measure_model("gaussdernet", quick=False, **common)
    print(f"reference: default gaussdernet trains {reference['train_img_per_s']:.1f} img/s")
    out = []
    for r in rows:
        if get_model_card(r["model"]).family not in PEER_FAMILIES:
            continue
        budget = budget_matched_cnn_config(r["num_params"])
        cnn = measure_model("cnn", quick=False, config=budget, **common)
        row = {
            "model": r["model"], "num_params": r["num_params"], "cnn_config": budget,
            "cnn_num_params": cnn["num_params"],
            "train_over_cnn": r["train_img_per_s"] / cnn["train_img_per_s"],
            "infer_over_cnn": r["infer_img_per_s"] / cnn["infer_img_per_s"],
            "train_over_gaussdernet": r["train_img_per_s"] / reference["train_img_per_s"],
        }  # fmt: skip
        out.append(row)
        print(
            f"{r['model']:16s} {r['train_img_per_s']:7.1f} img/s train = {row['train_over_cnn']:.2f}x the "
            f"{cnn['num_params']:,d}-parameter CNN, {row['infer_over_cnn']:.2f}x in inference; "
            f"{row['train_over_gaussdernet']:.2f}x the default GaussDerNet "
            f"({'met' if row['train_over_gaussdernet'] >= 0.25 else 'NOT met'}: >= 0.25)"
        )
    return out


def _njet_layer(repeats: int, batch: int, dense: bool, device: str) -> dict | None:
    path = Path(__file__).with_name("njet_layer.py")
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("njet_layer", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.measure_njet_layer(repeats=repeats, batch=batch, dense=dense, device=device)


def main() -> None:
    tune_allocator()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="micro-batch (per scale channel for the layer)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds per model")
    ap.add_argument(
        "--layer-repeats", type=int, default=15, help="interleaved rounds of the layer and its plain conv"
    )
    ap.add_argument("--models", default="*", help="fnmatch pattern over registered classification models")
    ap.add_argument("--quick", action="store_true", help="use each model's quick config")
    ap.add_argument("--compile", action="store_true", help="torch.compile the models (inductor)")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense per-scale reference (slow)")
    ap.add_argument("--no-layer", action="store_true")
    ap.add_argument("--no-njet", action="store_true", help="skip benchmarks/njet_layer.py")
    ap.add_argument(
        "--njet-batch",
        type=int,
        default=64,
        help="batch of the N-Jet layer benchmark (the target's setting: 64)",
    )
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    ap.add_argument("--peers", action="store_true",
                    help="compare each peer with a same-budget plain CNN and the default GaussDerNet")  # fmt: skip
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast for the models (CUDA only)")
    ap.add_argument(
        "--matrix-smoothing",
        type=int,
        metavar="C",
        help="smooth inputs with <= C channels by matrix products on this device (default: the library's "
        "MATRIX_SMOOTHING_MAX_CHANNELS[_CUDA]); the layer is also timed with every input so smoothed",
    )
    args = ap.parse_args()
    if problem := device_problem(args.device):
        ap.error(problem)
    if args.matrix_smoothing is not None:
        setattr(ss, "MATRIX_SMOOTHING_MAX_CHANNELS_CUDA" if args.device == "cuda" else "MATRIX_SMOOTHING_MAX_CHANNELS",
                args.matrix_smoothing)  # fmt: skip
    if args.amp and args.device != "cuda":
        ap.error("--amp needs --device cuda (bf16 autocast is pathologically slow on this CPU)")
    gpu = args.device == "cuda"
    torch.set_num_threads(args.threads)
    out: dict = {"threads": args.threads, "torch": torch.__version__, "device": args.device, "amp": args.amp}
    out["matrix_smoothing_max_channels"] = (
        ss.MATRIX_SMOOTHING_MAX_CHANNELS_CUDA if args.device == "cuda" else ss.MATRIX_SMOOTHING_MAX_CHANNELS
    )
    if gpu:
        out["gpu"] = torch.cuda.get_device_name()
    out["load_average_start"] = _load()
    out["omp_wait_policy"] = os.environ["OMP_WAIT_POLICY"]
    print(
        f"load average (1, 5, 15 min) at start: {out['load_average_start']}  ({os.cpu_count()} CPUs, "
        f"OMP_WAIT_POLICY={out['omp_wait_policy']})"
    )
    if gpu:
        peaks = gpu_peaks(args.device)
        out["gpu_peaks_gflops"] = peaks
        # cuDNN runs fp32 convolutions in TF32 by default: the fair reference for fp32 models
        peak = peaks["bf16" if args.amp else "tf32"]
        print(
            f"{out['gpu']}: matmul peaks fp32 {peaks['fp32'] / 1e3:.1f}, TF32 {peaks['tf32'] / 1e3:.1f}, "
            f"bf16 {peaks['bf16'] / 1e3:.1f} TFLOP/s; models are compared with the "
            f"{'bf16' if args.amp else 'TF32'} peak"
        )
    else:
        peak = matmul_peak_gflops()
        print(f"fp32 matmul peak: {peak:.1f} GFLOP/s ({args.threads} threads)")
    out["matmul_peak_gflops"] = peak

    if not args.no_layer:
        lay = measure_layer(
            batch=args.batch, repeats=args.layer_repeats, dense=not args.no_dense, device=args.device
        )
        out["layer"] = lay
        t = lay["seconds"]
        print(
            f"Gaussian derivative layer fwd+bwd (8 scales x B={args.batch}, 16->16, 72x72): "
            f"separable {t['separable'] * 1e3:.0f} ms, conv3x3 {t['conv3x3'] * 1e3:.0f} ms "
            f"-> {lay['separable_over_conv3x3']:.2f}x a plain 3x3 conv (target <= 2x); CPU time "
            f"{lay['cpu_seconds']['separable'] * 1e3:.0f} vs {lay['cpu_seconds']['conv3x3'] * 1e3:.0f} ms "
            f"-> {lay['separable_over_conv3x3_cpu']:.2f}x"
        )
        print(
            f"  the same layer with all {lay['channels']} input channels smoothed by matrix products: "
            f"{t['matrix_smoothing'] * 1e3:.1f} ms -> {t['matrix_smoothing'] / t['conv3x3']:.2f}x the plain conv"
        )
        if "dense" in t:
            print(
                f"  dense per-scale reference {t['dense']:.1f} s -> separable is "
                f"{lay['dense_over_separable']:.0f}x faster (target >= 50x); max |diff| {lay['dense_max_abs_diff']:.2e}"
            )

    rows = []
    for name in list_models(task="classification"):
        if not fnmatch.fnmatch(name, args.models):
            continue
        # the peak is re-measured before every model and the best so far is the reference: on a shared
        # machine one early reading can be depressed by other jobs (a conservative fraction of peak)
        if not gpu:
            peak = max(peak, matmul_peak_gflops())
        out["matmul_peak_gflops"] = peak
        r = measure_model(
            name, batch=args.batch, repeats=args.repeats, quick=args.quick, compile_=args.compile, peak=peak,
            device=args.device, amp=args.amp,
        )  # fmt: skip
        rows.append(r)
        print(
            f"{name:20s} params {r['num_params']:>8,d}  train {r['train_img_per_s']:7.1f} img/s "
            f"({r['train_gflops']:6.1f} GFLOP/s, {100 * r['train_fraction_of_peak']:4.1f} % of peak)  "
            f"infer {r['infer_img_per_s']:7.1f} img/s ({100 * r['infer_fraction_of_peak']:4.1f} %)  "
            f"{r['train_gflop_per_img']:.2f} GFLOP/img train  (peak so far {peak:.1f} GFLOP/s)"
        )
    out["models"] = rows
    if args.peers:
        out["peers"] = measure_peers(rows, args)

    if not args.no_njet:
        nj = _njet_layer(args.repeats, args.njet_batch, not args.no_dense, args.device)
        if nj is not None:
            out["njet_layer"] = nj
            print("N-Jet layer:", json.dumps(nj, indent=1, default=str))
    out["load_average_end"] = _load()
    print(f"load average (1, 5, 15 min) at end: {out['load_average_end']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
