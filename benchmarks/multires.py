"""Multi-resolution GaussDerNet: speed, memory and error against the full-resolution network, per subsampling rule.

For the default GaussDerNet (8 scale channels, sigma0 0.71 .. 8, widths 16-16-24-24-32, 72 x 72, one input
channel; ``--model gaussderresnet`` or ``gaussderresnet_dw``: that model's default config) and each ``multires_min_sigma`` tau given (the rule: channel i runs on the grid subsampled by the
largest power of two f with its first-layer sigma still >= tau pixels there;
:func:`scalebench.models.gaussder.multires_groups`), measured in one process, interleaved with the
full-resolution network (the reference):

- training step (forward + backward + SGD) and inference, images per second, best of ``--repeats``;
- peak resident memory of one training step, in a fresh subprocess per variant (``VmHWM``: ``ru_maxrss``
  would carry the parent's peak over ``exec``);
- the error of the multi-resolution network against the full-resolution one *with the same weights* (eval
  mode): relative L2 of the per-channel class scores, per group, on real test images of the lite build when
  it is present (else the analytic test pattern);
- the scale-covariance error of the class scores under a sqrt(2) rescaling
  (:func:`scalebench.models.gaussder.scale_covariance_error`), pairs 0 .. 5.

Usage:

    .venv/bin/python benchmarks/multires.py [--model gaussdernet] [--taus 0.75,1,1.5,2] [--batch 8] [--repeats 3]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from scalebench.models import create_model
from scalebench.models.gaussder import scale_covariance_error, scale_test_image


def _model(tau: float | None, name: str = "gaussdernet") -> torch.nn.Module:
    torch.manual_seed(0)
    extra = {} if tau is None else {"multires": True, "multires_min_sigma": tau}
    return create_model(name, num_classes=10, in_channels=1, **extra)


def _step_times(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Wall and process-CPU seconds of one training step and one inference: [train, infer, train_cpu,
    infer_cpu] (CPU time is robust to other jobs on a shared machine)."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train()
    t0, c0 = time.perf_counter(), time.process_time()
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    train, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    model.eval()
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        model(x)
    return [train, time.perf_counter() - t0, train_cpu, time.process_time() - c0]


def _images(n: int) -> torch.Tensor:
    try:
        from scalebench.datasets_builders import open_build

        built = open_build("fashion-mnist-lite")
        return built.dataset("test", 1.0).read_batch(list(range(n)))[0].float()
    except Exception:  # no lite build here: the analytic pattern at a few sizes
        return torch.cat([scale_test_image(72, s) for s in (0.7, 1.0, 1.4, 2.0)])


def _peak_rss_mb(tau: float | None, batch: int, name: str) -> float:
    code = (
        "import torch, torch.nn.functional as F, sys; sys.path.insert(0, 'benchmarks');"
        "from multires import _model; torch.set_num_threads(2);"
        f"m = _model({tau!r}, {name!r}); x = torch.randn({batch}, 1, 72, 72); y = torch.randint(0, 10, ({batch},));"
        "F.cross_entropy(m(x), y).backward();"
        "print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gaussdernet", help="gaussdernet, gaussderresnet or gaussderresnet_dw")
    ap.add_argument("--taus", default="0.75,1,1.5,2")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    taus = [None] + [float(t) for t in args.taus.split(",")]
    models = {tau: _model(tau, args.model) for tau in taus}
    x, y = torch.randn(args.batch, 1, 72, 72), torch.randint(0, 10, (args.batch,))
    best = {tau: [float("inf")] * 4 for tau in taus}
    for m in models.values():  # warm-up: first calls allocate
        _step_times(m, x, y)
    for _ in range(args.repeats):  # interleaved: every variant sees the same machine load
        for tau, m in models.items():
            t = _step_times(m, x, y)
            best[tau] = [min(a, b) for a, b in zip(best[tau], t, strict=True)]
    images = _images(32)
    full = models[None].eval()
    with torch.no_grad():
        ref = full.scale_channel_logits(images)
    rows = []
    for tau in taus:
        m = models[tau].eval()
        m.load_state_dict(full.state_dict())
        with torch.no_grad():
            z = m.scale_channel_logits(images)
        group_err = (
            [float((z[i] - ref[i]).norm() / ref[i].norm()) for i in range(z.shape[0])]
            if tau is not None
            else []
        )
        cov = scale_covariance_error(m, size=72)[:6]
        row = {
            "tau": tau,
            "groups": [[idx, f] for idx, f in m.groups],
            "train_img_per_s": args.batch / best[tau][0],
            "infer_img_per_s": args.batch / best[tau][1],
            "train_speedup": best[None][0] / best[tau][0],
            "infer_speedup": best[None][1] / best[tau][1],
            "train_speedup_cpu_time": best[None][2] / best[tau][2],
            "infer_speedup_cpu_time": best[None][3] / best[tau][3],
            "peak_rss_mb": _peak_rss_mb(tau, args.batch, args.model),
            "logit_error_per_channel": group_err,
            "covariance_pairs_0_5": [round(float(v), 4) for v in cov],
        }
        rows.append(row)
        name = "full resolution" if tau is None else f"multires tau={tau:g}"
        err = f"max channel error {max(group_err):.3f}" if group_err else "reference"
        print(f"{name:20s} groups {[f for _, f in m.groups]!s:14s} train {row['train_img_per_s']:6.1f} img/s "
              f"({row['train_speedup']:.2f}x; CPU time {row['train_speedup_cpu_time']:.2f}x)  infer {row['infer_img_per_s']:6.1f} img/s ({row['infer_speedup']:.2f}x)  "
              f"peak RSS {row['peak_rss_mb']:.0f} MB  {err}  covariance max {max(row['covariance_pairs_0_5']):.3f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(f"(1 process, {args.threads} threads, batch {args.batch}, best of {args.repeats}; "
          f"this process's peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
