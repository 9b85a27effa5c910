"""The ``scalebench`` command line (click). Thin: each command parses, calls one library function, prints.

Exit codes: 0 on success; 1 for every error of a command, printed as one line ("Error: ...") without a
traceback: a :class:`scalebench.checks.ScalebenchError`, or an ``OSError`` from the operating system
(permission denied, disk full, read-only file system), named with its path and the system's message; 1 also
when a check fails (``datasets verify``, ``leaderboard validate``, a failed job of ``sweep launch``, a run
that ``evaluate --verify`` does not verify); 2 for a usage error that click reports (an unknown option, a
value of the wrong type).
"""

from __future__ import annotations

from pathlib import Path

import click

from scalebench import __version__
from scalebench.allocator import tune_cpu_allocator
from scalebench.checks import ScalebenchError


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


# --- datasets (build-datasets, datasets verify|info|export) -------------------------------------------


def _train_option(name: str, text: str):
    """``--train-scale`` (one training set: a scale, or a mixed set such as ``1+2+3+4``) or ``--train-scales``
    (several, comma-separated): one meaning everywhere, the training set(s) of a build to use."""
    return click.option(name, default=None, metavar="KEY" if name == "--train-scale" else "KEYS", help=text)


_ROOT_OPTION = click.option(
    "--root",
    type=click.Path(file_okay=False),
    default=None,
    help="scalebench home (default $SCALEBENCH_HOME).",
)


@main.command("build-datasets")
@click.option(
    "--dataset",
    type=click.Choice(["fashion-mnist", "cifar10", "stl10", "all", "fashion-mnist-seg"]),
    default="fashion-mnist",
    show_default=True,
    help="fashion-mnist-seg: the multi-object segmentation set (docs/segmentation.md).",
)
@click.option(
    "--raw-dir",
    type=click.Path(),
    default=None,
    help="Offline raw mirror in torchvision's layout (default $SCALEBENCH_RAW_DIR); never written to.",
)
@_ROOT_OPTION
@click.option("--scales", default=None, help="Test scales, comma-separated (default 2^(k/4), k=-4..4).")
@_train_option(
    "--train-scale",
    "Add the training set (train/val) of this scale (default: the build's first, 1); fashion-mnist-seg holds "
    "its sets 1, 2, 4 and 1+2+3+4.",
)
@click.option("--limit", type=int, default=None, help="Keep the first N images of each split.")
@click.option("--embedded", is_flag=True, help="Use the Fashion-MNIST subset shipped with scalebench.")
@click.option(
    "--lite",
    is_flag=True,
    help="The canonical lite build: a seeded, stratified subset (4,000 / 1,000 / 1,000 per test scale).",
)
@click.option(
    "--download/--no-download",
    default=True,
    show_default=True,
    help="Download missing raw files (md5-checked).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def build_datasets_cmd(
    dataset, raw_dir, root, scales, train_scale, limit, embedded, lite, download, quiet
) -> None:
    """Build the rescaled datasets (train/val per training scale, a test copy per scale) as HDF5 files.

    A build only grows: more --scales or another --train-scale add sets to an existing build.
    """
    from scalebench.datasets_builders import build_datasets
    from scalebench.datasets_builders.builds import parse_train_key

    train = [parse_train_key(train_scale)] if train_scale is not None else None
    if dataset == "fashion-mnist-seg":
        from scalebench.datasets_builders.segmentation import build_segmentation

        if lite:
            raise ScalebenchError(
                "--lite exists for the classification datasets; drop --lite for fashion-mnist-seg."
            )

        seg = build_segmentation(root=root, raw_dir=raw_dir, scales=scales, limit=limit, embedded=embedded,
                                 download=download, train_scales=train)  # fmt: skip
        click.echo(f"{seg.build_id}: training sets {seg.train_sets}, test scales {seg.test_scales} in {seg.root} "
                   f"(manifest sha256 {seg.manifest_sha256})")  # fmt: skip
        return
    built = build_datasets(
        dataset,
        root=root,
        raw_dir=raw_dir,
        scales=scales,
        train_scales=_one_scale(train[0]) if train else None,
        limit=limit,
        embedded=embedded,
        lite=lite,
        download=download,
        progress=not quiet,
    )
    for b in built:
        click.echo(
            f"{b.build_id}: {len(b.test_scales)} test scales in {b.root} (manifest sha256 {b.manifest_sha256})"
        )


