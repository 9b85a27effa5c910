"""Model zoo: scale-space operations -> layers -> networks; registry (create_model, list_models)."""

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
