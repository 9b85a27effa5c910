"""Model zoo: scale-space operations -> layers -> networks; registry (create_model, list_models).

Importing the package registers the zoo (:mod:`scalebench.models.zoo`); the registry itself imports no model
module, so there is no import circle.
"""

from scalebench.models import zoo  # noqa: F401  (registers every model of the zoo)
from scalebench.models.registry import (
    ModelCard,
    count_parameters,
    create_model,
    get_model_card,
    list_models,
    register_model,
    resolve_config,
    validate_model_config,
)

__all__ = [
    "ModelCard",
    "count_parameters",
    "create_model",
    "get_model_card",
    "list_models",
    "register_model",
    "resolve_config",
    "validate_model_config",
]
