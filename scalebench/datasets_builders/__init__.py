"""Rescaled classification datasets: raw sources -> rescaling -> HDF5 + manifest; readers and export.

Public API (other layers code against these names):

- :data:`DATASETS` (name -> :class:`DatasetSpec`) for ``fashion-mnist``, ``cifar10``, ``stl10``;
- :func:`build_dataset` / :func:`build_datasets`, :func:`load_built` -> :class:`BuiltDataset`;
- :class:`RescaledDataset`, the lazy torch Dataset over one split of an HDF5 file (also reads the published
  Lindeberg-group files);
- :func:`verify_datasets`, :func:`describe_builds`, :func:`export_hf`.

See ``docs/datasets.md`` for the protocol, the file layout and the choices made.
"""

from scalebench.datasets_builders.build import (
    BuiltDataset,
    build_dataset,
    build_datasets,
    build_id_for,
    describe_builds,
    list_builds,
    load_built,
    manifest_digest,
    verify_build,
    verify_datasets,
)
from scalebench.datasets_builders.hf import export_datasets, export_hf
from scalebench.datasets_builders.reader import RescaledDataset
from scalebench.datasets_builders.rescale import rescale_batch
from scalebench.datasets_builders.specs import (
    DATASETS,
    DEFAULT_TEST_SCALES,
    GENERATOR_VERSION,
    DatasetSpec,
    Resource,
    scale_tag,
)

__all__ = [
    "DATASETS",
    "DEFAULT_TEST_SCALES",
    "GENERATOR_VERSION",
    "BuiltDataset",
    "DatasetSpec",
    "RescaledDataset",
    "Resource",
    "build_dataset",
    "build_datasets",
    "build_id_for",
    "describe_builds",
    "export_datasets",
    "export_hf",
    "list_builds",
    "load_built",
    "manifest_digest",
    "rescale_batch",
    "scale_tag",
    "verify_build",
    "verify_datasets",
]
