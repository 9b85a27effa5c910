r"""Rescale images about their centre onto a fixed canvas: bicubic, anti-aliased when shrinking, exact.

Protocol of Perzanowski & Lindeberg (2025), JMIV 67(29), arXiv:2409.11140: each test image is rescaled by a
factor s and placed with its centre at the canvas centre; the background is zero (Fashion-MNIST) or a
mirror extension of the image (CIFAR-10, STL-10); an image larger than the canvas is centre-cropped.

The operation is one separable linear map per scale. An output pixel j (pixel centres at j + 1/2) samples
the input at

.. math:: u_j = (j + 1/2 - N_{out}/2) / s + n_{in}/2 - 1/2

(input pixel centres at integers), so the object centre stays at the canvas centre for every s, without
rounding the size of the rescaled object. The weights are Keys' cubic convolution kernel with a = -1/2
(R. Keys (1981), "Cubic convolution interpolation for digital image processing", IEEE TASSP 29(6):
1153-1160), the kernel of PIL's ``BICUBIC`` filter:

.. math:: k(x) = \begin{cases} 1.5|x|^3 - 2.5|x|^2 + 1 & |x| \le 1 \\
          -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 & 1 < |x| < 2 \\ 0 & \text{otherwise} \end{cases}

When shrinking (s < 1) the kernel is stretched by 1/s, w_i \propto k(s (i - u_j)) (anti-aliasing, as PIL and
MATLAB's ``imresize`` do). Each row of weights is normalised to sum 1 over all its taps. Taps outside the
input are zero (``padding="zero"``) or folded back by half-sample symmetric mirroring (``padding="reflect"``:
-1 -> 0, n -> n-1, period 2n), which mirror-extends the image to any canvas size.

Exactness: the weights are quantised to integers over 2^14 (each row summing to exactly 2^14). The first
matrix product (along the width) runs in float32, where every partial sum is an integer of magnitude at most
255 * sum|w| < 2^23, hence exact; the second runs in float64 with the matrix pre-divided by 2^28 (a power of
two), where every partial sum is a multiple of 2^-28 below 2^12 in magnitude (at most 40 significant bits),
hence exact too. The result therefore does not depend on the BLAS library, the summation order, the thread
count or the CPU: the built pixels, hence the manifest hashes, are the same on every machine. The result is
rounded half to even, clipped to [0, 255] and stored as uint8. When the map is a pure selection (s = 1
with an integer offset) it is applied as an index gather, so the original pixels reappear exactly.

Agreement with PIL: for scales where s*n is an integer and the offset (N - s*n)/2 is integral, the weights
equal those of ``PIL.Image.resize(..., BICUBIC, reducing_gap=None)`` up to the quantisation (2^-15), except
at the image border, where PIL renormalises over the taps inside the image (an edge extension) instead of
using the zero or mirror extension. ``tests/datasets_builders/test_ds_rescale.py`` checks the agreement.

Not implemented: translations ("rescaled Fashion-MNIST with translations"), other kernels.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from scalebench.checks import ScalebenchError, check_choice, check_positive

FRAC_BITS = 14
PADDINGS = ("zero", "reflect")


def keys_cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel k(x) with parameter ``a`` (PIL's bicubic uses a = -0.5).

    Example:
        >>> keys_cubic(np.array([0.0, 0.5, 1.0, 1.5, 2.0])).tolist()
        [1.0, 0.5625, 0.0, -0.0625, 0.0]
    """
    x = np.abs(np.asarray(x, dtype=np.float64))
    out = np.zeros_like(x)
    near = x <= 1
    far = (x > 1) & (x < 2)
    xn, xf = x[near], x[far]
    out[near] = ((a + 2) * xn - (a + 3)) * xn * xn + 1
    out[far] = ((a * xf - 5 * a) * xf + 8 * a) * xf - 4 * a
    return out


def sample_positions(n_in: int, n_out: int, scale: float) -> np.ndarray:
    """Input coordinates u_j sampled by the n_out output pixels (input pixel centres at integers).

    Example:
        >>> sample_positions(28, 72, 1.0)[:3].tolist()
        [-22.0, -21.0, -20.0]
    """
    j = np.arange(n_out, dtype=np.float64)
    return (j + 0.5 - n_out / 2) / scale + n_in / 2 - 0.5


def _fold(index: np.ndarray, n: int) -> np.ndarray:
    """Half-sample symmetric mirroring of integer indices into [0, n): -1 -> 0, n -> n-1, period 2n."""
    m = np.mod(index, 2 * n)
    return np.where(m < n, m, 2 * n - 1 - m)