def _one_scale(key: tuple[float, ...]) -> list[float]:
    """The training scale of a classification training set (one scale per set)."""
    if len(key) != 1:
        raise ScalebenchError(
            f"--train-scale takes one scale for a classification build (one training set per scale), got "
            f"{'+'.join(f'{s:g}' for s in key)}."
        )
    return list(key)


@main.group("datasets")
def datasets_group() -> None:
    """Inspect, verify and export built datasets."""


@datasets_group.command("verify")
@click.option("--dataset", default=None, help="Dataset name or build id (default: every build).")
@_ROOT_OPTION
def datasets_verify_cmd(dataset, root) -> None:
    """Re-decode and re-hash every array against the manifest; report each mismatch (exit 1 if any)."""
    from scalebench.datasets_builders import verify_datasets

    report = verify_datasets(dataset, root)
    for build_id, problems in report.items():
        click.echo(f"{build_id}: {'OK' if not problems else f'{len(problems)} mismatch(es)'}")
        for line in problems:
            click.echo(f"  {line}")
    if any(report.values()):
        click.echo(
            "Fix: delete the files listed and rerun `scalebench build-datasets` (same options) to rebuild them."
        )
        raise click.exceptions.Exit(1)


@datasets_group.command("info")
@click.option("--dataset", default=None, help="Dataset name or build id (default: every build).")
@_ROOT_OPTION
def datasets_info_cmd(dataset, root) -> None:
    """Print the sizes, scales, disk use, manifest hash and folder of each build."""
    from scalebench.datasets_builders import describe_builds

    click.echo(describe_builds(dataset, root))


@datasets_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["hf"]), default="hf", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--dataset", default=None, help="Dataset name or build id (default: every build).")
@click.option(
    "--push-to-hub", default=None, metavar="REPO", help="Also upload to this Hugging Face dataset repo."
)
@_ROOT_OPTION
def datasets_export_cmd(fmt, out, dataset, push_to_hub, root) -> None:
    """Export built datasets as Hugging Face datasets (Parquet, one configuration per test scale)."""
    from scalebench.datasets_builders import export_datasets

    for path in export_datasets(dataset, out, format=fmt, root=root, push_to_hub=push_to_hub):
        click.echo(f"wrote {path}")


# --- models (models list|info) --------------------------------------------------------------------------


def _on_terminal() -> bool:
    """True when stdout is a terminal: models list|info then print rich tables, else tab-separated text."""
    import sys

    return sys.stdout.isatty()


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


# --- benchmark (evaluate) -------------------------------------------------------------------------------


