"""A model of one's own through the protocol: references, a run identity that includes the code, clear errors."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from scalebench.benchmark.config import make_config
from scalebench.benchmark.protocol import format_summary, run
from scalebench.checks import ScalebenchError

TINY = {"epochs": 1, "batch_size": 8, "eval_batch_size": 8, "lr": 0.05}

MODEL = textwrap.dedent(
    """
    from torch import nn

    def build(*, num_classes, in_channels, width=4):
        return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
                             nn.Flatten(), nn.Linear(width, num_classes))

    build.scalebench_card = {"display_name": "Tiny multi-scale net", "licence": "MIT"}
    """
)


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    """Each test registers its own models from outside the zoo (one process may not register a name twice)."""
    from scalebench.models import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_RULES", dict(registry._RULES))
    monkeypatch.setattr(registry, "_EXTERNAL", {})


def _config(tmp_path, model, **kw):
    fields = dict(model=model, dataset="tiny", out=tmp_path / "runs", device="cpu", progress="none",
                  recipe_overrides=TINY, num_workers=0, scales=[1.0, 2.0])  # fmt: skip
    fields.update(kw)
    return make_config(**fields)


def test_a_file_model_runs_and_its_code_is_part_of_the_run_identity(tmp_path, fake_built):
    path = tmp_path / "my_model.py"
    path.write_text(MODEL)
    first = run(_config(tmp_path, f"{path}:build"))
    result = first.result
    assert result.model.name == "build" and result.model.card["display_name"] == "Tiny multi-scale net"
    assert result.model.source.kind == "file" and result.model.source.reference == f"{path}:build"
    assert result.model.num_params == 4 * 9 + 4 + 4 * 2 + 2 and result.model.structure_sha256
    again = run(_config(tmp_path, f"{path}:build"))
    assert again.reused and again.run_dir == first.run_dir
    assert "reused" in format_summary(again) and first.run_hash in format_summary(again)
    # the architecture changes: a new run, never the old numbers
    path.write_text(MODEL.replace("nn.ReLU(), ", "nn.ReLU(), nn.Conv2d(width, width, 1), "))
    changed = run(_config(tmp_path, f"{path}:build"))
    assert not changed.reused and changed.run_hash != first.run_hash
    assert changed.result.model.num_params == result.model.num_params + 4 * 4 + 4
    # the same code under another name (--name) is run under that name
    named = run(_config(tmp_path, f"{path}:build", model_name="tinyms"))
    assert named.result.model.name == "tinyms" and named.run_dir.name.startswith("tinyms__tiny__")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "def build(*, num_classes, in_channels):\n    raise ValueError('no')\n",
            "cannot be built .*ValueError: no",
        ),
        ("def build(*, num_classes, in_channels):\n    return 42\n", "not a torch.nn.Module|cannot be built"),
        (
            "from torch import nn\ndef build(*, num_classes, in_channels):\n    return nn.Linear(5, num_classes)\n",
            r"failed on a batch of the dataset's images, shape \(2, 1, 16, 16\)",
        ),
        (
            "from torch import nn\ndef build(*, num_classes, in_channels):\n"
            "    return nn.Sequential(nn.Flatten(), nn.Linear(256, 3))\n",
            r"returned \(2, 3\) .* \(2, 2\) expected",
        ),
        (
            "import torch\nfrom torch import nn\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.l = nn.Linear(1, 2)\n    def forward(self, x):\n        return torch.full((x.shape[0], 2), float('nan'))\n"
            "def build(*, num_classes, in_channels):\n    return M()\n",
            "non-finite scores",
        ),
    ],
    ids=["raises", "not-a-module", "input-size", "output-shape", "non-finite"],
)
def test_a_broken_factory_is_one_error_and_leaves_nothing(tmp_path, fake_built, source, message):
    path = tmp_path / "broken_model.py"
    path.write_text(source)
    with pytest.raises(ScalebenchError, match=message):
        run(_config(tmp_path, f"{path}:build"))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_the_cli_names_what_is_wrong_with_a_reference(tmp_path, fake_built):
    from scalebench.cli import main

    res = CliRunner().invoke(main, ["evaluate", "--model", f"{tmp_path}/missing.py:build", "--dataset", "tiny",
                                    "--out", str(tmp_path / "runs"), "--device", "cpu"])  # fmt: skip
    assert res.exit_code == 1 and "does not exist" in res.output and "Traceback" not in res.output


SELECTING = textwrap.dedent(
    """
    import torch
    from torch import nn

    class TwoScales(nn.Module):
        channel_sigmas = (1.0, 2.0)

        def __init__(self, num_classes, in_channels):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, num_classes, 3, padding=1)

        def scale_channel_logits(self, x):
            fine = self.conv(x).amax((-2, -1))
            coarse = self.conv(nn.functional.avg_pool2d(x, 2)).amax((-2, -1))
            return torch.stack([fine, coarse])  # (S, B, K)

        def forward(self, x):
            return self.scale_channel_logits(x).amax(0)

    def build(*, num_classes, in_channels):
        return TwoScales(num_classes, in_channels)
    """
)


def test_an_outside_model_with_scale_channel_logits_gets_selection_histograms(tmp_path, fake_built):
    import scalebench

    path = tmp_path / "two_scales.py"
    path.write_text(SELECTING)
    result = run(_config(tmp_path, f"{path}:build")).result
    sel = result.scale_selection
    assert sel is not None and sel.channel_sigmas == [1.0, 2.0]
    assert [sum(row) for row in sel.counts] == [r.total for r in result.per_scale]
    # the same protocol for a model trained elsewhere
    from scalebench.models.external import load_factory

    model = load_factory(f"{path}:build")[0](num_classes=2, in_channels=1)
    tested = scalebench.test(model, dataset="tiny", name="two_scales", out=tmp_path / "ext", device="cpu",
                             progress="none")  # fmt: skip
    assert tested.scale_selection is not None and tested.scale_selection.channel_sigmas == [1.0, 2.0]
    # selection without channel_sigmas is one clear error, and nothing is written
    path.write_text(SELECTING.replace("channel_sigmas = (1.0, 2.0)", "pass"))
    with pytest.raises(ScalebenchError, match="has no channel_sigmas; add channel_sigmas"):
        run(_config(tmp_path, f"{path}:build", out=tmp_path / "runs2"))
    assert not (tmp_path / "runs2").exists() or not any((tmp_path / "runs2").iterdir())


def test_the_cli_runs_an_outside_model_under_the_name_given(tmp_path, fake_built):
    from scalebench.cli import main

    path = tmp_path / "my_model.py"
    path.write_text(MODEL)
    args = ["evaluate", "--model", f"{path}:build", "--name", "tinyms", "--dataset", "tiny", "--scales", "1,2",
            "--out", str(tmp_path / "runs"), "--device", "cpu", "--epochs", "1", "--batch-size", "8"]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "runs").glob("tinyms__tiny__seed0__*/results.json"))) == 1
    res = CliRunner().invoke(main, [*args, "--trust-model-code"])
    assert res.exit_code == 1 and "--trust-model-code goes with --verify" in res.output
