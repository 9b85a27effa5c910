"""Plan the epochs of the GPU segmentation real run (benchmarks/gpu/segmentation_real_run.sh) from measured times.

For ``unet`` and ``njet-unet`` (paper widths) it times, on the CUDA device under bf16 autocast: one training
step (batch 8: read from the HDF5 set, forward, weighted cross-entropy, backward, Adam) and the evaluation
of one image (batch 32). With four runs sharing the GPU, each is assumed ``--share`` times slower; the
epochs are then the most that fit ``--budget`` seconds:

    epochs = floor((budget / share - test_time) / (train_epoch_time + val_time))

Prints shell assignments ``E_UNET=..`` and ``E_NJET=..`` (at least 1, at most ``--max-epochs``) and the
measured times as comments.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from scalebench.benchmark.tasks.segmentation import class_weights, segmentation_loss
from scalebench.datasets_builders import open_build
from scalebench.models import create_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/timing.py
from timing import device_sync

_sync = device_sync("cuda" if torch.cuda.is_available() else "cpu")


def _median_time(fn, n: int) -> float:
    """Median wall time (s) of ``n`` calls after one warm-up: a typical step, for planning (not a best case)."""
    fn()
    _sync()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t)
    return sorted(times)[n // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--budget", type=float, default=420.0)
    ap.add_argument("--share", type=float, default=2.5, help="slow-down of each of four concurrent runs")
    ap.add_argument("--max-epochs", type=int, default=40)
    ap.add_argument("--device", default="cuda", help="cpu only to check this script on a tiny set")
    ap.add_argument("--quick", action="store_true", help="the models' quick configs (to check this script)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    amp = dev.type == "cuda"
    built = open_build(args.dataset, task="segmentation")
    train = built.dataset("train", train_scale=4)
    n_train, n_val = len(train), len(built.dataset("val", train_scale=4))
    n_test = sum(len(built.dataset("test", scale=s)) for s in built.test_scales)
    x, y = train.read_batch(list(range(8)))
    w = class_weights(y, built.num_classes).to(dev)
    spread = list(range(0, n_train, max(1, n_train // 8)))[:8]  # eight images from different chunks
    t_read = _median_time(lambda: train.read_batch(spread), 5)
    out = {}
    for name, key in (("unet", "E_UNET"), ("njet-unet", "E_NJET")):
        torch.manual_seed(0)
        model = create_model(
            name, num_classes=built.num_classes, in_channels=built.channels, quick=args.quick
        )
        model = model.to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        xb, yb = x.to(dev), y.to(dev)

        def step(model=model, opt=opt, xb=xb, yb=yb) -> None:
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                loss = segmentation_loss(model(xb).float(), yb, w)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        xe = torch.cat([xb] * 4)

        def infer(model=model, xe=xe) -> None:
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                model(xe).argmax(1)

        t_step = _median_time(step, 10) + t_read  # the loader overlaps reading with compute: an upper bound
        model.eval()
        t_img = _median_time(infer, 5) / 32
        epoch = math.ceil(n_train / 8) * t_step + n_val * t_img
        fit = (args.budget / args.share - n_test * t_img) / epoch
        out[key] = max(1, min(args.max_epochs, math.floor(fit)))
        print(f"# {name}: step {t_step * 1e3:.1f} ms (read {t_read * 1e3:.1f} ms), eval {t_img * 1e3:.2f} ms/img, "
              f"epoch {epoch:.1f} s alone; n_train {n_train}, n_val {n_val}, n_test {n_test}")  # fmt: skip
    for key, value in out.items():
        print(f"{key}={value}")


if __name__ == "__main__":
    main()
