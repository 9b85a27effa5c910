"""Segmentation results in the store: submission checks, SEGMENTATION section of the leaderboard, validation."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from lb_factories import KNOWN, make_run, run_text, snapshot

from scalebench.checks import ScalebenchError
from scalebench.cli import main
from scalebench.leaderboard import build_leaderboard, submit_runs, validate_store
from scalebench.leaderboard.segmentation import segmentation_csv, segmentation_markdown, segmentation_rows
from scalebench.leaderboard.validate import KnownBuild
from scalebench.results import (
    Environment,
    ModelInfo,
    SegmentationDatasetInfo,
    SegmentationEpoch,
    SegmentationRunResult,
    SegmentationScaleResult,
    SegmentationTraining,
    Timings,
    build_segmentation_summary,
    metrics,
    results_to_json,
)

SEG_MANIFEST = "c" * 64
SEG_SCALES = (1.0, 2.0, 3.0, 4.0)
SEG_TRAIN_SETS = ((1.0,), (2.0,), (4.0,), (1.0, 2.0, 3.0, 4.0))
SEG_KNOWN = (*KNOWN, KnownBuild("fashion-mnist-seg", "1.0.0", SEG_MANIFEST, SEG_SCALES, 1.0, SEG_TRAIN_SETS))


def make_seg_run(
    seed: int = 0, *, model: str = "njet-unet", train_scales=(4.0,), **changes
) -> SegmentationRunResult:
    """A valid segmentation run on the test's canonical build; counts vary with the seed."""
    per_scale = []
    for k, s in enumerate(SEG_SCALES):
        inter = [10 * (k + 1) + seed + c for c in range(10)]
        union = [100 + c for c in range(10)]
        per_scale.append(SegmentationScaleResult(scale=s, intersections=inter, unions=union,
                                                 mean_iou=metrics.mean_iou(inter, union), pixels=5000, images=1000))  # fmt: skip
    fields = dict(
        created_at="2026-01-01T00:00:00Z",
        model=ModelInfo(name=model, config={"width": 64}, config_hash=f"{seed:012x}", card={"name": model},
                        num_params=1255765),
        dataset=SegmentationDatasetInfo(name="fashion-mnist-seg", build_id="fashion-mnist-seg", version="1.0.0",
                                        manifest_sha256=SEG_MANIFEST, train_scales=list(train_scales),
                                        canvas=(224, 224), channels=1, num_classes=11, ignore_index=255,
                                        train_size=10000, val_size=1000),
        seed=seed,
        training=SegmentationTraining(preset="paper", recipe={"optimizer": "adam", "lr": 1e-4, "epochs": 50, "batch_size": 8},
                                      class_weights=[0.1] + [1.0] * 10, best_epoch=1, best_val_mean_iou=0.5,
                                      history=[SegmentationEpoch(epoch=1, lr=1e-4, train_loss=1.0, val_mean_iou=0.5,
                                                                 sigmas=[1.0, 1.5], seconds=1.0)]),
        per_scale=per_scale,
        summary=build_segmentation_summary(per_scale),
        learned_sigmas=[1.0, 1.5],
        encoder_receptive_field=60,
        checkpoint_sha256="d" * 64,
        timings=Timings(train_seconds=1.0, eval_seconds=1.0, total_seconds=2.0, train_images_per_second=1.0,
                        eval_images_per_second=1.0),
        environment=Environment(scalebench_version="0.1.0", torch_version="2.14.1", python_version="3.12",
                                platform="linux", device="cpu", device_name="cpu", num_threads=2, amp=False,
                                deterministic=True),
    )  # fmt: skip
    fields.update(changes)
    return SegmentationRunResult(**fields)


def _store(tmp_path, seeds=(0, 1, 2)):
    store = tmp_path / "results"
    items = [(f"seg{s}.json", results_to_json(make_seg_run(s))) for s in seeds]
    items += [
        ("unet.json", results_to_json(make_seg_run(0, model="unet", train_scales=(1.0, 2.0, 3.0, 4.0))))
    ]
    items += [("cls.json", run_text(make_run(seed=0)))]
    outcomes = submit_runs(items, store, known=SEG_KNOWN)
    return store, outcomes


