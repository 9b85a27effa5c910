"""Fixtures of the segmentation tests: one tiny build of the embedded subset, shared by the module tests."""

from __future__ import annotations

import pytest

from scalebench.datasets_builders.segmentation import build_segmentation


@pytest.fixture(autouse=True)
def _no_env_dirs(monkeypatch):
    monkeypatch.delenv("SCALEBENCH_RAW_DIR", raising=False)
    monkeypatch.delenv("SCALEBENCH_HOME", raising=False)


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """One intra-op thread (tests/conftest.py): tiny models run many times faster than with threads fighting."""


@pytest.fixture(scope="session")
def seg_home(tmp_path_factory):
    """A home holding ``fashion-mnist-seg-embedded-limit4`` (4 composites per split, 224 x 224)."""
    root = tmp_path_factory.mktemp("seghome")
    built = build_segmentation(root=root, embedded=True, limit=4)
    return root, built
