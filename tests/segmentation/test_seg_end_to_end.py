"""A tiny end-to-end run through the command line: build, evaluate (U-Net and N-Jet U-Net), leaderboard table."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from scalebench.cli import main
from scalebench.results import load_segmentation_results


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    runner = CliRunner()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads fighting on a shared CPU only slow them down
    out = runner.invoke(main, ["build-datasets", "--dataset", "fashion-mnist-seg", "--embedded", "--limit", "1",
                               "--root", str(root), "--quiet"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "fashion-mnist-seg-embedded-limit1" in out.output
    runs = {}
    # --train-scale 4, and the alias --train-scales 1,2,3,4 of the mixed set 1+2+3+4
    for model, train, extra in (("njet-unet", ["--train-scale", "4"], ["--scales", "1,4"]),
                                ("unet", ["--train-scales", "1,2,3,4"], [])):  # fmt: skip
        res = runner.invoke(main, ["evaluate", "--model", model, "--dataset", "fashion-mnist-seg-embedded-limit1",
                                   *train, "--epochs", "1", "--root", str(root), "--out",
                                   str(root / "runs"), "--device", "cpu", "--progress", "none", *extra])  # fmt: skip
        assert res.exit_code == 0, res.output
        assert "  mean_iou " in res.output and "encoder receptive field" in res.output
        (runs[model],) = (root / "runs").glob(f"{model}__*/results.json")
    assert runs["unet"].parent.name.startswith(
        "unet__fashion-mnist-seg-embedded-limit1__train1+2+3+4__seed0__"
    )
    torch.set_num_threads(threads)
    return root, runs, runner


def test_results_file_is_valid_and_complete(e2e):
    _, runs, _ = e2e
    nj = load_segmentation_results(runs["njet-unet"])
    assert nj.task == "segmentation" and nj.dataset.train_scales == [4.0]
    assert [p.scale for p in nj.per_scale] == [1.0, 4.0]
    assert all(len(p.intersections) == 10 and p.images == 1 for p in nj.per_scale)
    assert [p.scale for p in load_segmentation_results(runs["unet"]).per_scale] == [1.0, 2.0, 3.0, 4.0]
    assert len(nj.learned_sigmas) == 10 and all(s > 0 for s in nj.learned_sigmas)
    assert nj.encoder_receptive_field >= 32 and nj.training.recipe["optimizer"] == "adam"
    assert nj.training.class_weights[0] < max(nj.training.class_weights)  # background is the most frequent
    un = load_segmentation_results(runs["unet"])
    assert (
        un.dataset.train_scales == [1.0, 2.0, 3.0, 4.0]
        and un.learned_sigmas == []
        and un.encoder_receptive_field == 32
    )


def test_run_writes_figures_and_is_not_rerun(e2e):
    root, runs, runner = e2e
    run_dir = runs["njet-unet"].parent
    for stem in ("miou_vs_scale", "sigmas", "triptych"):
        assert (run_dir / f"{stem}.png").stat().st_size > 1000 and (run_dir / f"{stem}.svg").is_file()
    assert (run_dir / "done").is_file() and (run_dir / "best.safetensors").is_file()
    assert "[reused]" in runner.invoke(main, ["evaluate", "--model", "njet-unet", "--dataset",
        "fashion-mnist-seg-embedded-limit1", "--train-scale", "4", "--epochs", "1", "--root", str(root),
        "--out", str(root / "runs"), "--device", "cpu", "--progress", "none", "--scales", "1,4"]).output  # fmt: skip


def test_done_holds_the_results_digest_and_an_edited_run_is_not_reused(e2e):
    """Reliability probe D14 for segmentation: a finished run whose results were edited is refused on reuse;
    D16: an invalid model config leaves no run folder."""
    import hashlib

    root, runs, runner = e2e
    run_dir = runs["njet-unet"].parent
    original = runs["njet-unet"].read_bytes()
    assert (run_dir / "done").read_text().strip() == hashlib.sha256(original).hexdigest()
    args = ["evaluate", "--model", "njet-unet", "--dataset", "fashion-mnist-seg-embedded-limit1", "--train-scale",
            "4", "--epochs", "1", "--root", str(root), "--out", str(root / "runs"), "--device", "cpu", "--progress",
            "none", "--scales", "1,4"]  # fmt: skip
    try:
        runs["njet-unet"].write_bytes(original.replace(b'"seed": 0', b'"seed": 0 '))
        res = runner.invoke(main, args)
        assert (
            res.exit_code == 1
            and "edited after the run finished" in res.output
            and "Traceback" not in res.output
        )
    finally:
        runs["njet-unet"].write_bytes(original)
    before = sorted(p for p in (root / "runs").rglob("*") if p.is_dir())
    res = runner.invoke(main, [*args[:6], "2", *args[7:], "--model-config", "width=0"])
    assert res.exit_code == 1 and res.output.startswith("Error:")
    assert sorted(p for p in (root / "runs").rglob("*") if p.is_dir()) == before


def test_a_tampered_results_file_is_rejected(e2e, tmp_path):
    _, runs, _ = e2e
    data = json.loads(runs["unet"].read_text())
    data["per_scale"][0]["mean_iou"] = min(1.0, data["per_scale"][0]["mean_iou"] + 0.25)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(Exception, match="mean_iou"):
        load_segmentation_results(bad)


def test_leaderboard_segmentation_table(e2e, tmp_path):
    _, runs, runner = e2e
    res = runner.invoke(main, ["leaderboard", "segmentation", str(runs["unet"]), str(runs["njet-unet"]),
                               "--out", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 0, res.output
    md = (tmp_path / "SEGMENTATION.md").read_text()
    assert "## Training objects at s = 4 " in md and "## Training objects at s = 1+2+3+4 " in md
    nj = load_segmentation_results(runs["njet-unet"])
    assert (
        f"| njet-unet | {nj.model.num_params:,} | {nj.encoder_receptive_field} | {nj.per_scale[0].mean_iou:.4f}"
        in md
    )
    assert (tmp_path / "miou_vs_scale.png").is_file() and (tmp_path / "sigmas.png").is_file()


def test_errors_are_one_line(e2e):
    root, _, runner = e2e
    res = runner.invoke(main, ["evaluate", "--model", "cnn", "--dataset", "fashion-mnist-seg-embedded-limit1",
                               "--root", str(root), "--out", str(root / "runs"), "--device", "cpu"])  # fmt: skip
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert (
        "'cnn' is a classification model, but dataset 'fashion-mnist-seg-embedded-limit1' is a segmentation"
        in (res.output)
    )
    out = ["--root", str(root), "--out", str(root / "runs")]
    res = runner.invoke(main, ["evaluate", "--model", "unet", "--dataset", "fashion-mnist-seg-embedded-limit1",
                               "--train-scale", "3", *out])  # fmt: skip
    assert res.exit_code != 0 and "built training sets: 1, 2, 4, 1+2+3+4" in res.output
    res = runner.invoke(main, ["evaluate", "--model", "unet", "--dataset", "fashion-mnist-seg-embedded-limit1",
                               "--train-scale", "4", "--train-scales", "4", *out])  # fmt: skip
    assert res.exit_code != 0 and "not both" in res.output
