"""Reading and writing results files: size-limited strict JSON, the record of its task, atomic writes, and the
JSON Schema of both tasks exported to ``docs/results-schema.json``."""

from __future__ import annotations

import json
from pathlib import Path, PurePath
from typing import Annotated, Any, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from scalebench.checks import ScalebenchError
from scalebench.fileio import write_text_atomic
from scalebench.results.schema import (
    SCHEMA_VERSION,
    TASKS,
    AnyRunResult,
    ClassificationResult,
    SegmentationResult,
)

#: Largest results file accepted by :func:`load_results` (a 9-scale run with a 32-channel selection matrix
#: is a few tens of kB; the model card and config dominate).
MAX_RESULTS_BYTES = 4 * 1024 * 1024


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors()[:8]:
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{loc}: {e['msg']}")
    more = f" (+{err.error_count() - 8} more)" if err.error_count() > 8 else ""
    return (
        f"{source} is not a valid scalebench results file (schema {SCHEMA_VERSION}): "
        + "; ".join(lines)
        + more
    )


#: The commands that read the results of each task (named when a command is given a file of another task).
_READ_BY = {
    "classification": "`scalebench plot`, `scalebench submit` and `scalebench evaluate --verify`",
    "segmentation": "`scalebench leaderboard segmentation`, `scalebench submit` and `scalebench evaluate --verify`",
}


def read_results_bytes(path: str | Path) -> bytes:
    """The bytes of a results file, after checking that it exists and is within :data:`MAX_RESULTS_BYTES`."""
    path = Path(path)
    if not path.is_file():
        raise ScalebenchError(f"Results file {str(path)!r} does not exist.")
    size = path.stat().st_size
    if size > MAX_RESULTS_BYTES:
        raise ScalebenchError(
            f"{path} is {size} bytes, above the {MAX_RESULTS_BYTES}-byte limit for a results file; "
            "use the file `scalebench evaluate` wrote."
        )
    return path.read_bytes()


def parse_results(
    text: str | bytes, source: str = "results", *, tasks: tuple[str, ...] = ("classification",)
) -> AnyRunResult:
    """Validate results JSON text with the schema of its ``task`` (one of ``tasks``).

    Every problem raises one ScalebenchError naming ``source`` and the field; a file of another task is
    rejected with the task it holds.
    """
    if len(text) > MAX_RESULTS_BYTES:
        raise ScalebenchError(
            f"{source} is {len(text)} bytes, above the {MAX_RESULTS_BYTES}-byte limit for a results file."
        )

    def _no_constants(name: str) -> Any:
        raise ValueError(f"non-finite number {name}")

    try:
        data = json.loads(text, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as err:
        raise ScalebenchError(f"{source} is not valid JSON ({err}); a results file is strict JSON.") from None
    if not isinstance(data, dict):
        raise ScalebenchError(f"{source} must hold a JSON object, found {type(data).__name__}.")
    task = data.get("task", "classification")
    if task not in tasks:
        read_by = _READ_BY.get(task) if isinstance(task, str) else None
        fix = f"{task} results are read by {read_by}" if read_by else f"valid tasks: {', '.join(TASKS)}"
        raise ScalebenchError(
            f"{source} holds {task!r} results (field 'task'), but this command reads "
            f"{' or '.join(map(repr, tasks))} results only; {fix}."
        )
    try:
        return TASKS[task].model_validate(data)  # type: ignore[return-value]
    except ValidationError as err:
        raise ScalebenchError(_format_errors(err, source)) from None


def load_results(path: str | Path, *, tasks: tuple[str, ...] = ("classification",)) -> AnyRunResult:
    """Read and validate one results file (size-limited, strict JSON, the schema of its task)."""
    return parse_results(read_results_bytes(path), source=str(path), tasks=tasks)


def results_to_json(result: AnyRunResult) -> str:
    """Canonical JSON text of a result (sorted keys, no NaN), as written to disk."""
    return json.dumps(result.model_dump(mode="json"), indent=2, sort_keys=True, allow_nan=False) + "\n"


_P = TypeVar("_P", bound=PurePath)


def stored_checkpoint(results_file: _P) -> _P:
    """Where a stored run's best checkpoint lives: beside its results file, ``seed-<n>.json`` ->
    ``seed-<n>.safetensors`` (the store's layout)."""
    return results_file.with_suffix(".safetensors")


def save_results(result: AnyRunResult, path: str | Path) -> Path:
    """Write a result atomically (temporary file, then rename)."""
    path = Path(path)
    write_text_atomic(path, results_to_json(result))
    return path


def results_json_schema() -> dict[str, Any]:
    """The JSON Schema of a results file of either task (validation mode, the ``task`` field discriminates), as
    exported to ``docs/results-schema.json``."""
    either = Annotated[ClassificationResult | SegmentationResult, Field(discriminator="task")]
    schema = TypeAdapter(either).json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"scalebench results file (schema {SCHEMA_VERSION})"
    return schema


def export_json_schema(path: str | Path) -> Path:
    """Write :func:`results_json_schema` to ``path`` (sorted keys, atomic). A test checks it is current."""
    path = Path(path)
    write_text_atomic(path, json.dumps(results_json_schema(), indent=2, sort_keys=True) + "\n")
    return path


def load_segmentation_results(path: str | Path) -> SegmentationResult:
    """Read and validate one segmentation results file (:func:`load_results` for the segmentation task)."""
    return load_results(path, tasks=("segmentation",))  # type: ignore[return-value]
