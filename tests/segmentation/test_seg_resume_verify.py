"""Resume, verify (also as evaluate --verify), several seeds, --amp and the run directory of a segmentation run,
on the tiny 224 x 224 build: the protocol of every task (``scalebench.benchmark.protocol.run``), not a twin of it."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file
from torch_threads import one_torch_thread

from scalebench.benchmark.config import config_from_options, make_config
from scalebench.benchmark.protocol import format_summary, run, run_seeds
from scalebench.benchmark.verify import verify_run
from scalebench.checks import ScalebenchError
from scalebench.cli import main
from scalebench.datasets_builders import build_dataset
from scalebench.results import (
    SegmentationScaleResult,
    build_segmentation_summary,
    load_segmentation_results,
    metrics,
)


def _config(seg_home, out, **extra):
    root, built = seg_home
    fields = dict(model="njet-unet", dataset=built.build_id, root=root, out=out, device="cpu", limit=2,
                  scales=[1.0, 2.0], model_config_overrides={"width": 2}, progress="none",
                  recipe_overrides={"epochs": 3, "batch_size": 1, "eval_batch_size": 2, "lr": 1e-2})  # fmt: skip
    fields.update(extra)
    return make_config(**fields)


@pytest.fixture(scope="module")
def straight(seg_home, tmp_path_factory):
    """An uninterrupted 3-epoch N-Jet U-Net run (the reference for resume and the subject of --verify)."""
    with one_torch_thread():
        return run(_config(seg_home, tmp_path_factory.mktemp("straight")))


def test_the_run_directory_is_that_of_every_task(seg_home, straight):
    """One layout: ``<model>__<build>__seed<n>__<hash>`` for the default set, ``done`` = sha256 of the results,
    the manifest digest of the sets the run used, and a log that starts with a header naming the run."""
    _, built = seg_home
    assert straight.run_dir.name == f"njet-unet__{built.build_id}__seed0__{straight.run_hash}"
    results = straight.run_dir / "results.json"
    assert (straight.run_dir / "done").read_text().strip() == hashlib.sha256(results.read_bytes()).hexdigest()
    assert straight.result.dataset.manifest_sha256 == built.view_sha256((1,), [1.0, 2.0])
    assert straight.result.created_at.endswith("+00:00") and straight.result.dataset.train_scales == [1.0]
    for name in (
        "results.json",
        "results.csv",
        "miou_vs_scale.png",
        "sigmas.png",
        "triptych.png",
        "config.json",
    ):
        assert straight.files[name].is_file(), name
    assert "training set 1, best epoch" in format_summary(straight)


def test_a_plain_log_has_a_header_timestamps_and_the_time_left(seg_home, tmp_path, capsys):
    config = _config(seg_home, tmp_path, progress="plain", recipe_overrides={"epochs": 2, "batch_size": 2,
                     "eval_batch_size": 2, "lr": 1e-2})  # fmt: skip
    outcome = run(config)
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d run njet-unet on \S+, training set 1, seed 0", lines[0]
    )
    assert any(line.endswith(f"run id: {outcome.run_dir.name}") for line in lines)
    assert any(
        re.search(r" epoch 1: train loss \S+, val mean iou \S+ \(.*training: about \S+ left\)", x)
        for x in lines
    )
    assert any(" validation 2/2: done in " in line for line in lines)
    assert any(" test scale 2 (2/2): done in " in line for line in lines)


def test_resumed_run_ends_bit_for_bit_like_an_uninterrupted_one(seg_home, straight, tmp_path):
    config = _config(seg_home, tmp_path)
    stopped = run(config.model_copy(update={"stop_after_epoch": 1}))
    assert stopped.result is None and stopped.stopped_after_epoch == 1
    (state_file,) = tmp_path.rglob("state.json")
    assert json.loads(state_file.read_text())["epoch"] == 1 and not (state_file.parent / "done").exists()
    assert state_file.parent.name == straight.run_dir.name  # the same config hash under another --out
    with pytest.raises(ScalebenchError, match=r"1 of 3 epochs checkpointed\). Pass --resume"):
        run(config)
    resumed = run(config.model_copy(update={"resume": True}))
    a, b = straight.result, resumed.result
    assert (state_file.parent / "done").is_file()
    assert [p.model_dump() for p in a.per_scale] == [p.model_dump() for p in b.per_scale]
    assert a.learned_sigmas == b.learned_sigmas and a.checkpoint_sha256 == b.checkpoint_sha256
    strip = [{k: v for k, v in h.model_dump().items() if k != "seconds"} for h in a.training.history]
    assert strip == [{k: v for k, v in h.model_dump().items() if k != "seconds"} for h in b.training.history]
    assert len(b.training.history) == 3 and b.training.best_epoch == a.training.best_epoch
    assert a.learned_sigmas != [1.0] * len(a.learned_sigmas)  # σ moved, so the optimizer state mattered
    assert (
        load_file(str(straight.run_dir / "epoch-3.safetensors")).keys()
        == load_file(str(resumed.run_dir / "epoch-3.safetensors")).keys()
    )
    assert all(
        torch.equal(x, load_file(str(resumed.run_dir / "epoch-3.safetensors"))[k])
        for k, x in load_file(str(straight.run_dir / "epoch-3.safetensors")).items()
    )


def test_verify_marks_a_matching_checkpoint_verified(straight, seg_home, tmp_path):
    root, _ = seg_home
    results, best = straight.run_dir / "results.json", straight.run_dir / "best.safetensors"
    res = CliRunner().invoke(main, ["verify", str(results), "--checkpoint", str(best), "--root", str(root),
                                    "--device", "cpu", "--progress", "none"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Verified: every per-scale count" in res.output
    verified = load_segmentation_results(results.with_name("results.verified.json"))
    assert verified.evaluated_by == "verified"
    assert verified.verification is not None and verified.verification.environment.device == "cpu"
    assert verified.verification.source_results_sha256 == hashlib.sha256(results.read_bytes()).hexdigest()
    assert (
        verified.model_copy(update={"evaluated_by": "self-reported", "verification": None}) == straight.result
    )
    again = verify_run(
        results.with_name("results.verified.json"), best, root=root, device="cpu", progress="none"
    )
    strip = {"verification": None}  # a re-verification records its own time and source
    assert again.verified.model_copy(update=strip) == verified.model_copy(update=strip)
    assert again.written == results.with_name("results.verified.json")
    assert not results.with_name("results.verified.verified.json").exists()


def test_verify_rejects_a_tampered_checkpoint_and_other_counts(straight, seg_home, tmp_path):
    root, _ = seg_home
    results, best = straight.run_dir / "results.json", straight.run_dir / "best.safetensors"
    tensors = load_file(str(best))
    key = next(iter(tensors))
    tensors[key] = tensors[key] + 1.0
    bad = tmp_path / "tampered.safetensors"
    save_file(tensors, str(bad))
    with pytest.raises(ScalebenchError, match=r"tampered\.safetensors has sha256 .* but .* records"):
        verify_run(results, bad, root=root, device="cpu", progress="none")
    with pytest.raises(
        ScalebenchError, match=r"gone\.safetensors' does not exist; pass the best\.safetensors"
    ):
        verify_run(results, tmp_path / "gone.safetensors", root=root, device="cpu", progress="none")
    # Results whose counts differ from what the (genuine) checkpoint gives: schema-valid, but NOT verified.
    doc = json.loads(results.read_text())
    first = doc["per_scale"][0]
    first["unions"][0] += 7
    first["mean_iou"] = metrics.mean_iou(first["intersections"], first["unions"])
    per_scale = [SegmentationScaleResult(**p) for p in doc["per_scale"]]
    doc["summary"] = build_segmentation_summary(per_scale).model_dump()
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc))
    report = verify_run(edited, best, root=root, device="cpu", out=tmp_path / "v.json", progress="none")
    assert report.verified is None and not (tmp_path / "v.json").exists()
    assert len(report.mismatches) == 1 and report.mismatches[0].startswith("scale 1: recorded intersections")
    # the command, and the old way through evaluate
    for command in (["verify", str(edited)], ["evaluate", "--verify", str(edited)]):
        res = CliRunner().invoke(main, [*command, "--checkpoint", str(best), "--root", str(root), "--device", "cpu",
                                        "--progress", "none"])  # fmt: skip
        assert res.exit_code == 1 and "NOT verified" in res.output and "Traceback" not in res.output


def test_several_seeds_write_an_aggregate_with_a_band(seg_home, tmp_path):
    config = _config(seg_home, tmp_path, model="unet", recipe_overrides={"epochs": 1, "batch_size": 2,
                                                                          "eval_batch_size": 2})  # fmt: skip
    outcomes, files = run_seeds(config.model_copy(update={"train_scale": [4.0]}), [0, 1])
    results = [o.result for o in outcomes]
    assert [r.seed for r in results] == [0, 1] and results[0].per_scale != results[1].per_scale
    assert all(o.run_dir.name.startswith(f"unet__{seg_home[1].build_id}__train4__seed") for o in outcomes)
    assert files["curve.png"].parent.name.startswith(f"unet__{seg_home[1].build_id}__train4__seeds-0-1__")
    rows = files["curve.csv"].read_text().splitlines()
    assert rows[0].endswith("scale,mean_iou,std_iou,n_seeds") and len(rows) == 3
    for i, row in enumerate(rows[1:]):
        mean, std, n = row.split(",")[-3:]
        want = metrics.mean_std([r.per_scale[i].mean_iou for r in results])
        assert (float(mean), float(std), n) == (pytest.approx(want[0]), pytest.approx(want[1]), "2")
    assert files["curve.png"].stat().st_size > 1000 and files["curve.svg"].is_file()
    assert "fill" in files["curve.svg"].read_text()  # the band (fill_between) is drawn
    assert {line.split(",")[1] for line in files["results.csv"].read_text().splitlines()[1:]} == {"0", "1"}


def test_amp_on_cpu_is_a_clear_error(seg_home, tmp_path):
    with pytest.raises(ScalebenchError, match="--amp needs --device cuda"):
        run(_config(seg_home, tmp_path, amp=True))


def test_a_model_and_a_dataset_of_different_tracks_name_both(tmp_path):
    """The task of a build is its manifest's format (never its id): a built classification set is refused by the
    segmentation track and a segmentation model is refused on it."""
    build_dataset("fashion-mnist", root=tmp_path, embedded=True, limit=2, scales=[1.0], progress=False)
    out = ["--out", str(tmp_path / "runs"), "--root", str(tmp_path), "--device", "cpu"]
    res = CliRunner().invoke(main, ["evaluate", "--model", "cnn", "--dataset", "fashion-mnist-embedded-limit2",
                                    "--train-scale", "2", *out])  # fmt: skip
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert (
        "fashion-mnist-embedded-limit2: no training set with scales 2; built training sets: 1" in res.output
    )
    assert "--train-scale 2" in res.output  # the command that adds it
    res = CliRunner().invoke(
        main, ["evaluate", "--model", "unet", "--dataset", "fashion-mnist-embedded-limit2", *out]
    )
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert (
        "'unet' is a segmentation model, but dataset 'fashion-mnist-embedded-limit2' is a classification build"
        in (res.output)
    )
    res = CliRunner().invoke(
        main, ["evaluate", "--model", "unet", "--dataset", "fashion-mnist-embeded", *out]
    )
    assert res.exit_code == 1 and "Dataset 'fashion-mnist-embeded' has not been built" in res.output


def test_train_scales_take_the_set_key_as_written_in_results():
    """``--train-scale 1+2+3+4``, its alias ``--train-scales 1,2,3,4`` and the results' key are one set."""
    a = config_from_options(model="unet", train_scale="1+2+3+4")[0].train_scale
    assert (
        a == config_from_options(model="unet", train_scale="4,3,2,1")[0].train_scale == [1.0, 2.0, 3.0, 4.0]
    )
    assert config_from_options(model="unet")[0].train_scale is None
    with pytest.raises(ScalebenchError, match=r"--train-scale must be a positive number, got 'x'"):
        config_from_options(model="unet", train_scale="1+x")
