"""Structural check of every scale-channel model: its quick and default configs span the factor-4 test range.

A quick preset may shrink widths and depth, never the scale range: the channels' sigma0 must reach an octave
(two sqrt(2) steps) below and above the channel matched to a Fashion-MNIST object at the training scale
(:data:`scalebench.models.gaussder.MATCHED_SIGMA_FASHION_MNIST`). No training, only the built networks.
"""

from __future__ import annotations

import itertools
import math

import pytest

from scalebench.models import create_model, get_model_card, list_models
from scalebench.models.gaussder import (
    MATCHED_SIGMA_FASHION_MNIST,
    ScaleChannelNetwork,
    covers_test_range,
    geometric_sigmas,
)
from scalebench.models.njet import NJetConv2d

CLASSIFIERS = list_models(task="classification")


def _built(name: str, quick: bool):
    return create_model(name, quick=quick, num_classes=10, in_channels=1)


SCALE_CHANNEL_MODELS = [n for n in CLASSIFIERS if isinstance(_built(n, False), ScaleChannelNetwork)]


def test_the_scale_channel_models_are_found():
    assert {"gaussdernet", "gaussderresnet", "gaussderresnet_dw"} <= set(SCALE_CHANNEL_MODELS)


@pytest.mark.parametrize("quick", [False, True], ids=["default", "quick"])
@pytest.mark.parametrize("name", SCALE_CHANNEL_MODELS)
def test_channels_span_an_octave_each_side_of_the_matched_channel(name: str, quick: bool):
    model = _built(name, quick)
    sigmas = model.channel_sigmas
    ok, why = covers_test_range(sigmas, MATCHED_SIGMA_FASHION_MNIST)
    assert ok, f"{name} ({'quick' if quick else 'default'} config): {why}"
    ratios = [b / a for a, b in itertools.pairwise(sigmas)]
    assert max(ratios) <= math.sqrt(2) * 1.0001, f"{name}: channels further apart than sqrt(2): {ratios}"


@pytest.mark.parametrize("name", SCALE_CHANNEL_MODELS)
def test_quick_keeps_the_default_scale_range(name: str):
    default, quick = _built(name, False).channel_sigmas, _built(name, True).channel_sigmas
    assert quick == pytest.approx(default)
    # every layer of the quick network sees the same sigmas as the default's layers
    assert _built(name, True).layer_sigmas(2) == pytest.approx(_built(name, False).layer_sigmas(2))


def test_the_check_rejects_the_old_quick_config():
    """The quick config before the fix (4 channels, sigma0 1..2.83) saturated above scale 1.41."""
    ok, why = covers_test_range(geometric_sigmas(1.0, math.sqrt(2), 4), MATCHED_SIGMA_FASHION_MNIST)
    assert not ok and "5.66" in why


@pytest.mark.parametrize("name", [n for n in CLASSIFIERS if get_model_card(n).family == "njet"])
def test_njet_quick_configs_keep_sigma_learnable(name: str):
    layers = [m for m in _built(name, True).modules() if isinstance(m, NJetConv2d)]
    assert layers and all(any(p.requires_grad for p in m.parameters()) for m in layers)
    assert all(m.log2_sigma.requires_grad for m in layers)
