"""Summary metrics of a scale-generalisation run, computed from the raw per-scale counts only.

Every number that a results file states besides the raw counts is recomputed here, by the same functions,
wherever it is needed: by ``scalebench evaluate`` when it writes a results file, by the results schema when it
validates one, and by the leaderboard when it accepts a submission. A metric name means one formula only.

Protocol (Jansson & Lindeberg, 2022, "Scale-invariant scale-channel networks: deep networks that generalise to
previously unseen scales", JMIV 64(5): 506-536; Lindeberg, 2022, "Scale-covariant and scale-invariant Gaussian
derivative networks", JMIV 64(3): 223-242): train at one scale, test on copies of the test set rescaled by
factors ``s = 2^(k/4)``, report the accuracy per test scale.

Definitions, for per-scale scores ``a(s) = correct(s) / total(s)`` over the test scales ``S`` and the training
scale ``s0`` in ``S`` (a scale is its 3-decimal tag: :mod:`scalebench.datasets_builders.scales`):

- ``train_scale_accuracy = a(s0)``
- ``mean_accuracy = (1/|S|) Σ_s a(s)`` (unweighted mean over scales, not pooled over images)
- ``worst_accuracy = min_s a(s)``, ``worst_scale = argmin`` (the smallest such scale on ties)
- ``generalisation_ratio = worst_accuracy / train_scale_accuracy`` (None when ``a(s0) = 0``)

Scale selection (scale-channel models): ``counts[i][j]`` is the number of test images at scale ``S[i]`` whose
winning channel (the channel holding the maximal logit) was channel ``j`` with scale ``σ_j``.

- ``selection_spearman``: Spearman's rank correlation (Spearman, 1904, Am. J. Psychol. 15(1): 72-101)
  between ``log2(test scale)`` and ``log2(σ of the winning channel)`` over all test images, ties given their
  average rank. None when either variable is constant.
- ``selection_slope``: least-squares slope of the mean winning channel index against ``log2(test scale)``,
  in channels per octave (perfect covariance with a √2 channel spacing gives 2.0).

Uncertainty of one run: ``wilson_interval(correct, total)``, the 95 % Wilson score interval of an accuracy
from its test-set size (drawn around single-seed curves, where no spread over seeds exists).

Sampling ripple (scale-channel models with channel ratio ``r``): a test scale ``s`` is *on the channel grid*
when ``log_r(s / s0)`` is an integer (the object then meets a channel as it met one at ``s0``), else *off* it.

- ``scale_ripple``: the mean, over off-grid scales whose two neighbouring test scales are on the grid, of
  ``(a(s-) + a(s+)) / 2 - a(s)``: how much lower a score is between channels than the scores on the grid
  beside it. Taken locally, so that the curve's overall peak at the training scale is not counted as ripple
  (a plain on-grid mean minus off-grid mean would be, since ``s0`` and the ends are on the grid). None when
  no off-grid scale has on-grid neighbours on both sides.

The functions are written against one score per scale, so a task with another per-scale score (mean IoU for
segmentation) reuses them unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.scales import find_scale

#: Absolute tolerance when a stated summary is compared with the recomputed one (JSON round-trips floats
#: exactly, so any difference above rounding noise means the stated value was computed differently).
SUMMARY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ScoreSummary:
    """The task-independent summary of one score per test scale: its mean and its worst value."""

    mean: float
    worst: float
    worst_scale: float


def summarize_scores(scales: Sequence[float], scores: Sequence[float]) -> ScoreSummary:
    """Mean and worst of one score per test scale (the worst: the lowest score, the smallest scale on ties).

    Serves both tasks: accuracy for classification (:func:`summarize`), mIoU for segmentation.

    Example:
        >>> summarize_scores([0.5, 1.0, 2.0], [0.5, 1.0, 0.5])
        ScoreSummary(mean=0.6666666666666666, worst=0.5, worst_scale=0.5)
    """
    if len(scales) != len(scores) or not scales:
        raise ScalebenchError(f"Need one score per scale, got {len(scales)} scales and {len(scores)} scores.")
    worst_i = min(range(len(scores)), key=lambda i: (scores[i], scales[i]))
    mean = math.fsum(float(v) for v in scores) / len(scores)
    return ScoreSummary(mean=mean, worst=float(scores[worst_i]), worst_scale=float(scales[worst_i]))


@dataclass(frozen=True)
class SummaryMetrics:
    """The summary of one run, recomputed from per-scale scores (see the module docstring for formulas)."""

    train_scale_accuracy: float
    mean_accuracy: float
    worst_accuracy: float
    worst_scale: float
    generalisation_ratio: float | None


def accuracy(correct: int, total: int) -> float:
    """``correct / total``; ``total`` must be positive and ``0 <= correct <= total``.

    Example:
        >>> accuracy(3, 4)
        0.75
    """
    if total <= 0 or correct < 0 or correct > total:
        raise ScalebenchError(
            f"Invalid counts: correct={correct}, total={total}; need 0 <= correct <= total, total > 0."
        )
    return correct / total


def train_scale_index(scales: Sequence[float], train_scale: float) -> int:
    """Index of the training scale among the test scales (the same scale: :func:`scales.same_scale`).

    Example:
        >>> train_scale_index([0.5, 1.0, 2.0], 1.0)
        1
    """
    i = find_scale(scales, train_scale)
    if i is None:
        raise ScalebenchError(
            f"Training scale {train_scale:g} is not among the test scales {[f'{s:g}' for s in scales]}; "
            "the protocol reports the accuracy at the training scale, so include it in --scales."
        )
    return i


def summarize(scales: Sequence[float], scores: Sequence[float], train_scale: float) -> SummaryMetrics:
    """Summary metrics from one score per test scale.

    Args:
        scales: the test scales, one per score.
        scores: the per-scale score in [0, 1] (accuracy for classification).
        train_scale: the training scale; must be one of ``scales``.

    Example:
        >>> m = summarize([0.5, 1.0, 2.0], [0.6, 0.9, 0.45], 1.0)
        >>> m.mean_accuracy, m.worst_accuracy, m.worst_scale, m.generalisation_ratio
        (0.65, 0.45, 2.0, 0.5)
    """
    base = summarize_scores(scales, scores)
    train_acc = float(scores[train_scale_index(scales, train_scale)])
    return SummaryMetrics(
        train_scale_accuracy=train_acc,
        mean_accuracy=base.mean,
        worst_accuracy=base.worst,
        worst_scale=base.worst_scale,
        generalisation_ratio=base.worst / train_acc if train_acc > 0 else None,
    )


def summarize_counts(
    scales: Sequence[float], correct: Sequence[int], total: Sequence[int], train_scale: float
) -> SummaryMetrics:
    """:func:`summarize` applied to the accuracies ``correct[i] / total[i]``.

    Example:
        >>> summarize_counts([1.0, 2.0], [9, 6], [10, 10], 1.0).generalisation_ratio
        0.6666666666666666
    """
    return summarize(scales, [accuracy(c, t) for c, t in zip(correct, total, strict=True)], train_scale)


def _average_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Ranks (1-based) of distinct ``values`` each repeated ``weights`` times; ties get their average rank."""
    # Distinct values are expected (callers pass unique grid points), but equal values are merged anyway: a
    # value of weight w above a total weight W below it ranks W + (w + 1) / 2. The sums run in the same order
    # as a sequential loop over the sorted values (bincount in input order, cumsum from the smallest value).
    _, inv = np.unique(values, return_inverse=True)
    w = np.bincount(inv, weights=weights)
    below = np.concatenate(([0.0], np.cumsum(w)[:-1]))
    return (below + (w + 1.0) / 2.0)[inv]


