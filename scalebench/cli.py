"""The ``scalebench`` command line (click). Thin: each command parses, calls one library function, prints.

Errors raised as :class:`scalebench.checks.ScalebenchError` are printed as one line ("Error: ...") with
exit code 2 and no traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from scalebench import __version__
from scalebench.checks import ScalebenchError


class _Group(click.Group):
    """A click group that turns ScalebenchError into a one-line usage error."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ScalebenchError as err:
            raise click.ClickException(str(err)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="scalebench")
def main() -> None:
    """scalebench: benchmark the scale generalisation of image networks.

    Build rescaled datasets, train at one scale, test at every scale, and compare on a leaderboard.
    """


# --- datasets (build-datasets, datasets verify|info|export) -------------------------------------------


# --- models (models list|info) --------------------------------------------------------------------------


# --- benchmark (evaluate) -------------------------------------------------------------------------------


@main.command("evaluate")
@click.option("--model", required=True, help="Registered model name (`scalebench models list`).")
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
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True)
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
def evaluate_cmd(seed, seeds, scales, model_config, **options) -> None:
    """Train at the training scale, select on validation there, test on every scale; write results and figures."""
    from scalebench.benchmark.config import Recipe, config_from_options
    from scalebench.benchmark.protocol import format_summary, run_seeds

    recipe = {k: options.pop(k) for k in list(options) if k in Recipe.model_fields}
    config, seed_list = config_from_options(
        seed=seed, seeds=seeds, scales=scales, model_config=model_config, recipe=recipe, **options
    )
    outcomes, group_files = run_seeds(config, seed_list)
    for outcome in outcomes:
        click.echo(format_summary(outcome))
    if group_files:
        click.echo(
            f"Curve over seeds {seed_list}: {group_files['curve_png']} (data: {group_files['curve_csv']})"
        )


# --- leaderboard (submit, leaderboard build|validate, plot) ----------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    main()
