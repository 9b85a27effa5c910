"""Start-up cost of a model of one's own: resolving a model reference and hashing its code.

What ``scalebench evaluate --model FILE.py:factory`` does before any data is read, measured in one process
against the zoo path it replaces (the reference, measured in the same run):

- ``zoo`` (reference): ``resolve_model("cnn")`` (card lookup plus the zoo source hash: the sha256 of the
  model's module and the ``scalebench.models`` modules it imports, cache cleared each time) then
  ``create_model`` and the structural fingerprint (parameter names and shapes);
- ``file``: ``resolve_model("<tmp>/dilated_scale_net.py:dilated_scale_net")`` on a fresh copy of
  ``examples/dilated_scale_net.py`` (a new comment each repeat, so nothing is cached): import the file, sha256
  of it and of the neighbour files it imports, build its card (parameter count computed), register; then
  ``create_model`` and the fingerprint;
- ``module``: the same for ``MODULE:factory`` (a fresh module on ``sys.path`` each repeat).

"Added" is the median of (reference path - zoo path); the target is <= 50 ms. The ratio is path / zoo.

Usage:

    .venv/bin/python benchmarks/model_reference.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from scalebench.models import create_model, external, registry
from scalebench.models.external import structure_sha256

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dilated_scale_net.py"


def _forget(name: str) -> None:
    """Unregister an outside model and drop the cached zoo hashes, so the next resolve does all the work."""
    registry._REGISTRY.pop(name, None)
    registry._RULES.pop(name, None)
    registry._EXTERNAL.clear()
    external._modules_sha256.cache_clear()


def _timed(step: Callable[[], str]) -> float:
    t0 = time.perf_counter()
    name = step()
    model = create_model(name, num_classes=10, in_channels=1)
    structure_sha256(model)
    return time.perf_counter() - t0


def measure(repeats: int, tag: str = "run") -> dict[str, list[float]]:
    """Seconds per repeat of each path, interleaved (the three see the same machine load)."""
    times: dict[str, list[float]] = {"zoo": [], "file": [], "module": []}
    source = EXAMPLE.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sys.path.insert(0, str(folder))
        for i in range(repeats):
            _forget("dilated_scale_net")
            times["zoo"].append(_timed(lambda: registry.resolve_model("cnn").name))

            path = folder / f"copy{i}" / "dilated_scale_net.py"
            path.parent.mkdir()
            path.write_text(source + f"\n# copy {i}\n")
            _forget("dilated_scale_net")
            times["file"].append(_timed(lambda p=path: registry.resolve_model(f"{p}:dilated_scale_net").name))

            (folder / f"user_model_{tag}_{i}.py").write_text(source + f"\n# module {i}\n")
            _forget("dilated_scale_net")
            times["module"].append(
                _timed(lambda i=i: registry.resolve_model(f"user_model_{tag}_{i}:dilated_scale_net").name)
            )
        sys.path.remove(str(folder))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    measure(2, "warmup")  # warm-up: imports of torch, pydantic, ast
    times = measure(args.repeats)
    zoo = statistics.median(times["zoo"])
    print(f"model reference start-up, median of {args.repeats} interleaved repeats (1 thread)")
    print(f"{'path':8s} {'median ms':>10s} {'best ms':>8s} {'added ms':>9s} {'ratio':>6s}")
    for path, values in times.items():
        med = statistics.median(values)
        added = statistics.median(v - z for v, z in zip(values, times["zoo"], strict=True))
        print(f"{path:8s} {med * 1e3:10.1f} {min(values) * 1e3:8.1f} {added * 1e3:9.1f} {med / zoo:6.2f}")
    worst = max(
        statistics.median(v - z for v, z in zip(times[p], times["zoo"], strict=True))
        for p in ("file", "module")
    )
    print(f"target: added <= 50 ms -> {'met' if worst <= 0.050 else 'NOT met'} ({worst * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