def weighted_spearman(
    x: Sequence[float], y: Sequence[float], counts: Sequence[Sequence[int]]
) -> float | None:
    r"""Spearman's ρ of the paired sample in which the pair ``(x[i], y[j])`` occurs ``counts[i][j]`` times.

    Equal to ``scipy.stats.spearmanr`` on the expanded sample (average ranks for ties), computed without
    expanding it: ρ is Pearson's correlation of the ranks, each distinct value carrying the average rank of
    its tie group. Returns None when all observations share one ``x`` or one ``y`` (ρ undefined).

    Example:
        >>> weighted_spearman([0.0, 1.0], [0.0, 1.0], [[3, 1], [1, 3]])
        0.5
    """
    c = np.asarray(counts, dtype=np.float64)
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if c.shape != (len(xs), len(ys)):
        raise ScalebenchError(f"counts must have shape ({len(xs)}, {len(ys)}), got {c.shape}.")
    n = c.sum()
    if n <= 0:
        return None
    wx, wy = c.sum(axis=1), c.sum(axis=0)
    rx, ry = _average_ranks(xs, wx), _average_ranks(ys, wy)
    mx, my = (wx * rx).sum() / n, (wy * ry).sum() / n
    dx, dy = rx - mx, ry - my
    vx, vy = (wx * dx * dx).sum(), (wy * dy * dy).sum()
    if vx <= 0 or vy <= 0:
        return None
    cov = (c * np.outer(dx, dy)).sum()
    return float(np.clip(cov / math.sqrt(vx * vy), -1.0, 1.0))


def selection_spearman(
    test_scales: Sequence[float], channel_sigmas: Sequence[float], counts: Sequence[Sequence[int]]
) -> float | None:
    """Spearman's ρ between log2(test scale) and log2(σ of the winning channel) (see module docstring).

    Example:
        >>> selection_spearman([0.5, 1.0, 2.0], [1.0, 2.0, 4.0], [[5, 0, 0], [0, 5, 0], [0, 0, 5]])
        1.0
    """
    return weighted_spearman(np.log2(test_scales), np.log2(channel_sigmas), counts)