@main.command("evaluate")
@click.option("--model", default=None, help="Registered model name (`scalebench models list`).")
@click.option("--dataset", default="fashion-mnist", show_default=True, help="Build id of a built dataset.")
@click.option("--preset", type=click.Choice(["quick", "paper"]), default="quick", show_default=True)
@click.option("--seed", type=int, default=None, help="One seed (default 0).")
@click.option("--seeds", default=None, help="Several seeds, e.g. 0,1,2 (adds a mean ± std curve).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--amp", is_flag=True, help="bf16 autocast (CUDA only).")
@click.option(
    "--limit", type=int, default=None, help="Use at most N images per split: a smoke run, marked as such."
)
@click.option("--scales", default=None, help="Test scales, e.g. 0.5,1,2 (default: every built scale).")
@_train_option(
    "--train-scale",
    "The training set: a training scale built in the build (`build-datasets --train-scale S`), or a "
    "segmentation set such as 1+2+3+4 (default: the build's default set).",
)
@_train_option("--train-scales", "Alias of --train-scale for segmentation sets (1,2,3,4 = 1+2+3+4).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("outputs/runs"), show_default=True)
@click.option("--root", type=click.Path(path_type=Path), default=None, help="scalebench home (datasets).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last epoch checkpoint.")
@click.option(
    "--model-config", "model_config", multiple=True, metavar="KEY=VALUE", help="Model config override."
)
@click.option("--epochs", type=int, default=None)
@click.option("--batch-size", type=int, default=None)
@click.option(
    "--micro-batch-size", type=int, default=None, help="Accumulate gradients over chunks of this size."
)
@click.option("--eval-batch-size", type=int, default=None)
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "adamw"]), default=None)
@click.option("--lr", type=float, default=None)
@click.option("--momentum", type=float, default=None)
@click.option("--weight-decay", type=float, default=None)
@click.option("--schedule", type=click.Choice(["constant", "cosine", "step"]), default=None)
@click.option("--warmup-epochs", type=int, default=None)
@click.option("--label-smoothing", type=float, default=None)
@click.option(
    "--augmentation", type=click.Choice(["none", "hflip", "translate", "hflip+translate"]), default=None
)
@click.option("--num-workers", type=int, default=None, help="DataLoader workers (default: automatic).")
@click.option(
    "--progress", type=click.Choice(["auto", "rich", "plain", "none"]), default="auto", show_default=True
)
@click.option("--stop-after-epoch", type=int, default=None, hidden=True)
@click.option(
    "--distributed",
    is_flag=True,
    help="Data-parallel under `torchrun --nproc_per_node N` (DDP; rank 0 writes).",
)
@click.option(
    "--verify",
    "verify",
    type=click.Path(path_type=Path),
    default=None,
    metavar="RUN.json",
    help="Re-evaluate --checkpoint on the test sets recorded in RUN.json (no training).",
)
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help="Weights for --verify.")
def evaluate_cmd(
    seed, seeds, scales, train_scale, train_scales, model_config, verify, checkpoint, **options
) -> None:
    """Train on a training set, select on its validation set, test on every scale; write results and figures.

    Any task: the build's (classification or segmentation). With --verify RUN.json --checkpoint
    best.safetensors: re-evaluate a checkpoint and mark the results verified when every per-scale count matches.
    """
    if verify is not None or checkpoint is not None:
        from scalebench.benchmark.verify import format_verify_report, verify_run

        if verify is None or checkpoint is None:
            raise ScalebenchError("--verify RUN.json and --checkpoint FILE go together; give both.")
        report = verify_run(verify, checkpoint, root=options["root"], device=options["device"],
                            progress=options["progress"])  # fmt: skip
        click.echo(format_verify_report(report))
        if report.verified is None:
            raise SystemExit(1)
        return
    if options["model"] is None:
        raise ScalebenchError(
            "Missing option --model (a registered model name; see `scalebench models list`)."
        )
    from scalebench.benchmark.config import Recipe, config_from_options
    from scalebench.benchmark.protocol import format_summary, run_seeds

    if train_scale is not None and train_scales is not None:
        raise ScalebenchError("Give --train-scale (or its alias --train-scales), not both.")
    recipe = {k: options.pop(k) for k in list(options) if k in Recipe.model_fields}
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


# --- leaderboard (submit, leaderboard build|validate, plot) ----------------------------------------------

_STORE_OPTION = click.option(
    "--store",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="The results store (one JSON per run).",
)


@main.command("submit")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@_STORE_OPTION
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Re-evaluate this checkpoint (one results file) and store the run as verified.",
)
@click.option(
    "--root", type=click.Path(path_type=Path), default=None, help="scalebench home (for --checkpoint)."
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def submit_cmd(results, store, checkpoint, root, device) -> None:
    """Validate results files and add them to the store (all or nothing; entries are never overwritten)."""
    from scalebench.benchmark.verify import verify_run
    from scalebench.leaderboard import submit

    for outcome in submit(results, store, checkpoint=checkpoint, verify=verify_run, root=root, device=device):
        click.echo(f"{outcome.status}: {outcome.source} -> {outcome.path}")


@main.group("leaderboard")
def leaderboard_group() -> None:
    """Build the leaderboard from a results store, or re-validate the store."""


_SITE_OPTION = click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("site"), show_default=True
)


