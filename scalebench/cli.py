"""The ``scalebench`` command line (click). Thin: each command parses, calls one library function, prints.

Errors raised as :class:`scalebench.checks.ScalebenchError` are printed as one line ("Error: ...") with
exit code 2 and no traceback.
"""

from __future__ import annotations

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


# --- leaderboard (submit, leaderboard build|validate, plot) ----------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    main()