def test_submit_stores_segmentation_runs_beside_classification(tmp_path):
    store, outcomes = _store(tmp_path)
    paths = sorted(o.path.relative_to(store).as_posix() for o in outcomes)
    assert [p.split("/")[:2] for p in paths].count(["fashion-mnist-seg", "njet-unet"]) == 3
    seeds = [o.path for o in outcomes if o.path.parts[-3] == "njet-unet"]
    assert len({p.parent for p in seeds}) == 1  # the seeds of one config share a folder (seed-free hash)
    report = validate_store(store, known=SEG_KNOWN)
    assert report.ok, report.problems
    assert sorted(e.result.task for e in report.entries) == ["classification"] + ["segmentation"] * 4


def test_leaderboard_renders_the_segmentation_section(tmp_path):
    store, _ = _store(tmp_path)
    paths = build_leaderboard(store, tmp_path / "site", known=SEG_KNOWN)
    md = paths["markdown"].read_text()
    assert "## Segmentation leaderboard" in md and "### Training objects at s = 4 (fashion-mnist-seg)" in md
    runs = [make_seg_run(s) for s in range(3)]
    m, sd = metrics.mean_std([r.per_scale[0].mean_iou for r in runs])
    mm, msd = metrics.mean_std([r.summary.mean_miou for r in runs])
    row = next(line for line in md.splitlines() if line.startswith("| njet-unet |"))
    assert f"| {m:.4f} ± {sd:.4f} |" in row and f"| {mm:.4f} ± {msd:.4f} |" in row
    assert "| 3 | 50 | self-reported | [0](runs/fashion-mnist-seg/njet-unet/" in row
    unet = next(line for line in md.splitlines() if line.startswith("| unet |"))
    assert " ± " not in unet and "### Training objects at s = 1+2+3+4" in md
    html = paths["html"].read_text()
    assert 'id="segmentation"' in html and f"{m:.4f} ± {sd:.4f}" in html and 'href="segmentation.csv"' in html
    csv_rows = paths["segmentation_csv"].read_text().splitlines()
    assert csv_rows[0].startswith("train_scales,build_id,model,config_hash,seeds") and len(csv_rows) == 1 + 8
    assert "fashion-mnist-seg" not in paths["csv"].read_text()  # not ranked with classification entries
    assert json.loads(paths["json"].read_text())["entries"][0]["dataset"] == "fashion-mnist"


def test_a_store_without_segmentation_runs_has_no_section(tmp_path):
    store = tmp_path / "results"
    submit_runs([("a.json", run_text(make_run(seed=0)))], store, known=KNOWN)
    paths = build_leaderboard(store, tmp_path / "site", known=KNOWN)
    assert "Segmentation" not in paths["markdown"].read_text() and "segmentation_csv" not in paths
    assert 'id="segmentation"' not in paths["html"].read_text()


def test_tampered_miou_and_non_canonical_runs_are_rejected(tmp_path):
    store, _ = _store(tmp_path, seeds=(0,))
    before = snapshot(store)
    doc = json.loads(results_to_json(make_seg_run(5)))
    doc["per_scale"][1]["mean_iou"] += 0.01
    with pytest.raises(ScalebenchError, match=r"bad\.json .*per_scale\.1.*mean_iou"):
        submit_runs([("bad.json", json.dumps(doc))], store, known=SEG_KNOWN)
    cases = [
        (make_seg_run(6, train_scales=(3.0,)), "training scale 3 is not a canonical training set"),
        (make_seg_run(7, limit=10000), "smoke run"),
        (make_seg_run(8, per_scale=make_seg_run(8).per_scale[:3],
                      summary=build_segmentation_summary(make_seg_run(8).per_scale[:3])), r"missing \[4\]"),
        (make_seg_run(0), "duplicates the stored run"),
    ]  # fmt: skip
    for run, message in cases:
        with pytest.raises(ScalebenchError, match=message):
            submit_runs([("x.json", results_to_json(run))], store, known=SEG_KNOWN)
    with pytest.raises(ScalebenchError, match="no canonical build"):
        submit_runs([("y.json", results_to_json(make_seg_run(9)))], store, known=KNOWN)
    assert snapshot(store) == before


