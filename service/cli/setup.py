"""Commands that set a campaign up and look at it: init, check, roster, form, status."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import click

from service.app.setup import Setup
from service.app.wiring import App
from service.campaign.cosign import CoSignState
from service.campaign.state import UnitState
from service.cli.base import LANG, app_for, cli
from service.clock import local
from service.config.settings import Config
from service.errors import FormReadError
from service.forms.intake import Rejection, open_attachment
from service.models import LANGUAGES, Language, share_percent
from service.store.reports import FacultyProgress
from service.web.users import check_web


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the database and record the campaign from the config.

    Safe to run again: it only applies migrations not yet applied.

    Example: skjemapost init
    """
    app = app_for(ctx)
    before, after, created = Setup(app).init()
    state = (
        "created"
        if before is None
        else ("already up to date" if before == after else f"upgraded from {before}")
    )
    click.echo(f"database {state} (schema {after})")
    click.echo(f"campaign {app.campaign_id} {'recorded' if created else 'is recorded'}")


def web_page_check(config: Config) -> tuple[list[str], list[str]]:
    """What `check` says about the web page's users file (``web.users_file``)."""
    web = config.web
    return check_web(
        web.users_file,
        config.secrets.get(web.session_secret_env),
        web.session_secret_env,
        {c.faculty for c in config.coordinators},
    )


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config, the roster, the form and the database, and say what was found.

    Exits 2 if anything is wrong, after listing every problem.

    Example: skjemapost --config config/skjemapost.toml check
    """
    app = app_for(ctx)
    report = Setup(app).check(shells=[web_page_check])
    for fact in report.facts:
        click.echo(f"  {fact}")
    for fact in _mail_words(app.config):
        click.echo(f"  {fact}")
    for problem in report.problems:
        click.secho(f"problem: {problem}", fg="red", err=True)
    if report.problems:
        ctx.exit(2)
    click.secho("all good", fg="green")


def _mail_words(config: Config) -> list[str]:
    """What the mails call the campaign and who signs them, in each language, and who is copied."""
    names = " / ".join(f"{lang} «{config.from_name_for(lang)}»" for lang in LANGUAGES)
    titles = " / ".join(f"{lang} «{config.title_for(lang)}»" for lang in LANGUAGES)
    copied = "copied" if config.mail.cc_verneombud else "not copied (mail.cc_verneombud = false)"
    out = [
        f"mail from {names} <{config.mail.from_address}>; campaign title {titles}",
        f"the verneombud is {copied} on invitations and reminders",
    ]
    for key, values in (
        ("campaign.title", config.campaign.titles),
        ("mail.from_name", config.mail.from_names),
    ):
        if len(set(values.values())) == 1:
            out.append(f"{key} is one string: mails in every language show it as it is")
    return out


@cli.group()
def roster() -> None:
    """Import and list the units and their leaders."""


@roster.command("import")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def roster_import(ctx: click.Context, file: Path | None) -> None:
    """Import the roster from FILE (.csv or .xlsx; default: campaign.roster in the config).

    A re-import reports units added, changed and removed. Removed units are deactivated, and
    keep their history. A roster with any bad row is rejected whole.

    Example: skjemapost roster import config/roster.csv
    """
    roster_, diff = Setup(app_for(ctx)).import_roster(file)
    for warning in roster_.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    click.echo(f"{len(roster_.units)} units read")
    for label, codes in (
        ("added", diff.added),
        ("reactivated", diff.reactivated),
        ("removed (deactivated)", diff.removed),
    ):
        if codes:
            click.echo(f"{label} ({len(codes)}): {', '.join(codes)}")
    for change in diff.changed:
        click.echo(f"changed {change.code}: {', '.join(change.fields)}")
    click.echo(f"unchanged: {diff.unchanged}")


@roster.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Include deactivated units.")
@click.pass_context
def roster_list(ctx: click.Context, include_inactive: bool) -> None:
    """List the imported units.

    Example: skjemapost roster list
    """
    app = app_for(ctx)
    for u in Setup(app).units(include_inactive=include_inactive):
        click.echo(f"{u.code:<12} {u.faculty:<6} {u.language}  {u.leader_name} <{u.leader_email}>  {u.name}")


@cli.group()
def form() -> None:
    """Build the personalised form, and check a filled one."""


@form.command("build")
@click.option("--unit", "code", metavar="CODE", help="The unit's code.")
@click.option("--all", "all_units", is_flag=True, help="Every active unit, into --output as a folder.")
@click.option("--lang", type=LANG, help="Language; default: the unit's own.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to write: a file for --unit (default <CODE>.xlsx), a folder for --all.",
)
@click.pass_context
def form_build(
    ctx: click.Context, code: str | None, all_units: bool, lang: str | None, output: Path | None
) -> None:
    """Write the personalised .xlsx form for one unit, or for every unit with --all.

    \b
    Examples:
      skjemapost form build --unit IE-IDI --lang en -o IE-IDI.xlsx
      skjemapost form build --all -o data/forms
    """
    app = app_for(ctx)
    if all_units == bool(code):
        raise click.UsageError("give either --unit CODE or --all")
    if code:
        unit, data = Setup(app).build_form(code, cast(Language | None, lang))
        out = output or Path(f"{unit.code}.xlsx")
        out.write_bytes(data)
        click.echo(f"wrote {out} ({len(data):,} bytes) for {unit.code} {unit.name}")
        return
    folder = output or app.config.storage.data_dir / "forms"
    folder.mkdir(parents=True, exist_ok=True)
    units = Setup(app).units()
    with click.progressbar(units, label="building forms", file=sys.stderr) as bar:
        for unit in bar:
            _, data = Setup(app).build_form(unit.code, cast(Language | None, lang))
            (folder / f"{unit.code}.xlsx").write_bytes(data)
    click.echo(f"wrote {len(units)} forms to {folder}")


@form.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lang", type=LANG, help="Language of the messages; default: the unit's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text, whatever the outcome.")
@click.pass_context
def form_check(ctx: click.Context, file: Path, lang: str | None, as_json: bool) -> None:
    """Open a filled form as `poll` does (an .ods or .xls converted by LibreOffice when the
    config allows it) and print the unit, token, answers and every problem found; for a file that
    is not a readable form, why not (a code and the advice the sender would get).

    This is how an operator sees why a form was or was not accepted. Exits 1 if it has problems
    or cannot be read.

    Example: skjemapost form check reply.xlsx --json
    """
    doc = _checked_form(app_for(ctx), file, cast(Language | None, lang))
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
    elif doc["error"]:
        error = doc["error"]
        click.echo(f"not readable as the form ({error['code']}): {error['message']}")
        if error["detail"]:
            click.echo(f"found: {error['detail']}")
    else:
        converted = f", converted from .{doc['format']}" if doc["converted"] else ""
        click.echo(f"file:      {doc['format']}{converted}")
        click.echo(f"unit:      {doc['unit_name'] or 'not recognised'} ({doc['matched_by']})")
        click.echo(f"reference: {doc['reference'] or '-'}")
        click.echo("answers:")
        for key, value in doc["answers"].items():
            click.echo(f"  {key}: {value}")
        click.echo(f"problems ({len(doc['problems'])}):")
        for p in doc["problems"]:
            click.echo(f"  {p['cell']}: {p['message']}")
    if not doc["valid"]:
        ctx.exit(1)


def _checked_form(app: App, file: Path, lang: Language | None) -> dict[str, Any]:
    """What `form check` reports: the file opened by the poll's intake (its limits, its converter),
    then read, matched and validated; or the error that stopped it, by a code and a message."""
    doc: dict[str, Any] = {
        "file": str(file),
        "format": None,
        "converted": False,
        "error": None,
        "unit": None,
        "unit_name": None,
        "matched_by": None,
        "reference": None,
        "stamp_found": False,
        "answers": {},
        "problems": [],
        "valid": False,
    }
    language = lang or app.config.campaign.default_language
    try:
        data = file.read_bytes()
    except OSError as exc:
        error = {"code": "unreadable_file", "message": f"cannot read {file}: {exc.strerror or exc}"}
        return doc | {"error": error | {"detail": ""}}
    processor = app.processor()
    opened = open_attachment(file.name, "", data, processor.limits, converter=processor.converter)
    if isinstance(opened, Rejection):
        error = {"code": opened.code, "message": opened.message(language), "detail": opened.detail}
        return doc | {"error": error}
    doc |= {"format": opened.original_format, "converted": opened.converted}
    try:
        result = Setup(app).check_form(opened.xlsx, lang)
    except FormReadError as exc:
        return doc | {"error": {"code": exc.code, "message": str(exc), "detail": ""}}
    r = result.reading
    return doc | {
        "unit": result.unit.code if result.unit else None,
        "unit_name": f"{result.unit.code} {result.unit.name}" if result.unit else None,
        "matched_by": result.match,
        "reference": r.reference,
        "stamp_found": r.stamp is not None,
        "answers": r.answers,
        "problems": [{"cell": p.where, "message": p.message} for p in result.problems],
        "valid": not result.problems and result.unit is not None,
    }


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--units", "per_unit", is_flag=True, help="One line per unit instead of per faculty.")
@click.pass_context
def status(ctx: click.Context, as_json: bool, per_unit: bool) -> None:
    """Show progress per faculty (units, submitted, valid, missing), or per unit with --units
    (where it stands, invited, forms received, valid, last activity, bounced, needs review;
    times in the campaign's zone).

    Example: skjemapost status --json
    """
    app = app_for(ctx)
    if per_unit:
        _unit_table(app, as_json)
        return
    rows = Setup(app).status()
    total = FacultyProgress(
        "total", *(sum(getattr(r, k) for r in rows) for k in ("units", "submitted", "valid", "missing"))
    )
    runner = app.store.runner(app.campaign_id)
    if as_json:
        doc = {
            "campaign": app.campaign_id,
            "deadline": str(app.config.campaign.deadline),
            "faculties": [asdict(r) for r in rows],
            "total": asdict(total),
            "runner": asdict(runner) if runner else None,
        }
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    click.echo(f"campaign {app.campaign_id}, deadline {app.config.campaign.deadline}")
    header = f"{'faculty':<10}{'units':>7}{'submitted':>11}{'valid':>7}{'missing':>9}{'done':>7}"
    click.echo(header)
    click.echo("-" * len(header))
    for r in [*rows, total]:
        if r is total:
            click.echo("-" * len(header))
        click.echo(
            f"{r.faculty:<10}{r.units:>7}{r.submitted:>11}{r.valid:>7}{r.missing:>9}{share_percent(r.valid, r.units):>6d}%"
        )  # rounded down, as in the digest, on the web and in the workbook
    if runner is None:
        click.echo("runner: never started (skjemapost run)")
        return
    alive = runner.alive(app.clock.now())
    click.echo(
        f"runner: {runner.holder} {'running' if alive else 'not running'}, last heartbeat "
        f"{local(runner.heartbeat_at, app.config.campaign.timezone):%Y-%m-%d %H:%M:%S %Z}, last cycle "
        f"{runner.detail.get('last_cycle_at') or '-'}"
    )
    if runner.detail.get("last_error"):
        click.secho(
            f"runner trouble: {runner.detail['last_error']} "
            f"({runner.detail.get('failures', 0)} failed cycles in a row)",
            fg="yellow",
        )


def _unit_table(app: App, as_json: bool) -> None:
    rows = Setup(app).unit_status()
    tz = app.config.campaign.timezone
    if as_json:
        click.echo(json.dumps([_unit_json(r, tz) for r in rows], indent=2, default=str))
        return

    def when(t: dt.datetime | None) -> str:
        return f"{local(t, tz):%d.%m %H:%M}" if t else "-"

    # the verneombud's confirmation (docs/COSIGN.md) while it is on: its stage, as the JSON has it
    def cosign(r: UnitState | None) -> str:
        if app.config.cosign.mode == "off":
            return ""
        return f"{'cosign' if r is None else r.cosign.stage.value if r.cosign else '-':<12}"

    click.echo(f"times in {tz}")
    click.echo(
        f"{'unit':<12}{'fac':<5}{'state':<18}{'invited':<13}{'forms':>6} {'valid':<6}{'last':<13}"
        f"{'review':>7}  {cosign(None)}bounced"
    )
    for r in rows:
        click.echo(
            f"{r.code:<12}{r.faculty:<5}{r.stage.value:<18}{when(r.invitation_sent_at):<13}{r.versions:>6} "
            f"{'yes' if r.has_valid else 'no':<6}{when(r.last_activity):<13}{r.needs_review:>7}  "
            f"{cosign(r)}{_bounced(r) or '-'}"
        )


def _bounced(r: UnitState) -> str:
    return f"{r.failure.address}: {r.failure.reason}" if r.failure else ""


def _unit_json(r: UnitState, tz: str) -> dict[str, Any]:
    """One unit of `status --units --json`: times in the campaign's zone, with their offset."""

    def at(t: dt.datetime | None) -> str | None:
        return local(t, tz).isoformat() if t else None

    return {
        "code": r.code,
        "faculty": r.faculty,
        "state": r.stage.value,
        "leader_email": r.leader_email,
        "invited_at": at(r.invitation_sent_at),
        "versions": r.versions,
        "valid": r.has_valid,
        "received_on": at(r.received_on),
        "problems": len(r.problems),
        "back_on": r.back_on.isoformat() if r.back_on else None,
        "reminders": [at(x) for x in r.reminders],
        "escalated_at": at(r.escalated_at),
        "last_activity": at(r.last_activity),
        "bounced": _bounced(r),
        "needs_review": r.needs_review,
        "done": r.done,  # a valid form; with [cosign] mode "required", confirmed too
        "cosign": _cosign_json(r.cosign, at),
    }


def _cosign_json(
    c: CoSignState | None, at: Callable[[dt.datetime | None], str | None]
) -> dict[str, Any] | None:
    """The unit's co-signature (docs/COSIGN.md): its stage and the facts behind it; None when
    ``[cosign] mode`` is "off"."""
    if c is None:
        return None
    return {
        "stage": c.stage.value,
        "reason": c.reason.value if c.reason else None,
        "version": c.version,
        "asked_to": c.asked_to or None,
        "asked_at": at(c.asked_at),
        "reminded_at": at(c.reminded_at),
        "answered_at": at(c.answered_at),
        "answered_by": c.answered_by or None,
        "words": c.words or None,
        "back_on": c.back_on.isoformat() if c.back_on else None,
    }