@leaderboard_group.command("build")
@_STORE_OPTION
@_SITE_OPTION
def leaderboard_build_cmd(store, out) -> None:
    """Rank the store over seeds; write LEADERBOARD.md, leaderboard.csv, leaderboard.json and index.html
    (with a SEGMENTATION section and segmentation.csv when the store holds segmentation results)."""
    from scalebench.leaderboard import build_leaderboard

    paths = build_leaderboard(store, out)
    click.echo(f"Leaderboard written to {out}: " + ", ".join(p.name for p in paths.values()))


@leaderboard_group.command("segmentation")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@_SITE_OPTION
def leaderboard_segmentation_cmd(results, out) -> None:
    """Write the segmentation table (SEGMENTATION.md, segmentation.csv) and figures from results files."""
    from scalebench.leaderboard.segmentation import build_segmentation_leaderboard

    paths = build_segmentation_leaderboard(results, out)
    click.echo(f"Segmentation leaderboard written to {out}: " + ", ".join(p.name for p in paths.values()))


@leaderboard_group.command("validate")
@_STORE_OPTION
@click.option(
    "--previous",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="leaderboard.json of an earlier build: every run listed there must still be stored, with the sha256 "
    "recorded there (or upgraded to verified).",
)
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
    @click.argument("results", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
    @click.option(
        "--store", type=click.Path(file_okay=False, path_type=Path), default=None, help="Plot from a store."
    )
    @click.option(
        "--dataset",
        default=None,
        help="Board to plot from --store: a dataset (full track) or <dataset>-lite (lite track).",
    )
    @click.option("--train-scale", type=float, default=None, help="Training scale to plot from --store.")
    @click.option("--out", type=click.Path(path_type=Path), default=Path(f"figures/{name}"), show_default=True,
                  help="Output stem: writes STEM.pdf, .svg, .png and .csv.")  # fmt: skip
    @click.option("--title", default=None)
    @click.option("--label", "label", multiple=True, metavar="KEY=NAME",
                  help="Legend name of a model (KEY: model name) or of one configuration (KEY: config hash, "
                       "or the start of one); repeatable.")  # fmt: skip
    def command(results, store, dataset, train_scale, out, title, label) -> None:
        from scalebench.figures.curves import plot_curves
        from scalebench.figures.selection import plot_selection
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
        draw = {"plot_curves": plot_curves, "plot_selection": plot_selection}[plot]
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


# --- sweep (sweep launch|status|collect|delete-incomplete|run-job) ----------------------------------------

_SWEEP_OPTION = click.option(
    "--out", "sweep_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("outputs/sweep"),
    show_default=True, help="The sweep folder (sweep.json, runs/, jobs/, logs/).",
)  # fmt: skip


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
    "build with `build-datasets --train-scale S`.",
)
@click.option("--train-scale-root", multiple=True, hidden=True, help="Removed: see --train-scales.")
@click.option("--preset", type=click.Choice(["quick", "paper"]), default="quick", show_default=True)
@click.option(
    "--launcher", type=click.Choice(["local", "slurm", "debug"]), default="local", show_default=True
)
@click.option("--parallel", type=int, default=1, show_default=True, help="local: jobs at a time.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--amp", is_flag=True, help="bf16 autocast (CUDA only).")
@click.option("--limit", type=int, default=None, help="At most N images per split (smoke sweep).")
@click.option("--epochs", type=int, default=None, help="Override the preset's epochs.")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="scalebench home (datasets).")
@click.option(
    "--slurm-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML file of Slurm options (keys as the flags below, with underscores).",
)
@click.option("--partition", default=None)
@click.option("--gpus-per-job", type=int, default=None)
@click.option("--cpus-per-job", type=int, default=None)
@click.option("--mem-gb", type=int, default=None)
@click.option(
    "--time-min", type=int, default=None, help="Wall time per job (requeued with resume on time-out)."
)
@click.option("--array-parallelism", type=int, default=None)
@click.option("--account", default=None)
@click.option("--qos", default=None)
@click.option("--skip-stored", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="STORE",
              help="Skip the jobs whose results are already in this leaderboard store (e.g. results/).")  # fmt: skip
