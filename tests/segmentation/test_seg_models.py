"""The segmentation models: every registered one (forward, backward, card), receptive fields, learned σ."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from scalebench.benchmark.config import resolve_recipe
from scalebench.checks import ScalebenchError
from scalebench.models import count_parameters, create_model, get_model_card, list_models
from scalebench.models.registry import builder_signature

SEG_MODELS = list_models(task="segmentation")


def test_the_paper_models_are_registered_as_segmentation():
    assert {"unet", "njet-unet", "njet-unet-o4", "unet-k4", "unet-k5", "unet-l4-w32", "unet-l5-w16"} <= set(
        SEG_MODELS
    )
    assert not set(SEG_MODELS) & set(list_models(task="classification"))


@pytest.mark.parametrize("name", SEG_MODELS)
def test_forward_backward_and_card(name):
    card = get_model_card(name)
    assert card.task == "segmentation" and card.num_classes == 11 and card.input_size == (1, 224, 224)
    assert count_parameters(create_model(name)) == card.num_params
    torch.manual_seed(0)
    model = create_model(name, quick=True)
    x = torch.randn(2, 1, 20, 28)  # odd sizes after pooling: the decoder upsamples to the skip's size
    y = model(x)
    assert y.shape == (2, 11, 20, 28) and torch.isfinite(y).all()
    y.logsumexp(1).sum().backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad
    )


def test_architecture_counts_of_the_paper():
    convs = lambda m: [c for c in m.modules() if isinstance(c, torch.nn.Conv2d) and c.kernel_size != (1, 1)]  # noqa: E731
    assert len(convs(create_model("unet", quick=True))) == 10
    assert len(convs(create_model("unet-l4-w32", quick=True))) == 14
    assert len(convs(create_model("unet-l5-w16", quick=True))) == 18
    net = create_model("unet")
    assert [c.out_channels for c in convs(net)][:6] == [64, 64, 128, 128, 256, 256]
    assert len(create_model("njet-unet", quick=True).learned_sigmas()) == 10


def test_encoder_receptive_field():
    # 3 levels of two 3x3 convs with two 2x2 poolings: 1 + 4 + 1 + 8 + 2 + 16 = 32
    assert create_model("unet", quick=True).encoder_receptive_field() == 32
    assert create_model("unet-k5", quick=True).encoder_receptive_field() == 60
    assert create_model("unet-l4-w16", quick=True).encoder_receptive_field() == 68
    nj = create_model("njet-unet", quick=True)
    assert nj.encoder_receptive_field() == 60  # sigma = 1, k = 2: 5x5 support
    with torch.no_grad():
        for layer in nj.spatial_convs():
            layer.njet.log2_sigma.fill_(1.0)  # sigma = 2: 9x9 support
    assert nj.encoder_receptive_field() == 1 + 16 + 1 + 32 + 2 + 64


def test_njet_unet_sigma_moves_on_large_objects():
    """A few Adam steps on a toy set of large blobs move every layer's sigma (Pintea et al. 2021, Exp. 1.1(B))."""
    torch.manual_seed(0)
    model = create_model("njet-unet", quick=True)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    x = torch.zeros(2, 1, 32, 32)
    target = torch.zeros(2, 32, 32, dtype=torch.long)
    for i, (cy, cx) in enumerate([(12, 13), (19, 18)]):
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2) < 10**2
        x[i, 0][blob] = 1.0
        target[i][blob] = 1 + i % 2
    before = model.learned_sigmas()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        loss = F.cross_entropy(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.learned_sigmas()
    assert all(abs(a - b) > 1e-3 for a, b in zip(after, before, strict=True))
    # with a constant learning rate, Adam moves log2(sigma) by at most about lr per step
    assert all(
        abs(torch.log2(torch.tensor(a / b))) < 3 * 1e-2 * 1.01 for a, b in zip(after, before, strict=True)
    )


@pytest.mark.parametrize("name", SEG_MODELS)
def test_card_lists_the_builder_kwargs_and_unknown_keys_fail(name):
    card = get_model_card(name)
    params = {
        k: p for k, p in builder_signature(name).parameters.items() if k not in ("num_classes", "in_channels")
    }
    assert set(params) == set(card.default_config)
    assert all(p.default == card.default_config[k] for k, p in params.items())
    assert resolve_recipe("paper", card.paper_training, {}).model_dump(
        include={"optimizer", "lr", "batch_size"}
    ) == {
        "optimizer": "adam",
        "lr": 1e-4,
        "batch_size": 1,
    }
    with pytest.raises(ScalebenchError, match=rf"Unknown config key 'nope' for model '{name}'"):
        create_model(name, nope=1)


def test_deterministic_given_seed():
    x = torch.randn(1, 1, 16, 16)
    outs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        with torch.no_grad():
            outs.append(create_model("njet-unet", quick=True).eval()(x))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_same_conv_equals_pytorch_same_padding_without_its_warning(k):
    import warnings

    from scalebench.models.unet import SameConv2d

    torch.manual_seed(0)
    conv = SameConv2d(3, 4, k)
    ref = torch.nn.Conv2d(3, 4, k, padding="same")
    ref.load_state_dict(conv.state_dict())
    x = torch.randn(2, 3, 11, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = conv(x)
    assert y.shape == (2, 4, 11, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ref(x)
    torch.testing.assert_close(y, expected)
