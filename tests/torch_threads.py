"""One intra-op torch thread for a block of a test or a fixture of any scope."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread inside the block, the previous number restored after: CPU results are then
    bit-reproducible within a test, and tiny models run many times faster than with threads fighting on a
    shared CPU."""
    import torch  # here, not at the top: the leaderboard tests and their spawned workers need no torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
