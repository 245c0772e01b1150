"""Commands that move mail: send, preview, poll, review and final-summary."""

from __future__ import annotations

import email
import email.policy
import signal
import sys
from pathlib import Path
from typing import Any, cast

import click

from service.app.mailing import Mailing
from service.app.operations import PREVIEW_KINDS, Operations
from service.app.setup import Setup
from service.cli.base import LANG, app_for, cli, working
from service.clock import local
from service.jobs.poll import StopFlag
from service.jobs.poll import watch as watch_loop
from service.models import Language
from service.net.imap import connect


@cli.command()
@click.option("--dry-run", is_flag=True, help="Print what would be queued and sent; send nothing.")
@click.pass_context
def send(ctx: click.Context, dry_run: bool) -> None:
    """Queue an invitation, with its form, for every active unit that has none yet; then send
    everything queued.

    Safe to rerun and to interrupt: a unit is invited once, a message marked sent is never sent
    again, and a later `send` goes on where this one stopped.

    \b
    Examples:
      skjemapost send --dry-run
      skjemapost send
    """
    app = app_for(ctx)
    due = Mailing(app).invitations_due()
    skipped = len(Setup(app).units()) - len(due)
    if dry_run:
        for u in due:
            click.echo(f"would queue  invitation  {u.code:<12} {u.language}  {u.leader_email}")
        waiting = Mailing(app).queued()
        for row in waiting:
            click.echo(
                f"would send   {row.kind:<11} {row.unit_code or '-':<12} "
                f"{', '.join(row.recipients)}  ({row.status})"
            )
        click.echo(
            f"dry run: {len(due)} invitations to queue, {len(waiting)} already queued, "
            f"{skipped} units already invited; nothing was sent"
        )
        return
    with working(app, "send"):
        if due:
            with click.progressbar(length=len(due), label="queueing invitations", file=sys.stderr) as bar:
                for i in range(0, len(due), 50):
                    Mailing(app).queue_invitations(due[i : i + 50])
                    bar.update(len(due[i : i + 50]))
        with click.progressbar(length=Mailing(app).queued_count(), label="sending", file=sys.stderr) as bar:
            report = Mailing(app).drain(progress=lambda row, result: bar.update(1))
    for key, reason in report.failures:
        click.secho(f"not sent: {key}: {reason}", fg="yellow", err=True)
    click.echo(
        f"sent {report.sent}, failed {report.failed}, deferred {report.deferred} (retried "
        f"by the next send), skipped {skipped} already invited"
    )
    if report.recovered or report.resent:
        click.echo(
            f"after an interruption: {report.recovered} found already sent, {report.resent} sent again"
        )
    if report.failed:
        ctx.exit(1)


@cli.command()
@click.argument("kind", type=click.Choice(PREVIEW_KINDS))
@click.option("--unit", "code", required=True, metavar="CODE", help="The unit's code.")
@click.option("--lang", type=LANG, help="Language; default: the unit's own.")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to write the .eml and .html into.",
)
@click.pass_context
def preview(ctx: click.Context, kind: str, code: str, lang: str | None, output: Path) -> None:
    """Write the mail KIND that a unit would get, as .eml (open it in a mail client) and .html.

    Nothing is queued or sent. Use --as-of to see a reminder as it would read on a given day.

    Example: skjemapost --as-of 2020-12-09 preview leader-reminder-before --unit IE-IDI
    """
    mail = Operations(app_for(ctx)).preview(kind, code, cast(Language | None, lang))
    output.mkdir(parents=True, exist_ok=True)
    stem = output / f"{kind}-{mail.unit_code}-{lang or 'unit'}"
    eml, html = stem.with_suffix(".eml"), stem.with_suffix(".html")
    eml.write_bytes(mail.payload)
    parsed = email.message_from_bytes(mail.payload, policy=email.policy.default)
    body = parsed.get_body(("html",))
    html.write_text(body.get_content() if body else "", encoding="utf-8")
    click.echo(f"subject: {mail.subject}\nto: {', '.join(mail.recipients)}\nwrote {eml} and {html}")


