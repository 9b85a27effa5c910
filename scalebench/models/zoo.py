"""Imports every model module of the zoo, so that their ``register_model(card)(builder)`` calls run.

Imported once by ``scalebench/models/__init__.py``; add one import line per model module.
"""

import scalebench.models.baselines
import scalebench.models.disco
import scalebench.models.dss
import scalebench.models.gaussdernet
import scalebench.models.gaussderresnet
import scalebench.models.njetnet
import scalebench.models.rescaling_peers
import scalebench.models.scale_channel_nets
import scalebench.models.sesn
import scalebench.models.stn
import scalebench.models.unet  # noqa: F401
