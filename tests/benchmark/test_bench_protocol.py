"""The protocol end to end on stand-ins: outputs, schema, resume equality, BN check, test-set isolation, errors."""

from __future__ import annotations

import json

import pytest
import torch
from bench_fakes import FakeBuilt, TinyNet
from click.testing import CliRunner

from scalebench.benchmark.config import config_from_options, make_config
from scalebench.benchmark.engine import Loop, check_state_unchanged, select_device, state_snapshot
from scalebench.benchmark.protocol import format_summary, run, run_seeds
from scalebench.benchmark.tasks import TASKS
from scalebench.checks import ScalebenchError
from scalebench.results import SCHEMA_VERSION, load_results
from scalebench.results.recipe import Recipe

TINY = {"epochs": 2, "batch_size": 8, "micro_batch_size": 4, "eval_batch_size": 8, "lr": 0.05}


def _config(tmp_path, **kw):
    fields = dict(
        model="_bench_tiny_sc", dataset="tiny", out=tmp_path / "runs", device="cpu", progress="none",
        recipe_overrides=TINY, num_workers=0,
    )  # fmt: skip
    fields.update(kw)
    return make_config(**fields)


def test_end_to_end_outputs_validate(tmp_path, fake_built):
    outcome = run(_config(tmp_path, scales=[1.0, 2.0]))
    result = load_results(outcome.run_dir / "results.json")  # validates against the schema
    assert result == outcome.result
    assert [r.scale for r in result.per_scale] == [1.0, 2.0]
    assert all(r.total == 16 for r in result.per_scale)
    assert result.scale_selection is not None
    assert [sum(row) for row in result.scale_selection.counts] == [16, 16]
    assert len(result.scale_selection.channel_sigmas) == 3
    assert result.training.best_epoch in (1, 2) and len(result.training.history) == 2
    # FLOPs per image are recorded (schema 1.1), training counts forward and backward
    assert result.model.train_flops_per_image > result.model.inference_flops_per_image > 0
    for name in ("curve.png", "curve.svg", "curve.csv", "selection.png", "selection.svg", "selection.csv",
                 "results.csv", "config.json", "best.safetensors", "done"):  # fmt: skip
        path = outcome.files[name]
        assert path.is_file() and path.stat().st_size > 0, name
    assert outcome.files["curve.png"].read_bytes()[:4] == b"\x89PNG"
    assert outcome.files["selection.png"].read_bytes()[:4] == b"\x89PNG"
    assert (outcome.run_dir / "done").is_file()
    assert (outcome.run_dir / "best.safetensors").is_file()
    lines = outcome.files["results.csv"].read_text().splitlines()
    assert lines[0] == "model,seed,scale,metric,value"
    assert "_bench_tiny_sc,0,1.0,correct," + str(result.per_scale[0].correct) in lines
    assert str(outcome.files["selection.png"]) in format_summary(outcome)
    # The schema's json export of the same file validates too.
    assert (
        json.loads((outcome.run_dir / "results.json").read_text())["schema_version"]
        == SCHEMA_VERSION
        == "1.3"
    )
    # A second launch reuses the finished run instead of training again, with the same files.
    again = run(_config(tmp_path, scales=[1.0, 2.0]))
    assert again.reused and again.result == result and again.files == outcome.files


def test_test_sets_are_read_only_after_training(tmp_path, fake_built):
    run(_config(tmp_path))
    reads = [tag[0] for tag in fake_built.log]
    first_test = reads.index("test")
    assert "train" not in reads[first_test:] and "val" not in reads[first_test:]
    assert {tag[1] for tag in fake_built.log if tag[0] == "test"} == {0.5, 1.0, 2.0}


def test_resume_gives_equal_final_metrics(tmp_path, fake_built):
    cfg = dict(recipe_overrides={**TINY, "epochs": 3, "augmentation": "hflip+translate"}, scales=[0.5, 1.0])
    full = run(_config(tmp_path / "a", **cfg))
    stopped = run(_config(tmp_path / "b", stop_after_epoch=1, **cfg))
    assert stopped.result is None and stopped.stopped_after_epoch == 1
    with pytest.raises(ScalebenchError, match="Pass --resume to continue"):
        run(_config(tmp_path / "b", **cfg))
    resumed = run(_config(tmp_path / "b", resume=True, **cfg))
    assert resumed.run_dir.name == full.run_dir.name
    assert resumed.result.per_scale == full.result.per_scale
    assert resumed.result.scale_selection == full.result.scale_selection
    assert [h.train_loss for h in resumed.result.training.history] == [
        h.train_loss for h in full.result.training.history
    ]
    assert resumed.result.checkpoint_sha256 == full.result.checkpoint_sha256


