"""The progress display moved to :mod:`scalebench.progress` (the dataset builds use it too, and sit below the
benchmark); this name stays for the imports that still use it."""

from scalebench.progress import PROGRESS_MODES, Progress, ProgressMode, duration, progress_mode

__all__ = ["PROGRESS_MODES", "Progress", "ProgressMode", "duration", "progress_mode"]
