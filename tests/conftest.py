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


@pytest.fixture(name="one_torch_thread")
def one_torch_thread_fixture():
    """One intra-op torch thread during the test (:func:`torch_threads.one_torch_thread`). Test folders that
    want it for every test request it from an autouse fixture of their conftest."""
    from torch_threads import one_torch_thread

    with one_torch_thread():
        yield
