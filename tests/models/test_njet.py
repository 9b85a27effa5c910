"""N-Jet layer: basis formula, kernel size tied to sigma, separable == dense, sigma learns, safe subsampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.polynomial.hermite import hermval

from scalebench.checks import ScalebenchError
from scalebench.models import create_model
from scalebench.models.njet import (
    NJetConv2d,
    njet_basis1d,
    njet_basis2d,
    njet_basis_indices,
    njet_conv2d,
    njet_conv2d_dense,
    njet_num_basis,
    njet_radius,
    safe_subsample_size,
)


def _paper_basis1d(sigma: float, order: int, radius: int) -> np.ndarray:
    """Pintea et al. (2021), Eq. 2 with physicists' Hermite H_n and scale normalisation sigma^n, in numpy."""
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    coef = np.zeros(order + 1)
    coef[order] = 1.0
    u = x / (math.sqrt(2) * sigma)
    return (-1 / (math.sqrt(2) * sigma)) ** order * hermval(u, coef) * g * sigma**order


@pytest.mark.parametrize("sigma", [0.5, 0.7, 1.0, 2.0, 3.3])
def test_basis_matches_paper_formula(sigma: float):
    radius = njet_radius(sigma, 2.0, "reference")
    got = njet_basis1d(torch.tensor(sigma, dtype=torch.float64), 4, radius).numpy()
    for n in range(5):
        np.testing.assert_allclose(got[n], _paper_basis1d(sigma, n, radius), rtol=1e-12, atol=1e-14)


def test_basis_fixed_values_and_outer_product():
    # sigma = 1, k = 2, reference size rule: 7 taps; first order (research notes, Sect. 11)
    k = njet_basis1d(1.0, 1, njet_radius(1.0, 2.0, "reference"))[1]
    expected = [0.0133, 0.10801, 0.24204, 0.0, -0.24204, -0.10801, -0.0133]
    assert k.tolist() == pytest.approx(expected, abs=5e-5)
    b2 = njet_basis2d(1.3, 3, 3)
    k1 = njet_basis1d(1.3, 3, 3)
    assert b2.shape == (10, 7, 7)
    for f, (i, j) in enumerate(njet_basis_indices(3)):
        torch.testing.assert_close(b2[f], torch.outer(k1[j], k1[i]))  # rows: y (H), columns: x (W)
    assert [njet_num_basis(n) for n in range(5)] == [1, 3, 6, 10, 15]


def test_odd_order_responds_with_minus_derivative():
    # f(x) = x along W: the first-order x filter applied by conv2d (correlation) gives -1 in the interior.
    # k = 5 keeps the truncation error of the normalised sampled kernel below 1e-4.
    x = torch.arange(24, dtype=torch.float64).repeat(24, 1)[None, None]
    alphas = torch.zeros(3, 1, 1, dtype=torch.float64)
    alphas[1] = 1.0  # (1, 0): d/dx
    y = njet_conv2d(x, alphas, 1.0, order=1, k=5.0)
    interior = y[0, 0, 6:-6, 6:-6]
    torch.testing.assert_close(interior, torch.full_like(interior, -1.0), rtol=0, atol=1e-4)


def test_kernel_size_follows_sigma():
    layer = NJetConv2d(2, 3)
    assert layer.kernel_size == 5  # sigma = 1: 2 ceil(2) + 1
    with torch.no_grad():
        layer.log2_sigma.fill_(1.0)  # sigma = 2
    assert layer.kernel_size == 9
    ref = NJetConv2d(2, 3, size_rule="reference", init_sigma=2.0)
    assert ref.kernel_size == 11  # 2 ceil(2 * 2 + 0.5) + 1
    assert NJetConv2d(2, 3, size_rule="reference").kernel_size == 7
    assert [2 * njet_radius(s) + 1 for s in (0.5, 1.0, 1.01, 2.0, 3.0)] == [3, 5, 7, 9, 13]
    # the output keeps its size whatever the kernel size ("same" zero padding)
    assert layer(torch.zeros(1, 2, 6, 7)).shape == (1, 3, 6, 7)


@pytest.mark.parametrize("order", [0, 1, 2, 4])
@pytest.mark.parametrize("channels", [(3, 5), (5, 2)])
@pytest.mark.parametrize("subsample_r", [None, 2.0])
def test_separable_equals_dense_with_gradients(order: int, channels: tuple[int, int], subsample_r):
    torch.manual_seed(order)
    c_in, c_out = channels
    x0 = torch.randn(2, c_in, 13, 11, dtype=torch.float64)
    a0 = torch.randn(njet_num_basis(order), c_in, c_out, dtype=torch.float64)
    results = []
    variants = [(njet_conv2d, "basis_first"), (njet_conv2d, "mix_first"), (njet_conv2d, "dense")]
    for fn, strategy in [*variants, (njet_conv2d_dense, None)]:
        x, a = x0.clone().requires_grad_(), a0.clone().requires_grad_()
        s = torch.tensor(1.37, dtype=torch.float64, requires_grad=True)
        kw = {} if strategy is None else {"strategy": strategy}
        y = fn(x, a, s, order=order, subsample_r=subsample_r, **kw)
        y.square().sum().backward()
        results.append((y.detach(), x.grad, a.grad, s.grad))
    for got in results[:3]:
        for g, ref in zip(got, results[3], strict=True):
            torch.testing.assert_close(g, ref, rtol=1e-9, atol=1e-10)
    if subsample_r is not None:
        assert results[0][0].shape[-2:] == (
            safe_subsample_size(13, 1.37, 2.0),
            safe_subsample_size(11, 1.37, 2.0),
        )