@_SWEEP_OPTION
def sweep_launch_cmd(models, datasets, seeds, train_scales, train_scale_root, preset, launcher, parallel, device,
                     amp, limit, epochs, root, slurm_config, skip_stored, sweep_dir, **slurm_flags) -> None:  # fmt: skip
    """Launch every job of the grid that is not done (interrupted ones resume from their last epoch)."""
    from scalebench.checks import parse_int_list
    from scalebench.sweep import launch, slurm_options

    if train_scale_root:
        raise ScalebenchError(
            "--train-scale-root was removed: a build carries its training sets; add one with `scalebench "
            "build-datasets --train-scale S` and sweep over them with --train-scales (one --root for all)."
        )
    report = launch(
        sweep_dir, launcher=launcher, models=models.split(","), datasets=datasets.split(","),
        seeds=parse_int_list(seeds, "--seeds"), root=root, preset=preset, device=device, amp=amp, limit=limit,
        train_scales=train_scales.split(",") if train_scales is not None else None,
        recipe_overrides={"epochs": epochs} if epochs else {},
        launcher_options={"parallel": parallel,
                          "slurm": slurm_options(slurm_config, **slurm_flags) if launcher == "slurm" else None},
        skip_stored=skip_stored,
    )  # fmt: skip
    for line in report.lines:
        click.echo(line)
    stored = f", {len(report.skipped_stored)} stored in {skip_stored}" if skip_stored is not None else ""
    stored += f", {len(report.requeued_stale)} stale re-queued" if report.requeued_stale else ""
    click.echo(f"{len(report.launched)} launched, {len(report.failed)} failed, {len(report.skipped_done)} done "
               f"already, {len(report.skipped_running)} running elsewhere{stored}; `scalebench sweep status --out "
               f"{sweep_dir}`")  # fmt: skip
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
@click.option("--figures", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Figure folder (default OUT/figures).")  # fmt: skip
@click.option("--checkpoints/--no-checkpoints", default=True, show_default=True,
              help="Also store each run's best checkpoint beside its results (sha256-checked).")  # fmt: skip
def sweep_collect_cmd(sweep_dir, store, figures, checkpoints) -> None:
    """Submit the finished runs to a leaderboard store and draw the comparison figures."""
    from scalebench.sweep import collect

    report = collect(sweep_dir, store, figures_dir=figures, checkpoints=checkpoints)
    click.echo(f"{len(report.added)} added to {store} ({len(report.checkpoints)} checkpoints), "
               f"{len(report.already_stored)} already there, {len(report.not_done)} jobs not done")  # fmt: skip
    click.echo("wrote " + ", ".join(str(p) for p in report.figures))


@sweep_group.command("delete-incomplete")
@_SWEEP_OPTION
def sweep_delete_incomplete_cmd(sweep_dir) -> None:
    """Delete the run folders, records and logs of jobs neither done nor running: pending, failed or stale
    (they restart from scratch)."""
    from scalebench.sweep import delete_incomplete

    for job in delete_incomplete(sweep_dir):
        click.echo(f"deleted {job.run_dir}")


@sweep_group.command("run-job", hidden=True)
@click.option("--sweep", "sweep_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.argument("job_id")
def sweep_run_job_cmd(sweep_dir, job_id) -> None:
    """Run one job of a sweep in this process (what the launchers run)."""
    from scalebench.sweep import run_job

    click.echo(f"{job_id}: {run_job(sweep_dir, job_id)}")


if __name__ == "__main__":  # pragma: no cover
    main()
