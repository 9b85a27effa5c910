"""The probe's evaluate (E1-E28) and verification (V1-V7) cases, on the fake 'tiny' build of tests/benchmark.

Every bad input must end in one ``Error:`` line (exit code 1, no traceback) or one ScalebenchError, and leave
nothing behind; resumed and reused runs must equal uninterrupted ones or be refused. The runs are a plain CNN
(the ``cnn`` quick config) on 32 training images of 16 x 16 pixels, two epochs: one finished run and the same
run stopped after epoch 1 are trained once for the module and copied by the cases that damage them.

Not covered here: the SIGKILL timing of E17-E19 is replaced by ``--stop-after-epoch`` and by raising inside the
run (the same files are left behind); E26's read-only file system and full disk are simulated by an
``OSError`` from the writer (the tests run as root, for whom ``chmod`` does not make a folder read-only).
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

# The fake build of tests/benchmark, imported under the name its own tests use (one module, one registration).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmark"))
from bench_fakes import FakeBuilt
from torch_threads import one_torch_thread

from scalebench.benchmark import checkpoint, protocol
from scalebench.benchmark.config import make_config
from scalebench.benchmark.protocol import format_summary, resolve_run, run
from scalebench.benchmark.verify import verify_run
from scalebench.checks import ScalebenchError
from scalebench.cli import main
from scalebench.models.registry import validate_model_config

TINY = {"epochs": 2, "batch_size": 8, "micro_batch_size": 4, "eval_batch_size": 8, "lr": 0.05}
#: The CLI form of the module's runs (same config hash as :func:`_cfg`).
CLI_RUN = ["evaluate", "--model", "cnn", "--dataset", "tiny", "--device", "cpu", "--progress", "none",
           "--epochs", "2", "--batch-size", "8", "--micro-batch-size", "4", "--eval-batch-size", "8", "--lr", "0.05",
           "--num-workers", "0"]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_build():
    """The fake build 'tiny' for the whole module; other ids raise like the real loader. Records the ids asked."""
    built = FakeBuilt()
    asked: list[str] = []

    def load(build_id, root=None, task=None):
        asked.append(build_id)
        if build_id != "tiny":
            raise ScalebenchError(
                f"Dataset {build_id!r} has not been built; run `scalebench datasets build`."
            )
        return built

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("scalebench.datasets_builders.open_build", load)
        yield asked


@pytest.fixture(autouse=True)
def _tiny(tiny_build):
    tiny_build.clear()


def _cfg(out: Path, **kw):
    fields = dict(model="cnn", dataset="tiny", out=out, device="cpu", progress="none", recipe_overrides=TINY,
                  num_workers=0)  # fmt: skip
    fields.update(kw)
    return make_config(**fields)


@pytest.fixture(scope="module")
def runs(tiny_build, tmp_path_factory):
    """(finished run, run stopped after epoch 1) of the same config, in folders the cases copy and never touch."""
    with one_torch_thread():
        out = tmp_path_factory.mktemp("module-runs")
        full = run(_cfg(out / "full"))
        stopped = run(_cfg(out / "stopped", stop_after_epoch=1))
    assert stopped.stopped_after_epoch == 1 and full.result is not None
    return full, stopped


def _copy(run_dir: Path, out: Path) -> Path:
    """A copy of ``run_dir`` under ``out`` (same folder name), which a config with ``out=out`` then finds."""
    dest = out / run_dir.name
    shutil.copytree(run_dir, dest)
    return dest


def _cli_error(args: list[str], pattern: str) -> str:
    """Run the CLI; assert exit code 1, exactly one ``Error:`` line matching ``pattern`` and no traceback."""
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.output
    assert re.search(pattern, errors[0]), errors[0]
    return errors[0]


def _nothing_under(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


# ---------------------------------------------------------------------------------------------------------
# 2. Evaluate: inputs (E1-E16, E28)


@pytest.mark.case("E1", "E2")
@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--model", "nosuch", "--dataset", "tiny"], r"Unknown model 'nosuch'\..*Registered models: .*cnn"),
        (["--model", "CNN", "--dataset", "tiny"], r"Unknown model 'CNN'"),
        (["--model", "cnn", "--dataset", "nosuch"], r"Dataset 'nosuch' has not been built.*datasets build"),
    ],
)
def test_unknown_model_or_build(tmp_path, args, pattern):
    _cli_error(["evaluate", *args, "--out", tmp_path / "out"], pattern)
    assert _nothing_under(tmp_path / "out")


@pytest.mark.case("E3", "D20")
@pytest.mark.parametrize(
    "dataset", ["../../h_kp2/datasets/fashion-mnist-limit3000", "../h/tiny", "/tmp/tiny", ".tiny"]
)
def test_dataset_is_a_build_id_never_a_path(tmp_path, tiny_build, dataset):
    _cli_error(
        ["evaluate", "--model", "cnn", "--dataset", dataset, "--out", tmp_path / "out"],
        r"evaluate option 'dataset': must be a dataset build id .* not a path",
    )
    assert _nothing_under(tmp_path / "out") and tiny_build == []  # no build was even looked up


@pytest.mark.case("E4", "E5", "E6", "E7", "E8", "E9", "E10", "E11", "D11", "D16", "D17")
@pytest.mark.parametrize(
    ("model", "items", "pattern"),
    [
        ("cnn", ["widths=abc"], r"widths='abc' for model 'cnn': expected a list of integers"),
        ("cnn", ['widths=["x",8]'], r"widths=\['x', 8\] .*a list of integers"),
        ("cnn", ["widths=5"], r"widths=5 .*a list of integers"),
        ("cnn", ["widths=[-8,8]"], r"widths=\[-8, 8\] .*each in \[1, 4096\]"),
        ("cnn", ["widths=[0]"], r"widths=\[0\] .*each in \[1, 4096\]"),
        ("cnn", ["widths=[]"], r"widths=\[\] .*of 1 to 512 items"),
        ("cnn", ["widths=[8.7,8]"], r"widths=\[8\.7, 8\] .*a list of integers"),
        ("cnn", ["dropout=NaN"], r"dropout=nan .*a finite number"),
        ("cnn", ["dropout=Infinity"], r"dropout=inf .*a finite number"),
        ("gaussdernet", ["sigma0=NaN"], r"sigma0=nan for model 'gaussdernet': expected a finite number"),
        ("cnn", ["dropout=-1"], r"dropout=-1 .*in \[0, 1\)"),
        ("cnn", ["dropout=2"], r"dropout=2 .*in \[0, 1\)"),
        ("cnn", ["dropout=true"], r"dropout=True .*a finite number"),
        ("cnn", ["global_pool=median"], r"global_pool='median' .*one of 'avg', 'max'"),
        ("cnn", ["foo=1"], r"Unknown config key 'foo' for model 'cnn'\. Valid keys: dropout, global_pool"),
        ("cnn", ["=1"], r"--model-config takes KEY=VALUE"),
        ("cnn", ['pool_after=["a"]'], r"pool_after=\['a'\] .*a list of integers"),
        ("cnn", ["widths=[100000,100000]", "pool_after=[0]"], r"each in \[1, 4096\] .*MAX_CHANNELS = 4096"),
        ("cnn", ["widths=[4096,4096,4096,4096]", "pool_after=[0]"], r"parameters, more than the limit of 100,000,000"),
        ("gaussdernet", ["widths=[1e9]"], r"widths=\[1000000000\.0\] .*a list of integers"),
        ("gaussdernet", ["sigma0=1e30"], r"sigma0=1e\+30 .*\(0, 256\] .*MAX_SIGMA"),
        ("gaussdernet", ["num_scale_channels=100000"], r"num_scale_channels=100000 .*\[1, 64\]"),
        ("gaussdernet", ["sigma_growth=4"], r"largest sigma .* exceeds scalebench.models.gaussder.MAX_SIGMA"),
    ],
)  # fmt: skip
def test_invalid_model_config_is_one_error_and_leaves_nothing(tmp_path, model, items, pattern):
    args = ["evaluate", "--model", model, "--dataset", "tiny", "--device", "cpu", "--out", tmp_path / "out"]
    for item in items:
        args += ["--model-config", item]
    _cli_error(args, pattern)
    assert _nothing_under(tmp_path / "out")  # D16: no orphan run folder


@pytest.mark.case("E12")
def test_deep_cnn_and_named_widths_are_accepted(tmp_path):
    deep = {"widths": [8] * 60, "pool_after": [0]}
    assert validate_model_config("cnn", deep, num_classes=2, in_channels=1)["widths"] == [8] * 60
    assert validate_model_config("gaussdernet", {"widths": "lindeberg2022"})["widths"] == "lindeberg2022"
    run_hash, run_dir = resolve_run(_cfg(tmp_path / "out", model_config_overrides=deep))
    assert run_hash in run_dir.name and not run_dir.exists()


@pytest.mark.case("E13", "E15", "E16", "E28")
@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--scales", "3"], r"Scale\(s\) 3 are not in the built set of 'tiny'"),
        (["--scales", "0.5,2"], r"--scales must include the training scale 1"),
        (["--scales", "nan"], r"--scales must be a positive finite number"),
        (["--seeds", "0,0"], r"--seeds 0,0 repeats seed\(s\) 0"),
        (["--seeds", "-1"], r"Seeds must be non-negative integers"),
        (["--seeds", "0,x"], r"--seeds must be a comma-separated list of integers"),
        (["--seed", "0", "--seeds", "0,1"], r"Give either --seed N or --seeds 0,1,2, not both"),
        (["--epochs", "0"], r"training option 'epochs'"),
        (["--lr", "nan"], r"training option 'lr'"),
        (["--lr", "-1"], r"training option 'lr'"),
        (["--lr", "inf"], r"training option 'lr'"),
        (["--batch-size", "0"], r"training option 'batch_size'"),
        (["--limit", "0"], r"evaluate option 'limit'"),
        (["--eval-batch-size", "0"], r"training option 'eval_batch_size'"),
        (["--micro-batch-size", "0"], r"training option 'micro_batch_size'"),
        (["--label-smoothing", "1"], r"training option 'label_smoothing'"),
        (["--momentum", "nan"], r"training option 'momentum'"),
        (["--num-workers", "-1"], r"evaluate option 'num_workers'"),
    ],
)
def test_invalid_options_are_one_error(tmp_path, args, pattern):
    _cli_error(["evaluate", "--model", "cnn", "--dataset", "tiny", "--device", "cpu", *args,
                "--out", tmp_path / "out"], pattern)  # fmt: skip
    assert _nothing_under(tmp_path / "out")


@pytest.mark.case("E14")
def test_repeated_scales_are_one_run(tmp_path):
    one = resolve_run(_cfg(tmp_path / "out", scales=[1.0, 1.0]))
    assert resolve_run(_cfg(tmp_path / "out", scales=[1.0, 1.0001])) == one
    assert resolve_run(_cfg(tmp_path / "out", scales=[1.0])) == one


# ---------------------------------------------------------------------------------------------------------
# 2. Evaluate: interrupted, resumed, damaged and reused runs (E17-E27)


@pytest.mark.case("E17", "E17b", "E17c")
def test_a_stopped_run_needs_resume_and_then_equals_the_uninterrupted_one(tmp_path, runs):
    full, stopped = runs
    _copy(stopped.run_dir, tmp_path / "out")
    _cli_error(
        [*CLI_RUN, "--out", tmp_path / "out"], r"interrupted run of this config exists .* Pass --resume"
    )
    resumed = run(_cfg(tmp_path / "out", resume=True))
    assert resumed.result.per_scale == full.result.per_scale
    assert resumed.result.checkpoint_sha256 == full.result.checkpoint_sha256
    assert [h.train_loss for h in resumed.result.training.history] == [
        h.train_loss for h in full.result.training.history
    ]
    assert resumed.result.model.config_hash == full.result.model.config_hash


@pytest.mark.case("E18")
def test_an_interrupted_final_test_resumes_to_the_same_results(tmp_path, runs, monkeypatch):
    full, stopped = runs
    _copy(stopped.run_dir, tmp_path / "out")

    original = FakeBuilt.dataset

    def test_sets_killed(self, split, scale=None, transform=None, **kw):
        if split == "test":
            raise KeyboardInterrupt
        return original(self, split, scale, transform, **kw)

    with monkeypatch.context() as mp:
        mp.setattr(FakeBuilt, "dataset", test_sets_killed)
        with pytest.raises(KeyboardInterrupt):  # trains epoch 2, then dies in the final test
            run(_cfg(tmp_path / "out", resume=True))
    state = json.loads((tmp_path / "out" / stopped.run_dir.name / "state.json").read_text())
    assert state["epoch"] == 2
    resumed = run(_cfg(tmp_path / "out", resume=True))
    assert resumed.result.per_scale == full.result.per_scale
    assert resumed.result.checkpoint_sha256 == full.result.checkpoint_sha256


@pytest.mark.case("E19", "N7")
def test_a_kill_between_state_and_best_copy_resumes_to_the_same_results(tmp_path, runs, monkeypatch):
    full, _ = runs

    def killed(src, dest):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(checkpoint, "_copy_atomic", killed)
        with pytest.raises(KeyboardInterrupt):  # epoch 1 is always the best so far: the copy is always made
            run(_cfg(tmp_path / "out"))
    run_dir = tmp_path / "out" / full.run_dir.name
    assert json.loads((run_dir / "state.json").read_text())["best_epoch"] == 1
    assert not (run_dir / "best.safetensors").exists()
    resumed = run(_cfg(tmp_path / "out", resume=True))
    assert resumed.result.per_scale == full.result.per_scale
    assert resumed.result.checkpoint_sha256 == full.result.checkpoint_sha256


def _zero_tail(path: Path, size: int = 256, byte: bytes = b"\x00") -> None:
    """Overwrite ``size`` bytes of tensor data near the end of ``path``: still a readable safetensors file."""
    raw = bytearray(path.read_bytes())
    at = len(raw) - 2000 if len(raw) > 2400 else len(raw) - size
    raw[at : at + size] = byte * size
    path.write_bytes(bytes(raw))


def _state_edit(**fields):
    def edit(run_dir: Path) -> None:
        state = json.loads((run_dir / "state.json").read_text())
        state.update(fields)
        for key in [k for k, v in fields.items() if v is None]:
            del state[key]
        (run_dir / "state.json").write_text(json.dumps(state))

    return edit


def _write(name: str, data: bytes | str):
    def write(run_dir: Path) -> None:
        path = run_dir / name
        path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)

    return write


DIGEST = r"Cannot resume epoch 1 of .*: Checkpoint file .*{} has sha256 .* but state.json records .* Delete .* start over"


@pytest.mark.case("E20", "E21", "E22", "E23", "E24", "E25", "D10", "D11", "N8")
@pytest.mark.parametrize(
    ("damage", "pattern"),
    [
        (lambda d: (d / "epoch-1.safetensors").write_bytes((d / "epoch-1.safetensors").read_bytes()[:100]),
         DIGEST.format("epoch-1.safetensors")),
        (_write("optim-1.safetensors.json", "{}"), DIGEST.format("optim-1.safetensors.json")),
        (_write("optim-1.safetensors.json", "{bad"), DIGEST.format("optim-1.safetensors.json")),
        (lambda d: shutil.copyfile(d / "epoch-1.safetensors", d / "optim-1.safetensors"),
         DIGEST.format("optim-1.safetensors")),
        (lambda d: _zero_tail(d / "epoch-1.safetensors"), DIGEST.format("epoch-1.safetensors")),
        (lambda d: _zero_tail(d / "epoch-1.safetensors", 64, b"\x7f"), DIGEST.format("epoch-1.safetensors")),
        (_write("state.json", '{"epoch": 1, "weig'), r"state.json is not valid JSON .* delete .* to start over"),
        (_write("state.json", "[]"), r"state.json is not a scalebench run state .* delete .* to start over"),
        (_state_edit(epoch="x"), r"state.json is not a scalebench run state \(epoch: Input should be a valid integer"),
        (_state_edit(history=None), r"state.json is not a scalebench run state \(history: Field required"),
        (_state_edit(best_val_accuracy="high"), r"not a scalebench run state \(best_val_accuracy: "),
        (_state_edit(weights="/etc/passwd"), r"not a scalebench run state \(weights: String should match pattern"),
        (_state_edit(optimizer="../x/optim-1.safetensors"), r"not a scalebench run state \(optimizer: String should"),
    ],
    ids=["truncated-weights", "optim-json-empty", "optim-json-bad", "weights-as-optimizer", "zeroed-weights",
         "0x7f-weights", "state-truncated", "state-list", "epoch-x", "no-history", "best-val-string",
         "weights-outside", "optimizer-outside"],
)  # fmt: skip
def test_a_damaged_checkpoint_is_one_error_on_resume(tmp_path, runs, damage, pattern):
    _, stopped = runs
    run_dir = _copy(stopped.run_dir, tmp_path / "out")
    damage(run_dir)
    before = sorted(p.name for p in run_dir.iterdir())
    _cli_error([*CLI_RUN, "--resume", "--out", tmp_path / "out"], pattern)
    assert sorted(p.name for p in run_dir.iterdir()) == before  # nothing trained, nothing written


@pytest.mark.case("E21", "E22", "D11")
@pytest.mark.parametrize(
    ("damage", "pattern"),
    [
        (_write("optim-1.safetensors.json", "{}"), r"Optimizer metadata .*optim-1.safetensors.json is not an "
                                                   r"optimizer checkpoint's \(param_groups: Field required"),
        (lambda d: shutil.copyfile(d / "epoch-1.safetensors", d / "optim-1.safetensors"),
         r"optim-1.safetensors holds tensor '.*' of shape .*, which is not the state of a parameter of this model"),
    ],
)  # fmt: skip
def test_an_old_state_without_digests_still_gets_clear_errors(tmp_path, runs, damage, pattern):
    """States written before the digests were recorded resume without them; the schemas still catch damage."""
    _, stopped = runs
    run_dir = _copy(stopped.run_dir, tmp_path / "out")
    _state_edit(sha256=None, best_sha256=None)(run_dir)
    damage(run_dir)
    _cli_error([*CLI_RUN, "--resume", "--out", tmp_path / "out"], rf"Cannot resume epoch 1 of .*{pattern}")


@pytest.mark.case("E26", "D11")
def test_an_unwritable_run_folder_or_out_is_one_error(tmp_path, runs, monkeypatch):
    _, stopped = runs
    _copy(stopped.run_dir, tmp_path / "resume")

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(protocol, "write_json_atomic", read_only)
    for extra in (["--resume", "--out", tmp_path / "resume"], ["--out", tmp_path / "fresh"]):
        _cli_error([*CLI_RUN, *extra], r"Cannot write .*config.json: Read-only file system \(EROFS\)")


@pytest.mark.case("E27", "D14")
def test_a_finished_run_is_reused_only_with_its_original_results(tmp_path, runs):
    full, _ = runs
    run_dir = _copy(full.run_dir, tmp_path / "out")
    res = CliRunner().invoke(main, [str(a) for a in [*CLI_RUN, "--out", tmp_path / "out"]])
    assert res.exit_code == 0, res.output
    assert (
        "[reused]" in res.output and f"run hash {full.run_hash}" in res.output and str(run_dir) in res.output
    )
    reused = run(_cfg(tmp_path / "out"))
    assert reused.reused and f"reused: {run_dir} is a finished run" in format_summary(reused)
    results = json.loads((run_dir / "results.json").read_text())
    first = results["per_scale"][0]  # an edit that looks consistent: count and accuracy changed together
    first["correct"] = first["total"] if first["correct"] < first["total"] else first["total"] - 1
    first["accuracy"] = first["correct"] / first["total"]
    (run_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    _cli_error([*CLI_RUN, "--out", tmp_path / "out"], r"results.json has sha256 .* the results were edited after "
               r"the run finished. Restore the original results.json, or delete .* to run again")  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# 3d. Verification (evaluate --verify; the same code as submit --checkpoint)


def _forged(full, tmp_path: Path, edit) -> Path:
    """A copy of the finished run's results.json with ``edit(dict)`` applied."""
    data = json.loads((full.run_dir / "results.json").read_text())
    edit(data)
    path = tmp_path / "claimed.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.case("V1")
