"""Imports every model module so that their ``@register_model`` decorators run (see registry.py).

Add one import line per model module.
"""

import scalebench.models.baselines
import scalebench.models.gaussdernet
import scalebench.models.gaussderresnet
import scalebench.models.njetnet
import scalebench.models.unet  # noqa: F401
