"""The ``scalebench`` command line (click). Thin: each command parses, calls one library function, prints.

Verbs: ``datasets build|info|verify|export`` (``build-datasets`` is a hidden alias of ``datasets build``),
``models list|info``, ``evaluate``, ``verify`` (``evaluate --verify`` does the same), ``submit``,
``leaderboard build|validate|segmentation``, ``plot curves|selection`` and ``sweep launch|status|collect|
delete-incomplete``. Every long command takes the one ``--progress auto|rich|plain|none``
(:mod:`scalebench.progress`).

Exit codes: 0 on success; 1 for every error of a command, printed as one line ("Error: ...") without a
traceback: a :class:`scalebench.checks.ScalebenchError`, or an ``OSError`` from the operating system
(permission denied, disk full, read-only file system), named with its path and the system's message; 1 also
when a check fails (``datasets verify``, ``leaderboard validate``, a failed job of ``sweep launch``, a run
that ``verify`` does not verify); 2 for a usage error that click reports (an unknown option, a value of the
wrong type).
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

import click

from scalebench import __version__
from scalebench.allocator import tune_cpu_allocator
from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.specs import BUILD_CHOICES
from scalebench.progress import PROGRESS_MODES


def os_error_message(err: OSError) -> str:
    """One line for an operating-system error: the path(s), the system's message and the errno name.

    Example:
        >>> os_error_message(OSError(30, "Read-only file system", "/mnt/ro/results"))
        '/mnt/ro/results: Read-only file system (EROFS); the file system is read-only, choose a writable location.'
    """
    import errno

    paths = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    name = errno.errorcode.get(err.errno or -1)
    text = (err.strerror or str(err)) + (f" ({name})" if name else "")
    hint = {
        errno.ENOSPC: "free space or choose another location",
        errno.EDQUOT: "free space or choose another location",
        errno.EROFS: "the file system is read-only, choose a writable location",
        errno.EACCES: "check the permissions, or choose another location",
        errno.EPERM: "check the permissions, or choose another location",
    }.get(err.errno or -1, "check the path and retry")
    return f"{paths}: {text}; {hint}." if paths else f"{text}; {hint}."


class _Group(click.Group):
    """A click group that turns ScalebenchError and OSError into one line ("Error: ..."), exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ScalebenchError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:
            raise click.ClickException(os_error_message(err)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="scalebench")
def main() -> None:
    """scalebench: benchmark the scale generalisation of image networks.

    Build rescaled datasets, train at one scale, test at every scale, and compare on a leaderboard.
    """
    tune_cpu_allocator()  # large CPU tensors stay in the heap (scalebench/allocator.py)


# --- options shared by several commands -----------------------------------------------------------------

_FILE = click.Path(dir_okay=False, path_type=Path)
_FOLDER = click.Path(file_okay=False, path_type=Path)

_ROOT_OPTION = click.option(
    "--root", type=_FOLDER, help="scalebench home: the built datasets (default $SCALEBENCH_HOME)."
)
_DEVICE_OPTION = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
_PROGRESS_OPTION = click.option(
    "--progress",
    type=click.Choice(PROGRESS_MODES),
    default="auto",
    show_default=True,
    help="On stderr: rich bars, or plain dated lines (a phase's start, at most one line every 10 s with the "
    "time left, its end), or none; auto is rich on a terminal and plain in a log.",
)
_PRESET_OPTION = click.option(
    "--preset", type=click.Choice(["quick", "paper"]), default="quick", show_default=True
)
_AMP_OPTION = click.option("--amp", is_flag=True, help="bf16 autocast (CUDA only).")
_TRUST_OPTION = click.option("--trust-model-code", is_flag=True,
                             help="Verify a run whose model lives outside scalebench: imports and runs its code.")  # fmt: skip
_BUILDS_OPTION = click.option("--dataset", help="Dataset name or build id (default: every build).")
_STORE_OPTION = click.option("--store", type=_FOLDER, default=Path("results"), show_default=True,
                             help="The results store (one JSON per run).")  # fmt: skip
