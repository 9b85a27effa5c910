"""The Python API: evaluate any factory (with a non-standard training), test a model trained elsewhere, load."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import scalebench
from scalebench.checks import ScalebenchError
from scalebench.results import load_results

TINY = {"epochs": 1, "batch_size": 8, "eval_batch_size": 8, "lr": 0.05}


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    from scalebench.models import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_RULES", dict(registry._RULES))
    monkeypatch.setattr(registry, "_EXTERNAL", {})


def small_net(*, num_classes: int, in_channels: int, width: int = 4) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(width, num_classes))  # fmt: skip


def smooth_l1_on_scores(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits, target, label_smoothing=0.2)


def _run(tmp_path, **kw):
    return scalebench.evaluate(small_net, dataset="tiny", out=tmp_path / "runs", device="cpu", progress="none",
                               seeds=[0], **{**TINY, **kw})  # fmt: skip


def test_evaluate_a_factory_and_a_non_standard_training(tmp_path, fake_built):
    (standard,) = _run(tmp_path)
    assert standard.model.name == "small_net" and standard.model.source.kind == "module"
    assert standard.training.custom is None
    (custom,) = _run(tmp_path, loss_fn=smooth_l1_on_scores,
                     optimizer_factory=lambda params: torch.optim.SGD(params, lr=0.1),
                     scheduler_factory=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 1))  # fmt: skip
    info = custom.training.custom
    assert info.loss.name.endswith("smooth_l1_on_scores") and len(info.loss.sha256) == 64
    assert info.optimizer is not None and info.scheduler is not None
    assert custom.model.config_hash != standard.model.config_hash  # another run, never the standard one


def test_test_a_model_trained_elsewhere_and_load_it_back(tmp_path, fake_built):
    torch.manual_seed(0)
    model = small_net(num_classes=2, in_channels=1)
    result = scalebench.test(model, dataset="tiny", name="elsewhere", out=tmp_path / "runs", device="cpu",
                             progress="none")  # fmt: skip
    assert result.training.preset == "external" and result.training.history == []
    assert [r.scale for r in result.per_scale] == [0.5, 1.0, 2.0]
    run_dir = next((tmp_path / "runs").glob("elsewhere__tiny__external__*"))
    assert load_results(run_dir / "results.json") == result
    assert (run_dir / "best.safetensors").is_file()


def test_load_model_from_a_run_folder(tmp_path, fake_built):
    _run(tmp_path)
    run_dir = next((tmp_path / "runs").glob("small_net__tiny__seed0__*"))
    model = scalebench.load_model(run_dir)
    assert isinstance(model, nn.Sequential) and not model.training
    with pytest.raises(ScalebenchError, match="No checkpoint"):
        scalebench.load_model(tmp_path / "nowhere")


def test_a_model_trained_elsewhere_with_the_wrong_output_is_one_error_and_leaves_nothing(
    tmp_path, fake_built
):
    model = small_net(num_classes=3, in_channels=1)  # the build has 2 classes
    with pytest.raises(ScalebenchError, match=r"wrong_head returned \(2, 3\) .* \(2, 2\) expected"):
        scalebench.test(model, dataset="tiny", name="wrong_head", out=tmp_path / "runs", device="cpu",
                        progress="none")  # fmt: skip
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_per_epoch_metrics_go_to_tensorboard(tmp_path, fake_built):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (result,) = _run(tmp_path, epochs=2, tensorboard=tmp_path / "tb")
    (logdir,) = (tmp_path / "tb").iterdir()
    assert logdir.name.startswith("small_net__tiny__seed0__")  # one folder per run, named by its id
    events = EventAccumulator(str(logdir))
    events.Reload()
    loss = events.Scalars("epoch/train_loss")
    assert [e.step for e in loss] == [1, 2]
    assert [e.value for e in loss] == pytest.approx([h.train_loss for h in result.training.history])
    assert {"epoch/lr", "epoch/val_accuracy", "epoch/seconds"} <= set(events.Tags()["scalars"])


def test_tensorboard_without_the_extra_is_one_clear_error(tmp_path, monkeypatch):
    import sys

    from scalebench.benchmark.tensorboard import epoch_writer

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(ScalebenchError, match=r"pip install 'scalebench\[tensorboard\]'"):
        epoch_writer(tmp_path / "tb", "run")
