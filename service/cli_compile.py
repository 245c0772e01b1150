"""The `compile` command: the master workbook for HR (see ``collate``)."""

from __future__ import annotations

from pathlib import Path

import click

from . import collate
from .cli_base import app_for, cli
from .clock import local


@cli.command("compile")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Where to write. Default: <data_dir>/compiled/<campaign>-YYYYMMDD-HHMM.xlsx.")
@click.option("--faculty", metavar="F", help="Only this faculty, in every sheet.")
@click.pass_context
def compile_workbook(ctx: click.Context, output: Path | None, faculty: str | None) -> None:
    """Write the master workbook: overview with a chart, every answer, the measures, the missing
    units with their reminders and bounces, the flags and a log of every version received.

    Anything a leader wrote is stored as text, never as a formula.

    Example: skjemapost compile --faculty IE -o ie.xlsx
    """
    app = app_for(ctx)
    units = app.units()
    if faculty is not None and faculty not in {u.faculty for u in units}:
        known = ", ".join(sorted({u.faculty for u in units}))
        raise click.BadParameter(f"no active unit in faculty {faculty!r} (known: {known})",
                                 param_hint="--faculty")
    cfg = app.config
    if output is None:
        stamp = local(app.clock.now(), cfg.campaign.timezone).strftime("%Y%m%d-%H%M")
        output = cfg.storage.data_dir / "compiled" / f"{app.campaign_id}-{stamp}.xlsx"
    output.parent.mkdir(parents=True, exist_ok=True)
    coordinators = {f: ", ".join(f"{c.name} <{c.email}>" for c in cfg.coordinators_for(f))
                    for f in {u.faculty for u in units}}
    sources = collate.load(app.store, app.campaign_id, coordinators, cfg.campaign.timezone, faculty)
    counts = collate.write_xlsx(collate.sheets(sources, app.form), output)
    click.echo(f"wrote {output}")
    click.echo("  " + ", ".join(f"{name} {n}" for name, n in counts.items()))
