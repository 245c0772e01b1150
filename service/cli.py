"""The `skjemapost` command: a thin shell over ``App``. Errors become messages here, and only here.

Each command's docstring is its ``--help`` text, with an example.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import click

from . import config as config_mod
from .app import PREVIEW_KINDS, App
from .clock import FixedClock, parse_as_of
from .errors import SkjemapostError
from .models import LANGUAGES, Language
from .store import FacultyProgress


class _Group(click.Group):
    """Turns skjemapost's own errors into a clear message and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SkjemapostError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(exc.exit_code)


def _app(ctx: click.Context) -> App:
    """Load the config once, on first use, so `--help` works without one."""
    obj = ctx.find_root().ensure_object(dict)
    if "app" not in obj:
        path = config_mod.resolve_path(obj.get("config"), os.environ)
        clock = None
        if obj.get("as_of"):
            cfg = config_mod.load(path, os.environ)
            clock = FixedClock(parse_as_of(obj["as_of"], cfg.campaign.timezone))
            obj["app"] = App(cfg, clock)
        else:
            obj["app"] = App(config_mod.load(path, os.environ))
        ctx.call_on_close(obj["app"].close)
    return cast(App, obj["app"])


LANG = click.Choice(LANGUAGES)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), metavar="PATH",
              help="Config file. Default: $SKJEMAPOST_CONFIG, else config/skjemapost.toml.")
@click.option("--as-of", metavar="TIME",
              help="Act as if it were TIME (YYYY-MM-DD, YYYY-MM-DDTHH:MM local, or ISO 8601).")
@click.version_option(package_name="skjemapost")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, as_of: str | None) -> None:
    """skjemapost collects the form «Oppsummering og evaluering» by email and chases the units
    that have not sent it.

    \b
    Typical start:
      skjemapost --config config/skjemapost.toml check
      skjemapost init
      skjemapost roster import config/roster.csv
      skjemapost form build --unit IE-IDI -o IE-IDI.xlsx
      skjemapost status
    """
    ctx.ensure_object(dict).update(config=config_path, as_of=as_of)


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the database and record the campaign from the config.

    Safe to run again: it only applies migrations not yet applied.

    Example: skjemapost init
    """
    app = _app(ctx)
    before, after, created = app.init()
    state = "created" if before is None else ("already up to date" if before == after
                                              else f"upgraded from {before}")
    click.echo(f"database {state} (schema {after})")
    click.echo(f"campaign {app.campaign_id} {'recorded' if created else 'is recorded'}")


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config, the roster, the form and the database, and say what was found.

    Exits 2 if anything is wrong, after listing every problem.

    Example: skjemapost --config config/skjemapost.toml check
    """
    report = _app(ctx).check()
    for fact in report.facts:
        click.echo(f"  {fact}")
    for problem in report.problems:
        click.secho(f"problem: {problem}", fg="red", err=True)
    if report.problems:
        ctx.exit(2)
    click.secho("all good", fg="green")


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
    roster_, diff = _app(ctx).import_roster(file)
    for warning in roster_.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    click.echo(f"{len(roster_.units)} units read")
    for label, codes in (("added", diff.added), ("reactivated", diff.reactivated),
                         ("removed (deactivated)", diff.removed)):
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
    app = _app(ctx)
    for u in app.units(include_inactive=include_inactive):
        click.echo(f"{u.code:<12} {u.faculty:<6} {u.language}  {u.leader_name} <{u.leader_email}>"
                   f"  {u.name}")


@cli.group()
def form() -> None:
    """Build the personalised form, and check a filled one."""


@form.command("build")
@click.option("--unit", "code", metavar="CODE", help="The unit's code.")
@click.option("--all", "all_units", is_flag=True, help="Every active unit, into --output as a folder.")
@click.option("--lang", type=LANG, help="Language; default: the unit's own.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Where to write: a file for --unit (default <CODE>.xlsx), a folder for --all.")
@click.pass_context
def form_build(ctx: click.Context, code: str | None, all_units: bool, lang: str | None,
               output: Path | None) -> None:
    """Write the personalised .xlsx form for one unit, or for every unit with --all.

    \b
    Examples:
      skjemapost form build --unit IE-IDI --lang en -o IE-IDI.xlsx
      skjemapost form build --all -o data/forms
    """
    app = _app(ctx)
    if all_units == bool(code):
        raise click.UsageError("give either --unit CODE or --all")
    if code:
        unit, data = app.build_form(code, cast(Language | None, lang))
        out = output or Path(f"{unit.code}.xlsx")
        out.write_bytes(data)
        click.echo(f"wrote {out} ({len(data):,} bytes) for {unit.code} {unit.name}")
        return
    folder = output or app.config.storage.data_dir / "forms"
    folder.mkdir(parents=True, exist_ok=True)
    units = app.units()
    with click.progressbar(units, label="building forms", file=sys.stderr) as bar:
        for unit in bar:
            _, data = app.build_form(unit.code, cast(Language | None, lang))
            (folder / f"{unit.code}.xlsx").write_bytes(data)
    click.echo(f"wrote {len(units)} forms to {folder}")


