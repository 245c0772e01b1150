"""Commands that run the campaign over time: remind, digest, simulate and run."""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import sys
from contextlib import nullcontext

import click
from imap_tools import BaseMailBox

from service.app.mailing import Mailing
from service.app.operations import Operations
from service.app.wiring import App
from service.campaign.plan import is_closed
from service.cli.base import app_for, cli, working
from service.jobs import lease
from service.jobs import purge as retention
from service.jobs.poll import StopFlag
from service.jobs.runner import JsonLogs, Runner, RunState
from service.jobs.watch import InboxWatch
from service.net.imap import connect as connect_imap


@cli.command()
@click.option("--dry-run", is_flag=True, help="Say who is due what; poll nothing, send nothing.")
@click.pass_context
def remind(ctx: click.Context, dry_run: bool) -> None:
    """Poll the inbox, then queue and send the reminders and escalations due now.

    Only units without a valid form, with a working address, on working days at the send hour;
    each step once. Use the global --as-of to act as at another time. What an earlier run left in
    the queue (cut short, or deferred) is sent first; the last line counts everything sent.

    \b
    Examples:
      skjemapost remind --dry-run
      skjemapost --as-of 2020-12-09T09:00 remind
    """
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop.handle)
    app = app_for(ctx)
    with nullcontext() if dry_run else working(app, "remind"):
        report = Operations(app).remind(dry_run=dry_run, should_stop=stop)
    for code, key in report.chase.due:
        click.echo(f"{'would send' if dry_run else 'due'}  {key:<18} {code}")
    for code, why in report.chase.skipped:
        click.secho(f"skipped {code}: {why}", fg="yellow", err=True)
    left, answered, total = report.left_over, report.answered, report.total
    if left.sent or left.failed or left.deferred or left.recovered:
        click.echo(f"left in the queue by an earlier run: sent {left.sent}, failed {left.failed}")
    if total.recovered or total.resent:
        click.echo(f"after an interruption: {total.recovered} found already sent, {total.resent} sent again")
    if report.polled:
        answers = (
            f": answers sent {answered.sent}, failed {answered.failed}"
            if answered.sent or answered.failed
            else ""
        )
        click.echo(f"polled {report.polled.fetched} new message(s) first{answers}")
    if report.chase.waiting:
        click.echo("not a send time: reminders go on working days from schedule.send_hour (local)")
    click.echo(
        f"{len(report.chase.due)} due"
        + (
            ""
            if dry_run
            else f", {report.chase.queued} queued, sent {report.sent.sent}, failed {report.sent.failed}"
        )
    )
    if not dry_run:
        for key, reason in total.failures:
            click.secho(f"not sent: {key}: {reason}", fg="yellow", err=True)
        click.echo(f"in all: sent {total.sent}, failed {total.failed}, deferred {total.deferred}")


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
    app = app_for(ctx)
    with nullcontext() if dry_run else working(app, "digest"):
        mails, sent = Operations(app).digest(dry_run=dry_run)
    for mail in mails:
        to = ", ".join(mail.recipients)
        click.echo(f"{'would send' if dry_run else 'queued'}  {mail.subject}  -> {to}")
    if not mails and is_closed(app.clock.now(), app.config.campaign):
        click.echo(
            f"no digest: the campaign closed on {app.config.campaign.closes_on} (campaign.closes); "
            "HR's one final summary is `skjemapost final-summary`"
        )
    elif not mails:
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
    """Run the service until SIGTERM: poll, remind, send and send the weekly digests on schedule,
    and answer each reply as it arrives.

    Between its scheduled work it waits on the inbox (IMAP IDLE), so a reply is decided and
    answered within seconds; a server without IDLE is polled every schedule.poll_minutes.
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
    serve(app_for(ctx), stop)
    click.echo("stopped")


def serve(app: App, stop: StopFlag) -> RunState:
    """`run` put together: the cycle on schedule, holding the runner lock, and the inbox
    watched on IDLE in between, each new reply polled and answered on the watching connection.
    Returns what `status` last saw."""
    app.ready()
    state = RunState()
    lock = lease.Lease(app.store, app.campaign_id, state.holder, lease.lock_ttl(app.config.schedule))
    operations = Operations(app)

    def on_mail(box: BaseMailBox) -> dict[str, int]:
        polled, answers = Mailing(app).poll(box=box, should_stop=stop)
        return {"polled": polled.fetched, "sent": answers.sent, "failed": answers.failed}

    watch = InboxWatch(lambda: connect_imap(app.imap_settings()), on_mail, stop)
    Runner(
        lambda: operations.cycle(stop),
        lock,
        app.clock,
        stop,
        every_minutes=app.config.schedule.poll_minutes,
        watch=watch,
        state=state,
    ).run()
    return state


@cli.command()
@click.option("--campaign", "campaign_id", required=True, metavar="ID", help="The campaign to purge.")
@click.option(
    "--before",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    metavar="DATE",
    help="Purge mail received or sent before this day (local midnight); not in the future.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@click.option("--yes", is_flag=True, help="Do not ask before removing.")
@click.option(
    "--include-review",
    is_flag=True,
    help="Also purge messages still waiting for review (their raw mail is then gone).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def purge(
    ctx: click.Context,
    *,
    campaign_id: str,
    before: dt.datetime,
    dry_run: bool,
    yes: bool,
    include_review: bool,
    as_json: bool,
) -> None:
    """Remove the archived raw mail and the personal data of a closed campaign (retention).

    A campaign is closed 30 days after its deadline (late forms, the last reminder and the
    escalation are behind it), and not while `run` holds its lock. For mail received or sent
    before DATE it removes: the raw messages in storage.data_dir/raw, the bytes of every mail
    sent (attachments included), senders, recipients, subjects, file names, notes, and e-mail
    addresses in event details and errors; and, whatever DATE, the names and addresses of the
    units' leaders, verneombud and superiors. It keeps what HR needs: unit codes, names and
    faculties, statuses and counts, the SHA-256 of every file, and the answers as submitted,
    except those the form marks personal (the leader's and the verneombud's names), which are
    emptied; the unit's free text is kept. The IMAP
    mailbox is not touched (see docs/OPERATIONS.md). It logs a purge.done event; a second run
    removes nothing.

    \b
    Examples:
      skjemapost purge --campaign aml-2020 --before 2021-02-01 --dry-run
      skjemapost purge --campaign aml-2020 --before 2021-02-01 --yes --json
    """
    app = app_for(ctx)
    app.store.require_current()

    def once(dry: bool) -> retention.PurgeReport:
        return retention.purge(
            app.store,
            campaign_id,
            before.date(),
            app.clock.now(),
            app.archive.root,
            dry_run=dry,
            include_review=include_review,
            personal=app.form.personal_answers(),
            # the configured campaign's closing day; another campaign in the store has only its deadline
            closes=app.config.campaign.closes_on if campaign_id == app.config.campaign.id else None,
        )

    report = once(True)
    if not dry_run and report.removed_anything:
        if not yes:
            _print_purge(report)
            click.confirm("Remove this for good?", abort=True, err=True)
        report = once(False)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        _print_purge(report)


def _print_purge(r: retention.PurgeReport) -> None:
    head = f"campaign {r.campaign}, mail before {r.before} ({r.timezone}; before {r.cutoff:%Y-%m-%dT%H:%MZ})"
    if not r.removed_anything:
        click.echo(f"{head}: nothing to remove (already purged, or nothing that old)")
        return
    verb = "would remove" if r.dry_run else "removed"
    n = r.rows
    click.echo(f"{head}: {verb}")
    for count, what in (
        (r.raw_files, "raw mail files (storage.data_dir/raw)"),
        (n.inbound, "inbound messages: sender, subject, archive path, addresses in the decision"),
        (n.submissions, "submissions: sender, file name and personal answers (others kept)"),
        (n.outbox, "sent mails: message bytes with attachments, recipients, subject"),
        (n.units, "units: names and addresses of leader, verneombud and superior"),
        (n.events, "events: names and addresses in the details"),
        (n.address_failures, "failing addresses (rows deleted)"),
    ):
        click.echo(f"  {count:>7}  {what}")
    if r.raw_files_missing:
        click.echo(f"  {r.raw_files_missing} raw file(s) were already gone from disk")
    if r.raw_files_shared:
        click.echo(f"  kept {r.raw_files_shared} raw file(s) that newer or other campaigns' rows still use")
    if n.outbox_pending:
        click.echo(f"  kept {n.outbox_pending} mail(s) before {r.before} that were never sent (queued)")
    if not r.dry_run:
        click.echo("logged as event purge.done")
