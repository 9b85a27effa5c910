"""What a task adds to the one protocol (:func:`scalebench.benchmark.protocol.run`), and the tasks by name.

A task is the kind of a dataset build (``scalebench.datasets_builders.open_build(...).task``, read from the
manifest's format, never from the build id) and of a results file (its ``task`` field). The protocol resolves,
trains, selects, tests and writes the same way for every task; a task gives it:

- its records (:class:`Records`): the results record, the ``state.json`` schema of an interrupted run and the
  name of the best validation score in both;
- :meth:`Task.check`: its rules on the training set and the test scales of a run;
- :meth:`Task.training_sets`: the training and validation datasets of the build's training set;
- :meth:`Task.make_loss`: the loss (a :class:`Loss`: a summed loss and the batch's normaliser);
- :meth:`Task.evaluate`: counts on one dataset, as a per-scale record of :mod:`scalebench.results` (and, when
  testing, counts outside it: the winning scale channels); :meth:`Task.selection_score` turns a validation
  record into the score that selects the checkpoint;
- :meth:`Task.extras`: what it measures on the tested model besides the counts (the σ0 of the scale channels
  whose selection it counts; the learned σ and the receptive field); validation runs without extras;
- :meth:`Task.epoch_record` and :meth:`Task.result`: its records of an epoch and of the run;
- :meth:`Task.figures` and :meth:`Task.describe`: its per-run figures (:mod:`scalebench.figures`) and lines of
  the terminal summary.

:data:`TASKS` holds one instance per task: ``classification`` (:mod:`.classification`) and ``segmentation``
(:mod:`.segmentation`); :func:`task_of` looks one up.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from torch import Tensor, nn

from scalebench.benchmark.checkpoint import RunState
from scalebench.benchmark.engine import Loop
from scalebench.checks import ScalebenchError
from scalebench.results import RunRecord
from scalebench.results.recipe import Recipe


class Loss(Protocol):
    """A task's training loss: ``loss(logits, target)`` is the summed loss of a micro-batch and its correct
    predictions (0 when the task counts none, ``counts_hits`` False); ``denominator(target)`` the normaliser of
    a whole batch, so that a step's loss is the sum over its micro-batches divided by it. ``info``: what the
    results record of it."""

    counts_hits: bool
    info: dict[str, Any]

    def __call__(self, logits: Tensor, target: Tensor) -> tuple[Tensor, int]: ...

    def denominator(self, target: Tensor) -> float: ...


@dataclass(frozen=True)
class Records:
    """A task's records: ``result`` (its results file), ``state`` (the ``state.json`` of an interrupted run) and
    ``best_field``, the name of the best validation score in both."""

    result: type[RunRecord]
    state: type[RunState]
    best_field: str

    @property
    def score_name(self) -> str:
        """The validation score's name: ``accuracy``, ``mean_iou``."""
        return self.best_field.removeprefix("best_val_")


class Task(ABC):
    """The protocol every task implements (module docstring); the methods with a body serve both tasks."""

    name: ClassVar[str]
    records: ClassVar[Records]
    #: the curve's metric (:data:`scalebench.figures.curves.METRICS`) and the CSV columns of a run's curves
    metric: ClassVar[str]
    curve_columns: ClassVar[tuple[str, ...]]
    #: the memory format of the model and its inputs
    channels_last: ClassVar[bool] = True
    #: the protocol measures the scale-equivariance error (:mod:`scalebench.benchmark.equivariance`)
    measures_equivariance: ClassVar[bool] = False

    def check(self, build: Any, key: tuple[float, ...], scales: list[float]) -> None:
        """The task's own rules on a run's training set and test scales (none by default)."""
        return None

    def training_sets(self, build: Any, key: tuple[float, ...]) -> tuple[Any, Any]:
        """The training and validation datasets of the build's training set ``key``."""
        return build.dataset("train", train_scale=key), build.dataset("val", train_scale=key)

    def selection_score(self, record: Any) -> float:
        """The score of a validation record that selects the checkpoint (the per-scale record's ``score``)."""
        return float(record.score)

    @abstractmethod
    def make_loss(self, build: Any, train: Any, n: int, recipe: Recipe, device: Any) -> Loss:
        """The loss of a run, from the first ``n`` images of its training set."""

    @abstractmethod
    def evaluate(
        self, model: nn.Module, ds: Any, scale: float, *, n: int, loop: Loop, build: Any,
        extras: dict[str, Any], label: str | None = None,
    ) -> tuple[Any, Any]:  # fmt: skip
        """The per-scale record of ``ds[:n]`` at ``scale`` and the task's other counts (summed over ranks)."""

    @abstractmethod
    def extras(self, model: nn.Module, card: Any) -> dict[str, Any]:
        """What the task measures on the model to test, besides the counts."""

    @abstractmethod
    def epoch_record(
        self, *, epoch: int, lr: float, loss: float, accuracy: float | None, val: Any, seconds: float,
        model: nn.Module,
    ) -> dict[str, Any]:  # fmt: skip
        """The record of one epoch (the results' ``training.history``)."""

    @abstractmethod
    def result(self, facts: dict[str, Any], model: nn.Module) -> RunRecord:
        """The results record of a run from the protocol's ``facts``."""

    @abstractmethod
    def figures(self, result: Any, run_dir: Path, model: nn.Module, build: Any, loop: Loop) -> None:
        """The per-run figures and the long ``results.csv`` in ``run_dir``."""

    @abstractmethod
    def describe(self, result: Any) -> list[str]:
        """Lines of the terminal summary after the per-scale scores."""


def _tasks() -> dict[str, Task]:
    from scalebench.benchmark.tasks.classification import ClassificationTask
    from scalebench.benchmark.tasks.segmentation import SegmentationTask

    return {t.name: t for t in (ClassificationTask(), SegmentationTask())}


#: The tasks by name: a build's ``task`` and a results file's ``task``.
TASKS: dict[str, Task] = _tasks()


def task_of(name: str) -> Task:
    """The task called ``name`` (a build's or a results file's ``task``)."""
    if name not in TASKS:
        raise ScalebenchError(f"Unknown task {name!r}; scalebench runs {', '.join(sorted(TASKS))}.")
    return TASKS[name]
