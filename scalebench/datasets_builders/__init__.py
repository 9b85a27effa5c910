"""Rescaled datasets: raw sources -> rescaling -> HDF5 + manifest; readers."""