def test_sigma_receives_gradient_and_learns_the_blur_of_the_data():
    # Toy task: reproduce a blur at sigma = 2 with an order-0 N-Jet layer started at sigma = 1.
    torch.manual_seed(0)
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        target = njet_conv2d_dense(x, torch.ones(1, 1, 1), 2.0, order=0)
    layer = NJetConv2d(1, 1, order=0)
    with torch.no_grad():
        layer.alphas.fill_(1.0)
    loss0 = (layer(x) - target).square().mean()
    loss0.backward()
    assert layer.log2_sigma.grad is not None and layer.log2_sigma.grad.item() < 0  # wants a larger sigma
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    for _ in range(25):
        opt.zero_grad()
        loss = (layer(x) - target).square().mean()
        loss.backward()
        opt.step()
    sigma = float(layer.sigma.detach())
    assert 1.6 < sigma < 2.4, sigma
    assert loss.item() < 0.1 * loss0.item()
    assert layer.kernel_size >= 9  # the kernel grew with sigma


def test_fixed_sigma_is_not_a_trainable_parameter():
    layer = NJetConv2d(2, 3, learn_sigma=False)
    assert not layer.log2_sigma.requires_grad
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == 6 * 2 * 3


def test_safe_subsample_size_is_the_paper_formula():
    for size, sigma, r in [(32, 1.0, 4.0), (32, 2.0, 4.0), (64, 4.0, 2.0), (7, 0.5, 6.0)]:
        assert safe_subsample_size(size, sigma, r) == math.floor(size * 0.5 ** (sigma / r))
    assert safe_subsample_size(32, 4.0, 4.0) == 16  # sigma = r halves the map
    assert safe_subsample_size(2, 50.0, 1.0) == 1
    layer = NJetConv2d(3, 4, init_sigma=2.0, subsample_r=4.0)
    assert layer(torch.zeros(1, 3, 32, 32)).shape == (1, 4, 22, 22)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ScalebenchError, match=r"order must be an integer in 0\.\.4"):
        NJetConv2d(1, 1, order=5)
    with pytest.raises(ScalebenchError, match=r"alphas must have shape \(F=6, C_in=2"):
        njet_conv2d(torch.zeros(1, 2, 5, 5), torch.zeros(6, 3, 1), 1.0)
    with pytest.raises(ScalebenchError, match="size_rule"):
        NJetConv2d(1, 1, size_rule="round")
    with pytest.raises(ScalebenchError, match="sigma"):
        njet_radius(-1.0)


def test_njetnet_learned_sigmas_and_reference_parameter_counts():
    model = create_model("njetnet_nin", quick=True)
    assert model.learned_sigmas() == [1.0, 1.0, 1.0]
    with torch.no_grad():
        model.njet_layers()[1].log2_sigma.fill_(1.0)
    assert model.learned_sigmas() == [1.0, 2.0, 1.0]
    # reference code counts (research notes, Sect. 4.2): order 2 -> 496,663, order 4 -> 999,511
    assert sum(p.numel() for p in create_model("njetnet_nin", order=4).parameters()) == 999_511
    resnet = create_model("njetnet_resnet32", quick=True)
    assert len(resnet.learned_sigmas()) == 1 + 2 * 3  # stem + two per block, depth 8
    y = resnet(torch.randn(2, 3, 16, 16))
    assert y.shape == (2, 10)


def test_njetnet_nin_safe_subsampling_shrinks_the_maps_with_sigma():
    model = create_model("njetnet_nin", quick=True, safe_subsample=True).eval()
    sizes = []
    model.features[0].register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
    with torch.no_grad():
        for layer in model.njet_layers():
            layer.log2_sigma.fill_(2.0)  # sigma = 4 = r: each N-Jet layer halves the map
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sizes == [16]
    assert "sigma=4" in repr(model.njet_layers()[0])


def test_benchmark_script_runs_on_a_tiny_layer():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "njet_layer.py"
    spec = importlib.util.spec_from_file_location("njet_layer_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.measure_njet_layer(batch=2, in_channels=3, out_channels=4, size=8, repeats=1, dense=False)
    assert set(res["seconds"]) == {"conv3", "conv5", *res["kernel_size"]}
    assert res["kernel_size"] == {
        "njet[paper,sigma=1]": 5,
        "njet[paper,sigma=2]": 9,
        "njet[reference,sigma=1]": 7,
        "njet[reference,sigma=2]": 11,
    }
    ratio = res["ratios"]["njet[paper,sigma=2]/conv5"]
    assert ratio == pytest.approx(res["seconds"]["njet[paper,sigma=2]"] / res["seconds"]["conv5"])


def test_benchmark_scripts_refuse_a_missing_gpu_in_one_line():
    import subprocess
    import sys
    from pathlib import Path

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: --device cuda is valid here")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "njet_layer.py"
    res = subprocess.run([sys.executable, str(script), "--device", "cuda"], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "--device cuda: no CUDA GPU here" in res.stderr
