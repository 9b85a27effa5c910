"""The protocol of every task: train on a build's training set, select the checkpoint on its validation set,
test at every scale.

Protocol of Jansson & Lindeberg (2022), "Scale-invariant scale-channel networks: deep networks that generalise
to previously unseen scales", JMIV 64(5): 506-536, and Lindeberg (2022), "Scale-covariant and scale-invariant
Gaussian derivative networks", JMIV 64(3): 223-242: the training and validation data are one training set of
the build (a training scale ``s0``, usually 1, or the object scales of a segmentation set such as ``1+2+3+4``);
the test set is rescaled copy by copy and tested at every scale. :func:`run` is the one resolve–train–select–
test–write loop; the task of the build (:mod:`scalebench.benchmark.tasks`) gives its loss, counts and extras,
and :mod:`scalebench.benchmark.engine` the shared machinery.

Guarantees of :func:`run`:

- the test sets are opened only after training has finished (the training loop never receives them);
- validation and testing run in eval mode under ``torch.inference_mode``, and every parameter and buffer
  (batch-norm running statistics included) is compared bit for bit before and after each: a change is an error;
- data order, augmentation and dropout randomness depend only on (seed, epoch), and the learning rate is a
  pure function of (epoch, step), so a run resumed from an epoch checkpoint ends with the same weights as an
  uninterrupted one (exactly on CPU with a fixed thread count);
- every input is checked before anything is written: the model config (kinds, ranges, and its size on the
  ``meta`` device, :func:`scalebench.models.registry.validate_model_config`), that the model's task is the
  build's, the recipe, the build id, the training set and the test scales; the model is built before the run
  directory is created, so an invalid config leaves no folder behind;
- every epoch is checkpointed (safetensors weights and optimizer tensors, JSON state with their sha256,
  :mod:`scalebench.benchmark.checkpoint`); ``--resume`` refuses a checkpoint whose digest changed; ``done`` is
  written last, atomically, after the results and figures, and holds the sha256 of ``results.json``: a finished
  run is reused only while ``results.json`` still has it (:func:`~scalebench.benchmark.engine.check_done`).

The run directory is ``<out>/<model>__<build id>__seed<n>__<run hash>/``, with ``__train<key>`` after the build
id for a training set other than the build's default (``__train2``, ``__train1+2+3+4``); the run hash is the
hash of the resolved config (:func:`scalebench.benchmark.config.run_identity`), the digest of the manifest
restricted to the sets the run uses (``Build.view_sha256``) and, when not the default, the training set's key.
Several seeds (:func:`run_seeds`) add ``<out>/<model>__<build id>[__train<key>]__seeds-<seeds>__<hash>/`` with
the mean ± std curve over seeds. With ``config.distributed`` (under ``torchrun``), training is data-parallel
and evaluation is sharded across ranks and summed (:mod:`scalebench.benchmark.distributed`).

Progress: a plain log (``--progress plain``, the sweep's) starts with a header naming the run (model, build,
training set, seed, run id), prefixes every line with the time, and gives the time left of each phase (an
epoch, a validation, a test scale) and of the training.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from scalebench.benchmark.checkpoint import (
    BEST,
    load_weights,
    read_run_state,
    restore_run_state,
    save_epoch_checkpoint,
)
from scalebench.benchmark.config import EvalConfig, Recipe, make_config, resolve_recipe, run_identity
from scalebench.benchmark.distributed import Dist, init_distributed, wrap
from scalebench.benchmark.engine import (
    CONFIG,
    DONE,
    Custom,
    CustomLoss,
    Loop,
    check_amp,
    check_done,
    check_state_unchanged,
    derive_seed,
    environment_info,
    git_commit,
    learning_rate,
    limited,
    make_optimizer,
    missing_classes,
    model_to_device,
    run_files,
    select_device,
    state_snapshot,
    train_epoch,
    write_done,
    write_long_csv,
    writing,
)
from scalebench.benchmark.equivariance import EQUIVARIANCE_IMAGES, measure_equivariance
from scalebench.benchmark.tasks import Task, task_of
from scalebench.benchmark.tensorboard import epoch_writer, log_epoch
from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.builds import key_text
from scalebench.datasets_builders.scales import match_scales, same_scale, same_scales
from scalebench.figures.curves import plot_curves
from scalebench.figures.style import RUN_FORMATS
from scalebench.fileio import config_hash, file_digest, write_json_atomic
from scalebench.models.densify import dense_config, densify, parse_test_channels
from scalebench.progress import Progress, duration
from scalebench.results import AnyRunResult, Timings, load_results, save_results, stored_checkpoint, train_key

__all__ = [
    "DONE",
    "RunOutcome",
    "Setup",
    "densify_run",
    "format_summary",
    "resolve_run",
    "run",
    "run_seeds",
    "trained_run",
]


@dataclass
class RunOutcome:
    """What :func:`run` leaves behind: the result (None if stopped early) and the run directory's files.

    ``files`` maps file names to paths (empty on ranks other than 0); ``run_hash`` is the hash that names
    ``run_dir``; ``reused`` says the finished run in ``run_dir`` was returned without running again (its
    ``done`` marker matched ``results.json``).
    """

    run_dir: Path
    result: AnyRunResult | None
    files: dict[str, Path] = field(default_factory=dict)
    reused: bool = False
    stopped_after_epoch: int | None = None
    run_hash: str | None = None


@dataclass
class Setup:
    """A run with everything resolved, before any training."""

    config: EvalConfig
    task: Task
    device: torch.device
    card: Any
    built: Any
    key: tuple[float, ...]
    model_config: dict[str, Any]
    recipe: Recipe
    scales: list[float]
    identity: dict[str, Any]
    run_hash: str
    run_dir: Path
    resolved: Any = None
    custom: Custom | None = None


@dataclass
class _Training:
    """The training of a run so far: the epochs' records, the best epoch and its score, the time spent."""

    history: list[dict[str, Any]] = field(default_factory=list)
    tensorboard: Any = None
    best_epoch: int = 0
    best_val: float = -1.0
    seconds: float = 0.0
    earlier_seconds: float = 0.0  # spent in earlier, interrupted sessions
    start_epoch: int = 1
    n_train: int = 0
    n_val: int = 0
    loss_info: dict[str, Any] = field(default_factory=dict)
    stopped_after: int | None = None

    @classmethod
    def of(cls, result: Any) -> _Training:
        """The finished training a results record describes (a densified test reuses it)."""
        t = result.training
        return cls(
            history=[h.model_dump() for h in t.history], best_epoch=t.best_epoch or 0,
            best_val=float(t.best_val_accuracy),
            seconds=result.timings.train_seconds, earlier_seconds=result.timings.train_seconds,
            n_train=result.dataset.train_size, n_val=result.dataset.val_size,
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Resolution and checks (every bad input fails here, before any training)


def _setup(config: EvalConfig, custom: Custom | None = None, extra: dict[str, Any] | None = None) -> Setup:
    from scalebench.datasets_builders import open_build  # looked up at call time: tests patch it there
    from scalebench.models.external import structure_sha256
    from scalebench.models.registry import create_meta_model, resolve_model, validate_model_config

    device = select_device(config.device)
    check_amp(device, config.amp)
    resolved = resolve_model(config.model, name=config.model_name)  # a model of your own is imported here
    card, name = resolved.card, resolved.name
    built = open_build(config.dataset, config.root)
    task = task_of(built.task)
    if card.task != built.task:
        raise ScalebenchError(
            f"Model {config.model!r} is a {card.task} model, but dataset {config.dataset!r} is a {built.task} "
            f"build; give a {card.task} build (`scalebench datasets info` lists the builds) or a {built.task} "
            f"model (`scalebench models list --task {built.task}`)."
        )
    key = built.train_key(config.train_scale)
    built.train_path(key)  # a training set the build lacks is an error naming the command that adds it
    scales = match_scales(config.scales, built.test_scales, built.build_id)
    git_commit()  # pin the code version now, before training
    task.check(built, key, scales)
    # every value checked and the model's size bounded (built on the meta device) before anything is hashed
    model_config = validate_model_config(
        name, config.model_config_overrides, quick=config.preset == "quick",
        num_classes=built.num_classes, in_channels=built.channels, dataset=built.name,
    )  # fmt: skip
    meta = create_meta_model(name, model_config, num_classes=built.num_classes, in_channels=built.channels)
    recipe = resolve_recipe(config.preset, card.paper_training, config.recipe_overrides, card.quick_training)
    identity = run_identity(config, recipe, model_config, scales)
    identity["model"] = name
    identity["dataset_manifest_sha256"] = built.view_sha256(key, scales)
    # the code: a changed architecture is another run (the source's sha256, and the names and shapes it builds)
    identity["model_source"] = {k: v for k, v in resolved.source.as_dict().items() if k != "reference"}
    identity["model_structure_sha256"] = structure_sha256(meta)
    if custom is not None:  # a non-standard training: its callables' source is part of the run
        identity["custom_training"] = custom.info()
    default = same_scales(key, built.default_train_key)
    if not default:
        identity["train_set"] = key_text(key)
    factor = parse_test_channels(config.test_channels)
    if factor > 1:  # the same training, tested on a densified channel grid: another run of its own
        dense_config(name, model_config, factor)  # a model without a channel grid is an error now
        identity["test_channels"] = factor
    identity.update(extra or {})
    run_hash = config_hash(identity)
    train = "" if default else f"__train{key_text(key)}"
    dense = f"__dense{factor}" if factor > 1 else ""
    run_dir = Path(config.out) / f"{name}__{built.build_id}{train}__seed{config.seed}{dense}__{run_hash}"
    return Setup(
        config, task, device, card, built, key, model_config, recipe, scales, identity, run_hash, run_dir,
        resolved, custom,
    )  # fmt: skip


def resolve_run(config: EvalConfig) -> tuple[str, Path]:
    """The run hash and run directory of ``config``: every input checked, nothing trained or written.

    The sweep names its jobs by this hash, so a job and its ``scalebench evaluate`` run are one identity.
    """
    s = _setup(config)
    return s.run_hash, s.run_dir


# ---------------------------------------------------------------------------------------------------------
# The run


def run(config: EvalConfig, *, custom: Custom | None = None) -> RunOutcome:
    """Run the protocol for one seed: resolve, train (or resume), select on validation, test every scale, write.

    A finished run directory (``done`` present) is not run again: its results are loaded and returned with
    ``reused=True``. An interrupted one needs ``config.resume``. ``custom``: a non-standard training (Python
    API: a loss, an optimizer or a scheduler of the user's), part of the run's identity and of its results.
    """
    s = _setup(config, custom)
    d = Dist()
    if config.distributed:
        d, s.device = init_distributed(s.device)
    reused = _finished(s)
    if reused is not None:
        return reused
    if "test_channels" in s.identity:
        return _run_dense(s, d, custom)
    state = read_run_state(
        s.run_dir, s.run_hash, resume=config.resume, epochs=s.recipe.epochs, schema=s.task.records.state
    )
    t_start = time.perf_counter()
    model, optimizer = _model(s, d)
    loop = Loop(s.recipe, s.device, seed=config.seed, amp=config.amp, channels_last=s.task.channels_last,
                own_schedule=custom is not None and custom.scheduler is not None,
                workers=config.num_workers, d=d)  # fmt: skip
    with Progress(config.progress if d.main else "none") as progress:
        loop.progress = progress
        _header(progress, s, d)
        trained = _train(s, model, optimizer, state, loop)
        if trained.stopped_after is not None:
            progress.log(f"stopped after epoch {trained.stopped_after}; continue with --resume")
            return RunOutcome(s.run_dir, None, stopped_after_epoch=trained.stopped_after, run_hash=s.run_hash)
        tested = _test(s, model, loop)
    result = s.task.result(_facts(s, model, trained, tested, t_start), model)
    if not d.main:
        d.barrier()  # rank 0 writes the outputs and ``done``
        return RunOutcome(s.run_dir, result, {}, run_hash=s.run_hash)
    with writing(s.run_dir):
        save_results(result, s.run_dir / "results.json")
        s.task.figures(result, s.run_dir, model, s.built, loop)
        write_done(s.run_dir)
    d.barrier()
    return RunOutcome(s.run_dir, result, run_files(s.run_dir), run_hash=s.run_hash)


def _finished(s: Setup) -> RunOutcome | None:
    """The run already finished in ``s.run_dir`` (its ``done`` marker matching ``results.json``), or None."""
    if not (s.run_dir / DONE).is_file():
        return None
    results = load_results(check_done(s.run_dir), tasks=(s.task.name,))
    return RunOutcome(s.run_dir, results, run_files(s.run_dir), reused=True, run_hash=s.run_hash)


def _run_dense(
    s: Setup, d: Dist, custom: Custom | None, base: RunOutcome | None = None, best: Path | None = None
) -> RunOutcome:
    """The trained-grid run of the same config (trained now, or reused; or ``base``, a finished run given by
    :func:`densify_run` with its ``best`` checkpoint), its best weights tested on the densified channel grid
    (:mod:`scalebench.models.densify`): a run directory of its own, holding a copy of the checkpoint, whose
    results record the training of the trained-grid run and ``test_channels``."""
    import shutil

    base = base or run(s.config.model_copy(update={"test_channels": None}), custom=custom)
    if base.result is None:  # stopped early: nothing to test yet
        return base
    factor = int(s.identity["test_channels"])
    t_start = time.perf_counter()
    if d.main:
        with writing(s.run_dir):
            s.run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(s.run_dir / CONFIG, {"run_hash": s.run_hash, **s.identity})
            tmp = s.run_dir / f"{BEST}.tmp"
            shutil.copyfile(best or base.run_dir / BEST, tmp)
            tmp.replace(s.run_dir / BEST)
    d.barrier()
    trained = _seeded_model(s)
    dense = densify(s.resolved.name, s.model_config, trained, factor, num_classes=s.built.num_classes,
                    in_channels=s.built.channels)  # fmt: skip
    dense = model_to_device(dense, s.device, s.task.channels_last)
    loop = Loop(s.recipe, s.device, seed=s.config.seed, amp=s.config.amp, channels_last=s.task.channels_last,
                workers=s.config.num_workers, d=d)  # fmt: skip
    with Progress(s.config.progress if d.main else "none") as progress:
        loop.progress = progress
        progress.log(f"testing the weights of {base.run_dir.name} on {factor}x denser scale channels")
        tested = _test(s, dense, loop)
    tr = _Training.of(base.result)
    facts = _facts(s, dense, tr, tested, t_start)
    facts["test_channels"] = {"factor": factor, "trained_channel_sigmas": list(trained.channel_sigmas)}
    result = s.task.result(facts, dense)
    if d.main:
        with writing(s.run_dir):
            save_results(result, s.run_dir / "results.json")
            s.task.figures(result, s.run_dir, dense, s.built, loop)
            write_done(s.run_dir)
    d.barrier()
    return RunOutcome(s.run_dir, result, run_files(s.run_dir) if d.main else {}, run_hash=s.run_hash)


def densify_run(
    trained: str | Path,
    factor: int = 2,
    *,
    out: str | Path | None = None,
    root: str | Path | None = None,
    device: str = "auto",
    progress: str = "auto",
) -> RunOutcome:
    """Test a finished run's best weights on an F times denser scale-channel grid, whatever code trained it.

    ``trained``: a finished run folder (``results.json``, ``best.safetensors``, ``done``) of a zoo model with a
    scale-channel grid, or a store entry (``results/<build>/<model>/<hash>/seed-N.json`` with its
    ``seed-N.safetensors`` beside it: what a fresh clone holds). Its recorded model, config, build, training set,
    seed, test scales, preset and recipe become the run's config; the current code must resolve them to the same
    config and recipe, build the same parameters (the checkpoint loads strictly), and reproduce the recorded
    count at the training scale with the trained grid, or nothing is written. The densified run goes to ``out``
    (default: beside a run folder; a store entry needs ``out``, a store is only written by ``submit``), named and
    hashed like ``evaluate --test-channels dense:F`` plus the trained checkpoint's sha256, so it is never
    mistaken for a densified run of a model trained by this code.
    """
    trained = Path(trained)
    if not trained.is_dir() and out is None:
        raise ScalebenchError(
            f"{trained} is a results file; name where its densified run goes with --out (a store is only "
            "written by `scalebench submit`)."
        )
    result, best = trained_run(trained)
    source = result.model.source
    if source is not None and source.kind not in ("zoo", "entry_point"):
        raise ScalebenchError(
            f"{trained} is a run of {source.reference}; densify a model of your own with `scalebench evaluate "
            f"--model {source.reference} --test-channels dense:{factor}` (it reuses the trained run)."
        )
    config = make_config(
        model=result.model.name, dataset=result.dataset.build_id, preset=result.training.preset,
        seed=result.seed, limit=result.limit, scales=list(result.scales), train_scale=list(train_key(result)),
        model_config_overrides=dict(result.model.config), recipe_overrides=dict(result.training.recipe),
        test_channels=f"dense:{factor}", out=Path(out) if out is not None else trained.parent, root=root,
        device=device, progress=progress,
    )  # fmt: skip
    s = _setup(config, extra={"trained_checkpoint_sha256": result.checkpoint_sha256})
    _same_resolution(s, result, trained)
    reused = _finished(s)
    if reused is not None:
        return reused
    _reproduces(s, result, best)
    return _run_dense(s, Dist(), None, base=RunOutcome(trained, result), best=best)


def trained_run(trained: str | Path) -> tuple[AnyRunResult, Path]:
    """The results and best checkpoint of a finished classification run folder (``results.json``,
    ``best.safetensors``, ``done``) or of a store entry (``seed-N.json`` beside ``seed-N.safetensors``), after
    checking that the checkpoint is the one the results record (sha256)."""
    trained = Path(trained)
    if trained.is_dir():
        result = load_results(check_done(trained), tasks=("classification",))
        best, results = trained / BEST, trained / "results.json"
    else:
        result, results = load_results(trained, tasks=("classification",)), trained
        best = stored_checkpoint(trained)
    if not best.is_file() or file_digest(best, "sha256") != result.checkpoint_sha256:
        raise ScalebenchError(
            f"{best} is missing or is not the checkpoint {results} records (sha256 "
            f"{result.checkpoint_sha256[:12]}...); a trained run is used only with its own best checkpoint."
        )
    return result, best


def _same_resolution(s: Setup, result: AnyRunResult, trained: Path) -> None:
    """The current code resolves the recorded run to the recorded config and recipe."""
    for what, now, then in (("model config", s.model_config, result.model.config),
                            ("recipe", s.recipe.record(), result.training.recipe)):  # fmt: skip
        if config_hash(now) != config_hash(then):
            raise ScalebenchError(
                f"This scalebench resolves {trained} to another {what} ({now} instead of the "
                f"recorded {then}); densify it with the scalebench version that trained it."
            )


def _reproduces(s: Setup, result: AnyRunResult, best: Path) -> None:
    """The trained grid, with the current code and the run's weights, scores what the run recorded at its
    training scale (the same count of correct images): the function the weights compute has not changed."""
    model = _seeded_model(s)
    load_weights(model, best)
    model = model_to_device(model, s.device, s.task.channels_last).eval()
    scale = result.dataset.train_scale
    (i,) = [k for k, t in enumerate(result.scales) if same_scale(t, scale)]
    ds = s.built.dataset("test", result.scales[i])
    loop = Loop(s.recipe, s.device, seed=s.config.seed, channels_last=s.task.channels_last,
                workers=s.config.num_workers)  # fmt: skip
    with Progress(s.config.progress) as progress:
        loop.progress = progress
        record, _ = s.task.evaluate(model, ds, scale, n=limited(ds, s.config.limit), loop=loop, build=s.built,
                                    extras=s.task.extras(model, s.card), label="re-testing the trained grid")  # fmt: skip
    if record.correct != result.per_scale[i].correct:
        raise ScalebenchError(
            f"With this code the weights {best} get {record.correct} test images right at the training "
            f"scale, where the run recorded {result.per_scale[i].correct}; the model computes another function "
            "now. Densify the run with the scalebench version that trained it."
        )


def _seeded_model(s: Setup) -> torch.nn.Module:
    """The run's model with its initial weights, drawn from the run seed (on the CPU)."""
    from scalebench.models import create_model

    torch.manual_seed(derive_seed(s.config.seed, "init"))
    return create_model(
        s.resolved.name, num_classes=s.built.num_classes, in_channels=s.built.channels, **s.model_config
    )  # fmt: skip


def _model(s: Setup, d: Dist) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The seeded model on its device and its optimizer; then (rank 0) the run directory and its config."""
    model = _seeded_model(s)
    if s.resolved.source.kind != "zoo":  # zoo models are tested by the test suite instead
        check_model(model, s.resolved.source.reference, s.card, s.built, s.task)
    model = model_to_device(model, s.device, s.task.channels_last)
    optimizer = make_optimizer(model, s.recipe)
    if s.custom is not None and s.custom.optimizer is not None:
        optimizer = s.custom.optimizer(model.parameters())
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ScalebenchError(
                f"optimizer_factory returned a {type(optimizer).__name__}, not a torch optimizer."
            )
    if d.main:  # only now: a config that cannot be built leaves no run directory behind
        with writing(s.run_dir):
            s.run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(s.run_dir / CONFIG, {"run_hash": s.run_hash, **s.identity})
    return model, optimizer


def _header(progress: Progress, s: Setup, d: Dist) -> None:
    """The first lines of a run's log: what runs, on what, and where it writes."""
    c, r = s.config, s.recipe
    default = " (the build's default)" if same_scales(s.key, s.built.default_train_key) else ""
    progress.header(
        f"run {c.model} on {s.built.build_id}, training set {key_text(s.key)}, seed {c.seed}",
        {
            "run id": s.run_dir.name,
            "task": s.task.name,
            "training set": key_text(s.key) + default,
            "test scales": ", ".join(f"{x:g}" for x in s.scales),
            "recipe": f"{c.preset} preset, {r.epochs} epoch{'s' if r.epochs != 1 else ''}, batch {r.batch_size}, "
            f"{r.optimizer} lr {r.lr:g}",
            "device": f"{s.device}{' (bf16 autocast)' if c.amp else ''}"
            + (f", {d.world} processes" if d.active else ""),
            "run directory": s.run_dir,
        },
    )


def _train(
    s: Setup, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: Any, loop: Loop
) -> _Training:
    """Train (or resume) every epoch, validating and checkpointing after each; stop early on request."""
    task, config, progress = s.task, s.config, loop.progress
    train_ds, val_ds = task.training_sets(s.built, s.key)
    tr = _Training(n_train=limited(train_ds, config.limit), n_val=limited(val_ds, config.limit))
    if tr.n_train == 0 or tr.n_val == 0:
        raise ScalebenchError(f"Dataset {s.built.build_id!r} has an empty train or val split; rebuild it.")
    for split, ds, n in (("training", train_ds, tr.n_train), ("validation", val_ds, tr.n_val)):
        if missing := missing_classes(ds, n):
            progress.log(
                f"warning: --limit {config.limit} keeps the first {n} {split} images, which hold no image of "
                f"class(es) {missing}; raise --limit, or build a smaller stratified set (datasets build --lite)"
            )
    loss_fn = task.make_loss(s.built, train_ds, tr.n_train, s.recipe, s.device)
    if s.custom is not None and s.custom.loss is not None:
        loss_fn = CustomLoss(s.custom.loss)
    tr.loss_info = loss_fn.info
    scheduler = None if s.custom is None or s.custom.scheduler is None else s.custom.scheduler(optimizer)
    if state is not None:
        with writing(s.run_dir):  # may redo an interrupted copy of best.safetensors
            restore_run_state(state, s.run_dir, model, optimizer, s.device)
        tr.history, tr.best_epoch, tr.best_val = (
            state["history"],
            state["best_epoch"],
            state[task.records.best_field],
        )
        tr.seconds = tr.earlier_seconds = state["train_seconds"]
        tr.start_epoch = state["epoch"] + 1
        unchecked = state.get("sha256") is None
        note = " (its state.json, from an older scalebench, records no checksums: files not verified)"
        progress.log(f"resuming {s.run_dir.name} after epoch {state['epoch']}{note if unchecked else ''}")
    for _ in range(1, tr.start_epoch):  # a resumed run's scheduler catches up with its epochs
        if scheduler is not None:
            scheduler.step()
    net = wrap(model, s.device, loop.d)
    if config.tensorboard is not None and loop.d.main:
        tr.tensorboard = epoch_writer(config.tensorboard, s.run_dir.name)
    for epoch in range(tr.start_epoch, s.recipe.epochs + 1):
        _epoch(s, model, net, optimizer, loss_fn, (train_ds, val_ds), epoch, tr, loop)
        if tr.tensorboard is not None:
            log_epoch(tr.tensorboard, tr.history[-1])
        if scheduler is not None:
            scheduler.step()
        stop = config.stop_after_epoch
        if stop is not None and stop <= epoch < s.recipe.epochs:
            tr.stopped_after = epoch
            break
    if tr.tensorboard is not None:
        tr.tensorboard.close()
    return tr


def _epoch(
    s: Setup, model: torch.nn.Module, net: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Any,
    sets: tuple[Any, Any], epoch: int, tr: _Training, loop: Loop,
) -> None:  # fmt: skip
    """One epoch: train, validate (state checked unchanged), record, checkpoint (rank 0)."""
    task, recipe, epochs = s.task, s.recipe, s.recipe.epochs
    t0 = time.perf_counter()
    loss, accuracy = train_epoch(model, net, optimizer, sets[0], tr.n_train, epoch, loss_fn, loop)
    model.eval()
    before = state_snapshot(model)
    val, _ = task.evaluate(model, sets[1], s.key[0], n=tr.n_val, loop=loop, build=s.built, extras={},
                           label=f"validation {epoch}/{epochs}")  # fmt: skip
    check_state_unchanged(model, before, "validation")
    score, name = task.selection_score(val), f"val {task.records.score_name.replace('_', ' ')}"
    loop.progress.end(f"{name} {score:.4f}")
    seconds = time.perf_counter() - t0
    tr.seconds += seconds
    tr.history.append(task.epoch_record(epoch=epoch, lr=learning_rate(recipe, epoch - 1, 0, 1), loss=loss,
                                        accuracy=accuracy, val=val, seconds=seconds, model=model))  # fmt: skip
    left = (tr.seconds - tr.earlier_seconds) / (epoch - tr.start_epoch + 1) * (epochs - epoch)
    acc = f" acc {accuracy:.3f}" if accuracy is not None else ""
    loop.progress.log(
        f"epoch {epoch}: train loss {loss:.4f}{acc}, {name} {score:.4f} ({seconds:.1f}s; "
        f"training: about {duration(left)} left)"
    )
    better = score > tr.best_val  # strictly better: the earliest epoch wins ties
    if better:
        tr.best_epoch, tr.best_val = epoch, score
    if loop.d.main:  # every rank holds the same weights; rank 0 writes them
        with writing(s.run_dir):
            save_epoch_checkpoint(
                s.run_dir, model, optimizer, epoch=epoch, better=better,
                state={"run_hash": s.run_hash, "history": tr.history, "best_epoch": tr.best_epoch,
                       task.records.best_field: tr.best_val, "train_seconds": tr.seconds},
                metadata=checkpoint_metadata(s),
            )  # fmt: skip
    loop.d.barrier()


@dataclass
class _Tested:
    """The final test: one record (and the task's other counts) per scale, the extras, the checkpoint."""

    per_scale: list[Any]
    aux: list[Any]
    extras: dict[str, Any]
    checkpoint_sha256: str
    seconds: float
    images: int
    equivariance: dict[str, Any] | None = None


def _test(s: Setup, model: torch.nn.Module, loop: Loop) -> _Tested:
    """The best checkpoint at every requested scale, in eval mode; the test sets are opened here."""
    load_weights(model, s.run_dir / BEST)
    sha = file_digest(s.run_dir / BEST, "sha256")
    model.eval()
    extras = s.task.extras(model, s.card)
    before = state_snapshot(model)
    t0 = time.perf_counter()
    per_scale, aux, images = [], [], 0
    for i, scale in enumerate(s.scales, 1):
        ds = s.built.dataset("test", scale)
        n = limited(ds, s.config.limit)
        record, counts = s.task.evaluate(model, ds, scale, n=n, loop=loop, build=s.built, extras=extras,
                                         label=f"test scale {scale:.3g} ({i}/{len(s.scales)})")  # fmt: skip
        loop.progress.end(
            f"{s.task.records.score_name.replace('_', ' ')} {s.task.selection_score(record):.4f}"
        )
        per_scale.append(record)
        aux.append(counts)
        images += n
    seconds = time.perf_counter() - t0
    check_state_unchanged(model, before, "testing")
    equivariance = _equivariance(s, model, loop) if s.task.measures_equivariance else None
    check_state_unchanged(model, before, "the equivariance measurement")
    return _Tested(per_scale, aux, extras, sha, seconds, images, equivariance)


def _equivariance(s: Setup, model: torch.nn.Module, loop: Loop) -> dict[str, Any] | None:
    """The scale-equivariance error (:mod:`scalebench.benchmark.equivariance`) of the trained model and of the
    run's initial weights (rebuilt from the seed: the same weights training started from, also after a
    resume); None when no two test scales are sqrt(2) apart."""
    images = min(EQUIVARIANCE_IMAGES, s.config.limit or EQUIVARIANCE_IMAGES)
    trained = measure_equivariance(model, s.built, s.scales, s.device, images=images)
    if trained is None:
        return None
    initial = measure_equivariance(_seeded_model(s).to(s.device), s.built, s.scales, s.device, images=images)
    loop.progress.log(
        f"scale-equivariance error (logit invariance, s vs s·√2): {initial['invariance']:.3f} at "
        f"initialisation, {trained['invariance']:.3f} trained"
    )
    return {"initial": initial, "trained": trained}


def checkpoint_metadata(s: Setup) -> dict[str, str]:
    """What a checkpoint's safetensors header says of its model, so that it rebuilds from the file alone
    (:func:`scalebench.api.load_model`): the name, the code's source, the config, the classes and input
    channels, the task, the run hash and scalebench's version, as one JSON value under the key ``scalebench``
    (one key: safetensors writes a header's keys in an arbitrary order, which would make the bytes differ)."""
    import json

    import scalebench

    info = {
        "version": scalebench.__version__,
        "task": s.task.name,
        "model": s.resolved.name,
        "model_source": s.resolved.source.as_dict(),
        "model_config": s.model_config,
        "num_classes": int(s.built.num_classes),
        "in_channels": int(s.built.channels),
        "run_hash": s.run_hash,
    }
    return {"scalebench": json.dumps(info, sort_keys=True)}


def check_model(model: Any, ref: str, card: Any, built: Any, task: Task) -> None:
    """A model from outside the zoo (``ref``: its reference or name) is checked once, before training or
    testing: it is an ``nn.Module`` that maps a batch of the build's images to finite scores of the right shape,
    and a model that reports scale selection follows that protocol. Each failure is one error naming ``ref``
    and what was expected."""
    if not isinstance(model, torch.nn.Module):
        raise ScalebenchError(f"{ref} returned a {type(model).__name__}, not a torch.nn.Module.")
    c, (h, w), k = int(built.channels), built.canvas, int(built.num_classes)
    want = (2, k) if task.name == "classification" else (2, k, h, w)
    if not any(True for _ in model.parameters()):
        raise ScalebenchError(f"{ref} has no parameters; the protocol trains a model with learnable weights.")
    zeros = torch.zeros(2, c, h, w, device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            out = model(zeros)
    except Exception as err:  # the user's code: its failure is reported as one line
        raise ScalebenchError(
            f"{ref} failed on a batch of the dataset's images, shape (2, {c}, {h}, {w}): {type(err).__name__}: "
            f"{err}. The model must take (B, {c}, {h}, {w}) inputs of {built.build_id}."
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ScalebenchError(f"{ref} returned {got} for a batch of 2 images; {want} expected ({k} classes).")
    if not torch.isfinite(out).all():
        raise ScalebenchError(f"{ref} returned non-finite scores (NaN or inf) for a batch of zeros.")
    selects = task.extras(model, card).get("sigmas")
    if selects:  # the scale-selection protocol, checked before training
        _check_selection(model, ref, zeros)


def _check_selection(model: torch.nn.Module, ref: str, batch: torch.Tensor) -> None:
    """A model that reports scale selection returns one winning channel per image, within its channels."""
    from scalebench.benchmark.tasks.classification import forward_with_selection

    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            _, winner = forward_with_selection(model, batch)
    except ScalebenchError:
        raise
    except Exception as err:  # the user's code
        raise ScalebenchError(
            f"{ref}: scale selection failed on a batch of 2 images: {type(err).__name__}: {err}."
        ) from None
    finally:
        model.train(was_training)
    n = len(model.channel_sigmas)
    if not isinstance(winner, torch.Tensor) or tuple(winner.shape) != (2,) or not (
        (winner >= 0) & (winner < n)
    ).all():  # fmt: skip
        raise ScalebenchError(
            f"{ref}: forward_with_selection must return one winning channel (0..{n - 1}, the channel_sigmas) "
            f"per image; got {winner!r} for a batch of 2."
        )


def _facts(
    s: Setup, model: torch.nn.Module, tr: _Training, tested: _Tested, t_start: float
) -> dict[str, Any]:
    """What the task's results record is made of (:meth:`scalebench.benchmark.tasks.Task.result`)."""
    from scalebench.models import count_parameters

    config, b = s.config, s.built
    images = len(tr.history) * tr.n_train
    timings = Timings(
        train_seconds=tr.seconds, eval_seconds=tested.seconds,
        total_seconds=tr.earlier_seconds + (time.perf_counter() - t_start),
        train_images_per_second=images / tr.seconds if tr.seconds > 0 else 0.0,
        eval_images_per_second=tested.images / tested.seconds if tested.seconds > 0 else 0.0,
    )  # fmt: skip
    return {
        "record": {
            "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(), "seed": config.seed,
            "limit": config.limit, "checkpoint_sha256": tested.checkpoint_sha256, "timings": timings,
            "environment": environment_info(s.device, config.amp),
        },
        "model": {"name": s.resolved.name, "config": s.model_config, "config_hash": s.run_hash,
                  "card": s.card.model_dump(mode="json"), "num_params": count_parameters(model),
                  "source": s.resolved.source.as_dict(),
                  "structure_sha256": s.identity["model_structure_sha256"]},
        "dataset": {
            "name": b.name, "build_id": b.build_id, "version": str(b.version),
            "manifest_sha256": s.identity["dataset_manifest_sha256"], "canvas": tuple(int(v) for v in b.canvas),
            "channels": int(b.channels), "num_classes": int(b.num_classes), "train_size": tr.n_train,
            "val_size": tr.n_val, "embedded": bool(getattr(b, "embedded", False)),
        },
        "training": {"preset": config.preset, "recipe": s.recipe.record(), "loss": tr.loss_info,
                     "custom": None if s.custom is None else s.custom.info(),
                     "best_epoch": tr.best_epoch, "best_val": tr.best_val, "history": tr.history},
        "per_scale": tested.per_scale, "aux": tested.aux, "extras": tested.extras,
        "equivariance": tested.equivariance,
        "key": s.key, "scales": s.scales, "build": b,
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Several seeds, and the terminal summary


def run_seeds(config: EvalConfig, seeds: Sequence[int]) -> tuple[list[RunOutcome], dict[str, Path]]:
    """Run several seeds of one config; with more than one, also draw the mean ± std curve over seeds.

    The group's files go to ``<out>/<model>__<build id>[__train<key>]__seeds-<seeds>__<hash>/``: ``curve``
    (PNG, SVG, CSV: the task's score against test scale, mean ± sample std over the seeds) and the long
    ``results.csv`` of every seed; returned by file name.
    """
    outcomes = [run(config.model_copy(update={"seed": seed})) for seed in seeds]
    done = [o.result for o in outcomes if o.result is not None]
    if len(seeds) < 2 or len(done) < len(seeds) or not all(o.files for o in outcomes):  # not on ranks > 0
        return outcomes, {}
    task = task_of(done[0].task)
    group_hash = config_hash({"runs": [o.run_dir.name for o in outcomes]})
    prefix = outcomes[0].run_dir.name.rsplit("__seed", 1)[0]
    group = Path(config.out) / f"{prefix}__seeds-{'-'.join(str(x) for x in seeds)}__{group_hash}"
    paths = plot_curves(
        done, group / "curve", metric=task.metric, columns=task.curve_columns, formats=RUN_FORMATS
    )
    paths.append(write_long_csv(done, group / "results.csv"))
    return outcomes, {p.name: p for p in paths}


def format_summary(outcome: RunOutcome) -> str:
    """A short terminal summary of one run, whatever its task."""
    r = outcome.result
    if r is None:
        return f"Run stopped after epoch {outcome.stopped_after_epoch}: {outcome.run_dir} (continue with --resume)"
    task = task_of(r.task)
    flag = f", --limit {r.limit}: SMOKE RUN, not comparable" if r.limit else ""
    score = task.records.score_name
    reused = " [reused]" if outcome.reused else ""
    lines = [
        f"{r.model.name} on {r.dataset.build_id} (seed {r.seed}, {r.training.preset} preset, training set "
        f"{key_text(train_key(r))}, best epoch {r.training.best_epoch}{flag}){reused}",
        "  scale    " + " ".join(f"{x.scale:>6.3g}" for x in r.per_scale),
        f"  {score:<8} " + " ".join(f"{x.score:>6.3f}" for x in r.per_scale),
        *task.describe(r),
    ]
    if outcome.reused:
        lines.append(
            f"  reused: {outcome.run_dir} is a finished run of the same resolved config (run hash "
            f"{outcome.run_hash or r.model.config_hash}) whose results match its done marker; delete that folder "
            "to run again"
        )
    lines.append(f"  results: {outcome.files.get('results.json', outcome.run_dir / 'results.json')}")
    figures = [str(p) for name, p in outcome.files.items() if name.endswith(".png")]
    if figures:
        lines.append(f"  figures: {', '.join(figures)}")
    return "\n".join(lines)
