"""Test-time densification of the peers' scale channels (scalebench.models.densify): the peers whose channels are a
config list (FovMax, FovAvg, SESN) densify to the same network on more channels; the others are refused with one
error, and the reason for each refusal is measured (a densified network would compute another function)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from scalebench.checks import ScalebenchError
from scalebench.models import create_model, get_model_card, list_models
from scalebench.models.densify import dense_config, dense_list, densify
from scalebench.models.registry import resolve_config

#: The peers that densify, and the config key of their channel list.
DENSIFIABLE = {"fovmax": "channel_factors", "fovavg": "channel_factors", "sesn": "scales"}
#: The peers refused whatever their config, and a phrase of the reason.
REFUSED = {
    "si_convnet": "maximum over its scales inside every layer",
    "sicnn": "batch norms of their own",
    "disco": "solved jointly over the whole scales list",
    "dss": "integer base",
}
#: DISCO with a small basis (solved in a second): the trained scales and a 2x denser list.
SMALL_DISCO = {"kernel_size": 7, "effective_size": 3, "scales": [1.0, 1.5, 2.0]}


def _pair(name: str, config: dict, dense: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The seeded network of ``config`` and the network of ``dense`` built directly (no densify checks), holding
    the same weights wherever the two state dicts have the same shape (grid-made buffers: the dense net's own)."""
    torch.manual_seed(0)
    net = create_model(name, num_classes=10, in_channels=1, **config).eval()
    other = create_model(name, num_classes=10, in_channels=1, **dense).eval()
    own = other.state_dict()
    other.load_state_dict({k: w if w.shape == own[k].shape else own[k] for k, w in net.state_dict().items()})
    return net, other


def _x() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, 1, 33, 33)


def _subset_error(net: torch.nn.Module, dense: torch.nn.Module) -> float:
    """Largest difference between the trained channels' class scores and those of channels 0, 2, 4, ... of the
    network densified by 2."""
    with torch.no_grad():
        original, finer = net.scale_channel_logits(_x()), dense.scale_channel_logits(_x())
    assert finer.shape[0] == 2 * original.shape[0] - 1
    return float((finer[::2] - original).abs().max())


def test_the_cards_name_the_grids_and_refusals_and_the_list_is_the_networks_channels():
    declared = {n: get_model_card(n).channel_grid for n in list_models() if get_model_card(n).channel_grid}
    assert declared == DENSIFIABLE
    assert {n for n in list_models() if get_model_card(n).densify_refusal} == set(REFUSED)
    for name, key in DENSIFIABLE.items():
        config = resolve_config(name, quick=True)
        net = create_model(name, num_classes=10, in_channels=1, **config)
        assert net.channel_sigmas == [float(v) for v in config[key]]


@pytest.mark.parametrize("name", sorted(DENSIFIABLE))
def test_a_densified_peer_is_the_same_network_on_more_channels(name):
    key = DENSIFIABLE[name]
    config = resolve_config(name, quick=True)
    torch.manual_seed(0)
    net = create_model(name, num_classes=10, in_channels=1, **config).eval()
    assert densify(name, config, net, 1, num_classes=10, in_channels=1) is net
    assert dense_config(name, config, 1)[key] == list(config[key])
    dense = densify(name, config, net, 2, num_classes=10, in_channels=1)
    assert dense.channel_sigmas[::2] == net.channel_sigmas  # the trained channels, the same numbers
    assert _subset_error(net, dense) <= 1e-5  # measured: 0.0 for fovmax, fovavg and sesn
    with torch.no_grad():
        finer = dense.scale_channel_logits(_x())
    assert not torch.allclose(finer[1::2], finer[:-1:2], atol=1e-4)  # and new channels lie between


def test_a_channel_list_keeps_its_values_and_gains_geometric_interpolants():
    values = [0.5, 1.0, 3.0]  # not geometric: each pair is refined by its own ratio
    config = {**resolve_config("fovmax"), "channel_factors": values}
    dense = dense_config("fovmax", config, 3)["channel_factors"]
    assert dense[::3] == values and len(dense) == 7
    for i, (a, b) in enumerate(itertools.pairwise(values)):
        expected = [a * (b / a) ** (j / 3) for j in (1, 2)]
        assert dense[3 * i + 1 : 3 * i + 3] == pytest.approx(expected, rel=1e-15)
    assert dense_list([2, 8], 2) == [2, 4.0, 8]  # an integer given stays the same number
    scales = dense_config("sesn", resolve_config("sesn"), 2)["scales"]
    assert scales[::2] == [2.0, 2.52, 3.17, 4.0]  # the geometric mean of each pair between
    assert scales[1::2] == pytest.approx([math.sqrt(a * b) for a, b in itertools.pairwise(scales[::2])])


