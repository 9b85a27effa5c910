"""scalebench: a benchmark suite for scale generalisation of image networks.

Train a network at one image scale, test it on copies of the test set rescaled over a factor of 4,
and compare models on a leaderboard. See README.md for the two set-up commands and a CLI tour.

The Python API (:mod:`scalebench.api`; imported on first use, so ``import scalebench`` stays light):

- ``scalebench.evaluate(model, dataset=..., preset=..., seeds=..., **recipe_overrides)``: the protocol on a zoo
  model, a reference (``FILE.py:factory``, ``module:factory``) or a factory;
- ``scalebench.test(model, dataset=...)``: a model trained elsewhere, on every test scale;
- ``scalebench.load_model(run_dir_or_checkpoint)``: the trained model, in one line;
- ``scalebench.RescaledFashionMNIST`` / ``RescaledCIFAR10`` / ``RescaledSTL10``: torchvision-style datasets.
"""

from typing import Any

__version__ = "0.1.0"

_API = {
    "evaluate": "scalebench.api",
    "test": "scalebench.api",
    "load_model": "scalebench.api",
    "RescaledFashionMNIST": "scalebench.datasets_builders.torchvision_style",
    "RescaledCIFAR10": "scalebench.datasets_builders.torchvision_style",
    "RescaledSTL10": "scalebench.datasets_builders.torchvision_style",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """The API's names, imported on first use (PEP 562)."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'scalebench' has no attribute {name!r}")
