"""The hostile-input and fault suite: the cases of the reliability probe (``docs/reliability.md``), run in CI.

Each test names the probe's cases it covers with ``@pytest.mark.case("B21", "D8")`` (case ids of the probe's
tables, defect ids D1-D20, note ids N1-N15). Everything is tiny: synthetic raw files, a few images, no training
longer than a few seconds; a case that needs a tmpfs mount is skipped where mounting is not allowed.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Each case chooses its raw folder and home explicitly, and never reads the user's."""
    monkeypatch.delenv("SCALEBENCH_RAW_DIR", raising=False)
    monkeypatch.setenv("SCALEBENCH_HOME", str(tmp_path / "home"))


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One torch thread (tests/conftest.py): tiny models run faster and bit-reproducibly."""
