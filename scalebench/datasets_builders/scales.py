"""The one scale identity of scalebench: a scale *is* its 3-decimal tag.

A build names and finds its sets by :func:`scale_tag`, ``f"{s:.3f}"`` with the point replaced by ``p`` (the
naming of Jansson & Lindeberg's MNIST Large Scale files), so two scales are the same when their tags are equal:
1.0 and 1.0004 are, 1.0 and 1.001 are not. Every comparison of scales in scalebench goes through
:func:`same_scale` (``evaluate --scales`` to the leaderboard's canonical scales); ``tests/datasets_builders/
test_ds_scales.py`` greps the package for any other rule. Imports no torch and no h5py (``scalebench.results``
imports it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from scalebench.checks import ScalebenchError

#: Default test scales of the classification builds: s = 2^(k/4), k = -4..4 (0.500 to 2.000, 9 sets),
#: rounded to 6 decimals (their tags are 0p500, 0p595, 0p707, 0p841, 1p000, 1p189, 1p414, 1p682, 2p000).
DEFAULT_TEST_SCALES: tuple[float, ...] = tuple(round(2.0 ** (k / 4), 6) for k in range(-4, 5))


def scale_tag(scale: float) -> str:
    """The file tag of a scale: ``f"{s:.3f}"`` with the point replaced by ``p`` (Jansson & Lindeberg naming).

    Example:
        >>> scale_tag(2 ** -0.75), scale_tag(1), scale_tag(2.0)
        ('0p595', '1p000', '2p000')
    """
    return f"{float(scale):.3f}".replace(".", "p")


def same_scale(a: float, b: float) -> bool:
    """True when ``a`` and ``b`` are the same scale: their 3-decimal tags are equal.

    Example:
        >>> same_scale(1.0, 1.0004), same_scale(1.0, 1.001), same_scale(2 ** 0.25, 1.189)
        (True, False, True)
    """
    return scale_tag(a) == scale_tag(b)


def same_scales(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when two lists of scales have the same length and the same scale at every position.

    Example:
        >>> same_scales([0.5, 1.0], [0.5002, 1.0]), same_scales([1.0], [1.0, 2.0])
        (True, False)
    """
    return len(a) == len(b) and all(same_scale(x, y) for x, y in zip(a, b, strict=True))


def find_scale(scales: Sequence[float], scale: float) -> int | None:
    """Index of the first of ``scales`` that is the same scale as ``scale``, or None.

    Example:
        >>> find_scale([0.5, 1.0, 2.0], 1.0004), find_scale([0.5, 1.0], 3.0)
        (1, None)
    """
    return next((i for i, s in enumerate(scales) if same_scale(s, scale)), None)


def unique_scales(values: Iterable[float]) -> list[float]:
    """Scales sorted and deduplicated by their tag (the first value of each tag is kept).

    Example:
        >>> unique_scales([2.0, 1.0, 1.0004, 0.5])
        [0.5, 1.0, 2.0]
    """
    by_tag: dict[str, float] = {}
    for s in values:
        by_tag.setdefault(scale_tag(s), float(s))
    return sorted(by_tag.values())


def match_scales(requested: Sequence[float] | None, built: Sequence[float], build_id: str) -> list[float]:
    """The test scales of a run: every built scale, or each requested one replaced by the built scale it is.

    Example:
        >>> match_scales([1, 0.5], [0.5, 0.7071, 1.0], "fashion-mnist")
        [0.5, 1.0]
    """
    built = sorted(float(s) for s in built)
    if requested is None:
        return built
    out, missing = [], []
    for s in requested:
        i = find_scale(built, s)
        (out.append(built[i]) if i is not None else missing.append(float(s)))
    if missing:
        raise ScalebenchError(
            f"Scale(s) {', '.join(f'{s:g}' for s in missing)} are not in the built set of {build_id!r}, whose test "
            f"scales are {', '.join(f'{b:.4g}' for b in built)} (a scale is its 3-decimal value). Choose --scales "
            "among these, or rebuild the dataset with the scales you need (`scalebench datasets build`)."
        )
    return sorted(set(out))