def selection_slope(test_scales: Sequence[float], counts: Sequence[Sequence[int]]) -> float | None:
    """Least-squares slope of the mean winning channel index per octave of test scale.

    ``m(s) = Σ_j j·counts[s][j] / Σ_j counts[s][j]`` is fitted as ``a + b·log2(s)`` over test scales with at
    least one image; returns ``b`` (None with fewer than two such scales).

    Example:
        >>> selection_slope([0.5, 1.0, 2.0], [[4, 0, 0, 0, 0], [0, 0, 4, 0, 0], [0, 0, 0, 0, 4]])
        2.0
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != len(test_scales):
        raise ScalebenchError(
            f"counts must have one row per test scale ({len(test_scales)}), got shape {c.shape}."
        )
    rows = c.sum(axis=1)
    keep = rows > 0
    if keep.sum() < 2:
        return None
    mean_idx = (c[keep] * np.arange(c.shape[1])).sum(axis=1) / rows[keep]
    t = np.log2(np.asarray(test_scales, dtype=np.float64)[keep])
    tc = t - t.mean()
    denom = (tc * tc).sum()
    if denom <= 0:
        return None
    return float((tc * (mean_idx - mean_idx.mean())).sum() / denom)


def wilson_interval(correct: int, total: int, z: float = 1.959963984540054) -> tuple[float, float]:
    r"""Wilson score interval of a binomial proportion (Wilson, 1927, "Probable inference, the law of succession,
    and statistical inference", J. Am. Stat. Assoc. 22(158): 209-212); ``z`` = 1.96 gives 95 %.

    With :math:`\hat p = k / n`: centre :math:`(\hat p + z^2/2n) / (1 + z^2/n)`, half-width
    :math:`z \sqrt{\hat p (1 - \hat p)/n + z^2/4n^2} / (1 + z^2/n)`. Unlike the normal approximation it
    stays inside [0, 1] and is not empty at k = 0 or k = n. The uncertainty of one run's accuracy from its
    finite test set (not the spread over seeds).

    Example:
        >>> [round(v, 4) for v in wilson_interval(80, 100)]
        [0.7112, 0.8666]
    """
    if total <= 0 or not 0 <= correct <= total:
        raise ScalebenchError(f"Need 0 <= correct <= total and total > 0, got {correct} of {total}.")
    p, z2 = correct / total, z * z
    denom = 1 + z2 / total
    centre = (p + z2 / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value) over seeds.

    Example:
        >>> mean_std([0.8, 0.9, 1.0])
        (0.9, 0.09999999999999998)
    """
    if not values:
        raise ScalebenchError("mean_std needs at least one value.")
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return float(math.fsum(values) / len(values)), std


def close(a: float | None, b: float | None, tol: float = SUMMARY_TOLERANCE) -> bool:
    """True when both are None or both are numbers within ``tol`` (absolute).

    Example:
        >>> close(0.5, 0.5 + 1e-12), close(None, 0.1)
        (True, False)
    """
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol


def mean_iou(intersections: Sequence[int], unions: Sequence[int]) -> float:
    """Mean intersection over union over the classes whose union is non-zero (segmentation).

    IoU_c = |P_c ∩ G_c| / |P_c ∪ G_c| from pixel counts (ignored pixels already excluded); classes absent from
    both prediction and ground truth (union 0) are left out of the mean; 0.0 when every union is 0.

    Example:
        >>> mean_iou([3, 0, 0], [4, 2, 0])
        0.375
    """
    if len(intersections) != len(unions):
        raise ScalebenchError(f"Need one union per intersection, got {len(intersections)} and {len(unions)}.")
    if any(i < 0 or i > u for i, u in zip(intersections, unions, strict=True)):
        raise ScalebenchError(
            f"Invalid IoU counts: need 0 <= intersection <= union, got {intersections}, {unions}."
        )
    ious = [i / u for i, u in zip(intersections, unions, strict=True) if u > 0]
    return math.fsum(ious) / len(ious) if ious else 0.0


def on_channel_grid(scale: float, train_scale: float, ratio: float, tol: float = 1e-3) -> bool:
    """``scale`` is on the channel grid of ratio ``ratio`` anchored at ``train_scale`` (see the module doc).

    Example:
        >>> [on_channel_grid(2 ** (k / 4), 1.0, 2**0.5) for k in range(-2, 3)]
        [True, False, True, False, True]
    """
    steps = math.log(scale / train_scale) / math.log(ratio)
    return abs(steps - round(steps)) < tol


def scale_ripple(
    scales: Sequence[float], scores: Sequence[float], train_scale: float, ratio: float
) -> float | None:
    """The sampling ripple of one score per test scale (module doc), e.g. accuracies; None if undefined.

    Example:
        >>> scales = [2 ** (k / 4) for k in range(-4, 5)]
        >>> scale_ripple(scales, [0.9, 0.8] * 4 + [0.9], 1.0, 2**0.5)  # 0.1 lower between channels
        0.1
    """
    order = sorted(range(len(scales)), key=lambda i: scales[i])
    s = [scales[i] for i in order]
    a = [scores[i] for i in order]
    grid = [on_channel_grid(x, train_scale, ratio) for x in s]
    dips = [(a[i - 1] + a[i + 1]) / 2 - a[i] for i in range(1, len(s) - 1)
            if not grid[i] and grid[i - 1] and grid[i + 1]]  # fmt: skip
    return round(sum(dips) / len(dips), 12) if dips else None
