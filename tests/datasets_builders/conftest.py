"""Fixtures of the dataset-builder tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_env_raw_dir(monkeypatch):
    """Tests choose their raw folder and home explicitly (the environment could point at real data)."""
    monkeypatch.delenv("SCALEBENCH_RAW_DIR", raising=False)
    monkeypatch.delenv("SCALEBENCH_HOME", raising=False)
