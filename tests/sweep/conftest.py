"""Fixtures of the sweep tests: two tiny real dataset builds (fake raw files in the original formats)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "datasets_builders"))

from fakes_raw import patched_spec, tiny_fmnist_build, write_cifar

from scalebench.datasets_builders import build_dataset
from scalebench.datasets_builders.segmentation import build_segmentation
from scalebench.leaderboard.validate import KnownBuild

SCALES = [0.5, 1.0, 2.0]


@pytest.fixture(scope="session")
def sweep_home(tmp_path_factory):
    """A scalebench home with tiny non-embedded builds of fashion-mnist and cifar10, and their KnownBuilds."""
    base = tmp_path_factory.mktemp("sweep-home")
    raw, home = base / "raw", base / "home"
    cf = patched_spec(
        "cifar10", write_cifar(raw, per_batch=6), split_sizes={"train": 24, "val": 6, "test": 6}
    )
    builds = [
        tiny_fmnist_build(raw, home, SCALES),
        build_dataset("cifar10", root=home, raw_dir=raw, spec=cf, scales=SCALES, progress=False),
    ]
    known = [
        KnownBuild(b.name, str(b.version), b.manifest_sha256, tuple(float(s) for s in b.test_scales),
                   float(b.train_scale))
        for b in builds
    ]  # fmt: skip
    return home, known


@pytest.fixture(scope="session")
def seg_sweep_home(tmp_path_factory):
    """A home with the segmentation build ``fashion-mnist-seg-embedded-limit4`` (4 composites per set)."""
    home = tmp_path_factory.mktemp("seg-sweep-home")
    return home, build_segmentation(root=home, embedded=True, limit=4)
