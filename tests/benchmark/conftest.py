"""Fixtures of the protocol tests; the stand-in dataset and models live in ``bench_fakes``."""

from __future__ import annotations

import pytest
import torch
from bench_fakes import FakeBuilt

from scalebench.checks import ScalebenchError


@pytest.fixture
def fake_built(monkeypatch):
    """A FakeBuilt served for build id 'tiny' (other ids raise like the real loader)."""
    built = FakeBuilt()

    def load(build_id, root=None):
        if build_id != "tiny":
            raise ScalebenchError(f"Dataset {build_id!r} is not built; run `scalebench build-datasets`.")
        return built

    monkeypatch.setattr("scalebench.benchmark.protocol._load_built", load)
    return built


@pytest.fixture(autouse=True)
def _one_thread():
    """Fixed thread count: CPU results are then bit-reproducible within a test."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
