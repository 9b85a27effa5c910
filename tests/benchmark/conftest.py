"""Fixtures of the protocol tests; the stand-in dataset and models live in ``bench_fakes``."""

from __future__ import annotations

import pytest
from bench_fakes import FakeBuilt

from scalebench.checks import ScalebenchError


@pytest.fixture
def fake_built(monkeypatch):
    """A FakeBuilt served for build id 'tiny' (other ids raise like the real loader)."""
    built = FakeBuilt()

    def load(build_id, root=None, task=None):
        if build_id != "tiny":
            raise ScalebenchError(f"Dataset {build_id!r} is not built; run `scalebench datasets build`.")
        return built

    monkeypatch.setattr("scalebench.datasets_builders.open_build", load)
    return built


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Fixed thread count (tests/conftest.py): CPU results are then bit-reproducible within a test."""
