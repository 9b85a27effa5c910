"""Benchmark: build a full rescaled dataset and compare with a bare per-image PIL bicubic loop, same run.

Prints three figures for the whole build (train + val at the training scale and the 9 test scales):

- the wall time of the build (measured inside a child process, plus the child's total wall time);
- the peak RSS of the build (``ru_maxrss`` of the child process) and its CPU time (user + sys), which
  depends less than the wall time on what else runs on a shared machine;
- the ratio of the whole build (rescaling, HDF5 writing, compression, hashing) to the bare resampling cost,
  measured here as a plain loop ``PIL.Image.fromarray(img).resize((round(s*w), round(s*h)), BICUBIC)`` over
  the same images and scales.

Targets on 2 cores: Fashion-MNIST <= 30 s, peak RSS <= 2 GiB, ratio <= 3; CIFAR-10 <= 90 s on a
synthetic raw set of the real size (``--dataset cifar10`` writes one: 50,000 + 10,000 smooth random 32x32
RGB images in the original pickled-batch format, in a temporary folder).

Usage:
    SCALEBENCH_RAW_DIR=/path/to/raw python benchmarks/build_datasets.py
    python benchmarks/build_datasets.py --dataset cifar10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_synthetic_cifar(raw_root: Path, seed: int = 0) -> Path:
    """Write a CIFAR-10 raw set of the real size (5 x 10,000 train + 10,000 test) in the original format."""
    import torch
    import torch.nn.functional as F

    from scalebench.datasets_builders import DATASETS

    folder = raw_root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        # Smooth images (bilinear upsampling of 8x8 noise plus fine noise) compress like natural ones.
        low = torch.rand(10000, 3, 8, 8, generator=gen)
        img = F.interpolate(low, size=(32, 32), mode="bilinear", align_corners=False)
        img = (img * 230 + torch.rand(10000, 3, 32, 32, generator=gen) * 25).clamp(0, 255).to(torch.uint8)
        batch = {
            "batch_label": name,
            "labels": ((np.arange(10000) + k) % 10).tolist(),
            "data": img.numpy().reshape(10000, 3072),
            "filenames": [f"{name}_{i}.png" for i in range(10000)],
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    meta = {
        "label_names": list(DATASETS["cifar10"].class_names),
        "num_cases_per_batch": 10000,
        "num_vis": 3072,
    }
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump(meta, fh, protocol=2)
    return folder


def _spec(dataset: str, raw_dir: Path, synthetic: bool):
    from scalebench.datasets_builders import DATASETS, Resource
    from scalebench.fileio import file_digest

    spec = DATASETS[dataset]
    if not synthetic:
        return spec
    folder = raw_dir / spec.raw_folder
    resources = tuple(Resource(r.filename, file_digest(folder / r.filename, "md5")) for r in spec.resources)
    return dataclasses.replace(spec, resources=resources)


def child(args: argparse.Namespace) -> None:
    """Run the build alone in this process and print its wall time as JSON."""
    from scalebench.datasets_builders import build_dataset

    spec = _spec(args.dataset, Path(args.raw_dir), args.synthetic)
    t = time.perf_counter()
    built = build_dataset(args.dataset, root=args.root, raw_dir=args.raw_dir, spec=spec, progress=False)
    print(json.dumps({"build_s": time.perf_counter() - t, "manifest_sha256": built.manifest_sha256}))


def pil_loop(dataset: str, raw_dir: Path, synthetic: bool) -> tuple[float, int]:
    """Bare per-image PIL bicubic resampling over the same images and scales as the build."""
    from PIL import Image

    from scalebench.datasets_builders.raw import load_raw

    spec = _spec(dataset, raw_dir, synthetic)
    raw = load_raw(spec, raw_dir=raw_dir)
    h, w = spec.source_size
    jobs = [(raw.x["train"], spec.train_scale), (raw.x["val"], spec.train_scale)]
    jobs += [(raw.x["test"], s) for s in spec.test_scales]
    count = 0
    t = time.perf_counter()
    for images, s in jobs:
        size = (max(1, round(s * w)), max(1, round(s * h)))
        for img in images:
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).resize(size, Image.BICUBIC)
        count += len(images)
    return time.perf_counter() - t, count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=["fashion-mnist", "cifar10"], default="fashion-mnist")
    parser.add_argument("--raw-dir", default=os.environ.get("SCALEBENCH_RAW_DIR"))
    parser.add_argument("--root", default=None, help="where to build (default: a temporary folder)")
    parser.add_argument("--synthetic", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="scalebench-bench-") as tmp:
        if args.dataset == "cifar10":
            args.raw_dir = str(Path(tmp) / "raw")
            t = time.perf_counter()
            write_synthetic_cifar(Path(args.raw_dir))
            print(f"wrote a synthetic CIFAR-10 raw set of real size in {time.perf_counter() - t:.1f} s")
            args.synthetic = True
        elif not args.raw_dir:
            sys.exit("Set SCALEBENCH_RAW_DIR (or --raw-dir) to a folder holding FashionMNIST/raw/*.gz.")
        root = args.root or str(Path(tmp) / "home")
        cmd = [sys.executable, __file__, "--child", "--dataset", args.dataset, "--raw-dir", args.raw_dir]
        cmd += ["--root", root] + (["--synthetic"] if args.synthetic else [])
        t = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        child_wall = time.perf_counter() - t
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mib = usage.ru_maxrss / 1024
        cpu_s = usage.ru_utime + usage.ru_stime
        result = json.loads(out.stdout.strip().splitlines()[-1])
        build_s = result["build_s"]
        pil_s, n_images = pil_loop(args.dataset, Path(args.raw_dir), args.synthetic)
        size = sum(p.stat().st_size for p in Path(root, "datasets").rglob("*.h5")) / 2**20
    print(f"dataset            {args.dataset} ({n_images} rescaled images, {size:.0f} MiB of HDF5)")
    print(
        f"build wall time    {build_s:.2f} s (child process incl. start-up and imports: {child_wall:.2f} s)"
    )
    print(f"CPU time (child)   {cpu_s:.1f} s user+sys, incl. imports (wall on 2 idle cores is at least half)")
    print(f"peak RSS (build)   {peak_mib:.0f} MiB (the process, incl. about 700 MiB for importing torch)")
    print(f"PIL bicubic loop   {pil_s:.2f} s (bare per-image resampling, same images and scales)")
    print(f"ratio build / PIL  {build_s / pil_s:.2f}")
    print(f"manifest sha256    {result['manifest_sha256']}")
    print(f"cpu count          {os.cpu_count()} (shared machine: timings vary by about 20 %)")


if __name__ == "__main__":
    main()
