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


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs 2 workers), each worker gets its share of the cores as torch
    threads, so that the workers do not oversubscribe the machine (2 workers x 2 threads on 2 cores)."""
    import os

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(name="one_torch_thread")
def one_torch_thread_fixture():
    """One intra-op torch thread during the test (:func:`torch_threads.one_torch_thread`). Test folders that
    want it for every test request it from an autouse fixture of their conftest."""
    from torch_threads import one_torch_thread

    with one_torch_thread():
        yield