def test_an_unmodified_run_verifies(tmp_path, runs):
    full, _ = runs
    results = _forged(full, tmp_path, lambda d: None)
    report = verify_run(results, full.run_dir / "best.safetensors", device="cpu", progress="none")
    assert report.mismatches == [] and report.written == tmp_path / "claimed.verified.json"
    assert report.verified.per_scale == full.result.per_scale


def _set(*path, value):
    def edit(data):
        for key in path[:-1]:
            data = data[key]
        data[path[-1]] = value

    return edit


@pytest.mark.case("V2", "V3", "V4", "V5", "V6", "V7", "D6")
@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (_set("training", "recipe", "eval_batch_size", value=0), r"training.recipe field 'eval_batch_size'"),
        (_set("training", "recipe", "eval_batch_size", value="abc"), r"training.recipe field 'eval_batch_size'"),
        (_set("training", "recipe", "micro_batch_size", value=-5), r"training.recipe field 'micro_batch_size'"),
        (_set("model", "config", "widths", value="abc"), r"model.config: .*widths='abc' .*a list of integers"),
        (_set("model", "config", "widths", value=[20000, 20000]), r"model.config: .*each in \[1, 4096\]"),
        (_set("model", "config", "widths", value=[4096, 4096, 4096, 4096]),
         r"model.config: .*more than the limit of 100,000,000"),
        (_set("model", "config", "widths", value=[8, 8, 12, 16]), r"does not fit the model: .*shape mismatch"),
        (_set("model", "config", "foo", value=1), r"model.config: Unknown config key 'foo' for model 'cnn'"),
        (_set("dataset", "build_id", value="../../h_kp2/datasets/fashion-mnist-limit3000"), r"build.id"),
    ],
)  # fmt: skip
def test_verification_checks_every_claimed_value_before_computing(tmp_path, runs, tiny_build, monkeypatch, edit,
                                                                  pattern):  # fmt: skip
    full, _ = runs
    results = _forged(full, tmp_path, edit)

    def no_real_build(*args, **kwargs):
        raise AssertionError("the model was built for real before every check passed")

    monkeypatch.setattr("scalebench.models.create_model", no_real_build)
    checkpoint_file = full.run_dir / "best.safetensors"
    with pytest.raises(ScalebenchError, match=pattern):
        verify_run(results, checkpoint_file, device="cpu", progress="none")
    assert tiny_build == []  # no dataset was opened, inside the home or outside it
    _cli_error(["evaluate", "--verify", results, "--checkpoint", checkpoint_file, "--device", "cpu"], pattern)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claimed.json"]  # nothing written
