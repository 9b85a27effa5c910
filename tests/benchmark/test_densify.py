"""Test-time densification of the scale channels and the ripple metric."""

from __future__ import annotations

import json

import pytest
import torch

import scalebench
from scalebench.benchmark.verify import verify_run
from scalebench.checks import ScalebenchError
from scalebench.datasets_builders import build_dataset
from scalebench.models import create_model
from scalebench.models.densify import dense_config, densify, parse_test_channels
from scalebench.models.registry import resolve_config
from scalebench.results import ClassificationResult
from scalebench.results.metrics import scale_ripple

SCALES = [2 ** (k / 4) for k in range(-4, 5)]


@pytest.mark.parametrize("name", ["gaussdernet", "gaussderresnet", "gaussderresnet_dw"])
def test_factor_one_is_the_network_itself_and_factor_two_contains_its_channels(name):
    config = resolve_config(name, quick=True)
    torch.manual_seed(0)
    net = create_model(name, num_classes=10, in_channels=1, **config).eval()
    x = torch.randn(2, 1, 33, 33)
    assert densify(name, config, net, 1, num_classes=10, in_channels=1) is net
    dense = densify(name, config, net, 2, num_classes=10, in_channels=1)
    assert len(dense.channel_sigmas) == 2 * len(net.channel_sigmas) - 1
    with torch.no_grad():
        original, finer = net.scale_channel_logits(x), dense.scale_channel_logits(x)
    torch.testing.assert_close(finer[::2], original, rtol=1e-6, atol=1e-6)  # every trained channel is kept
    assert not torch.allclose(finer[1::2], original[:-1])  # and new ones lie between


def test_only_networks_with_a_channel_grid_densify_and_the_option_is_checked():
    with pytest.raises(ScalebenchError, match=r"no scale-channel grid.*gaussdernet"):
        dense_config("cnn", resolve_config("cnn"), 2)
    assert [parse_test_channels(t) for t in ("trained", "dense", "dense:3")] == [1, 2, 3]
    for bad in ("denser", "dense:0", "dense:x", "dense:99"):
        with pytest.raises(ScalebenchError, match="--test-channels takes"):
            parse_test_channels(bad)


def test_the_ripple_is_the_dip_between_channels_not_the_peak_at_the_training_scale():
    peaked = [0.5, 0.6, 0.7, 0.8, 0.9, 0.8, 0.7, 0.6, 0.5]  # linear on both sides: no ripple
    assert scale_ripple(SCALES, peaked, 1.0, 2**0.5) == pytest.approx(0.0)
    rippled = [a - (0.03 if k % 2 else 0) for k, a in enumerate(peaked)]  # off-grid 3 points lower
    assert scale_ripple(SCALES, rippled, 1.0, 2**0.5) == pytest.approx(0.03)
    assert scale_ripple(SCALES, rippled, 1.0, 2**0.25) is None  # every test scale on a 2^(1/4) grid
    assert scale_ripple([0.5, 1.0, 2.0], [0.5, 0.9, 0.5], 1.0, 2**0.5) is None


def test_the_protocol_densifies_the_peers_with_a_channel_list_and_refuses_the_others(tmp_path, fake_built):
    """``evaluate --test-channels dense`` resolves a densified run of FovMax and SESN (another run directory),
    and refuses DISCO (basis solved over its whole scale list) and SESN with an inter-scale kernel before
    anything is trained or written."""
    from scalebench.benchmark.config import make_config
    from scalebench.benchmark.protocol import resolve_run

    common = {"dataset": "tiny", "out": tmp_path / "runs", "device": "cpu", "progress": "none"}
    for name in ("fovmax", "sesn"):
        _, trained = resolve_run(make_config(model=name, **common))
        _, dense = resolve_run(make_config(model=name, test_channels="dense", **common))
        assert "__dense2__" in dense.name and "__dense" not in trained.name
    for name, overrides, reason in (("disco", {}, "jointly"), ("sesn", {"scale_kernel_size": 2}, "mixes")):
        config = make_config(model=name, test_channels="dense", model_config_overrides=overrides, **common)
        with pytest.raises(ScalebenchError, match=rf"'{name}'.*cannot be densified at test time.*{reason}"):
            resolve_run(config)
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("dense")
    built = build_dataset("fashion-mnist", root=root, embedded=True, limit=20,
                          scales=[0.707107, 0.840896, 1.0, 1.189207, 1.414214], progress=False)  # fmt: skip
    return root, built


