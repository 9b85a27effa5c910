"""mIoU, IoU counts, class weights and the weighted loss against hand-computed cases; the ignore index."""

from __future__ import annotations

import pytest
import torch

from scalebench.benchmark.tasks.segmentation import class_weights, iou_counts, segmentation_loss
from scalebench.checks import ScalebenchError
from scalebench.results.metrics import mean_iou


def _miou(pred, target, num_classes=3):
    i, u = iou_counts(torch.tensor(pred), torch.tensor(target), num_classes)
    return i, u, mean_iou(i, u)


def test_perfect_prediction_gives_one():
    t = [[0, 1, 1], [2, 2, 0]]
    assert _miou(t, t) == ([2, 2], [2, 2], 1.0)


def test_disjoint_prediction_gives_zero():
    # class 1 predicted where class 2 is, and the other way round
    assert _miou([[2, 2, 1, 1]], [[1, 1, 2, 2]]) == ([0, 0], [4, 4], 0.0)


def test_hand_computed_partial_overlap_and_background_excluded():
    # class 1: pred {0,1}, gt {1,2} -> 1/3; class 2: pred {3}, gt {3} -> 1; background never averaged
    i, u, m = _miou([[1, 1, 0, 2, 0]], [[0, 1, 1, 2, 0]])
    assert (i, u) == ([1, 1], [3, 1]) and m == pytest.approx((1 / 3 + 1) / 2)


def test_ignored_pixels_never_count_in_miou():
    target = [[1, 255, 255, 2]]
    base = _miou([[1, 0, 0, 2]], target)
    for pred in ([[1, 1, 2, 2]], [[1, 2, 1, 2]], [[1, 0, 2, 2]]):
        assert _miou(pred, target) == base
    assert base[2] == 1.0


def test_a_class_absent_from_prediction_and_truth_is_left_out():
    assert mean_iou([2, 0], [2, 0]) == 1.0
    assert mean_iou([0, 0], [0, 0]) == 0.0
    with pytest.raises(ScalebenchError, match="intersection <= union"):
        mean_iou([3], [2])


def test_class_weights_are_inverse_frequencies_without_ignored_pixels():
    masks = torch.tensor([[0, 0, 0, 0, 0, 0, 1, 1, 255, 255, 255]])
    w = class_weights(masks, 3)
    # N = 8 counted pixels, 2 classes present: w0 = 8/(2*6), w1 = 8/(2*2), w2 = 0 (absent)
    assert w.tolist() == pytest.approx([8 / 12, 2.0, 0.0])
    with pytest.raises(ScalebenchError, match="Mask labels"):
        class_weights(torch.tensor([[5]]), 3)


def test_ignored_pixels_never_count_in_the_loss():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 3, 2, 3, generator=g)
    target = torch.tensor([[[0, 1, 255], [2, 255, 1]]])
    w = torch.tensor([0.5, 2.0, 1.0])
    loss = segmentation_loss(logits, target, w)
    changed = logits.clone()
    changed[0, :, 0, 2] = torch.tensor([9.0, -9.0, 3.0])
    changed[0, :, 1, 1] = torch.tensor([-5.0, 7.0, 0.0])
    assert torch.equal(segmentation_loss(changed, target, w), loss)
    # hand computation: weighted mean of -log p over the four labelled pixels
    logp = logits.log_softmax(1)[0]
    terms = [(0, 0, 0), (1, 0, 1), (2, 1, 0), (1, 1, 2)]
    num = sum(w[c] * -logp[c, i, j] for c, i, j in terms)
    den = sum(w[c] for c, _, _ in terms)
    assert float(loss) == pytest.approx(float(num / den), rel=1e-6)