def test_a_list_that_cannot_densify_is_one_error():
    config = resolve_config("fovmax")  # 9 channel factors: a factor 4 gives 33, above the limit of 32
    with pytest.raises(ScalebenchError, match=r"'fovmax' densified by 4 would have 33 .*smaller"):
        dense_config("fovmax", config, 4)
    with pytest.raises(ScalebenchError, match=r"grid channel_factors as a list of increasing numbers"):
        dense_config("fovmax", {**config, "channel_factors": [1.0, 0.5, 2.0]}, 2)
    with pytest.raises(ScalebenchError, match=r"'sesn' densified by 8 would have 25 scale channels"):
        dense_config("sesn", resolve_config("sesn"), 8)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_refused_peer_is_one_error_with_the_reason_and_what_to_do(name):
    config = resolve_config(name, quick=True)
    pattern = rf"^Model '{name}' cannot be densified at test time: .*{REFUSED[name]}.*--test-channels trained"
    with pytest.raises(ScalebenchError, match=pattern):
        dense_config(name, config, 2)
    net = create_model(name, num_classes=10, in_channels=1, **config)
    with pytest.raises(ScalebenchError, match=pattern):
        densify(name, config, net, 2, num_classes=10, in_channels=1)


def test_sesn_with_an_inter_scale_kernel_is_refused_per_config_because_its_channels_change():
    config = resolve_config("sesn", {"scale_kernel_size": 2}, quick=True)
    with pytest.raises(ScalebenchError, match=r"'sesn' with scale_kernel_size 2 cannot.*mixes 2"):
        dense_config("sesn", config, 2)
    net, dense = _pair("sesn", config, {**config, "scales": dense_list(config["scales"], 2)})
    assert _subset_error(net, dense) > 1e-2  # measured: 0.072 (class scores up to 0.27): another network


def test_the_refused_peers_would_compute_another_function(monkeypatch):
    """What each refusal protects against, measured with the card's refusal lifted: DISCO's basis on the trained
    scales changes (densify's own check refuses it too), SiCNN's per-column batch norms do not fit, and SI-ConvNet's
    output changes (its max over scales sits in every layer)."""
    for name in ("disco", "sicnn", "si_convnet"):
        monkeypatch.setattr(get_model_card(name), "densify_refusal", None)
        monkeypatch.setattr(get_model_card(name), "channel_grid", "scales")
    config = resolve_config("disco", SMALL_DISCO, quick=True)
    net, dense = _pair("disco", config, {**config, "scales": dense_list(config["scales"], 2)})
    assert _subset_error(net, dense) > 1e-3  # measured: 0.0021 (class scores up to 0.2)
    with pytest.raises(ScalebenchError, match=r"'disco' cannot be densified.*convs.0.basis on the trained"):
        densify("disco", config, net, 2, num_classes=10, in_channels=1)
    config = resolve_config("sicnn", quick=True)
    net = create_model("sicnn", num_classes=10, in_channels=1, **config)
    with pytest.raises(ScalebenchError, match=r"'sicnn' cannot be densified.*depend on .* grid \(norms"):
        densify("sicnn", config, net, 2, num_classes=10, in_channels=1)
    config = resolve_config("si_convnet", quick=True)
    net = create_model("si_convnet", num_classes=10, in_channels=1, **config).eval()
    dense = densify("si_convnet", config, net, 2, num_classes=10, in_channels=1)  # the weights fit...
    with torch.no_grad():
        assert not torch.allclose(dense(_x()), net(_x()), atol=1e-4)  # ...the function does not (0.0023)
    with pytest.raises(ScalebenchError, match=r"base=1\.41.*expected an integer"):
        resolve_config("dss", {"base": 1.41})  # DSS: only integer dilations, no grid between its channels


def test_densified_sesn_has_the_trained_state_dict_so_the_trained_checkpoint_loads_into_it(tmp_path):
    """SESN's basis is a buffer of one entry per scale: the dense network rebuilds it for the dense scales, saves it
    as its trained channels, and loads a checkpoint only if that checkpoint's basis is the trained one (the
    protocol tests the dense network by loading the trained checkpoint into it)."""
    from scalebench.benchmark.checkpoint import load_weights, save_weights

    config = resolve_config("sesn", quick=True)
    torch.manual_seed(0)
    net = create_model("sesn", num_classes=10, in_channels=1, **config).eval()
    dense = densify("sesn", config, net, 2, num_classes=10, in_channels=1)
    assert dense.convs[0].basis.shape[0] == 7 and dense.state_dict().keys() == net.state_dict().keys()
    assert all(torch.equal(w, dense.state_dict()[k]) for k, w in net.state_dict().items())
    save_weights(net, tmp_path / "best.safetensors")
    with torch.no_grad():
        before = dense.scale_channel_logits(_x())
        load_weights(dense, tmp_path / "best.safetensors")
        assert torch.equal(dense.scale_channel_logits(_x()), before)
        net.convs[1].basis[1] *= 1.01  # a checkpoint whose basis is not the trained grid's
    save_weights(net, tmp_path / "other.safetensors")
    with pytest.raises(ScalebenchError, match=r"'sesn' cannot be densified.*convs.1.basis on the trained"):
        load_weights(dense, tmp_path / "other.safetensors")
