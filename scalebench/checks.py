"""Argument checks shared by every layer of scalebench (the bottom of the package: imports nothing of it).

Every user-facing error is a :class:`ScalebenchError` whose message names the offending file or value,
what was expected, and the fix. The CLI prints such errors as one line, without a traceback.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

#: A dataset build id (also a path component under ``$SCALEBENCH_HOME/datasets``): 1-100 lowercase letters,
#: digits, ``_``, ``-`` and ``.``, not starting with a dot; never a path (no ``/``, no ``..`` component).
BUILD_ID_PATTERN = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,99}")


class ScalebenchError(Exception):
    """An error caused by input (a file, a value, a missing build) that the user can fix.

    The message is complete on its own: it names the file or value and says how to fix it.
    """


def check_choice(value: Any, name: str, valid: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``valid``; otherwise raise with the valid set and close matches.

    Example:
        >>> check_choice("max", "scale_pooling", ["max", "avg"])
        'max'
    """
    valid = list(valid)
    if value in valid:
        return value
    close = difflib.get_close_matches(str(value), [str(v) for v in valid], n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ScalebenchError(
        f"Unknown value {value!r} for {name}. Valid values are {{{', '.join(repr(v) for v in valid)}}}.{hint}"
    )


def check_shape(x: Any, spec: str, name: str = "input") -> None:
    """Check that ``x.shape`` matches a space-separated spec such as ``"B C H W"`` or ``"B 1 H W"``.

    Letters match any size; integers must match exactly.

    Example:
        >>> import numpy as np
        >>> check_shape(np.zeros((2, 1, 5, 5)), "B 1 H W")
    """
    dims = spec.split()
    shape = tuple(x.shape)
    if len(shape) != len(dims):
        raise ScalebenchError(f"{name} must have shape {spec} ({len(dims)} dims), got {shape}.")
    for i, (d, n) in enumerate(zip(dims, shape, strict=True)):
        if d.isdigit() and int(d) != n:
            raise ScalebenchError(
                f"{name} dimension {i} ({d}) must be {d}, got {n}; full shape {shape}, expected {spec}."
            )


def check_positive(value: float, name: str) -> float:
    """Return ``value`` if it is a finite number > 0; otherwise raise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ScalebenchError(f"{name} must be a positive number, got {value!r}.") from None
    if not (v > 0 and v != float("inf")):
        raise ScalebenchError(f"{name} must be a positive finite number, got {value!r}.")
    return v


def check_build_id(value: Any, name: str = "--dataset") -> str:
    """Return ``value`` if it is a build id (see :data:`BUILD_ID_PATTERN`); otherwise raise, saying it is not a path.

    Example:
        >>> check_build_id("fashion-mnist-embedded")
        'fashion-mnist-embedded'
    """
    if isinstance(value, str) and BUILD_ID_PATTERN.fullmatch(value):
        return value
    raise ScalebenchError(
        f"{name} must be a dataset build id such as 'fashion-mnist' or 'fashion-mnist-embedded' (1-100 lowercase "
        f"letters, digits, '_', '-' or '.', not starting with '.'), not a path; got {value!r}. Builds live under "
        "$SCALEBENCH_HOME/datasets (choose another home with --root); list them with `scalebench datasets info`."
    )


def _parse_list(text: str | Sequence[Any], name: str, convert: Callable[[Any], T], example: str) -> list[T]:
    """Split ``text`` at commas (or take the sequence), skip blank strings, ``convert`` each item (stripped
    if a string); an empty result is an error naming ``name`` and showing ``example``."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[T] = []
    for item in items:
        if isinstance(item, str):
            item = item.strip()
            if not item:
                continue
        out.append(convert(item))
    if not out:
        raise ScalebenchError(f"{name} is empty; give a comma-separated list such as {example}.")
    return out


def parse_float_list(text: str | Sequence[float], name: str) -> list[float]:
    """Parse ``"0.5,1,2"`` (or a sequence) into a list of positive floats, with a clear error.

    Example:
        >>> parse_float_list("0.5, 1,2", "--scales")
        [0.5, 1.0, 2.0]
    """
    return _parse_list(text, name, lambda item: check_positive(item, name), "0.5,1,2")


def parse_int_list(text: str | Sequence[int], name: str) -> list[int]:
    """Parse ``"0,1,2"`` into ``[0, 1, 2]`` with a clear error.

    Example:
        >>> parse_int_list("0,1,2", "--seeds")
        [0, 1, 2]
    """

    def to_int(item: Any) -> int:
        try:
            return int(str(item).strip())
        except ValueError:
            raise ScalebenchError(
                f"{name} must be a comma-separated list of integers, got {text!r}."
            ) from None

    return _parse_list(text, name, to_int, "0,1,2")
