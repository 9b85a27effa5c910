"""Rescaling: identity at s = 1, spread scales by s, padding rules, agreement with PIL, exactness."""

from __future__ import annotations

import numpy as np
import pytest
from fakes_raw import blob_images
from PIL import Image

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders import DATASETS
from scalebench.datasets_builders.rescale import FRAC_BITS, resample_matrix, rescale_batch

SCALES = [2 ** (k / 4) for k in range(-4, 5)]


def test_scale_one_gives_original_pixels_centred():
    x = blob_images(5, 28, 1, seed=1)
    y = rescale_batch(x, 1.0, (72, 72), "zero")
    np.testing.assert_array_equal(y[:, 22:50, 22:50], x)
    assert (
        y[:, :22].max() == 0 and y[:, 50:].max() == 0 and y[:, :, :22].max() == 0 and y[:, :, 50:].max() == 0
    )
    rgb = blob_images(3, 32, 3, seed=2)
    np.testing.assert_array_equal(rescale_batch(rgb, 1.0, (64, 64), "reflect")[:, 16:48, 16:48], rgb)
    stl = blob_images(2, 96, 3, seed=3)
    np.testing.assert_array_equal(rescale_batch(stl, 1.0, (96, 96), "reflect"), stl)


def _spread(img: np.ndarray) -> float:
    """Intensity-weighted RMS distance of the pixels from their centroid."""
    w = img.astype(np.float64)
    yy, xx = np.mgrid[: w.shape[0], : w.shape[1]]
    m = w.sum()
    cy, cx = (w * yy).sum() / m, (w * xx).sum() / m
    return float(np.sqrt((w * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum() / m))


@pytest.mark.parametrize("scale", SCALES)
def test_spatial_spread_scales_by_s(scale):
    # An object without background noise: a Gaussian blob of RMS radius ~4 px, well inside 28x28.
    yy, xx = np.mgrid[:28, :28] - 13.5
    obj = (200 * np.exp(-(xx**2 + yy**2) / (2 * 3.0**2))).astype(np.uint8)[None, :, :, None]
    out = rescale_batch(obj, scale, (72, 72), "zero")[0, :, :, 0]
    ratio = _spread(out) / _spread(obj[0, :, :, 0])
    # Tolerance 3 %: bicubic smoothing adds a little variance, uint8 rounding loses faint tails.
    assert ratio == pytest.approx(scale, rel=0.03)
    # The centroid stays at the canvas centre (35.5, 35.5) to within 0.05 px.
    w = out.astype(np.float64)
    cy = (w * np.arange(72)[:, None]).sum() / w.sum()
    cx = (w * np.arange(72)[None, :]).sum() / w.sum()
    assert abs(cy - 35.5) < 0.05 and abs(cx - 35.5) < 0.05


def test_padding_is_zero_for_fashion_mnist_and_mirror_for_the_others():
    assert [DATASETS[n].padding for n in ("fashion-mnist", "cifar10", "stl10")] == [
        "zero",
        "reflect",
        "reflect",
    ]
    x = blob_images(2, 28, 1, seed=4)
    small = rescale_batch(x, 0.5, (72, 72), "zero")
    # 28*0.5 = 14 px centred: 29..43; the bicubic support adds at most 2 px each side.
    assert small[:, :27].max() == 0 and small[:, 45:].max() == 0
    rgb = blob_images(2, 32, 3, seed=5)
    m = rescale_batch(rgb, 0.5, (64, 64), "reflect")
    core = m[:, 24:40, 24:40]  # the 16x16 rescaled image
    # Half-sample symmetric mirror: the row above the core equals the core's first row, and so on.
    np.testing.assert_array_equal(m[:, 23, 24:40], core[:, 0])
    np.testing.assert_array_equal(m[:, 8:24, 24:40], core[:, ::-1])
    np.testing.assert_array_equal(m[:, 24:40, 40:56], core[:, :, ::-1])
    assert m[:, :8].max() > 0  # the whole canvas is filled
    big = rescale_batch(blob_images(1, 96, 3, seed=6), 2.0, (96, 96), "reflect")
    assert big.shape == (1, 96, 96, 3)


@pytest.mark.parametrize("scale", [0.5, 5 / 7, 1.5, 2.0])
def test_agrees_with_pil_bicubic(scale):
    """Same kernel and mapping as PIL's BICUBIC (float mode): within 0.51 grey levels in the object's interior.

    The comparison uses scales where 28*s and the offset (72 - 28*s)/2 are integers, so that PIL's resize
    and our centred map sample the same positions; the outer 3 pixels of the rescaled box are excluded
    because PIL renormalises the kernel at the image border while we extend by zeros.
    """
    x = blob_images(4, 28, 1, seed=7)
    n = round(28 * scale)
    off = (72 - n) // 2
    ours = rescale_batch(x, scale, (72, 72), "zero")[..., 0].astype(np.float64)
    for i in range(len(x)):
        pil = Image.fromarray(x[i, :, :, 0]).convert("F").resize((n, n), Image.BICUBIC, reducing_gap=None)
        ref = np.clip(np.asarray(pil, dtype=np.float64), 0, 255)
        diff = np.abs(ours[i, off : off + n, off : off + n] - ref)[3:-3, 3:-3]
        assert diff.max() <= 0.51  # rounding to uint8 plus the 2^-14 weight quantisation
    # On uint8 PIL (8-bit fixed point) agreement over the whole box is within a few grey levels on average.
    pil8 = np.asarray(Image.fromarray(x[0, :, :, 0]).resize((n, n), Image.BICUBIC, reducing_gap=None))
    assert np.abs(ours[0, off : off + n, off : off + n] - pil8).mean() < 2.0


def test_weights_are_exact_integers_and_rows_sum_to_one():
    one = 1 << FRAC_BITS
    for scale in SCALES:
        mirror = resample_matrix(32, 64, scale, "reflect")
        zero = resample_matrix(32, 64, scale, "zero")
        assert mirror.dtype == np.int64 and np.all(mirror.sum(axis=1) == one)
        # Rows whose taps all fall inside the image are the same under both paddings and sum to exactly one.
        inside = np.all(mirror == zero, axis=1) & (zero.sum(axis=1) > 0)
        assert inside.sum() >= 8
        assert np.all(zero[inside].sum(axis=1) == one)


def test_constant_image_stays_constant_under_mirror_padding():
    x = np.full((1, 32, 32, 3), 137, np.uint8)
    for scale in SCALES:
        np.testing.assert_array_equal(rescale_batch(x, scale, (64, 64), "reflect"), 137)


def test_result_does_not_depend_on_batch_composition():
    x = blob_images(7, 28, 1, seed=8)
    whole = rescale_batch(x, 0.707, (72, 72))
    parts = np.concatenate([rescale_batch(x[:3], 0.707, (72, 72)), rescale_batch(x[3:], 0.707, (72, 72))])
    np.testing.assert_array_equal(whole, parts)


def test_bad_arguments():
    with pytest.raises(ScalebenchError, match="uint8 images of shape"):
        rescale_batch(np.zeros((2, 28, 28), np.uint8), 1.0, (72, 72))
    with pytest.raises(ScalebenchError, match="padding"):
        rescale_batch(np.zeros((1, 28, 28, 1), np.uint8), 1.0, (72, 72), "wrap")
    with pytest.raises(ScalebenchError, match="scale"):
        resample_matrix(28, 72, -1.0, "zero")