def test_testing_leaves_batchnorm_statistics_unchanged():
    built = FakeBuilt()
    model = TinyNet(num_classes=2, in_channels=1)
    model.train()
    x, _ = built.dataset("train").read_batch(list(range(16)))
    model(x)  # moves the running statistics away from their initial values
    model.eval()
    before = state_snapshot(model)
    assert not torch.equal(before["bn.running_mean"], torch.zeros(4))
    task = TASKS["classification"]
    loop = Loop(Recipe(epochs=1, batch_size=8, eval_batch_size=8, lr=0.1), torch.device("cpu"))

    def evaluate():
        return task.evaluate(model, built.dataset("test", 2.0), 2.0, n=16, loop=loop, build=built, extras={})

    record, _ = evaluate()
    assert record.total == 16 and record.scale == 2.0
    check_state_unchanged(model, before, "testing")  # does not raise
    model.train()
    with pytest.raises(ScalebenchError, match="eval mode"):
        evaluate()
    model.eval()
    model.bn.running_mean += 1
    with pytest.raises(ScalebenchError, match=r"state changed during testing: bn.running_mean"):
        check_state_unchanged(model, before, "testing")


def test_model_updating_bn_in_eval_fails_loudly(tmp_path, fake_built):
    with pytest.raises(
        ScalebenchError, match=r"changed during validation: bn\.running_mean, bn\.running_var"
    ):
        run(_config(tmp_path, model="_bench_leaky_bn"))


def test_unknown_model(tmp_path, fake_built):
    with pytest.raises(ScalebenchError, match=r"Unknown model '_bench_tiny_xx'\. Did you mean '_bench_tiny"):
        run(_config(tmp_path, model="_bench_tiny_xx"))


def test_dataset_never_built(tmp_path):
    with pytest.raises(ScalebenchError, match=r"has not been built.*run `scalebench datasets build"):
        run(_config(tmp_path, dataset="fashion-mnist", root=tmp_path / "empty-home"))


