"""The `compile` command: the master workbook for HR (see ``collate``)."""

from __future__ import annotations

from pathlib import Path

import click

from service.app.operations import Operations
from service.cli.base import app_for, cli


@cli.command("compile")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Where to write. Default: <data_dir>/compiled/<campaign>-YYYYMMDD-HHMM.xlsx.",
)
@click.option("--faculty", metavar="F", help="Only this faculty, in every sheet.")
@click.pass_context
def compile_workbook(ctx: click.Context, output: Path | None, faculty: str | None) -> None:
    """Write the master workbook: delivery per faculty with a chart, what the units answered
    (counts per faculty and in total of every closed question, with charts), every answer, the
    measures, the missing units with their reminders and bounces, the flags and a log of every
    version received with what was wrong. Shares are whole percents rounded down, as in `status`.
    Every sheet prints landscape, fitted to its width. docs/WORKBOOK.md says how to read it.

    Anything a leader wrote is stored as text, never as a formula.

    Example: skjemapost compile --faculty IE -o ie.xlsx
    """
    output, counts = Operations(app_for(ctx)).compile(output, faculty)
    click.echo(f"wrote {output}")
    click.echo("  " + ", ".join(f"{name} {n}" for name, n in counts.items()))
