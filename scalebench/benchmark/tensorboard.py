"""Per-epoch training metrics to TensorBoard, for people who watch long runs (optional extra ``tensorboard``).

``scalebench evaluate --tensorboard DIR`` (or ``scalebench.evaluate(..., tensorboard=DIR)``) writes one event
folder per run, ``DIR/<run id>``, with every number of the epoch's record (learning rate, training loss and
accuracy, validation score, seconds) as a scalar at step = epoch. A resumed run appends to the same folder.
Watch with ``tensorboard --logdir DIR``. The results file stays the record of a run; TensorBoard is a view.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scalebench.checks import ScalebenchError


def epoch_writer(logdir: Path, run_id: str) -> Any:
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``logdir/run_id``; one clear error without the extra."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ScalebenchError(
            "--tensorboard needs the tensorboard package: pip install 'scalebench[tensorboard]' "
            "(or pip install tensorboard), or leave the option out."
        ) from None
    target = Path(logdir) / run_id
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ScalebenchError(f"Cannot write TensorBoard logs to {target}: {err.strerror}.") from None
    return SummaryWriter(log_dir=str(target))


def log_epoch(writer: Any, record: dict[str, Any]) -> None:
    """Every number of an epoch record except the epoch itself, as ``epoch/<key>`` at step = epoch."""
    step = int(record["epoch"])
    for key, value in record.items():
        if key != "epoch" and isinstance(value, int | float) and not isinstance(value, bool):
            writer.add_scalar(f"epoch/{key}", float(value), step)
    writer.flush()
