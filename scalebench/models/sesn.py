r"""SESN: scale-equivariant steerable networks (Sosnovik, Szmaja & Smeulders, ICLR 2020, arXiv 1910.11093).

A scale convolution expands every kernel in a fixed basis given at S scales, with coefficients shared by the
scales ("steerable" filters): the kernel at scale sigma is
:math:`\kappa_\sigma = \sum_f w_f\, \psi_{\sigma,f}`, so rescaling the input by a ratio of two basis scales
moves the response along the scale axis. The basis functions are Hermite polynomials times a Gaussian
envelope, separable in the two axes:

.. math:: \psi_{\sigma, (n, m)}(y, x) = h_{\sigma,n}(y)\, h_{\sigma,m}(x), \qquad
          h_{\sigma,n}(t) = \frac{1}{\sigma}\, e^{-t^2/2\sigma^2}\, He_n(t / \sigma)

(probabilists' Hermite polynomials :math:`He_n`), sampled on the integer grid. As in the authors' code
(``ISosnovik/sesn``, MIT, ``models/impl/ses_basis.py``, read for these facts):

- basis ``"A"``: the effective_size^2 functions of orders n, m = 0 .. effective_size - 1 at sigma;
- basis ``"B"`` (the MNIST models): functions of total order n + m <= ``basis_max_order`` (15 for order 4) at
  sigma, then at sigma / mult, sigma / mult^2, ... until effective_size^2 functions;
- the support at scale sigma is ``int(k sigma / sigma_max) // 2 * 2 + 1`` pixels, zero-padded to k x k, so
  the largest scale uses the whole k x k kernel and smaller scales a proportionally smaller window;
- every function is divided by its L2 norm at the smallest scale (the same factor at every scale, which keeps
  the 1/sigma^2 relation between scales).

Network (:class:`~scalebench.models.scaleconv.ScaleEquivariantCNN`; the authors' ``MNIST_SES_V``, "SESN"
vector model of ``models/mnist_ses.py``): a lifting scale convolution, then scale-to-scale convolutions
(scale kernel size 1), each followed by ReLU, 2 x 2 max pooling (after the first two) and batch norm shared
across scales; max over scales, ReLU, global max pooling, then batch norm, Linear(C, 256, no bias), batch
norm, ReLU, dropout 0.7, Linear(256, classes).

Default config for 72 x 72 Fashion-MNIST: the authors' 56 x 56 MNIST setting (``mnist_ses_vector_56``:
digits of 17 to 56 pixels after 2x upsampling, the size range of Fashion-MNIST objects at test scales 1/2 to 2
on the 72 x 72 canvas): scales sigma = 2 * 2^(i/3), i = 0..3, rounded to 2 decimals (2.0, 2.52, 3.17, 4.0),
15 x 15 kernels, effective size 7 (49 functions), basis B with mult 1.5 and order 4, widths 32-63-95.
Budget: 421,589 parameters, the authors' 494,549 less the 4x spatial flattening before their first linear
layer (4 x 95 inputs; here a global pooling gives 95 inputs, so the network runs at any size). The
parameters are the authors'; the compute is not small: 15 x 15 kernels at 72 x 72 are meant for a GPU.
The quick config keeps the scales, kernels, basis and depth and shrinks the widths (8-16-24, 32 hidden
units): 26,786 parameters.

Unverified (left open by the sources read): the paper's own tables (not readable here); the order of the
spatial pooling and batch norm relative to the global pooling (ours: the authors' code, then a global max
pooling); how scale selection is read out (ours: :class:`~scalebench.models.scaleconv.ScaleEquivariantCNN`).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from scalebench.checks import ScalebenchError, check_choice
from scalebench.models.keywords import takes_keywords_of
from scalebench.models.registry import (
    EVERY_DATASET_AS_IS,
    MAX_LAYERS,
    PROBABILITY,
    CardRecipe,
    ConfigRule,
    ModelCard,
    builder_defaults,
    channels_rule,
    register_model,
)
from scalebench.models.scaleconv import SPATIAL_POOLS, ScaleEquivariantCNN, basis_scale_convs
from scalebench.models.scalespace import hermite_probabilists

BASIS_KINDS: tuple[str, ...] = ("A", "B")

#: Largest kernel a config may ask for (pixels): a 63 x 63 kernel already covers most of a 72 x 72 canvas.
MAX_KERNEL_SIZE = 63
#: Most scales of one network (each one is a full copy of every feature map).
MAX_SCALES = 16


def _check_odd(value: int, name: str, high: int) -> int:
    if int(value) != value or not 1 <= int(value) <= high or int(value) % 2 == 0:
        raise ScalebenchError(f"{name} must be an odd integer in [1, {high}], got {value!r}.")
    return int(value)


def check_scales(scales: Sequence[float]) -> list[float]:
    """The scale list as floats, checked: 1..:data:`MAX_SCALES` positive, strictly increasing numbers."""
    try:
        out = [float(s) for s in scales]
    except (TypeError, ValueError):
        raise ScalebenchError(f"scales must be a list of positive numbers, got {scales!r}.") from None
    if not 1 <= len(out) <= MAX_SCALES or any(not math.isfinite(s) or s <= 0 for s in out):
        raise ScalebenchError(f"scales must be 1 to {MAX_SCALES} positive finite numbers, got {scales!r}.")
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise ScalebenchError(f"scales must increase strictly, got {scales!r}.")
    return out


def hermite_gaussian_1d(t: Tensor, sigma: float, order: int) -> Tensor:
    r""":math:`h_{\sigma,n}(t) = e^{-t^2/2\sigma^2} He_n(t/\sigma) / \sigma` (SESN's 1-D basis function).

    Example:
        >>> [round(v, 4) for v in hermite_gaussian_1d(torch.tensor([0.0, 1.0]), 1.0, 1).tolist()]
        [0.0, 0.6065]
    """
    u = t / sigma
    return torch.exp(-0.5 * u * u) * hermite_probabilists(int(order), u) / sigma


def _orders(max_order: int, *, total: bool) -> list[tuple[int, int]]:
    """(row order, column order) pairs in the authors' enumeration: column order slow, row order fast;
    ``total`` keeps the pairs with row + column <= max_order (basis B), else all (basis A)."""
    return [
        (n, m) for m in range(max_order + 1) for n in range(max_order + 1) if not total or n + m <= max_order
    ]


def hermite_gaussian_functions(
    size: int, sigma: float, orders: Sequence[tuple[int, int]], *, dtype: torch.dtype = torch.float64
) -> Tensor:
    """The separable functions h_n(row) h_m(col) on a ``size`` x ``size`` integer grid centred at 0: (F, size, size)."""
    r = size // 2
    t = torch.arange(-r, r + 1, dtype=dtype, device="cpu")
    rows = torch.stack([hermite_gaussian_1d(t, sigma, n) for n, _ in orders])
    cols = torch.stack([hermite_gaussian_1d(t, sigma, m) for _, m in orders])
    return rows[:, :, None] * cols[:, None, :]


def multiscale_hermite_gaussian(
    size: int, sigma: float, num_functions: int, *, max_order: int = 4, mult: float = 1.5
) -> Tensor:
    """Basis B at one scale: the functions of total order <= ``max_order`` at sigma, sigma / mult, sigma / mult^2,
    ..., the first ``num_functions`` of them: (num_functions, size, size), float64."""
    orders = _orders(max_order, total=True)
    levels = math.ceil(num_functions / len(orders))
    funcs = [hermite_gaussian_functions(size, sigma / mult**lv, orders) for lv in range(levels)]
    return torch.cat(funcs)[:num_functions]


def support_size(size: int, scale: float, max_scale: float) -> int:
    """The odd support of the basis at ``scale``: ``int(size * scale / max_scale) // 2 * 2 + 1`` (SESN's rule)."""
    return int(size * scale / max_scale) // 2 * 2 + 1


def normalise_by_smallest_scale(basis: Tensor) -> Tensor:
    """Divide every function (S, F, k, k) by its L2 norm at the first (smallest) scale."""
    norm = basis[0].pow(2).sum((-2, -1)).sqrt().clamp_min(torch.finfo(basis.dtype).tiny)
    return basis / norm[None, :, None, None]


@functools.lru_cache(maxsize=16)
def _sesn_basis(
    size: int, scales: tuple[float, ...], effective_size: int, kind: str, mult: float, max_order: int
) -> Tensor:
    with torch.device("cpu"):  # also when a model is built under torch.device("meta")
        num = effective_size**2
        out = []
        for s in scales:
            n = support_size(size, s, max(scales))
            if kind == "A":
                f = hermite_gaussian_functions(n, s, _orders(effective_size - 1, total=False))
            else:
                f = multiscale_hermite_gaussian(n, s, num, max_order=max_order, mult=mult)
            pad = (size - n) // 2
            out.append(torch.nn.functional.pad(f, (pad, pad, pad, pad)))
        return normalise_by_smallest_scale(torch.stack(out)).float()


def sesn_basis(
    size: int,
    scales: Sequence[float],
    effective_size: int,
    *,
    kind: str = "B",
    mult: float = 1.5,
    max_order: int = 4,
) -> Tensor:
    """The SESN steerable basis (S, effective_size^2, size, size), float32 (see the module docstring).

    Example:
        >>> b = sesn_basis(15, [2.0, 2.52, 3.17, 4.0], 7)
        >>> tuple(b.shape), round(float(b[0].pow(2).sum((-2, -1)).max()), 6)
        ((4, 49, 15, 15), 1.0)
    """
    check_choice(kind, "basis", BASIS_KINDS)
    size = _check_odd(size, "kernel_size", MAX_KERNEL_SIZE)
    effective_size = int(effective_size)
    if effective_size < 1:
        raise ScalebenchError(f"effective_size must be >= 1, got {effective_size!r}.")
    scales = check_scales(scales)
    smallest = support_size(size, scales[0], scales[-1])
    if kind == "A" and effective_size > smallest:
        raise ScalebenchError(
            f"basis A of effective_size {effective_size} needs at least {effective_size} pixels at the smallest "
            f"scale, which has {smallest} (kernel_size {size}, scales {scales}); use a larger kernel_size."
        )
    if smallest < 3:
        raise ScalebenchError(
            f"the smallest scale {scales[0]} gets a support of {smallest} pixel(s) with kernel_size {size} and "
            f"largest scale {scales[-1]}; use a larger kernel_size or a narrower scale range."
        )
    return _sesn_basis(size, tuple(scales), effective_size, kind, float(mult), int(max_order)).clone()


@takes_keywords_of(ScaleEquivariantCNN, exclude=("stem",))
class SESN(ScaleEquivariantCNN):
    """SESN network of the zoo (see the module docstring); ``channel_sigmas`` are the basis scales (pixels). The
    keywords of the layers and the head are those of :class:`~scalebench.models.scaleconv.ScaleEquivariantCNN`."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        scales: Sequence[float] = (2.0, 2.52, 3.17, 4.0),
        kernel_size: int = 15,
        effective_size: int = 7,
        basis: str = "B",
        basis_mult: float = 1.5,
        basis_max_order: int = 4,
        **head: Any,
    ) -> None:
        psi = sesn_basis(
            kernel_size, scales, effective_size, kind=basis, mult=basis_mult, max_order=basis_max_order
        )
        super().__init__(
            lambda widths, k: basis_scale_convs(in_channels, widths, psi, k),
            num_classes=num_classes,
            channel_sigmas=check_scales(scales),
            spatial_pool="max",
            **head,
        )


def head_rules(max_scales: int) -> dict[str, ConfigRule]:
    """The rules of the layer and head keywords of :class:`~scalebench.models.scaleconv.ScaleEquivariantCNN`
    (shared by SESN, DISCO and DSS); a scale kernel spans at most ``max_scales`` scales."""
    return {
        "widths": channels_rule(max_items=MAX_LAYERS),
        "scale_kernel_size": ConfigRule(low=1, high=max_scales),
        "pool_after": ConfigRule(low=0, high=MAX_LAYERS - 1, min_items=0),
        "global_pool": ConfigRule(choices=SPATIAL_POOLS),
        "hidden": ConfigRule(low=0, high=4096, limit="scalebench.models.registry.MAX_CHANNELS"),
        "dropout": PROBABILITY,
    }


def scale_equivariant_rules(scales_rule: ConfigRule | None = None) -> dict[str, ConfigRule]:
    """The config rules shared by the SESN and DISCO cards (head, scales, kernel, basis)."""
    return {
        **head_rules(MAX_SCALES),
        "scales": scales_rule or ConfigRule(low=0, low_open=True, high=1024, max_items=MAX_SCALES),
        "kernel_size": ConfigRule(low=3, high=MAX_KERNEL_SIZE),
        "effective_size": ConfigRule(low=1, high=15),
        "basis_mult": ConfigRule(low=1, low_open=True, high=16),
        "basis_max_order": ConfigRule(low=0, high=12),
    }


SESN_RULES: dict[str, ConfigRule] = {**scale_equivariant_rules(), "basis": ConfigRule(choices=BASIS_KINDS)}

#: The recipe of the authors' MNIST-scale experiments (``ISosnovik/sesn``: ``experiments_mnist.sh``,
#: ``train_scale_mnist.py``): Adam (no weight decay), lr 0.01 divided by 10 at epochs 20 and 40, 60 epochs,
#: batch 128; inputs normalised with the MNIST-scale mean/std; no augmentation (the "+" runs add random
#: rescaling by 0.5..2, which scalebench's protocol never does).
SESN_MNIST_TRAINING = CardRecipe(
    optimizer="adam",
    lr=0.01,
    weight_decay=0.0,
    schedule="step",
    lr_milestones=[20, 40],
    lr_gamma=0.1,
    epochs=60,
    batch_size=128,
    augmentation="none",
    source="ISosnovik/sesn experiments_mnist.sh and train_scale_mnist.py (MIT), the MNIST-scale runs",
    unverified=[],
)


def sesn_protocol_card(builder: Any, *, bibtex_key: str, training_source: str, **fields: Any) -> ModelCard:
    """A card with the fields SESN, DISCO and DSS share: bibtex by key, the builder's defaults as the config of
    every dataset, scale covariant with scale selection, and the SESN authors' MNIST-scale recipe
    (:data:`SESN_MNIST_TRAINING`) with the source it was read from."""
    return ModelCard(
        bibtex_key=bibtex_key,
        default_config=builder_defaults(builder),
        dataset_configs=EVERY_DATASET_AS_IS,
        scale_covariant=True,
        reports_scale_selection=True,
        paper_training=SESN_MNIST_TRAINING.model_copy(update={"source": training_source}),
        **fields,
    )


#: The quick (lite-track) config: the default scales, kernels, basis and depth; widths 8-16-24, 32 hidden units.
SESN_QUICK: dict[str, object] = {"widths": (8, 16, 24), "hidden": 32}

register_model(
    sesn_protocol_card(
        SESN,
        bibtex_key="sosnovik2020sesn",
        training_source=SESN_MNIST_TRAINING.source,
        name="sesn",
        display_name="SESN",
        family="sesn",
        paper=(
            "I. Sosnovik, M. Szmaja, A. Smeulders (2020), Scale-equivariant steerable networks, "
            "International Conference on Learning Representations (ICLR 2020)"
        ),
        arxiv="1910.11093",
        code_url="https://github.com/ISosnovik/sesn",
        licence="MIT (ISosnovik/sesn, read for facts only; scalebench's code is its own)",
        quick_config=SESN_QUICK,
        num_params=421_589,
        channel_grid="scales",
        notes=(
            "Re-implementation from the paper and the facts of ISosnovik/sesn (MIT): models/impl/ses_basis.py "
            "(Hermite x Gaussian basis A/B, support int(k s / s_max)//2*2+1, normalised by the smallest scale), "
            "models/impl/ses_conv.py (lifting and scale convolutions, kaiming_uniform a=sqrt 5, max-projection), "
            "models/mnist_ses.py (mnist_ses_vector_56: scales 2*2^(i/3) rounded, k=15, effective size 7, basis B "
            "mult 1.5 order 4, widths 32-63-95, FC 256 + BN + dropout 0.7), experiments_mnist.sh (recipe). "
            "Choices of scalebench (unverified against the paper): no 2x upsampling (72x72 objects are already "
            "14-56 px); a global max pooling replaces the final 2x2 max pooling + flattening (421,589 instead of "
            "494,549 parameters); the same network on every dataset (the paper's STL-10 model is a WRN-16-8: "
            "dataset_configs are empty); scale selection = the scale whose per-scale logits (head applied to each "
            "scale slice before the max-projection) hold the largest value; channel_sigmas = the basis scales "
            "in pixels. Convolutions run by FFT on the CPU (same values). Quick config: widths 8-16-24, 32 hidden "
            "units, same scales/kernels/basis."
        ),
    ),
    rules=SESN_RULES,
)(SESN)