@form.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lang", type=LANG, help="Language of the messages; default: the unit's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def form_check(ctx: click.Context, file: Path, lang: str | None, as_json: bool) -> None:
    """Read a filled form and print the unit, token, answers and every problem found.

    This is how an operator sees why a form was or was not accepted. Exits 1 if it has problems.

    Example: skjemapost form check reply.xlsx --json
    """
    result = _app(ctx).check_form(file.read_bytes(), cast(Language | None, lang))
    r = result.reading
    doc = {
        "file": str(file),
        "unit": result.unit.code if result.unit else None,
        "matched_by": result.match,
        "reference": r.reference,
        "stamp_found": r.stamp is not None,
        "answers": r.answers,
        "problems": [{"cell": p.where, "message": p.message} for p in result.problems],
        "valid": not result.problems and result.unit is not None,
    }
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
    else:
        unit = f"{result.unit.code} {result.unit.name}" if result.unit else "not recognised"
        click.echo(f"unit:      {unit} ({result.match})")
        click.echo(f"reference: {r.reference or '-'}")
        click.echo("answers:")
        for key, value in r.answers.items():
            click.echo(f"  {key}: {value}")
        click.echo(f"problems ({len(result.problems)}):")
        for p in result.problems:
            click.echo(f"  {p.where}: {p.message}")
    if not doc["valid"]:
        ctx.exit(1)


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
    app = _app(ctx)
    due = app.invitations_due()
    skipped = len(app.units()) - len(due)
    if dry_run:
        for u in due:
            click.echo(f"would queue  invitation  {u.code:<12} {u.language}  {u.leader_email}")
        for row in app.queued():
            click.echo(f"would send   {row.kind:<11} {row.unit_code or '-':<12} "
                       f"{', '.join(row.recipients)}  ({row.status})")
        click.echo(f"dry run: {len(due)} invitations to queue, {len(app.queued())} already queued, "
                   f"{skipped} units already invited; nothing was sent")
        return
    if due:
        with click.progressbar(length=len(due), label="queueing invitations", file=sys.stderr) as bar:
            for i in range(0, len(due), 50):
                app.queue_invitations(due[i:i + 50])
                bar.update(len(due[i:i + 50]))
    rows = app.queued()
    with click.progressbar(length=len(rows), label="sending", file=sys.stderr) as bar:
        report = app.drain(progress=lambda row, result: bar.update(1))
    for key, reason in report.failures:
        click.secho(f"not sent: {key}: {reason}", fg="yellow", err=True)
    click.echo(f"sent {report.sent}, failed {report.failed}, deferred {report.deferred} (retried "
               f"by the next send), skipped {skipped} already invited")
    if report.recovered or report.resent:
        click.echo(f"after an interruption: {report.recovered} found already sent, "
                   f"{report.resent} sent again")
    if report.failed:
        ctx.exit(1)


@cli.command()
@click.argument("kind", type=click.Choice(PREVIEW_KINDS))
@click.option("--unit", "code", required=True, metavar="CODE", help="The unit's code.")
@click.option("--lang", type=LANG, help="Language; default: the unit's own.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to write the .eml and .html into.")
@click.pass_context
def preview(ctx: click.Context, kind: str, code: str, lang: str | None, output: Path) -> None:
    """Write the mail KIND that a unit would get, as .eml (open it in a mail client) and .html.

    Nothing is queued or sent. Use --as-of to see a reminder as it would read on a given day.

    Example: skjemapost --as-of 2020-12-09 preview leader-reminder-before --unit IE-IDI
    """
    mail = _app(ctx).preview(kind, code, cast(Language | None, lang))
    output.mkdir(parents=True, exist_ok=True)
    stem = output / f"{kind}-{mail.unit_code}-{lang or 'unit'}"
    eml, html = stem.with_suffix(".eml"), stem.with_suffix(".html")
    eml.write_bytes(mail.payload)
    parsed = email.message_from_bytes(mail.payload, policy=email.policy.default)
    body = parsed.get_body(("html",))
    html.write_text(body.get_content() if body else "", encoding="utf-8")
    click.echo(f"subject: {mail.subject}\nto: {', '.join(mail.recipients)}\nwrote {eml} and {html}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show progress per faculty: units, submitted, valid and missing.

    Example: skjemapost status --json
    """
    app = _app(ctx)
    rows = app.status()
    total = FacultyProgress("total", *(sum(getattr(r, k) for r in rows)
                                       for k in ("units", "submitted", "valid", "missing")))
    if as_json:
        doc = {"campaign": app.campaign_id, "deadline": str(app.config.campaign.deadline),
               "faculties": [asdict(r) for r in rows], "total": asdict(total)}
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"campaign {app.campaign_id}, deadline {app.config.campaign.deadline}")
    header = f"{'faculty':<10}{'units':>7}{'submitted':>11}{'valid':>7}{'missing':>9}{'done':>7}"
    click.echo(header)
    click.echo("-" * len(header))
    for r in [*rows, total]:
        if r is total:
            click.echo("-" * len(header))
        click.echo(f"{r.faculty:<10}{r.units:>7}{r.submitted:>11}{r.valid:>7}{r.missing:>9}"
                   f"{r.percent:>6.0f}%")


def main() -> None:
    cli(prog_name="skjemapost")


if __name__ == "__main__":  # pragma: no cover
    main()