@functools.lru_cache(maxsize=64)
def resample_matrix(n_in: int, n_out: int, scale: float, padding: str) -> np.ndarray:
    """Integer weights W (n_out, n_in), each non-empty row summing to 2^FRAC_BITS, for one axis.

    ``out = W @ x / 2^FRAC_BITS`` rescales a 1-D signal x of length n_in by ``scale`` about its centre onto
    n_out samples, with the padding rule applied to taps outside the signal.

    Example:
        >>> W = resample_matrix(4, 8, 1.0, "zero")
        >>> (W // 2**FRAC_BITS).tolist()[1:4]
        [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]]
    """
    check_choice(padding, "padding", PADDINGS)
    scale = check_positive(scale, "scale")
    support = 2.0 / scale if scale < 1 else 2.0
    stretch = scale if scale < 1 else 1.0
    one = 1 << FRAC_BITS
    W = np.zeros((n_out, n_in), dtype=np.int64)
    for j, u in enumerate(sample_positions(n_in, n_out, scale)):
        taps = np.arange(int(np.floor(u - support)) + 1, int(np.ceil(u + support)))
        w = keys_cubic((taps - u) * stretch)
        keep = w != 0
        taps, w = taps[keep], w[keep]
        w = w / w.sum()
        wq = np.rint(w * one).astype(np.int64)
        wq[np.argmax(np.abs(w))] += one - wq.sum()
        if padding == "zero":
            inside = (taps >= 0) & (taps < n_in)
            np.add.at(W[j], taps[inside], wq[inside])
        else:
            np.add.at(W[j], _fold(taps, n_in), wq)
    W.setflags(write=False)
    return W


def _selection(W: np.ndarray) -> np.ndarray | None:
    """If W only copies (rows empty or a single 2^FRAC_BITS), the selected index per row (-1: zero), else None."""
    one = 1 << FRAC_BITS
    nonzero = W != 0
    if not np.all((W == 0) | (W == one)) or np.any(nonzero.sum(axis=1) > 1):
        return None
    return np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), -1)


def rescale_batch(
    images: np.ndarray, scale: float, canvas: tuple[int, int], padding: str = "zero"
) -> np.ndarray:
    """Rescale a batch of uint8 images [B, h, w, C] by ``scale`` about the centre onto a [B, H, W, C] canvas.

    Args:
        images: uint8 array of shape (B, h, w, C).
        scale: the factor s > 0 (s < 1 shrinks, with anti-aliasing).
        canvas: output size (H, W).
        padding: ``"zero"`` or ``"reflect"`` (see the module docstring).

    Returns:
        uint8 array of shape (B, H, W, C).

    Example:
        >>> x = np.zeros((1, 4, 4, 1), np.uint8); x[0, 1:3, 1:3, 0] = 200
        >>> y = rescale_batch(x, 1.0, (8, 8))
        >>> y.shape, int(y[0, 3, 3, 0]), int(y[0, 0, 0, 0]), int(y.sum()) == int(x.sum())
        ((1, 8, 8, 1), 200, 0, True)
    """
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ScalebenchError(
            f"rescale_batch expects uint8 images of shape (B, h, w, C), got {images.dtype} {images.shape}."
        )
    B, h, w, C = images.shape
    H, Wd = int(canvas[0]), int(canvas[1])
    wh = resample_matrix(h, H, float(scale), padding)
    ww = resample_matrix(w, Wd, float(scale), padding)
    sel_h, sel_w = _selection(wh), _selection(ww)
    if sel_h is not None and sel_w is not None:
        padded = np.zeros((B, h + 1, w + 1, C), np.uint8)
        padded[:, :h, :w] = images
        rows = np.where(sel_h < 0, h, sel_h)
        cols = np.where(sel_w < 0, w, sel_w)
        return np.take(np.take(padded, rows, axis=1), cols, axis=2)
    # Rows / columns with no taps (zero padding, outside the object's support) stay zero: skip them.
    rows = np.flatnonzero(np.any(wh != 0, axis=1))
    cols = np.flatnonzero(np.any(ww != 0, axis=1))
    out = np.zeros((B, H, Wd, C), np.uint8)
    if rows.size == 0 or cols.size == 0:
        return out
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    nr, nc = r1 - r0, c1 - c0
    # Pass 1 (along W) in float32 is exact: |partial sums| <= 255 * sum|w| < 2^23. Pass 2 needs float64.
    ww_r = torch.from_numpy(ww[c0:c1].T.astype(np.float32))
    wh_r = torch.from_numpy(wh[r0:r1].astype(np.float64) * 2.0 ** (-2 * FRAC_BITS))  # power of two: exact
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)).reshape(-1, w)
    t = (x @ ww_r).reshape(B * C, h, nc).to(torch.float64)
    o = torch.matmul(wh_r, t)  # (B*C, nr, nc): exact multiples of 2^(-2*FRAC_BITS)
    o = o.round_().clamp_(0, 255).to(torch.uint8).reshape(B, C, nr, nc).permute(0, 2, 3, 1)
    out[:, r0:r1, c0:c1, :] = o.numpy()
    return out
