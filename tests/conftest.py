"""Root of the tests: puts this folder on ``sys.path`` so that every test folder imports the shared helpers
(``result_factories``) by name, as each folder already imports its own (``lb_factories``, ``bench_fakes``);
fixtures shared by several test folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread during the test, restored after: CPU results are then bit-reproducible within
    a test, and tiny models run many times faster than with threads fighting on a shared CPU. Test folders
    that want it for every test request it from an autouse fixture of their conftest."""
    import torch  # here, not at the top: the leaderboard tests and their spawned workers need no torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
