r"""DISCO: accurate discrete scale convolutions (Sosnovik, Moskalev & Smeulders, BMVC 2021, arXiv 2106.02733).

The network is SESN's (:mod:`scalebench.models.sesn`); what changes is the basis. SESN samples a continuous
basis at every scale, which is scale-equivariant only up to discretisation. DISCO instead *solves* for the
kernels at the non-integer scales so that a scale convolution commutes with discrete downscaling as well as
possible, while integer scales are exact dilations:

.. math::
    \min_{\kappa}\; \sum_{i<j} \mathbb{E}_x \big\lVert D_{s_j/s_i}(x \star \kappa_{j,q})
        - D_{s_j/s_i}(x) \star \kappa_{i,q} \big\rVert_2^2

over random images x, for every "proxy" function q: at scale 1 the proxy basis is the standard basis of an
n x n grid (a delta at each grid position, n^2 = ``num_functions``), at an integer scale s it is the same delta
moved to s times its position (dilation; then the constraint holds exactly), and at the other scales the
k x k kernels are free. D_r is discrete downscaling by r: bicubic interpolation (Keys, a = -0.75, without
anti-aliasing) at the points c + r (p - c') about the centres c, c' of the two grids, i.e. exact subsampling
for an integer r (the authors' code uses ``F.interpolate(..., mode="bicubic")`` on circularly padded images;
facts from ``ISosnovik/disco``, MIT: ``models/basis/disco.py``, ``calculate_disco_basis.py``).

The solver (:func:`solve_disco_basis`, written for scalebench): the loss is a quadratic function of the free
kernels, so it is evaluated exactly through Gram matrices of the (shifted, downscaled) random images, in
float64, and minimised by L-BFGS (``torch.optim.LBFGS``, strong-Wolfe line search) from a seeded random start.
The minimiser is unique (the loss is strictly convex), so the result does not depend on the start or on the
machine beyond float rounding: re-solving reproduces the shipped basis to 1e-6 (tests/models/test_disco.py).

Then, as the authors' ``DISCOBasisB``: the proxy basis is mapped to SESN's basis B on the n x n grid (Hermite
polynomials times Gaussians at ``basis_min_scale``, ``/ basis_mult``, ...; total order <= ``basis_max_order``),
:math:`\psi_{s,f} = \sum_q W_{f,q}\,\kappa_{s,q}`, and every function is divided by its L2 norm at scale 1.

Default config (the authors' MNIST model ``mnist_disco``; ``exp_mnist.sh`` without extra scaling): scales
2^(i/3), i = 0..3, rounded to (1.0, 1.26, 1.59, 2.0), 15 x 15 kernels, effective size 7, basis_min_scale 1.9,
basis_mult 1.5, order 4, widths 32-63-95, 2 x 2 *average* pooling between layers, FC 256 + batch norm + dropout
0.7. The authors' model upsamples 28 x 28 MNIST by 2 first (digits of 17 to 56 pixels); scalebench does not
(72 x 72 Fashion-MNIST objects are 14 to 56 pixels at test scales 1/2 to 2). Budget: 421,589 parameters, as
SESN (the authors' 494,549 less their 4x spatial flattening before the first linear layer; see
:mod:`scalebench.models.sesn`). The quick config keeps the scales, kernels, basis and depth: widths 8-16-24,
32 hidden units, 26,786 parameters.

The solved proxy basis of the default scales ships as ``scalebench/models/data/disco_basis_<key>.safetensors``
(``<key>``: the first 12 hex digits of the sha256 of the solver settings) and is checked against
:data:`SHIPPED_BASES` when loaded. Other scale lists are solved when the model is built (a few seconds,
cached per process). Regenerate the shipped file with :data:`WRITE_COMMAND` (:func:`write_basis_file`).

Unverified (left open by the sources read): the paper's tables; the random images (the authors': 154 x 154
uniform noise from ``torchvision.datasets.FakeData``; ours: Gaussian white noise of ``image_size`` pixels);
the border handling of the loss (the authors': circular padding and a crop of k//2 + 1; ours: zero padding and
a crop of k//2 + 2 pixels of the downscaled grid); the squared norm (the authors sum unsquared norms over the
pairs); global max pooling and the scale-selection readout, as for SESN.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from scalebench.checks import ScalebenchError
from scalebench.models.keywords import takes_keywords_of
from scalebench.models.registry import (
    ConfigRule,
    register_model,
)
from scalebench.models.scaleconv import ScaleEquivariantCNN, basis_scale_convs
from scalebench.models.sesn import (
    MAX_KERNEL_SIZE,
    SESN,
    _check_odd,
    check_scales,
    multiscale_hermite_gaussian,
    normalise_by_smallest_scale,
    scale_equivariant_rules,
    sesn_protocol_card,
)

DATA_DIR = Path(__file__).resolve().parent / "data"

#: Solver settings of the shipped basis (and of every basis solved when a model is built).
SOLVER_STEPS = 100  # a cap: L-BFGS converges in about 20 iterations
SOLVER_SEED = 0
SOLVER_IMAGE_SIZE = 97
SOLVER_BATCH = 4

#: The shipped solved bases: file name (in ``scalebench/models/data``) -> sha256 of the file.
SHIPPED_BASES: dict[str, str] = {
    # scales (1.0, 1.26, 1.59, 2.0), kernel_size 15, 49 functions (effective size 7): the default config
    "disco_basis_e48ec5ed47bb.safetensors": "d16f309cf8a70f23690182f1635ca305534b8ed85fc1e54a961bfc4958987168",
}

#: The command that regenerates the shipped basis files.
WRITE_COMMAND = "python -c 'from scalebench.models.disco import main; main([\"--write\"])'"


def _is_integer(s: float) -> bool:
    return abs(s - round(s)) < 1e-9


def _check_proxy_grid(size: int, num_functions: int, scales: Sequence[float]) -> int:
    if not any(_is_integer(s) for s in scales):
        raise ScalebenchError(
            f"DISCO scales need at least one integer scale (an exact dilation anchors the solved kernels; without "
            f"one every kernel could shrink to zero), got {list(scales)}."
        )
    n = math.isqrt(int(num_functions))
    if n * n != num_functions or n < 1 or n % 2 == 0:
        raise ScalebenchError(
            f"num_functions must be the square of an odd grid size n (the standard basis of an n x n grid), "
            f"got {num_functions!r}."
        )
    for s in scales:
        if _is_integer(s) and (n - 1) * round(s) + 1 > size:
            raise ScalebenchError(
                f"the {n} x {n} grid dilated by the integer scale {s:g} spans {(n - 1) * round(s) + 1} pixels, "
                f"more than kernel_size {size}; use a larger kernel_size or a smaller effective_size."
            )
    return n


def dilated_delta_basis(size: int, grid: int, dilation: int, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """The standard basis of a ``grid`` x ``grid`` lattice dilated by ``dilation``, centred in ``size`` x ``size``:
    function q = (r, c) (row-major) is a delta at centre + dilation (r - grid//2, c - grid//2). (grid^2, size, size).

    Example:
        >>> b = dilated_delta_basis(5, 3, 2)
        >>> [tuple(int(i) for i in torch.nonzero(f)[0]) for f in b[[0, 4, 8]]]
        [(0, 0), (2, 2), (4, 4)]
    """
    out = torch.zeros(grid * grid, size, size, dtype=dtype, device="cpu")
    c, h = size // 2, grid // 2
    for q in range(grid * grid):
        r, col = divmod(q, grid)
        out[q, c + dilation * (r - h), c + dilation * (col - h)] = 1.0
    return out


def _cubic_weights(t: Tensor, a: float = -0.75) -> Tensor:
    """Keys' cubic convolution weights of the 4 taps floor(t)-1 .. floor(t)+2 for fractional offsets t (P,)."""
    d = torch.stack([t + 1, t, 1 - t, 2 - t], -1).abs()
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return torch.where(d <= 1, near, torch.where(d < 2, far, torch.zeros_like(d)))


def downscale_matrix(n: int, ratio: float, *, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""The 1-D downscaling D_r of a length-n signal as a matrix (m, n), m = 2 floor((n-1) / 2r) + 1 (odd).

    Output p samples the input at :math:`c + r (p - c')` (c = (n-1)/2, c' = (m-1)/2) by Keys' bicubic
    interpolation (a = -0.75, PyTorch's), zero outside the signal. An integer r on an odd n samples integer
    positions: exact subsampling.

    Example:
        >>> downscale_matrix(5, 2.0).tolist()
        [[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]]
    """
    m = 2 * int((n - 1) / (2 * ratio) + 1e-9) + 1
    pos = (n - 1) / 2 + ratio * (torch.arange(m, dtype=dtype) - (m - 1) / 2)
    base = torch.floor(pos + 1e-9)
    w = _cubic_weights(pos - base)
    mat = torch.zeros(m, n, dtype=dtype)
    for j in range(4):
        idx = base.long() - 1 + j
        ok = (idx >= 0) & (idx < n)
        mat[torch.arange(m)[ok], idx[ok]] += w[ok, j]
    return mat


def downscale(x: Tensor, ratio: float) -> Tensor:
    """Apply :func:`downscale_matrix` along both axes of (..., H, W)."""
    rows = downscale_matrix(x.shape[-2], ratio, dtype=x.dtype).to(x.device)
    cols = downscale_matrix(x.shape[-1], ratio, dtype=x.dtype).to(x.device)
    return rows @ x @ cols.T


def disco_equivariance_loss(basis: Tensor, scales: Sequence[float], images: Tensor) -> Tensor:
    r"""The DISCO loss of a basis (S, F, k, k) on images (B, 1, H, W), evaluated literally with convolutions:

    :math:`\sum_{i<j} \sum_f \lVert D_r(x \star \psi_{j,f}) - D_r(x) \star \psi_{i,f} \rVert^2 / N`,
    r = s_j / s_i, over the downscaled grid less k//2 + 2 pixels at every border (zero padding), N the number
    of compared values. Used by the tests to check the solver; the solver minimises the same quantity.
    """
    k = basis.shape[-1]
    total = basis.new_zeros(())
    for i in range(len(scales)):
        for j in range(i + 1, len(scales)):
            r = scales[j] / scales[i]
            a = downscale(F.conv2d(images, basis[j].unsqueeze(1), padding=k // 2), r)
            b = F.conv2d(downscale(images, r), basis[i].unsqueeze(1), padding=k // 2)
            m = k // 2 + 2
            d = (a - b)[..., m:-m, m:-m]
            total = total + d.pow(2).sum() / d[:, :1].numel()
    return total


def _grams(images: Tensor, ratio: float, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Gram matrices (k^2, k^2) of P (columns: D_r of the image shifted by each kernel tap) and Q (columns: the
    downscaled image shifted by each tap), over the cropped downscaled grid: P^T P, P^T Q, Q^T Q (each / rows).
    Then ||P a - Q b||^2 / rows = a^T G_pp a - 2 a^T G_pq b + b^T G_qq b for kernels a (scale j), b (scale i)."""
    b, _, h, w = images.shape
    k2, p = size * size, size // 2
    cols = F.unfold(images, size, padding=p).view(b, k2, h, w)  # x(p + t - c) for every tap t
    m = size // 2 + 2
    pm = downscale(cols, ratio)[..., m:-m, m:-m].permute(0, 2, 3, 1).reshape(-1, k2)
    small = downscale(images, ratio)
    qm = F.unfold(small, size, padding=p).view(b, k2, *small.shape[-2:])[..., m:-m, m:-m]
    qm = qm.permute(0, 2, 3, 1).reshape(-1, k2)
    n = pm.shape[0]
    return pm.T @ pm / n, pm.T @ qm / n, qm.T @ qm / n


def solve_disco_basis(
    scales: Sequence[float],
    size: int,
    num_functions: int,
    steps: int = SOLVER_STEPS,
    seed: int = SOLVER_SEED,
    *,
    image_size: int = SOLVER_IMAGE_SIZE,
    batch: int = SOLVER_BATCH,
) -> Tensor:
    r"""Solve the DISCO proxy basis (S, num_functions, size, size), float64 (see the module docstring).

    Integer scales are exact dilations of the standard basis of the n x n grid (n^2 = ``num_functions``); the
    kernels of the other scales minimise :func:`disco_equivariance_loss` over ``batch`` Gaussian white-noise
    images of ``image_size`` pixels drawn from ``torch.Generator().manual_seed(seed)``. The loss is quadratic:
    it is written exactly with the Gram matrices of :func:`_grams` and minimised by ``steps`` iterations of
    ``torch.optim.LBFGS`` (strong-Wolfe line search, history 50), starting from seeded random kernels; it
    stops earlier when converged. The problem is well conditioned (for the default scales the Hessian of one
    function's kernels has condition number 3.4, and 20 iterations reach the exact minimiser, a linear solve,
    to 1e-8), so the result is the minimiser whatever the start. Deterministic given its arguments; the Gram
    matrices take most of the time (about 5 s for the default settings on 2 CPU cores).

    Example:
        >>> b = solve_disco_basis([1.0, 1.5, 2.0], 7, 9, steps=50, image_size=33, batch=2)
        >>> tuple(b.shape), b[2, 4, 3, 3].item(), b[2, 0, 1, 1].item()  # scale 2: exact dilation
        ((3, 9, 7, 7), 1.0, 1.0)
    """
    scales = check_scales(scales)
    size = _check_odd(size, "kernel_size", MAX_KERNEL_SIZE)
    n = _check_proxy_grid(size, num_functions, scales)
    if int(image_size) != image_size or image_size < 2 * size + 1 or image_size % 2 == 0:
        raise ScalebenchError(f"image_size must be an odd integer >= {2 * size + 1}, got {image_size!r}.")
    with torch.device("cpu"):  # also when a model is built under torch.device("meta")
        gen = torch.Generator().manual_seed(int(seed))
        images = torch.randn(
            int(batch), 1, int(image_size), int(image_size), generator=gen, dtype=torch.float64
        )
        fixed = {
            i: dilated_delta_basis(size, n, round(s)) if _is_integer(s) else None
            for i, s in enumerate(scales)
        }
        free = [i for i, f in fixed.items() if f is None]
        proxy = [fixed[i] for i in range(len(scales))]
        if not free:
            return torch.stack(proxy)  # type: ignore[arg-type]
        hess, lin = _quadratic_terms(images, scales, fixed, free, size, n)
        start = torch.randn(n * n, len(free) * size * size, generator=gen, dtype=torch.float64) * 0.01
        weights = _minimise_quadratic(hess, lin, start, int(steps))
        nf, nv = n * n, len(free)
        solved = weights.reshape(nf, nv, size, size)
        for t, i in enumerate(free):
            proxy[i] = solved[:, t]
        return torch.stack(proxy)  # type: ignore[arg-type]


def _quadratic_terms(
    images: Tensor, scales: list[float], fixed: dict[int, Tensor | None], free: list[int], size: int, n: int
) -> tuple[Tensor, Tensor]:
    """The DISCO loss over the free kernels X_u (n^2, size^2) as sum_uv tr(X_u H_uv X_v^T) - 2 sum_u tr(X_u L_u^T)
    + const: (H flattened to (V size^2, V size^2), L to (n^2, V size^2)), V = len(free); from the Gram matrices
    of every pair of scales (:func:`_grams`)."""
    k2, nf, nv = size * size, n * n, len(free)
    slot = {s: t for t, s in enumerate(free)}
    hess = torch.zeros(nv, k2, nv, k2, dtype=torch.float64)
    lin = torch.zeros(nv, nf, k2, dtype=torch.float64)
    for i in range(len(scales)):
        for j in range(i + 1, len(scales)):
            if i not in slot and j not in slot:
                continue  # two exact dilations: a constant (zero) term
            gpp, gpq, gqq = _grams(images, scales[j] / scales[i], size)
            # ||P a - Q b||^2 = a Gpp a^T - 2 a Gpq b^T + b Gqq b^T, a = kernel at scale j, b at scale i
            if j in slot:
                hess[slot[j], :, slot[j]] += gpp
            else:
                lin[slot[i]] += fixed[j].reshape(nf, k2) @ gpq  # type: ignore[union-attr]
            if i in slot:
                hess[slot[i], :, slot[i]] += gqq
            else:
                lin[slot[j]] += fixed[i].reshape(nf, k2) @ gpq.T  # type: ignore[union-attr]
            if i in slot and j in slot:
                hess[slot[j], :, slot[i]] -= gpq
                hess[slot[i], :, slot[j]] -= gpq.T
    return hess.reshape(nv * k2, nv * k2), lin.permute(1, 0, 2).reshape(nf, nv * k2)


def _minimise_quadratic(hess: Tensor, lin: Tensor, start: Tensor, steps: int) -> Tensor:
    """argmin over W of sum((W H) * W) - 2 sum(W * L) by ``steps`` iterations of L-BFGS from ``start``
    (strong-Wolfe line search, history 50), on one thread (tiny vector operations: extra threads only wait)."""
    weights = start.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [weights],
        lr=1.0,
        max_iter=steps,
        history_size=50,
        tolerance_grad=1e-14,
        tolerance_change=1e-20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        value = ((weights @ hess) * weights).sum() - 2 * (weights * lin).sum()
        value.backward()
        return value

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        opt.step(closure)
    finally:
        torch.set_num_threads(threads)
    return weights.detach()


def solver_settings(scales: Sequence[float], size: int, num_functions: int) -> dict[str, object]:
    """The settings that determine a solved proxy basis (they name its file)."""
    return {
        "scales": [float(s) for s in check_scales(scales)],
        "size": int(size),
        "num_functions": int(num_functions),
        "steps": SOLVER_STEPS,
        "seed": SOLVER_SEED,
        "image_size": SOLVER_IMAGE_SIZE,
        "batch": SOLVER_BATCH,
        "solver": "scalebench.models.disco.solve_disco_basis v1",
    }


def basis_file_name(scales: Sequence[float], size: int, num_functions: int) -> str:
    """``disco_basis_<first 12 hex digits of the sha256 of the canonical JSON of the solver settings>.safetensors``."""
    text = json.dumps(solver_settings(scales, size, num_functions), sort_keys=True, separators=(",", ":"))
    return f"disco_basis_{hashlib.sha256(text.encode()).hexdigest()[:12]}.safetensors"


def load_basis_file(path: Path, expected_sha256: str) -> Tensor:
    """The proxy basis stored in ``path``, after checking the file's sha256; a changed or damaged file is one
    ScalebenchError naming it and the ways to restore it."""
    from safetensors.torch import load

    data = Path(path).read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != expected_sha256:
        raise ScalebenchError(
            f"The DISCO basis file {path} has sha256 {found}, expected {expected_sha256} "
            "(scalebench.models.disco.SHIPPED_BASES): the file was changed or damaged. Restore it (git checkout -- "
            f"scalebench/models/data/{Path(path).name}, or reinstall scalebench), or re-solve it with "
            f"`{WRITE_COMMAND}` (scalebench.models.disco.write_basis_file; 5-20 s on 2 CPU cores)."
        )
    with torch.device("cpu"):
        return load(data)["proxy_basis"].to(torch.float64)


@functools.lru_cache(maxsize=8)
def _proxy_basis(scales: tuple[float, ...], size: int, num_functions: int) -> Tensor:
    name = basis_file_name(scales, size, num_functions)
    if name in SHIPPED_BASES:
        return load_basis_file(DATA_DIR / name, SHIPPED_BASES[name])
    return solve_disco_basis(scales, size, num_functions)


def proxy_basis(scales: Sequence[float], size: int, num_functions: int) -> Tensor:
    """The solved proxy basis (S, num_functions, size, size), float64: the shipped file for its settings
    (checked), else solved now (cached per process)."""
    return _proxy_basis(tuple(check_scales(scales)), int(size), int(num_functions)).clone()


def disco_basis(
    size: int,
    scales: Sequence[float],
    effective_size: int,
    *,
    min_scale: float = 1.9,
    mult: float = 1.5,
    max_order: int = 4,
) -> Tensor:
    """The DISCO basis (S, effective_size^2, size, size), float32: the proxy basis mapped to SESN's basis B on the
    effective_size grid at ``min_scale`` and normalised by its norm at the first scale (the authors' DISCOBasisB)."""
    num = int(effective_size) ** 2
    proxy = proxy_basis(scales, size, num)
    with torch.device("cpu"):
        herm = multiscale_hermite_gaussian(
            int(effective_size), float(min_scale), num, max_order=max_order, mult=mult
        )
        basis = torch.einsum("fq,sqhw->sfhw", herm.reshape(num, num), proxy)
        return normalise_by_smallest_scale(basis).float()


@takes_keywords_of(SESN, exclude=("basis",), scales=(1.0, 1.26, 1.59, 2.0))
class DISCO(ScaleEquivariantCNN):
    """DISCO network of the zoo (see the module docstring); ``channel_sigmas`` = basis_min_scale x scales (pixels:
    the Gaussian envelope of the widest basis functions at each scale).

    Its keywords are those of :class:`~scalebench.models.sesn.SESN` (DISCO is the SESN network on another basis,
    Sosnovik et al. 2021), with the DISCO scales as the default and ``basis_min_scale`` (the scale of the
    target Hermite functions) in place of SESN's basis kind."""

    def __init__(
        self, *, num_classes: int, in_channels: int, basis_min_scale: float = 1.9, **config: Any
    ) -> None:
        scales, size, effective = (
            config.pop("scales"),
            config.pop("kernel_size"),
            config.pop("effective_size"),
        )
        mult, order = config.pop("basis_mult"), config.pop("basis_max_order")
        psi = disco_basis(size, scales, effective, min_scale=basis_min_scale, mult=mult, max_order=order)
        super().__init__(
            lambda widths, k: basis_scale_convs(in_channels, widths, psi, k),
            num_classes=num_classes,
            channel_sigmas=[round(basis_min_scale * s, 6) for s in check_scales(scales)],
            spatial_pool="avg",
            **config,
        )


def write_basis_file(
    scales: Sequence[float] = (1.0, 1.26, 1.59, 2.0), size: int = 15, num_functions: int = 49
) -> tuple[Path, str]:
    """Solve the proxy basis of these settings and write it to ``scalebench/models/data`` (float32 safetensors, values
    rounded to multiples of 2^-24, the settings as JSON metadata). Returns the path and the file's sha256 (what
    :data:`SHIPPED_BASES` records)."""
    from safetensors.torch import save

    solved = solve_disco_basis(scales, size, num_functions)
    # multiples of 2^-24 (6e-8): float rounding of the solve (about 1e-16, it changes with the thread count)
    # then almost never changes a stored bit, so a re-solve writes the same bytes
    basis = (torch.round(solved * 2.0**24) / 2.0**24).float().contiguous()
    settings = json.dumps(solver_settings(scales, size, num_functions), sort_keys=True)
    data = save({"proxy_basis": basis}, metadata={"settings": settings})  # one key: a fixed header
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / basis_file_name(scales, size, num_functions)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


DISCO_RULES: dict[str, ConfigRule] = {
    **scale_equivariant_rules(),
    "basis_min_scale": ConfigRule(low=0, low_open=True, high=64),
}

DISCO_QUICK: dict[str, object] = {"widths": (8, 16, 24), "hidden": 32}

DISCO_CARD = sesn_protocol_card(
    DISCO,
    bibtex_key="sosnovik2021disco",
    training_source="ISosnovik/disco train_scale_mnist.py defaults and exp_mnist.sh (MIT), the MNIST-scale runs",
    name="disco",
    display_name="DISCO",
    family="disco",
    paper=(
        "I. Sosnovik, A. Moskalev, A. Smeulders (2021), DISCO: accurate discrete scale convolutions, "
        "British Machine Vision Conference (BMVC 2021)"
    ),
    arxiv="2106.02733",
    code_url="https://github.com/ISosnovik/disco",
    licence="MIT (ISosnovik/disco, read for facts only; scalebench's code and solved basis are its own)",
    quick_config=DISCO_QUICK,
    num_params=421_589,
    densify_refusal="DISCO's basis is solved jointly over the whole scales list (its equivariance loss couples "
    "every pair of scales), so inserting scales changes the kernels of the trained ones too: the trained channels "
    "would compute other functions. Evaluate it with --test-channels trained, or train it with a denser scales "
    "list (its basis is then solved for that list).",
    notes=(
        "Re-implementation from the paper and the facts of ISosnovik/disco (MIT): models/basis/disco.py "
        "(equivariance loss between all scale pairs, integer scales = dilated standard basis, free kernels "
        "elsewhere, bicubic rescaling), calculate_disco_basis.py (Adam, random images), models/basis/"
        "hermite_basis.py and DISCOBasisB (Hermite basis B on the effective grid, normalised by the first "
        "scale), models/mnist_disco_models.py and exp_mnist.sh (scales 2^(i/3) rounded, k=15, effective "
        "size 7, basis_min_scale 1.9, mult 1.5, order 4, widths 32-63-95, average pooling, FC 256, dropout "
        "0.7). The solver is scalebench's: the exact quadratic loss (Gram matrices, float64, zero padding, "
        "Keys bicubic downscaling about the centre, crop k//2+2) minimised by L-BFGS; its basis for the "
        "default scales ships in scalebench/models/data (sha256-checked). Unverified choices: white-noise "
        "images 97x97 (the authors': 154x154 uniform noise), the squared loss, no 2x upsampling, global max "
        "pooling instead of the final pooling + flattening (421,589 instead of 494,549 parameters), the "
        "same network on every dataset (the paper's STL-10 model is a WRN-16-8), scale selection as SESN; "
        "channel_sigmas = basis_min_scale x scales. Quick config: widths 8-16-24, 32 hidden units."
    ),
)


def main(argv: Sequence[str] | None = None) -> None:
    """Re-solve and write the shipped basis of the default scales (``main(["--write"])``, see :data:`WRITE_COMMAND`;
    ``python -m scalebench.models.disco --write`` works too, with a harmless warning from runpy: the zoo imports
    this module before runpy executes it)."""
    parser = argparse.ArgumentParser(
        prog="scalebench.models.disco.main", description="Re-solve and write the shipped DISCO basis."
    )
    parser.add_argument("--write", action="store_true", help="solve the default basis and write its file")
    args = parser.parse_args(argv)
    if not args.write:
        parser.print_help()
        return
    start = time.perf_counter()
    path, sha = write_basis_file()
    print(f"wrote {path} ({path.stat().st_size} bytes) in {time.perf_counter() - start:.1f} s")
    print(f"sha256 {sha}")
    expected = SHIPPED_BASES.get(path.name)
    if expected is None:
        print(f"add to SHIPPED_BASES in scalebench/models/disco.py: {path.name!r}: {sha!r}")
    elif expected != sha:
        print(
            f"its float32 bits differ from the shipped file (sha256 {expected}); restore that file with "
            f"`git checkout -- scalebench/models/data/{path.name}` or record the new sha256 in SHIPPED_BASES"
        )


if __name__ == "__main__":  # the module is then imported twice (also by the zoo): register it once
    main()
else:
    register_model(DISCO_CARD, rules=DISCO_RULES)(DISCO)