def test_validate_reports_an_edited_segmentation_entry(tmp_path):
    store, outcomes = _store(tmp_path, seeds=(0,))
    path = next(o.path for o in outcomes if o.path.parts[-3] == "njet-unet")
    doc = json.loads(path.read_text())
    doc["summary"]["mean_miou"] = 0.99
    path.write_text(json.dumps(doc))
    report = validate_store(store, known=SEG_KNOWN)
    assert len(report.problems) == 1 and "summary.mean_miou" in report.problems[0]


def test_cli_submit_validate_and_build(tmp_path, monkeypatch):
    monkeypatch.setattr("scalebench.leaderboard.validate.known_builds", lambda: SEG_KNOWN)
    src = tmp_path / "run.json"
    src.write_text(results_to_json(make_seg_run(0)))
    runner = CliRunner()
    store = tmp_path / "results"
    res = runner.invoke(main, ["submit", str(src), "--store", str(store)])
    assert res.exit_code == 0 and "added:" in res.output, res.output
    res = runner.invoke(main, ["leaderboard", "validate", "--store", str(store)])
    assert res.exit_code == 0 and "1 valid entries, 0 problem(s)" in res.output, res.output
    res = runner.invoke(main, ["leaderboard", "build", "--store", str(store), "--out", str(tmp_path / "s")])
    assert (
        res.exit_code == 0 and "Segmentation leaderboard" in (tmp_path / "s" / "LEADERBOARD.md").read_text()
    )


def test_loose_segmentation_table_averages_seeds():
    """Several seeds of one config are one row (mean ± std), not one row per seed."""
    rows = segmentation_rows([make_seg_run(s) for s in (0, 1, 2)])
    assert len(rows) == 1 and rows[0]["seeds"] == 3 and rows[0]["seed_list"] == [0, 1, 2]
    md = segmentation_markdown(rows)
    assert (
        md.startswith("# Segmentation leaderboard") and "## Training objects at s = 4" in md and " ± " in md
    )


def test_the_receptive_field_of_every_seed_is_shown():
    runs = [make_seg_run(s, encoder_receptive_field=rf) for s, rf in enumerate((60, 76, 72))]
    rows = segmentation_rows(runs)
    row = next(line for line in segmentation_markdown(rows).splitlines() if line.startswith("| njet-unet |"))
    assert row.startswith("| njet-unet | 1,255,765 | 60–76 |"), row
    line = segmentation_csv(rows).splitlines()[1].split(",")
    assert line[4:7] == ["0 1 2", "1255765", "60 76 72"]
    one = segmentation_markdown(segmentation_rows(runs[:1]))
    assert "| njet-unet | 1,255,765 | 60 |" in one


def test_the_page_shows_the_receptive_field_range(tmp_path):
    store = tmp_path / "results"
    runs = [make_seg_run(s, encoder_receptive_field=rf) for s, rf in enumerate((60, 76, 72))]
    submit_runs([(f"s{i}.json", results_to_json(r)) for i, r in enumerate(runs)], store, known=SEG_KNOWN)
    html = build_leaderboard(store, tmp_path / "site", known=SEG_KNOWN)["html"].read_text()
    assert '<td class="num">60–76</td>' in html and "[60, 76, 72]" not in html


def test_a_store_of_segmentation_runs_only_is_not_reported_empty(tmp_path):
    store = tmp_path / "results"
    submit_runs([("seg0.json", results_to_json(make_seg_run(0)))], store, known=SEG_KNOWN)
    paths = build_leaderboard(store, tmp_path / "site", known=SEG_KNOWN)
    md, html = paths["markdown"].read_text(), paths["html"].read_text()
    assert "## Segmentation leaderboard" in md and 'id="segmentation"' in html
    assert "No results yet" not in md and "No results yet" not in html