_SWEEP_OPTION = click.option("--out", "sweep_dir", type=_FOLDER, default=Path("outputs/sweep"), show_default=True,
                             help="The sweep folder (sweep.json, runs/, jobs/, logs/).")  # fmt: skip


def _train_option(name: str, text: str):
    """``--train-scale`` (one training set: a scale, or a mixed set such as ``1+2+3+4``) or ``--train-scales``
    (several, comma-separated): one meaning everywhere, the training set(s) of a build to use."""
    return click.option(name, default=None, metavar="KEY" if name == "--train-scale" else "KEYS", help=text)


def _options(*specs: tuple[str, Any, str | None]):
    """One decorator for the options ``(flag, type, help)``, each None unless given, listed in that order."""

    def add(command):
        for flag, kind, text in reversed(specs):
            command = click.option(flag, type=kind, default=None, help=text)(command)
        return command

    return add


class _ScaleRange(click.ParamType):
    """``MIN,MAX``: two positive factors, e.g. ``0.5,2``."""

    name = "MIN,MAX"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple | list):
            return list(value)
        parts = str(value).split(",")
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            self.fail(f"expected MIN,MAX (two numbers, e.g. 0.5,2), got {value!r}", param, ctx)
        return [low, high]


#: The recipe overrides of ``evaluate`` (None: the preset's value).
_RECIPE = (
    ("--epochs", int, None), ("--batch-size", int, None),
    ("--micro-batch-size", int, "Accumulate gradients over chunks of this size."), ("--eval-batch-size", int, None),
    ("--optimizer", click.Choice(["sgd", "adam", "adamw"]), None), ("--lr", float, None), ("--momentum", float, None),
    ("--weight-decay", float, None), ("--schedule", click.Choice(["constant", "cosine", "step"]), None),
    ("--warmup-epochs", int, None), ("--label-smoothing", float, None),
    ("--augmentation", click.Choice(["none", "hflip", "translate", "hflip+translate"]), None),
    ("--scale-augmentation", _ScaleRange(), "Rescale each training image by a random factor in MIN,MAX "
     "(log-uniform), e.g. 0.5,2: the run is ranked on the board's augmented track."),
    ("--scale-augmentation-interpolation", click.Choice(["bilinear", "bicubic", "nearest"]), None),
)  # fmt: skip
_RECIPE_KEYS = [flag[2:].replace("-", "_") for flag, _, _ in _RECIPE]


def _alias(command: click.Command, name: str, of: str) -> click.Command:
    """``command`` under the old name ``name``, hidden from the command list; its help names the command."""
    alias = copy.copy(command)
    alias.name, alias.hidden = name, True
    alias.help = f"Alias of `scalebench {of}`.\n\n{inspect.cleandoc(command.help or '')}"
    return alias


def _on_terminal() -> bool:
    """True when stdout is a terminal: tables are then rich tables, else tab-separated text."""
    import sys

    return sys.stdout.isatty()


# --- datasets (datasets build|info|verify|export; build-datasets) ------------------------------------------


@main.group("datasets")
def datasets_group() -> None:
    """Build, inspect, verify and export the rescaled datasets."""


@datasets_group.command("build")
@click.option("--dataset", type=click.Choice(BUILD_CHOICES), default="fashion-mnist", show_default=True,
              help="all: the three classification datasets; fashion-mnist-seg: the multi-object segmentation set "
                   "(docs/segmentation.md).")  # fmt: skip
@click.option("--raw-dir", type=click.Path(), default=None,
              help="Offline raw mirror in torchvision's layout (default $SCALEBENCH_RAW_DIR); never written to.")  # fmt: skip
