"""Resume, --verify, several seeds and --amp of the segmentation protocol, on the tiny 224 x 224 build."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from scalebench.benchmark import segmentation
from scalebench.benchmark.config import make_config
from scalebench.benchmark.segmentation import run_segmentation, run_segmentation_seeds
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
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    outcome = run_segmentation(_config(seg_home, tmp_path_factory.mktemp("straight")), [1.0], progress=False)
    torch.set_num_threads(threads)
    return outcome


class _Interrupt(Exception):
    pass


def test_resumed_run_ends_bit_for_bit_like_an_uninterrupted_one(seg_home, straight, tmp_path, monkeypatch):
    config = _config(seg_home, tmp_path)

    def stop_after_first(run_dir, epoch):
        if epoch == 1:
            raise _Interrupt

    monkeypatch.setattr(segmentation, "_epoch_done", stop_after_first)
    with pytest.raises(_Interrupt):
        run_segmentation(config, [1.0], progress=False)
    (state_file,) = tmp_path.rglob("state.json")
    assert json.loads(state_file.read_text())["epoch"] == 1 and not (state_file.parent / "done").exists()
    assert state_file.parent.name == straight.run_dir.name  # the same config hash under another --out
    monkeypatch.setattr(segmentation, "_epoch_done", lambda run_dir, epoch: None)
    with pytest.raises(ScalebenchError, match=r"1 of 3 epochs checkpointed\). Pass --resume"):
        run_segmentation(config, [1.0], progress=False)
    resumed = run_segmentation(config.model_copy(update={"resume": True}), [1.0], progress=False)
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
    res = CliRunner().invoke(main, ["evaluate", "--verify", str(results), "--checkpoint", str(best), "--root",
                                    str(root), "--device", "cpu", "--progress", "none"])  # fmt: skip
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
    res = CliRunner().invoke(main, ["evaluate", "--verify", str(edited), "--checkpoint", str(best), "--root",
                                    str(root), "--device", "cpu", "--progress", "none"])  # fmt: skip
    assert res.exit_code == 1 and "NOT verified" in res.output and "Traceback" not in res.output


def test_several_seeds_write_an_aggregate_with_a_band(seg_home, tmp_path):
    config = _config(seg_home, tmp_path, model="unet", recipe_overrides={"epochs": 1, "batch_size": 2,
                                                                          "eval_batch_size": 2})  # fmt: skip
    outcomes, files = run_segmentation_seeds(config, [0, 1], "1")
    results = [o.result for o in outcomes]
    assert [r.seed for r in results] == [0, 1] and results[0].per_scale != results[1].per_scale
    doc = json.loads(files["aggregate"].read_text())
    assert doc["seeds"] == [0, 1] and doc["train_scales"] == [1.0]
    for i, p in enumerate(doc["per_scale"]):
        assert (p["mean_iou"], p["std_iou"]) == metrics.mean_std([r.per_scale[i].mean_iou for r in results])
    assert (doc["mean_miou"]["mean"], doc["mean_miou"]["std"]) == metrics.mean_std(
        [r.summary.mean_miou for r in results]
    )
    assert files["miou_png"].stat().st_size > 1000 and files["miou_svg"].is_file()
    rows = files["miou_csv"].read_text().splitlines()
    assert rows[0].endswith("scale,mean_iou,std_iou,n_seeds") and len(rows) == 3
    assert all(r.endswith(",2") for r in rows[1:])
    assert "fill" in files["miou_svg"].read_text()  # the band (fill_between) is drawn
    text = segmentation.format_seed_aggregate(files)
    assert "Over seeds [0, 1]: mean mIoU" in text and " ± " in text


def test_amp_on_cpu_and_ddp_are_clear_errors(seg_home, tmp_path):
    with pytest.raises(ScalebenchError, match="--amp needs --device cuda"):
        run_segmentation(_config(seg_home, tmp_path, amp=True), [1.0], progress=False)
    with pytest.raises(ScalebenchError, match="not implemented for segmentation"):
        run_segmentation(_config(seg_home, tmp_path, distributed=True), [1.0], progress=False)


def test_a_model_and_a_dataset_of_different_tracks_name_both(tmp_path):
    """The task of a build is its manifest's format (never its id): a built classification set is refused by the
    segmentation track and a segmentation model is refused on it."""
    build_dataset("fashion-mnist", root=tmp_path, embedded=True, limit=2, scales=[1.0], progress=False)
    out = ["--out", str(tmp_path / "runs"), "--root", str(tmp_path), "--device", "cpu"]
    res = CliRunner().invoke(main, ["evaluate", "--model", "cnn", "--dataset", "fashion-mnist-embedded-limit2",
                                    "--train-scales", "2", *out])  # fmt: skip
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert "dataset 'fashion-mnist-embedded-limit2' is not a segmentation build" in res.output
    assert "drop --train-scales" in res.output
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
    assert (
        segmentation.parse_train_scales("1+2+3+4")
        == segmentation.parse_train_scales("1,2,3,4")
        == [1, 2, 3, 4]
    )
    assert segmentation.parse_train_scales(None) == [1.0] and segmentation.parse_train_scales([4]) == [4.0]
    with pytest.raises(ScalebenchError, match=r"--train-scales must be a positive number, got 'x'"):
        segmentation.parse_train_scales("1+x")
