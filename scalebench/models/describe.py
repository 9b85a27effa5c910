"""What ``scalebench models list|info`` shows: plain rows built from the registered model cards.

``covariant`` is the card's ``scale_covariant`` flag, ``selection`` its ``reports_scale_selection`` flag.

The CLI only renders these (a rich table on a terminal, tab-separated text otherwise).
"""

from __future__ import annotations

from typing import Any

from scalebench.checks import ScalebenchError
from scalebench.models.registry import get_model_card, list_models

LIST_COLUMNS: tuple[str, ...] = (
    "name",
    "family",
    "task",
    "params",
    "covariant",
    "selection",
    "bibtex_key",
)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def model_rows(pattern: str = "*", *, task: str | None = None) -> list[dict[str, str]]:
    """One row per registered model matching the fnmatch ``pattern``, with the keys of ``LIST_COLUMNS``.

    An empty match raises a ScalebenchError naming the pattern and the registered models.

    Example:
        >>> [r["name"] for r in model_rows("resnet*")]
        ['resnet20', 'resnet32']
    """
    names = list_models(pattern, task=task)
    if not names:
        raise ScalebenchError(
            f"No registered model matches {pattern!r}"
            + (f" with task {task!r}" if task else "")
            + f". Registered models: {', '.join(list_models())}."
        )
    rows = []
    for name in names:
        card = get_model_card(name)
        rows.append(
            {
                "name": card.name,
                "family": card.family,
                "task": card.task,
                "params": f"{card.num_params:,}",
                "covariant": _yes_no(card.scale_covariant),
                "selection": _yes_no(card.reports_scale_selection),
                "bibtex_key": card.bibtex_key,
            }
        )
    return rows


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return _yes_no(value)
    if isinstance(value, tuple | list):
        return ", ".join(_format(v) for v in value) if value else "(none)"
    return str(value)


def model_info(name: str) -> list[tuple[str, str]]:
    """(field, value) pairs describing the card of ``name``: paper, key, parameters, defaults, flags.

    Example:
        >>> dict(model_info("resnet20"))["parameters"]
        '269,722 (default config, 3x32x32 input, 10 classes)'
    """
    card = get_model_card(name)
    c, h, w = card.input_size
    pairs: list[tuple[str, str]] = [
        ("name", card.name),
        ("family", card.family),
        ("task", card.task),
        ("paper", card.paper),
        ("bibtex key", card.bibtex_key),
        ("arXiv", card.arxiv or "-"),
        ("code", card.code_url or "no public code by the authors; scalebench's own implementation"),
        (
            "parameters",
            f"{card.num_params:,} (default config, {c}x{h}x{w} input, {card.num_classes} classes)",
        ),
        ("scale covariant", _yes_no(card.scale_covariant)),
        ("scale invariant", _yes_no(card.scale_invariant)),
        ("reports scale selection", _yes_no(card.reports_scale_selection)),
    ]
    pairs += [(f"default {k}", _format(v)) for k, v in card.default_config.items()]
    pairs += [(f"quick {k}", _format(v)) for k, v in card.quick_config.items()]
    for label, recipe in (("quick training", card.quick_training), ("paper training", card.paper_training)):
        stated = recipe.model_dump()
        facts = stated.pop("facts", {})
        pairs += [(f"{label} {k}", _format(v)) for k, v in stated.items()]
        pairs += [(f"{label} (not applied) {k}", _format(v)) for k, v in facts.items()]
    if card.notes:
        pairs.append(("notes", card.notes))
    return pairs
