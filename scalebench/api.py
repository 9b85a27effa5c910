"""The Python API: run the protocol on any model, test a model trained elsewhere, load a trained model.

- :func:`evaluate`: the protocol (train at one scale, select on validation there, test every scale) on a
  model of the zoo, a reference (``FILE.py:factory``, ``module:factory``) or a factory callable; seeds; the
  recipe of a preset with overrides; optionally a non-standard training (``loss_fn``, ``optimizer_factory``,
  ``scheduler_factory``), recorded in the results with the callables' source hashes.
- :func:`test`: evaluate a model trained elsewhere on every test scale of a build (RobustBench's
  ``benchmark(model, ...)``): its results record ``training.preset = "external"`` and the board shows them in
  an external-training track, never ranked with protocol-trained runs.
- :func:`load_model`: the trained model of a run folder or a checkpoint, in one line (the checkpoint's
  safetensors header names the model, its code and its config).

Importing a model of your own runs its code (``docs/own-model.md``). Every failure is one
:class:`~scalebench.checks.ScalebenchError`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from scalebench.checks import ScalebenchError

ModelLike = str | Callable[..., Any]


def _model_name(model: ModelLike, name: str | None) -> str:
    """A zoo name or a reference as given; a callable factory registered in this process (its name)."""
    if isinstance(model, str):
        return model
    from scalebench.models import registry

    return registry.register_callable(model, name=name)


def custom_training(
    loss_fn: Callable | None, optimizer_factory: Callable | None, scheduler_factory: Callable | None
) -> Any:
    """The :class:`scalebench.benchmark.engine.Custom` of a non-standard training, or None for the standard one."""
    if loss_fn is None and optimizer_factory is None and scheduler_factory is None:
        return None
    from scalebench.benchmark.engine import Custom

    return Custom(loss=loss_fn, optimizer=optimizer_factory, scheduler=scheduler_factory)


def evaluate(
    model: ModelLike,
    *,
    dataset: str = "fashion-mnist-lite",
    preset: str = "quick",
    seeds: Sequence[int] = (0,),
    name: str | None = None,
    model_config: dict[str, Any] | None = None,
    train_scale: float | str | None = None,
    root: str | Path | None = None,
    out: str | Path = "outputs/runs",
    device: str = "auto",
    progress: str = "auto",
    resume: bool = False,
    tensorboard: str | Path | None = None,
    test_channels: str | None = None,
    loss_fn: Callable | None = None,
    optimizer_factory: Callable | None = None,
    scheduler_factory: Callable | None = None,
    **recipe_overrides: Any,
) -> list[Any]:
    """Run the protocol on ``model`` for each seed; the results records, one per seed.

    ``model``: a zoo name, a reference, or a factory ``f(*, num_classes, in_channels, **config) -> nn.Module``
    (registered under ``name`` or its own name). ``recipe_overrides``: fields of the preset's recipe
    (``epochs=2``, ``lr=0.01``, ...). ``loss_fn(logits, targets) -> loss``, ``optimizer_factory(params) ->
    optimizer`` and ``scheduler_factory(optimizer) -> scheduler`` (stepped once per epoch) make a non-standard
    training. ``tensorboard``: a folder for per-epoch TensorBoard logs (optional extra ``tensorboard``).
    ``test_channels="dense"`` (or ``"dense:F"``): test on an F times finer scale-channel grid as well
    (:mod:`scalebench.models.densify`); the results returned are those of the densified runs.

    Example:
        >>> import scalebench  # doctest: +SKIP
        >>> results = scalebench.evaluate("my_model.py:build", dataset="fashion-mnist-lite", seeds=[0, 1, 2])  # doctest: +SKIP
    """
    from scalebench.benchmark.config import config_from_options
    from scalebench.benchmark.protocol import run

    reference = _model_name(model, name)
    config, seed_list = config_from_options(
        model=reference, model_name=name if isinstance(model, str) else None, dataset=dataset, preset=preset,
        seeds=",".join(str(s) for s in seeds), root=root, out=Path(out), device=device, progress=progress,
        resume=resume, tensorboard=None if tensorboard is None else Path(tensorboard), recipe=recipe_overrides,
        test_channels=test_channels,
        train_scale=None if train_scale is None else str(train_scale),
        model_config=[f"{k}={json.dumps(v)}" for k, v in (model_config or {}).items()],
    )  # fmt: skip
    custom = custom_training(loss_fn, optimizer_factory, scheduler_factory)
    return [run(config.model_copy(update={"seed": s}), custom=custom).result for s in seed_list]


def test(
    model: nn.Module,
    *,
    dataset: str = "fashion-mnist-lite",
    name: str | None = None,
    root: str | Path | None = None,
    out: str | Path = "outputs/runs",
    device: str = "auto",
    batch_size: int = 64,
    progress: str = "auto",
) -> Any:
    """Test ``model`` (trained elsewhere) on every test scale of ``dataset``; its results record.

    The model is put in eval mode and never changed (a state check around the test); its weights are saved
    as ``best.safetensors`` in the run folder so that the numbers can be verified. The results record
    ``training.preset = "external"``.
    """
    from scalebench.benchmark.external import test_model

    return test_model(model, dataset=dataset, name=name, root=root, out=Path(out), device=device,
                      batch_size=batch_size, progress=progress)  # fmt: skip


def _metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # a file that is not safetensors
        raise ScalebenchError(f"{path} is not a readable safetensors checkpoint ({err}).") from None


def load_model(path: str | Path, *, trust_model_code: bool = False, device: str = "cpu") -> nn.Module:
    """The trained model of a run folder (its ``best.safetensors``) or of a checkpoint file, in eval mode.

    The checkpoint's safetensors header names the model, its code (reference and sha256) and its config; a
    model from outside scalebench is imported again only with ``trust_model_code``, and its source must be
    the recorded one.

    Example:
        >>> model = scalebench.load_model("outputs/runs/gaussdernet__fashion-mnist-lite__seed0__abc/")  # doctest: +SKIP
    """
    from scalebench.benchmark.checkpoint import load_weights
    from scalebench.models import create_model
    from scalebench.models.registry import registered_with, resolve_model

    path = Path(path)
    checkpoint = path / "best.safetensors" if path.is_dir() else path
    if not checkpoint.is_file():
        raise ScalebenchError(f"No checkpoint at {checkpoint}; give a run folder or its best.safetensors.")
    header = _metadata(checkpoint)
    if "scalebench" not in header:
        raise ScalebenchError(
            f"{checkpoint} does not say which model it holds (written before checkpoints carried their model); "
            "rebuild it with scalebench.models.create_model(name, **config) from the run's results.json."
        )
    meta = json.loads(header["scalebench"])
    source = meta["model_source"]
    if source["kind"] != "zoo" and not registered_with(meta["model"], source.get("sha256")):
        if not trust_model_code:
            raise ScalebenchError(
                f"{checkpoint} holds a model from outside scalebench ({source['reference']}); loading it imports "
                "and runs that code. Pass trust_model_code=True if you trust it."
            )
        resolved = resolve_model(source["reference"], name=meta["model"])
        if source.get("sha256") and resolved.source.sha256 != source["sha256"]:
            raise ScalebenchError(
                f"The source of {source['reference']} changed since {checkpoint} was written (sha256 "
                f"{resolved.source.sha256}, recorded {source['sha256']})."
            )
    model = create_model(
        meta["model"], num_classes=int(meta["num_classes"]), in_channels=int(meta["in_channels"]),
        **meta["model_config"],
    )  # fmt: skip
    load_weights(model, checkpoint)
    return model.to(device).eval()


def callable_info(fn: Callable | None) -> dict[str, Any] | None:
    """Name and source sha256 of a callable of a non-standard training (None: not given)."""
    import hashlib

    if fn is None:
        return None
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    try:
        sha = hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
    except (OSError, TypeError):
        sha = None
    return {"name": name[:300], "sha256": sha}
