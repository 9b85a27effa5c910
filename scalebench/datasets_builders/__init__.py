"""Rescaled datasets: raw sources -> rescaling -> HDF5 + manifest; builds, readers, inventory and export.

Public API: :data:`DATASETS` (name -> :class:`DatasetSpec`); :func:`build_datasets` (any dataset by name, the
one dispatch to :func:`build_dataset`, classification, or ``segmentation.build_segmentation``); :func:`open_build`
-> the :class:`Build` of the manifest's format, whose ``dataset(split, scale, *, train_scale)`` is a lazy torch
Dataset (:class:`RescaledDataset`, which also reads the Lindeberg-group files, or :class:`SegmentationDataset`);
the one scale identity (``scales.py``); :func:`list_builds`, :func:`verify_datasets`, :func:`describe_builds`,
:func:`export_hf`. Names are imported on first use, so that ``scalebench.datasets_builders.scales`` imports no
torch and no h5py. See ``docs/datasets.md`` for the protocol, the file layout and the choices made.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "build": ("ClassificationBuild", "build_dataset"),
    "builds": ("Build",),
    "hf": ("export_datasets", "export_hf"),
    "inventory": (
        "build_datasets",
        "describe_builds",
        "list_builds",
        "open_build",
        "verify_build",
        "verify_datasets",
    ),
    "manifest": ("build_id_for", "manifest_digest"),
    "readers": ("RescaledDataset", "SegmentationDataset"),
    "rescale": ("rescale_batch",),
    "scales": ("DEFAULT_TEST_SCALES", "match_scales", "same_scale", "scale_tag"),
    "specs": ("BUILD_CHOICES", "DATASETS", "GENERATOR_VERSION", "DatasetSpec", "Resource"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