@pytest.mark.slow
def test_a_densified_run_reuses_the_training_and_verifies(tiny_build, tmp_path):
    root, built = tiny_build
    common = {"dataset": built.build_id, "root": root, "out": tmp_path, "device": "cpu", "progress": "none",
              "epochs": 1, "batch_size": 10, "model_config": {"widths": [4, 4, 4]}}  # fmt: skip
    (trained,) = scalebench.evaluate("gaussdernet", **common)
    (dense,) = scalebench.evaluate("gaussdernet", test_channels="dense", **common)
    runs = sorted(p.name for p in tmp_path.iterdir())
    assert len(runs) == 2 and any("__dense2__" in r for r in runs)  # the trained run was reused, not re-run
    assert dense.checkpoint_sha256 == trained.checkpoint_sha256
    assert dense.training == trained.training and dense.test_channels.factor == 2
    assert dense.test_channels.trained_channel_sigmas == trained.scale_selection.channel_sigmas
    assert len(dense.scale_selection.channel_sigmas) == 2 * len(trained.scale_selection.channel_sigmas) - 1
    assert trained.scale_selection.ripple == pytest.approx(trained.ripple())  # recorded for every run
    (folder,) = [p for p in tmp_path.iterdir() if "__dense2__" in p.name]
    report = verify_run(folder / "results.json", folder / "best.safetensors", root=root, device="cpu",
                        progress="none")  # fmt: skip
    assert report.verified is not None and report.mismatches == []