@_ROOT_OPTION
@click.option("--scales", default=None, help="Test scales, comma-separated (default 2^(k/4), k=-4..4).")
@_train_option(
    "--train-scale",
    "Add the training set (train/val) of this scale (default: the build's first, 1); fashion-mnist-seg holds "
    "its sets 1, 2, 4 and 1+2+3+4.",
)
@click.option("--limit", type=int, default=None, help="Keep the first N images of each split.")
@click.option("--embedded", is_flag=True, help="Use the Fashion-MNIST subset shipped with scalebench.")
@click.option("--lite", is_flag=True,
              help="The canonical lite build: a seeded, stratified subset (4,000 / 1,000 / 1,000 per test scale).")  # fmt: skip
@click.option("--download/--no-download", default=True, show_default=True, help="Download missing raw files (md5-checked).")  # fmt: skip
@_PROGRESS_OPTION
@click.option("--quiet", is_flag=True, help="Same as --progress none.")
def datasets_build_cmd(progress, quiet, **options) -> None:
    """Build the rescaled datasets (train/val per training set, a test copy per scale) as HDF5 files.

    A build only grows: more --scales or another --train-scale add sets to an existing build.
    """
    from scalebench.datasets_builders import build_datasets

    for built in build_datasets(progress="none" if quiet else progress, **options):
        click.echo(built.summary())


main.add_command(_alias(datasets_build_cmd, "build-datasets", "datasets build"))


@datasets_group.command("verify")
@_BUILDS_OPTION
@_ROOT_OPTION
@_PROGRESS_OPTION
def datasets_verify_cmd(dataset, root, progress) -> None:
    """Re-decode and re-hash every array against the manifest; report each mismatch (exit 1 if any)."""
    from scalebench.datasets_builders.inventory import format_verify_datasets, verify_datasets

    report = verify_datasets(dataset, root, progress=progress)
    click.echo(format_verify_datasets(report))
    if any(report.values()):
        raise click.exceptions.Exit(1)


@datasets_group.command("info")
@_BUILDS_OPTION
@_ROOT_OPTION
def datasets_info_cmd(dataset, root) -> None:
    """Print the sizes, scales, disk use, manifest hash and folder of each build."""
    from scalebench.datasets_builders import describe_builds

    click.echo(describe_builds(dataset, root))


@datasets_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["hf"]), default="hf", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@_BUILDS_OPTION
@click.option("--push-to-hub", default=None, metavar="REPO", help="Also upload to this Hugging Face dataset repo.")  # fmt: skip
@_ROOT_OPTION
@_PROGRESS_OPTION
def datasets_export_cmd(fmt, out, dataset, push_to_hub, root, progress) -> None:
    """Export built datasets as Hugging Face datasets (Parquet, one configuration per test scale)."""
    from scalebench.datasets_builders import export_datasets

    paths = export_datasets(dataset, out, format=fmt, root=root, push_to_hub=push_to_hub, progress=progress)
    click.echo("\n".join(f"wrote {path}" for path in paths))


# --- models (models list|info) --------------------------------------------------------------------------


@main.group("models")
def models_group() -> None:
    """Show the model zoo: registered models, their papers, parameter counts and defaults."""


@models_group.command("list")
@click.argument("pattern", default="*")
@click.option("--task", type=click.Choice(["classification", "segmentation"]), default=None)
def models_list_cmd(pattern, task) -> None:
    """List registered models whose name matches PATTERN (fnmatch, e.g. 'njet*'; default: all)."""
    from scalebench.models.describe import LIST_COLUMNS, model_rows

    rows = model_rows(pattern, task=task)
    if _on_terminal():
        from rich.box import SIMPLE
        from rich.console import Console
        from rich.table import Table

        table = Table(box=SIMPLE)
        # name and params are never cut; the other columns may be on a narrow terminal
        for col in LIST_COLUMNS:
            keep = max(len(col), *(len(r[col]) for r in rows)) if col in ("name", "params") else None
            table.add_column(col, no_wrap=True, overflow="ellipsis", min_width=keep)
        for row in rows:
            table.add_row(*(row[c] for c in LIST_COLUMNS))
        Console().print(table)
        return
    click.echo("\t".join(LIST_COLUMNS))
    for row in rows:
        click.echo("\t".join(row[c] for c in LIST_COLUMNS))