def test_scales_missing_from_built_set(tmp_path, fake_built):
    with pytest.raises(ScalebenchError, match=r"Scale\(s\) 3 are not in the built set of 'tiny'.*0\.5, 1, 2"):
        run(_config(tmp_path, scales=[1.0, 3.0]))
    with pytest.raises(ScalebenchError, match="must include the training scale 1"):
        run(_config(tmp_path, scales=[2.0]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when no GPU is present")
def test_cuda_without_gpu(tmp_path, fake_built):
    with pytest.raises(ScalebenchError, match=r"--device cuda was requested but no CUDA GPU is available"):
        run(_config(tmp_path, device="cuda"))
    assert select_device("auto").type == "cpu"


def test_bad_options_get_one_clear_error(tmp_path, fake_built):
    with pytest.raises(ScalebenchError, match=r"Unknown training option\(s\) \['epoch'\]"):
        run(_config(tmp_path, recipe_overrides={"epoch": 3}))
    with pytest.raises(ScalebenchError, match="--amp needs --device cuda"):
        run(_config(tmp_path, amp=True))
    with pytest.raises(ScalebenchError, match="evaluate option 'seed'"):
        make_config(model="x", seed=-1)
    with pytest.raises(ScalebenchError, match=r"--seeds 0,1,0 repeats seed\(s\) 0: .* Give each seed once"):
        config_from_options(model="x", seeds="0,1,0")


def test_seeds_curve_and_paper_preset(tmp_path, fake_built):
    outcomes, files = run_seeds(
        _config(tmp_path, model="_bench_tiny", preset="paper", recipe_overrides={"epochs": 1}), [0, 1]
    )
    assert [o.result.seed for o in outcomes] == [0, 1]
    assert outcomes[0].result.training.recipe["optimizer"] == "sgd"  # from the card's paper_training
    assert outcomes[0].result.scale_selection is None and "selection_png" not in outcomes[0].files
    rows = files["curve.csv"].read_text().splitlines()
    assert rows[0].endswith("n_seeds") and rows[1].endswith(",2")
    assert files["curve.png"].is_file() and files["curve.svg"].is_file()
    assert files["curve.png"].parent.name.startswith("_bench_tiny__tiny__seeds-0-1__")
    assert {line.split(",")[1] for line in files["results.csv"].read_text().splitlines()[1:]} == {"0", "1"}


def test_cli_evaluate_smoke(tmp_path, fake_built):
    from scalebench.cli import main

    args = ["evaluate", "--model", "_bench_tiny", "--dataset", "tiny", "--device", "cpu", "--epochs", "1",
            "--batch-size", "8", "--scales", "0.5,1", "--out", str(tmp_path / "cli"), "--limit", "12"]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "SMOKE RUN" in res.output and "results:" in res.output
    res = CliRunner().invoke(
        main, ["evaluate", "--model", "nope", "--dataset", "tiny", "--out", str(tmp_path)]
    )
    assert res.exit_code != 0 and "Unknown model 'nope'" in res.output and "Traceback" not in res.output


def test_verify_reevaluates_checkpoint(tmp_path, fake_built, monkeypatch):
    from scalebench.benchmark.verify import verify_run
    from scalebench.results import ClassificationScaleResult, build_summary, save_results

    outcome = run(_config(tmp_path, scales=[1.0, 2.0]))
    best = outcome.run_dir / "best.safetensors"
    report = verify_run(outcome.files["results.json"], best, device="cpu", progress="none")
    assert report.mismatches == [] and report.verified.evaluated_by == "verified"
    assert load_results(report.written).per_scale == outcome.result.per_scale
    # who verified, when and where is recorded (schema 1.1); $SCALEBENCH_VERIFIER names the verifier
    monkeypatch.setenv("SCALEBENCH_VERIFIER", "CI job 42")
    again = verify_run(
        outcome.files["results.json"], best, device="cpu", progress="none", out=tmp_path / "v2.json"
    )
    prov = load_results(again.written).verification
    assert prov is not None and prov.verified_by == "CI job 42" and prov.environment.device == "cpu"
    assert prov.verified_at.endswith("+00:00") and len(prov.source_results_sha256) == 64
    assert report.verified.verification.verified_by  # user@host without the variable
    with pytest.raises(ValueError, match="verification is recorded"):
        type(r := outcome.result).model_validate({**r.model_dump(), "verification": prov.model_dump()})

    # Counts that the checkpoint does not reproduce are reported, and nothing is marked verified.
    r = outcome.result
    first = r.per_scale[0]
    c = first.correct + 1 if first.correct < first.total else first.correct - 1
    per_scale = [ClassificationScaleResult(scale=first.scale, correct=c, total=first.total, accuracy=c / first.total),
                 *r.per_scale[1:]]  # fmt: skip
    forged = r.model_copy(update={"per_scale": per_scale, "summary": build_summary(per_scale, 1.0)})
    save_results(forged, tmp_path / "forged.json")
    report = verify_run(tmp_path / "forged.json", best, device="cpu", progress="none")
    assert report.verified is None and report.mismatches[0].startswith(
        f"scale 1: recorded correct {c}, total 16"
    )

    other = tmp_path / "other.safetensors"
    other.write_bytes(best.read_bytes() + b" ")
    with pytest.raises(ScalebenchError, match=r"has sha256 .* but .* records"):
        verify_run(outcome.files["results.json"], other, device="cpu")


def test_an_invalid_model_config_leaves_no_run_directory(tmp_path, fake_built):
    """D16: every check (and the model build) happens before the run directory is created."""
    for model, overrides, message in [
        (
            "cnn",
            {"global_pool": "median"},
            r"global_pool='median' for model 'cnn': expected one of 'avg', 'max'",
        ),
        ("cnn", {"widths": [8, 8], "pool_after": [5]}, r"pool_after lists layer indices \[5\] outside 0..1"),
        ("cnn", {"dropout": -1}, r"dropout=-1 for model 'cnn': expected a finite number in \[0, 1\)"),
        ("_bench_tiny", {"widht": 8}, r"Unknown config key 'widht' for model '_bench_tiny'"),
    ]:
        with pytest.raises(ScalebenchError, match=message):
            run(_config(tmp_path, model=model, model_config_overrides=overrides))
        assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("dataset", ["../../home/datasets/tiny", "/abs/tiny", ".tiny", "Tiny", "a/b"])
def test_dataset_must_be_a_build_id_not_a_path(tmp_path, fake_built, dataset):
    """D20: --dataset names a build under the home, never a path."""
    with pytest.raises(
        ScalebenchError, match=r"evaluate option 'dataset': must be a dataset build id .* not a path"
    ):
        _config(tmp_path, dataset=dataset)
    assert not (tmp_path / "runs").exists()


def test_an_edited_finished_run_is_refused_and_a_reused_one_says_why(tmp_path, fake_built):
    """D14: a finished run is reused only while results.json has the sha256 its done marker records."""
    cfg = _config(tmp_path, model="_bench_tiny", recipe_overrides={**TINY, "epochs": 1}, scales=[1.0])
    first = run(cfg)
    again = run(cfg)
    assert again.reused and again.run_hash == first.run_hash and again.result == first.result
    summary = format_summary(again)
    assert (
        f"reused: {first.run_dir} is a finished run of the same resolved config (run hash {first.run_hash})"
        in (summary)
    )
    results = first.run_dir / "results.json"
    results.write_text(
        results.read_text().replace('"seed": 0', '"seed": 0 ')
    )  # any edit, even a harmless one
    with pytest.raises(
        ScalebenchError,
        match=r"results.json has sha256 [0-9a-f]{64}, but .*done records [0-9a-f]{64}: the results were edited after "
        r"the run finished. Restore the original results.json, or delete .* to run again",
    ):
        run(cfg)


def test_an_unwritable_run_folder_is_one_error(tmp_path, fake_built, monkeypatch):
    """D11 (E26): an operating-system error while writing names the file and says what to do."""
    import errno

    from scalebench.benchmark import protocol

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(protocol, "write_json_atomic", read_only)
    with pytest.raises(
        ScalebenchError, match=r"Cannot write .*config.json: Read-only file system \(EROFS\); make"
    ):
        run(_config(tmp_path, model="_bench_tiny"))


def test_a_recorded_recipe_is_validated_by_the_rules_of_the_options():
    from scalebench.benchmark.config import Recipe, validate_recipe

    recipe = validate_recipe({"epochs": 1, "batch_size": 8, "lr": 0.1, "micro_batch_size": 4})
    assert isinstance(recipe, Recipe) and recipe.eval_batch_size == 64 and recipe.micro_batch_size == 4
    for bad, message in [
        (
            {"eval_batch_size": 0},
            r"run.json: training.recipe field 'eval_batch_size': Input should be greater",
        ),
        ({"eval_batch_size": "abc"}, r"field 'eval_batch_size': Input should be a valid integer"),
        ({"micro_batch_size": -5}, r"field 'micro_batch_size': Input should be greater than or equal to 1"),
        ({"lr": float("nan")}, r"field 'lr'"),
        ({"epoch": 3}, r"field 'epoch': Extra inputs are not permitted"),
    ]:
        with pytest.raises(ScalebenchError, match=message):
            validate_recipe(
                {"epochs": 1, "batch_size": 8, "lr": 0.1, **bad}, source="run.json: training.recipe"
            )
    with pytest.raises(ScalebenchError, match=r"recipe must be a JSON object of training options"):
        validate_recipe([1, 2])


def test_the_task_is_the_builds_and_a_training_set_other_than_the_default_names_the_run(tmp_path, fake_built):
    """The task comes from the build (``open_build(...).task``), never from its id; a training set the build
    lacks is refused before anything is written; a non-default set is in the run hash and the run directory."""
    from scalebench.benchmark.protocol import resolve_run
    from scalebench.benchmark.tasks import task_of

    assert task_of(fake_built.task) is TASKS["classification"]
    with pytest.raises(
        ScalebenchError, match=r"Unknown task 'detection'; scalebench runs classification, segm"
    ):
        task_of("detection")
    with pytest.raises(ScalebenchError, match=r"no training set with scales \(2\.0,\)"):
        run(_config(tmp_path, train_scale=[2.0]))
    assert not (tmp_path / "runs").exists()
    run_hash, run_dir = resolve_run(_config(tmp_path))
    assert run_dir.name == f"_bench_tiny_sc__tiny__seed0__{run_hash}"
    fake_built.train_keys = ((1.0,), (2.0,))
    other_hash, other = resolve_run(_config(tmp_path, train_scale=[2.0]))
    assert other.name == f"_bench_tiny_sc__tiny__train2__seed0__{other_hash}" and other_hash != run_hash
    assert resolve_run(_config(tmp_path, train_scale=[1.0])) == (run_hash, run_dir)  # the default set, named


def test_a_limit_that_leaves_out_classes_is_reported(tmp_path, fake_built):
    from scalebench.benchmark.engine import missing_classes
    from scalebench.cli import main

    train = fake_built.dataset("train")
    assert (
        missing_classes(train, 1) == [1]
        and missing_classes(train, 2) == []
        and missing_classes(train, 99) == []
    )
    args = ["evaluate", "--model", "_bench_tiny", "--dataset", "tiny", "--device", "cpu", "--epochs", "1",
            "--batch-size", "8", "--scales", "1", "--out", str(tmp_path), "--limit", "1", "--progress", "plain"]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    warned = [line for line in res.output.splitlines() if "warning: --limit 1" in line]
    assert len(warned) == 2 and "class(es) [1]" in warned[0] and "training" in warned[0], res.output
