"""The augmented track's training option: random rescaling of the training images, recorded in the recipe."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import scalebench
from scalebench.benchmark.engine import augment
from scalebench.cli import main
from scalebench.models.gaussder import scale_test_image
from scalebench.models.rescaling_peers import zoom_keep_size
from scalebench.results.recipe import Recipe


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("n", [64, 65])
@pytest.mark.parametrize("factor", [0.5, 0.7071, 1.4142, 2.0])
def test_rescaling_about_the_centre_matches_the_exact_enlargement(factor: float, n: int):
    got = zoom_keep_size(scale_test_image(n, 1.0), factor, mode="bicubic", antialias=True)
    exact = scale_test_image(n, factor)  # the analytic enlargement about the canvas centre
    # measured 2026-12-07: 0.002-0.036 (resampling and the factor rounded to 1/n); without the parity rule
    # of the resized size, half-pixel shifts gave 0.12-0.32
    assert _relative_error(got, exact) < 0.06
    # the check can fail: the unscaled image is far from the enlargement
    assert _relative_error(scale_test_image(n, 1.0), exact) > 0.25


def test_scale_augmentation_is_seeded_bounded_and_off_by_default():
    x = scale_test_image(33, 1.0).repeat(4, 1, 1, 1)
    y = torch.arange(4)
    base = Recipe(epochs=1, batch_size=4, lr=0.1)
    same, _ = augment(x, y, base, torch.Generator().manual_seed(0))
    assert torch.equal(same, x)  # no scale augmentation unless the recipe records one
    aug = base.model_copy(update={"scale_augmentation": [0.5, 2.0]})
    a, ya = augment(x, y, aug, torch.Generator().manual_seed(0))
    b, _ = augment(x, y, aug, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and torch.equal(ya, y)  # same generator, same draws; labels untouched
    assert sum(_relative_error(a[i], x[i]) > 1e-3 for i in range(4)) >= 3  # rescaled (1 +- 3 % is a no-op)
    unit = base.model_copy(update={"scale_augmentation": [1.0, 1.0]})
    assert torch.allclose(augment(x, y, unit, torch.Generator().manual_seed(0))[0], x, atol=1e-6)


def small_net(*, num_classes: int, in_channels: int, width: int = 4) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(width, num_classes))  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    from scalebench.models import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_RULES", dict(registry._RULES))
    monkeypatch.setattr(registry, "_EXTERNAL", {})


def test_a_scale_augmented_run_records_its_range_and_is_another_run(tmp_path, fake_built):
    common = {"dataset": "tiny", "out": tmp_path / "runs", "device": "cpu", "progress": "none", "epochs": 1,
              "batch_size": 8, "eval_batch_size": 8, "lr": 0.05}  # fmt: skip
    (standard,) = scalebench.evaluate(small_net, **common)
    assert "scale_augmentation" not in standard.training.recipe  # records of unaugmented runs are unchanged
    (augmented,) = scalebench.evaluate(small_net, scale_augmentation=[0.5, 2.0], **common)
    assert augmented.training.recipe["scale_augmentation"] == [0.5, 2.0]
    assert augmented.training.recipe["scale_augmentation_interpolation"] == "bilinear"
    assert augmented.model.config_hash != standard.model.config_hash


def test_the_cli_takes_a_scale_range_and_names_a_bad_one(tmp_path, fake_built):
    res = CliRunner().invoke(main, ["evaluate", "--model", "cnn", "--scale-augmentation", "2"])
    assert res.exit_code != 0 and "MIN,MAX" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["evaluate", "--model", "cnn", "--dataset", "tiny", "--out", tmp_path,
                                    "--scale-augmentation", "2,0.5"])  # fmt: skip
    assert res.exit_code == 1 and "scale_augmentation" in res.output and "0.125 <= min <= max" in res.output
    assert not any(tmp_path.iterdir())