@models_group.command("info")
@click.argument("name")
def models_info_cmd(name) -> None:
    """Show the card of model NAME: paper, bibtex key, parameter count, defaults, scale flags."""
    from scalebench.models.describe import model_info

    pairs = model_info(name)
    if _on_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table("field", "value", show_header=False)
        for key, value in pairs:
            table.add_row(key, value)
        Console().print(table)
        return
    for key, value in pairs:
        click.echo(f"{key}: {value}")


# --- benchmark (evaluate, verify) -----------------------------------------------------------------------


@main.command("evaluate")
@click.option("--model", default=None,
              help="A registered model (`scalebench models list`), or your own: FILE.py:factory or module:factory "
              "(docs/own-model.md).")  # fmt: skip
@click.option("--name", "model_name", default=None, help="The name your own model is run and shown under (default: the factory's).")  # fmt: skip
@click.option("--dataset", default="fashion-mnist", show_default=True, help="Build id of a built dataset.")
@_PRESET_OPTION
@click.option("--seed", type=int, default=None, help="One seed (default 0).")
@click.option("--seeds", default=None, help="Several seeds, e.g. 0,1,2 (adds a mean ± std curve).")
@_DEVICE_OPTION
@_AMP_OPTION
@click.option("--limit", type=int, default=None, help="Use at most N images per split: a smoke run, marked as such.")  # fmt: skip
@click.option("--scales", default=None, help="Test scales, e.g. 0.5,1,2 (default: every built scale).")
@_train_option(
    "--train-scale",
    "The training set: a training scale built in the build (`datasets build --train-scale S`), or a "
    "segmentation set such as 1+2+3+4 (default: the build's default set).",
)
@_train_option("--train-scales", "Alias of --train-scale for segmentation sets (1,2,3,4 = 1+2+3+4).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("outputs/runs"), show_default=True)
@_ROOT_OPTION
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last epoch checkpoint.")
@click.option("--model-config", "model_config", multiple=True, metavar="KEY=VALUE", help="Model config override.")  # fmt: skip
@_options(*_RECIPE)
@click.option("--num-workers", type=int, default=None, help="DataLoader workers (default: automatic).")
@_PROGRESS_OPTION
@click.option("--test-channels", default=None, metavar="dense[:F]",
              help="Also test the trained weights on an F times finer scale-channel grid (default F 2; "
              "scale-channel networks): a run of its own beside the trained-grid run, no extra training.")  # fmt: skip
@click.option("--tensorboard", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Also write per-epoch metrics to DIR/<run id> for TensorBoard (pip install tensorboard).")  # fmt: skip
@click.option("--stop-after-epoch", type=int, default=None, hidden=True)
@click.option("--distributed", is_flag=True, help="Data-parallel under `torchrun --nproc_per_node N` (DDP; rank 0 writes).")  # fmt: skip
@click.option("--verify", type=_FILE, default=None, metavar="RUN.json",
              help="Same as `scalebench verify RUN.json --checkpoint FILE`, the command for it (no training).")  # fmt: skip
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help="Weights for --verify.")
@_TRUST_OPTION
def evaluate_cmd(
    seed, seeds, scales, train_scale, train_scales, model_config, verify, checkpoint, **options
) -> None:
    """Train on a training set, select on its validation set, test on every scale; write results and figures.

    Any task: the build's (classification or segmentation). To re-evaluate a checkpoint instead, use
    `scalebench verify`.
    """
    if verify is not None or checkpoint is not None:
        if verify is None or checkpoint is None:
            raise ScalebenchError("--verify RUN.json and --checkpoint FILE go together; give both.")
        return _verify(
            verify, checkpoint, **{k: options[k] for k in ("root", "device", "progress", "trust_model_code")}
        )
    if options.pop("trust_model_code"):
        raise ScalebenchError(
            "--trust-model-code goes with --verify RUN.json (training imports the model you name anyway)."
        )
    if options["model"] is None:
        raise ScalebenchError(
            "Missing option --model (a registered model name, see `scalebench models list`, or FILE.py:factory)."
        )
    from scalebench.benchmark.config import config_from_options
    from scalebench.benchmark.protocol import format_summary, run_seeds

    if train_scale is not None and train_scales is not None:
        raise ScalebenchError("Give --train-scale (or its alias --train-scales), not both.")
    recipe = {k: options.pop(k) for k in _RECIPE_KEYS}
    config, seed_list = config_from_options(
        seed=seed, seeds=seeds, scales=scales, train_scale=train_scales if train_scale is None else train_scale,
        model_config=model_config, recipe=recipe, **options,
    )  # fmt: skip
    outcomes, group_files = run_seeds(config, seed_list)
    from scalebench.benchmark.distributed import is_main_process

    if not is_main_process():
        return
    for outcome in outcomes:
        click.echo(format_summary(outcome))
    if group_files:
        click.echo(
            f"Curve over seeds {seed_list}: {group_files['curve.png']} (data: {group_files['curve.csv']})"
        )


@main.command("verify")
@click.argument("results", metavar="RUN.json", type=_FILE)
@click.option("--checkpoint", type=_FILE, required=True,
              help="The run's best.safetensors (its sha256 must be the one RUN.json records).")  # fmt: skip
@click.option("--out", type=_FILE, default=None, help="The verified copy (default: RUN.verified.json beside RUN.json).")  # fmt: skip
@_ROOT_OPTION
@_DEVICE_OPTION
@_PROGRESS_OPTION
@_TRUST_OPTION
def verify_cmd(results, checkpoint, **options) -> None:
    """Re-evaluate a run's checkpoint on the test sets RUN.json records (any task; no training).

    When every per-scale count matches, write a copy of RUN.json marked verified; else list the differences
    and exit 1. `submit --checkpoint` runs the same check before it stores a run as verified.
    """
    _verify(results, checkpoint, **options)


def _verify(results: Path, checkpoint: Path, **options) -> None:
    """Run :func:`scalebench.benchmark.verify.verify_run` and print its report; exit 1 when not verified."""
    from scalebench.benchmark.verify import format_verify_report, verify_run

    report = verify_run(results, checkpoint, **options)
    click.echo(format_verify_report(report))
    if report.verified is None:
        raise click.exceptions.Exit(1)


@main.command("densify")
@click.argument("runs", nargs=-1, required=True, metavar="RUN_DIR|STORED_JSON...",
                type=click.Path(exists=True, path_type=Path))  # fmt: skip
@click.option(
    "--factor", type=int, default=2, show_default=True, help="F: the densified grid is F times finer."
)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where the densified runs go (default: beside each run).")  # fmt: skip
@_ROOT_OPTION
@_DEVICE_OPTION
@_PROGRESS_OPTION
def densify_cmd(runs, factor, out, root, device, progress) -> None:
    """Test finished runs' best weights on an F times denser scale-channel grid (no training).

    For runs trained by another scalebench version, copied from elsewhere, or stored (a store's seed-N.json with
    its seed-N.safetensors, with --out); a run this version trains is densified by `evaluate --test-channels
    dense:F`. The current code must reproduce each run's count at its training scale first. Each densified run
    is a run folder of its own, ready for `submit`.
    """
    from scalebench.benchmark.protocol import densify_run, format_summary

    for folder in runs:
        outcome = densify_run(folder, factor, out=out, root=root, device=device, progress=progress)
        click.echo(format_summary(outcome))


# --- leaderboard (submit, leaderboard build|validate|segmentation, plot) -----------------------------------


@main.command("submit")
@click.argument("results", nargs=-1, required=True, type=_FILE)
@_STORE_OPTION
@click.option("--checkpoint", type=_FILE, default=None,
              help="Re-evaluate this checkpoint (one results file; `scalebench verify`) and store the run as verified.")  # fmt: skip
@_ROOT_OPTION
@_DEVICE_OPTION
@_PROGRESS_OPTION
@_TRUST_OPTION
def submit_cmd(results, store, **options) -> None:
    """Validate results files and add them to the store (all or nothing; entries are never overwritten)."""
    from scalebench.benchmark.verify import verify_run
    from scalebench.leaderboard import submit

    for outcome in submit(results, store, verify=verify_run, **options):
        click.echo(f"{outcome.status}: {outcome.source} -> {outcome.path}")


@main.group("leaderboard")
def leaderboard_group() -> None:
    """Build the leaderboard from a results store, or re-validate the store."""


_SITE_OPTION = click.option("--out", type=_FOLDER, default=Path("site"), show_default=True)


@leaderboard_group.command("build")
@_STORE_OPTION
@_SITE_OPTION
def leaderboard_build_cmd(store, out) -> None:
    """Rank the store over seeds; write LEADERBOARD.md, leaderboard.csv, leaderboard.json and index.html
    (with the segmentation table and segmentation.csv when the store holds segmentation results)."""
    from scalebench.leaderboard import build_leaderboard

    paths = build_leaderboard(store, out)
    click.echo(f"Leaderboard written to {out}: " + ", ".join(p.name for p in paths.values()))


@leaderboard_group.command("segmentation")
@click.argument("results", nargs=-1, required=True, type=_FILE)
@_SITE_OPTION
def leaderboard_segmentation_cmd(results, out) -> None:
    """The segmentation table of `leaderboard build` (the same code) from results files, without a store:
    SEGMENTATION.md, segmentation.csv and the mIoU and σ figures."""
    from scalebench.leaderboard.segmentation import build_segmentation_leaderboard

    paths = build_segmentation_leaderboard(results, out)
    click.echo(f"Segmentation leaderboard written to {out}: " + ", ".join(p.name for p in paths.values()))


@leaderboard_group.command("validate")
@_STORE_OPTION
@click.option("--previous", type=_FILE, default=None,
              help="leaderboard.json of an earlier build: every run listed there must still be stored, with the "
                   "sha256 recorded there (or upgraded to verified).")  # fmt: skip
def leaderboard_validate_cmd(store, previous) -> None:
    """Re-validate every entry and the index of the store; exit 1 if any problem (for CI)."""
    from scalebench.leaderboard import validate_store

    report = validate_store(store, previous=previous)
    for line in report.problems:
        click.echo(line)
    click.echo(f"{store}: {len(report.entries)} valid entries, {len(report.problems)} problem(s)")
    if report.problems:
        raise click.exceptions.Exit(1)


@main.group("plot")
def plot_group() -> None:
    """Comparison figures for papers (PDF, SVG, 300-dpi PNG, each with its CSV)."""


def _plot_command(name: str, plot: str, help_text: str) -> click.Command:
    """Register ``scalebench plot NAME``: results files (or a store slice) in, the figure of ``plot`` out."""

    @plot_group.command(name, help=help_text)
    @click.argument("results", nargs=-1, type=_FILE)
    @click.option("--store", type=_FOLDER, default=None, help="Plot from a store.")
    @click.option(
        "--dataset",
        default=None,
        help="Board to plot from --store: a dataset (full track) or <dataset>-lite (lite track).",
    )
    @click.option("--train-scale", type=float, default=None, help="Training scale to plot from --store.")
    @click.option("--out", type=click.Path(path_type=Path), default=Path(f"figures/{name}"), show_default=True,
                  help="Output stem: writes STEM.pdf, .svg, .png and .csv.")  # fmt: skip
    @click.option("--title", default=None)
    @click.option(
        "--models",
        default=None,
        metavar="NAMES",
        help="Only these models: comma-separated names or fnmatch patterns, e.g. 'gaussder*,sesn'.",
    )
    @click.option(
        "--presets-only",
        is_flag=True,
        help="Only each model's preset configuration (default or quick) on its trained channels: "
        "leaves out --model-config variants and densified runs.",
    )
    @click.option("--label", "label", multiple=True, metavar="KEY=NAME",
                  help="Legend name of a model (KEY: model name) or of one configuration (KEY: config hash, "
                       "or the start of one); repeatable.")  # fmt: skip
    def command(results, store, dataset, train_scale, out, title, models, presets_only, label) -> None:
        from scalebench.figures.curves import plot_curves
        from scalebench.figures.selection import plot_selection
        from scalebench.figures.style import select_runs
        from scalebench.figures.summary import plot_summary
        from scalebench.leaderboard.store import load_for_plot

        labels = {}
        for item in label:
            key, sep, name = item.partition("=")
            if not sep or not key or not name:
                raise ScalebenchError(
                    f"--label takes KEY=NAME (model name or config hash = legend name), got {item!r}."
                )
            labels[key] = name
        runs = load_for_plot(results, store=store, dataset=dataset, train_scale=train_scale,
                             selection=plot == "plot_selection")  # fmt: skip
        patterns = [m.strip() for m in (models or "").split(",") if m.strip()]
        runs = select_runs(runs, models=patterns, presets_only=presets_only)
        draw = {"plot_curves": plot_curves, "plot_selection": plot_selection, "plot_summary": plot_summary}[
            plot
        ]
        paths = draw(runs, out, title=title, labels=labels)
        click.echo("wrote " + ", ".join(str(p) for p in paths))

    return command


plot_curves_cmd = _plot_command(
    "curves",
    "plot_curves",
    "Overlay generalisation curves: mean ± std over seeds, log2 scale axis, training scale marked.",
)
plot_selection_cmd = _plot_command(
    "selection",
    "plot_selection",
    "Scale-selection heatmaps side by side (counts pooled over seeds, Spearman ρ per panel).",
)
plot_summary_cmd = _plot_command(
    "summary",
    "plot_summary",
    "The field at a glance: each configuration's mean accuracy and worst / train-scale ratio, best first.",
)


# --- sweep (sweep launch|status|collect|delete-incomplete|run-job) ----------------------------------------


@main.group("sweep")
def sweep_group() -> None:
    """Run the grid models × datasets × training sets × seeds locally or on Slurm (submitit)."""


@sweep_group.command("launch")
@click.option("--models", required=True, help="Comma-separated model names.")
@click.option("--datasets", required=True, help="Comma-separated build ids.")
@click.option("--seeds", default="0,1,2", show_default=True)
@_train_option(
    "--train-scales",
    "Training sets of each build, e.g. 1,2 or 1,1+2+3+4 (default: each build's default set); add one to a "
    "build with `datasets build --train-scale S`.",
)
@click.option("--train-scale-root", multiple=True, hidden=True, help="Removed: see --train-scales.")
@_PRESET_OPTION
@click.option("--launcher", type=click.Choice(["local", "slurm", "debug"]), default="local", show_default=True)  # fmt: skip
@click.option("--parallel", type=int, default=1, show_default=True, help="local: jobs at a time.")
@_DEVICE_OPTION
@_AMP_OPTION
@click.option("--limit", type=int, default=None, help="At most N images per split (smoke sweep).")
@click.option("--epochs", type=int, default=None, help="Override the preset's epochs.")
@click.option("--model-config", "model_config", multiple=True, metavar="KEY=VALUE",
              help="Model config override for every job (e.g. multires=true); part of each run's identity.")  # fmt: skip
@click.option("--test-channels", default=None, metavar="dense[:F]",
              help="Test every job's trained weights on an F times finer scale-channel grid as well (see evaluate).")  # fmt: skip
@_ROOT_OPTION
@_PROGRESS_OPTION
@click.option("--slurm-config", type=_FILE, help="YAML file of Slurm options (keys as the flags below, with underscores).")  # fmt: skip
@_options(
    ("--partition", str, None), ("--gpus-per-job", int, None), ("--cpus-per-job", int, None), ("--mem-gb", int, None),
    ("--time-min", int, "Wall time per job (requeued with resume on time-out)."),
    ("--array-parallelism", int, None), ("--account", str, None), ("--qos", str, None),
)  # fmt: skip
@click.option("--skip-stored", type=_FOLDER, default=None, metavar="STORE",
              help="Skip the jobs whose results are already in this leaderboard store (e.g. results/).")  # fmt: skip
@_SWEEP_OPTION
def sweep_launch_cmd(models, datasets, seeds, train_scales, train_scale_root, preset, launcher, parallel, device,
                     amp, limit, epochs, model_config, test_channels, root, progress, slurm_config, skip_stored,
                     sweep_dir, **slurm_flags) -> None:  # fmt: skip
    """Launch every job of the grid that is not done (interrupted ones resume from their last epoch); the local
    launcher waits for the jobs and shows how many are finished (--progress), each job logging to its own file."""
    from scalebench.benchmark.config import parse_model_config
    from scalebench.checks import parse_int_list
    from scalebench.sweep import launch, slurm_options

    if train_scale_root:
        raise ScalebenchError(
            "--train-scale-root was removed: a build carries its training sets; add one with `scalebench "
            "datasets build --train-scale S` and sweep over them with --train-scales (one --root for all)."
        )
    report = launch(
        sweep_dir, launcher=launcher, models=models.split(","), datasets=datasets.split(","),
        seeds=parse_int_list(seeds, "--seeds"), root=root, preset=preset, device=device, amp=amp, limit=limit,
        train_scales=train_scales.split(",") if train_scales is not None else None,
        recipe_overrides={"epochs": epochs} if epochs else {}, skip_stored=skip_stored,
        model_config_overrides=parse_model_config(model_config), test_channels=test_channels,
        launcher_options={"parallel": parallel, "progress": progress,
                          "slurm": slurm_options(slurm_config, **slurm_flags) if launcher == "slurm" else None},
    )  # fmt: skip
    for line in [*report.lines, report.summary(sweep_dir, skip_stored)]:
        click.echo(line)
    if report.failed:
        raise click.exceptions.Exit(1)


@sweep_group.command("status")
@_SWEEP_OPTION
def sweep_status_cmd(sweep_dir) -> None:
    """Table of pending, running, done, failed and stale jobs, with the log of each failure."""
    from scalebench.sweep import format_status, sweep_status

    rows = sweep_status(sweep_dir)
    if _on_terminal():
        from rich.console import Console

        Console().print(format_status(rows, rich=True))
    else:
        click.echo(format_status(rows))


@sweep_group.command("collect")
@_SWEEP_OPTION
@_STORE_OPTION
@click.option("--figures", type=_FOLDER, help="Figure folder (default OUT/figures).")
@click.option("--checkpoints/--no-checkpoints", default=True, show_default=True,
              help="Also store each run's best checkpoint beside its results (sha256-checked).")  # fmt: skip
def sweep_collect_cmd(sweep_dir, store, figures, checkpoints) -> None:
    """Submit the finished runs to a leaderboard store and draw the comparison figures."""
    from scalebench.sweep import collect

    click.echo(collect(sweep_dir, store, figures_dir=figures, checkpoints=checkpoints).summary(store))


@sweep_group.command("delete-incomplete")
@_SWEEP_OPTION
def sweep_delete_incomplete_cmd(sweep_dir) -> None:
    """Delete the run folders, records and logs of jobs neither done nor running: pending, failed or stale
    (they restart from scratch)."""
    from scalebench.sweep import delete_incomplete

    for job in delete_incomplete(sweep_dir):
        click.echo(f"deleted {job.run_dir}")


@sweep_group.command("run-job", hidden=True)
@click.option("--sweep", "sweep_dir", type=_FOLDER, required=True)
@click.argument("job_id")
def sweep_run_job_cmd(sweep_dir, job_id) -> None:
    """Run one job of a sweep in this process (what the launchers run)."""
    from scalebench.sweep import run_job

    click.echo(f"{job_id}: {run_job(sweep_dir, job_id)}")


if __name__ == "__main__":  # pragma: no cover
    main()
