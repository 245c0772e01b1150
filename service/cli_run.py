"""Commands that run the campaign over time: remind, digest, simulate and run."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys

import click

from .cli_base import app_for, cli
from .operations import Operations
from .poller import StopFlag
from .runner import JsonLogs


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say who is due what; poll nothing, send nothing.")
@click.pass_context
def remind(ctx: click.Context, dry_run: bool) -> None:
    """Poll the inbox, then queue and send the reminders and escalations due now.

    Only units without a valid form, with a working address, on working days at the send hour;
    each step once. Use the global --as-of to act as at another time.

    \b
    Examples:
      skjemapost remind --dry-run
      skjemapost --as-of 2020-12-09T09:00 remind
    """
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop.handle)
    report = Operations(app_for(ctx)).remind(dry_run=dry_run, should_stop=stop)
    for code, key in report.chase.due:
        click.echo(f"{'would send' if dry_run else 'due'}  {key:<18} {code}")
    for code, why in report.chase.skipped:
        click.secho(f"skipped {code}: {why}", fg="yellow", err=True)
    if report.polled:
        click.echo(f"polled {report.polled.fetched} new message(s) first")
    if report.chase.waiting:
        click.echo("not a send time: reminders go on working days from schedule.send_hour (local)")
    click.echo(f"{len(report.chase.due)} due" + ("" if dry_run else
               f", {report.chase.queued} queued, sent {report.sent.sent}, failed {report.sent.failed}"))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Show the digests; send nothing.")
@click.pass_context
def digest(ctx: click.Context, dry_run: bool) -> None:
    """Send this week's digests: one per faculty to its coordinators, and one to HR.

    Each goes once per ISO week, however often this runs.

    \b
    Examples:
      skjemapost digest --dry-run
      skjemapost digest
    """
    mails, sent = Operations(app_for(ctx)).digest(dry_run=dry_run)
    for mail in mails:
        to = ", ".join(mail.recipients)
        click.echo(f"{'would send' if dry_run else 'queued'}  {mail.subject}  -> {to}")
    if not mails:
        click.echo("no digest due: this week's have gone out")
    elif not dry_run:
        click.echo(f"sent {sent.sent}, failed {sent.failed}")


@cli.command()
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day.")
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day.")
@click.pass_context
def simulate(ctx: click.Context, start: dt.datetime, end: dt.datetime) -> None:
    """Print the day-by-day plan (who gets what, and when) without sending anything.

    The units are taken as they stand now; nobody is assumed to reply.

    Example: skjemapost simulate --from 2020-11-23 --to 2020-12-31
    """
    rows = Operations(app_for(ctx)).simulate(start.date(), end.date())
    day = None
    for when, code, key in rows:
        if when != day:
            click.echo(f"{when:%a %d.%m.%Y}")
            day = when
        click.echo(f"  {key:<18} {code}")
    click.echo(f"{len(rows)} mails in the plan")


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the service until SIGTERM: poll, remind, send and send the weekly digests on schedule.

    One runner at a time (a lock in the database); logs are JSON lines on stderr; `status`
    shows the heartbeat. See docs/skjemapost.service for a systemd unit.

    Example: skjemapost --config /etc/skjemapost/skjemapost.toml run
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogs())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop.handle)
    signal.signal(signal.SIGINT, stop.handle)
    Operations(app_for(ctx)).run(stop)
    click.echo("stopped")
