"""Root of the tests: puts this folder on ``sys.path`` so that every test folder imports the shared helpers
(``result_factories``) by name, as each folder already imports its own (``lb_factories``, ``bench_fakes``)."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