def test_a_ripple_that_is_not_the_recomputed_one_is_refused():
    from result_factories import make_run

    counts = [[10 if j == min(k // 2, 4) else 0 for j in range(5)] for k in range(9)]
    run = make_run([5, 6, 7, 8, 9, 8, 7, 6, 5], scales=SCALES, total=10, selection=counts,
                   sigmas=[2 ** (j / 2) for j in range(5)])  # fmt: skip
    data = json.loads(run.model_dump_json())
    data["scale_selection"]["ripple"] = run.ripple()  # the recomputed value is accepted...
    assert ClassificationResult.model_validate(data).scale_selection.ripple == pytest.approx(0.0)
    data["scale_selection"]["ripple"] = 0.5  # ...another one is not
    with pytest.raises(ValueError, match="ripple"):
        ClassificationResult.model_validate(data)


def test_the_ripple_is_defined_on_a_geometric_channel_grid_only():
    """A peer's channel list need not be geometric: sigma_1 / sigma_0 is then no ratio of the grid, and the ripple
    (on- against off-grid test scales) is undefined rather than computed for a grid the model does not have."""
    from result_factories import make_run

    counts = [[10 if j == min(k // 2, 4) else 0 for j in range(5)] for k in range(9)]

    def run(sigmas):
        return make_run([5, 4, 7, 6, 9, 6, 7, 4, 5], scales=SCALES, total=10, selection=counts, sigmas=sigmas)

    for geometric in ([2 ** (j / 2) for j in range(5)], [round(2 ** (j / 2), 6) for j in range(5)]):
        assert run(geometric).trained_channel_ratio() == pytest.approx(2**0.5)
        assert run(geometric).ripple() == pytest.approx(0.2)
    for listed in ([1.0, 2**0.5, 2.5, 3.0, 4.0], [2.0, 2.52, 3.17, 4.0, 5.04]):  # SESN's rounded steps
        assert run(listed).trained_channel_ratio() is None and run(listed).ripple() is None


@pytest.mark.slow
def test_a_stored_run_densifies_without_training_and_checks_it_is_the_same_function(tiny_build, tmp_path):
    """``densify_run`` (``scalebench densify``): a finished run folder, whatever code trained it, tested on the
    denser grid in a run folder of its own whose identity names the trained checkpoint; a checkpoint that is not
    the recorded one, or a record the code no longer reproduces, is one error and writes nothing."""
    import shutil

    from click.testing import CliRunner

    from scalebench.benchmark.protocol import densify_run
    from scalebench.cli import main

    root, built = tiny_build
    (trained,) = scalebench.evaluate("gaussdernet", dataset=built.build_id, root=root, out=tmp_path / "runs",
                                     device="cpu", progress="none", epochs=1, batch_size=10,
                                     model_config={"widths": [4, 4, 4]})  # fmt: skip
    (run_dir,) = (tmp_path / "runs").iterdir()
    outcome = densify_run(run_dir, 2, out=tmp_path / "dense", root=root, device="cpu", progress="none")
    dense = outcome.result
    assert "__dense2__" in outcome.run_dir.name and dense.checkpoint_sha256 == trained.checkpoint_sha256
    assert dense.training == trained.training and dense.test_channels.factor == 2
    identity = json.loads((outcome.run_dir / "config.json").read_text())
    assert identity["trained_checkpoint_sha256"] == trained.checkpoint_sha256
    assert densify_run(run_dir, 2, out=tmp_path / "dense", root=root, device="cpu", progress="none").reused
    report = verify_run(outcome.run_dir / "results.json", outcome.run_dir / "best.safetensors", root=root,
                        device="cpu", progress="none")  # fmt: skip
    assert report.verified is not None and report.mismatches == []

    # A store entry (seed-N.json beside seed-N.safetensors, what a fresh clone holds) densifies the same way.
    entry = tmp_path / "store" / "gaussdernet" / "0123456789abcdef"
    entry.mkdir(parents=True)
    shutil.copy(run_dir / "results.json", entry / "seed-0.json")
    shutil.copy(run_dir / "best.safetensors", entry / "seed-0.safetensors")
    res = CliRunner().invoke(main, ["densify", str(entry / "seed-0.json"), "--root", str(root)])
    assert res.exit_code == 1 and "--out" in res.output and "Traceback" not in res.output
    stored = densify_run(entry / "seed-0.json", 2, out=tmp_path / "dense-stored", root=root, device="cpu",
                         progress="none")  # fmt: skip
    assert stored.result.per_scale == dense.per_scale and stored.run_dir.name == outcome.run_dir.name
    assert sorted(p.name for p in entry.iterdir()) == ["seed-0.json", "seed-0.safetensors"]  # store untouched

    tampered = tmp_path / "tampered"
    shutil.copytree(run_dir, tampered)
    data = json.loads((tampered / "results.json").read_text())
    (i,) = [k for k, s in enumerate(data["per_scale"]) if s["scale"] == 1.0]
    row = data["per_scale"][i]
    row["correct"] = (row["correct"] + 1) % (row["total"] + 1)
    row["accuracy"] = row["correct"] / row["total"]
    from scalebench.results import metrics

    accs = [r["accuracy"] for r in data["per_scale"]]
    data["summary"] = dict(metrics.summarize([r["scale"] for r in data["per_scale"]], accs, 1.0).__dict__)
    data["scale_selection"]["ripple"] = None
    from scalebench.benchmark.engine import write_done

    (tampered / "results.json").write_text(json.dumps(data))
    write_done(tampered)
    res = CliRunner().invoke(main, ["densify", str(tampered), "--root", str(root), "--device", "cpu",
                                    "--progress", "none", "--out", str(tmp_path / "bad")])  # fmt: skip
    assert res.exit_code == 1 and "computes another function" in res.output, res.output
    (tampered / "best.safetensors").write_bytes(b"not the checkpoint")
    res = CliRunner().invoke(
        main, ["densify", str(tampered), "--root", str(root), "--out", str(tmp_path / "bad")]
    )
    assert res.exit_code == 1 and "is not the checkpoint" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "bad").exists()