@cli.command()
@click.option("--watch", is_flag=True, help="Keep going: wait on IMAP IDLE for new mail.")
@click.pass_context
def poll(ctx: click.Context, watch: bool) -> None:
    """Read new replies from the inbox: match, validate and store each, move it to its folder,
    and send the receipts and correction requests it queued.

    \b
    Examples:
      skjemapost poll
      skjemapost poll --watch
    """
    app = app_for(ctx)
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop.handle)
    with working(app, "poll"):
        if not watch:
            _print_poll(*Mailing(app).poll(should_stop=stop))
            return

        def once(box: Any) -> None:
            _print_poll(*Mailing(app).poll(box=box, should_stop=stop))

        watch_loop(
            lambda: connect(app.imap_settings()),
            once,
            stop,
            on_error=lambda e: click.secho(f"connection lost ({e}); reconnecting", err=True, fg="yellow"),
        )
    click.echo("stopped")


def _print_poll(report: Any, sent: Any) -> None:
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items())) or "nothing new"
    click.echo(
        f"polled: {report.fetched} new ({outcomes})"
        + (f"; {report.resumed} resumed after an interruption" if report.resumed else "")
        + ("; UIDVALIDITY changed, inbox rescanned" if report.rescan else "")
        + ("; stopped early, as asked: the rest waits for the next poll" if report.stopped else "")
    )
    if sent.sent or sent.failed or sent.deferred:
        click.echo(f"answers: sent {sent.sent}, failed {sent.failed}, deferred {sent.deferred}")


@cli.group(invoke_without_command=True)
@click.pass_context
def review(ctx: click.Context) -> None:
    """List the messages that need a person; assign or dismiss them.

    \b
    Examples:
      skjemapost review
      skjemapost review assign 17 --unit IE-IDI
      skjemapost review dismiss 18 --note "spam"
    """
    if ctx.invoked_subcommand is None:
        app = app_for(ctx)
        rows = Mailing(app).review_queue()
        tz = app.config.campaign.timezone
        if rows:
            click.echo(f"times in {tz}")
        for r in rows:
            why = (r.detail or {}).get("why", "")
            click.echo(
                f"{r.id:>5}  {local(r.received_at, tz):%Y-%m-%d %H:%M}  {r.unit_code or '-':<10} "
                f"{r.sender:<30} {r.subject[:50]}\n       {why}"
            )
        click.echo(f"{len(rows)} message(s) need review")


@review.command("assign")
@click.argument("message", type=int)
@click.option("--unit", "code", required=True, metavar="CODE", help="The unit the form belongs to.")
@click.option("--note", default="", help="Why; kept in the event log.")
@click.pass_context
def review_assign(ctx: click.Context, message: int, code: str, note: str) -> None:
    """Process MESSAGE as unit CODE's submission (receipt or correction follows).

    Example: skjemapost review assign 17 --unit IE-IDI --note "deputy, checked by phone"
    """
    decision = Mailing(app_for(ctx)).review(message, unit=code, note=note)
    click.echo(f"message {message}: {decision.outcome} for {decision.unit_code}")


@review.command("dismiss")
@click.argument("message", type=int)
@click.option("--note", default="", help="Why; kept in the event log.")
@click.pass_context
def review_dismiss(ctx: click.Context, message: int, note: str) -> None:
    """Dismiss MESSAGE: it is moved to the ignored folder and nothing is registered.

    Example: skjemapost review dismiss 18 --note "newsletter"
    """
    Mailing(app_for(ctx)).review(message, note=note)
    click.echo(f"message {message}: dismissed")


@cli.command("final-summary")
@click.option(
    "--again", is_flag=True, help="Send a fresh copy although one has gone (e.g. after late forms)."
)
@click.pass_context
def final_summary(ctx: click.Context, again: bool) -> None:
    """Send HR the campaign's final summary with the master workbook attached, now.

    `run` sends it by itself, once, from the send hour of the first working day at or after
    campaign.closes; this is for when it should go at once (or again, with --again). Only once the
    campaign is closed: before campaign.closes nothing is final yet.

    \b
    Examples:
      skjemapost final-summary
      skjemapost --as-of 2021-01-13T12:00 final-summary --again
    """
    app = app_for(ctx)
    with working(app, "final-summary"):
        mail, sent = Mailing(app).final_summary(Operations(app).compile, by_hand=True, again=again)
    if mail is None:
        click.echo("the final summary has gone already; --again sends a fresh copy")
        return
    click.echo(f"queued  {mail.subject}  -> {', '.join(mail.recipients)}")
    click.echo(f"sent {sent.sent}, failed {sent.failed}")
    if sent.failed:
        ctx.exit(1)
