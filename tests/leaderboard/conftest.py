"""Shared fixtures of the leaderboard tests: the canonical build of the test factories is the known one."""

from __future__ import annotations

import pytest
from lb_factories import KNOWN


@pytest.fixture
def known_test_build(monkeypatch):
    """Make the factories' build the only known canonical build (for code paths that use the default)."""
    monkeypatch.setattr("scalebench.leaderboard.validate.known_builds", lambda: KNOWN)
    return KNOWN
