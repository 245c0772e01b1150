"""The `demo` command: a whole campaign on simulated days, against mail servers in this process."""

from __future__ import annotations

import secrets
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from service.app.wiring import App
from service.cli.base import cli
from service.clock import local

if TYPE_CHECKING:
    from service.demo.campaign import DemoResult

__all__ = ["cli"]


@cli.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/demo"),
    show_default=True,
    help="The demo's folder; replaced on each run (only if it is a demo's).",
)
@click.option("--serve", is_flag=True, help="Afterwards, keep the web page up (Ctrl-C stops it).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    help="The web page's port, with --serve (on 127.0.0.1).",
)
@click.pass_context
def demo(ctx: click.Context, folder: Path, serve: bool, port: int) -> None:
    """Run a whole demo campaign in one go: 20 units in 3 faculties, over simulated weeks.

    It starts an SMTP and an IMAP server inside this process, on 127.0.0.1 (nothing leaves the
    machine), sends the invitations, lets leaders reply (valid forms, forms with mistakes, an
    out-of-office reply, an address that bounces, some who never answer), asks each valid
    form's verneombud to confirm it (they answer from their own mailboxes: most agree, one
    disagrees, one never answers), polls, reminds, escalates, sends the weekly digests and
    compiles the master workbook. The poller, classifier,
    parser and sender are the production code. Needs no config and no system packages.

    \b
    Examples:
      skjemapost demo
      skjemapost demo --dir /tmp/demo --serve --port 8081
    """
    from service.demo.campaign import run_demo  # pymap and aiosmtpd load only for this command

    if serve:  # say so now, not after the whole demo
        port_free(port)
    started = time.perf_counter()
    click.echo(f"skjemapost demo in {folder}/ — one line per simulated day")
    result = run_demo(folder, click.echo, web_port=port)
    elapsed = time.perf_counter() - started
    summary(ctx, result, elapsed)
    if serve:
        serve_web(result, port)


def summary(ctx: click.Context, result: DemoResult, elapsed: float) -> None:
    from service.demo.campaign import ENV_SECRET, TOKEN_SECRET

    click.echo("")
    click.echo(
        f"Done in {elapsed:.1f} s. Everything ran on 127.0.0.1: the SMTP and IMAP servers lived "
        "inside this process and no mail left the machine."
    )
    click.echo(f"  workbook:   {result.workbook}")
    click.echo(f"  sent mail:  {result.eml_dir}/ ({result.sent} .eml files, one per message sent)")
    click.echo(
        f"  config:     {result.folder / 'skjemapost.toml'}  (database and mail archive in "
        f"{result.folder / 'data'}/)"
    )
    if result.inbox_left:
        click.secho(f"  note: {result.inbox_left} message(s) left in the service's inbox", fg="yellow")
    click.echo("")
    # the very table `skjemapost status` prints, from the demo's own App
    app = App(result.config, result.clock)
    ctx.find_root().ensure_object(dict)["app"] = app
    ctx.call_on_close(app.close)
    status = cli.get_command(ctx, "status")
    assert status is not None
    ctx.invoke(status, as_json=False, per_unit=False)
    click.echo("")
    groups: dict[str, list[str]] = {}
    for code, part in sorted(result.cast.items()):
        groups.setdefault(part, []).append(code)
    click.echo(f"Who did what: {len(groups.pop('valid form', []))} units sent a valid form; the others:")
    for part, codes in groups.items():
        click.echo(f"  {part}: {', '.join(codes)}")
    stages: dict[str, list[str]] = {}
    for code, stage in sorted(result.states.items()):
        stages.setdefault(stage, []).append(code)
    click.echo("Where each unit stands now (the state every mail, digest, sheet and page reads):")
    for stage, codes in stages.items():
        click.echo(f"  {stage} ({len(codes)}): {', '.join(codes)}")
    for kind, codes in sorted(result.notices.items()):
        who = "superior leader + coordinator" if kind == "challenges-notice" else "whoever was asked"
        click.echo(f"  {kind} ({who}): {', '.join(sorted(set(codes)))}")
    cosign_summary(result)
    config = result.folder / "skjemapost.toml"
    click.echo(f"Look closer: skjemapost --config {config} status --units")
    click.echo(f"  (commands that read or build forms also need {ENV_SECRET}={TOKEN_SECRET})")


# what the summary says of a unit whose verneombud was not asked, by the reason
NOT_ASKED = {
    "no-address": "no verneombud address in the roster",
    "address-failing": "their address does not work",
    "not-yet": "the request is still to go",
}


def cosign_summary(result: DemoResult) -> None:
    """What each unit's verneombud answered, from the same unit states: who confirmed, who
    disputed (with their words), who did not answer and who was not asked."""
    from service.campaign.cosign import CoSign

    tz = result.config.campaign.timezone
    groups: dict[str, list[str]] = {"confirmed": [], "disputed": [], "did not answer": [], "not asked": []}
    lines: list[str] = []
    for code, c in sorted(result.cosign.items()):
        if c.stage is CoSign.CONFIRMED:
            groups["confirmed"].append(code)
        elif c.stage is CoSign.DISPUTED:
            groups["disputed"].append(code)
            lines.append(f"    {code} ({c.answered_by}): «{' '.join(c.words.split())}»")
        elif c.stage is CoSign.PENDING:
            reminded = f", reminded {local(c.reminded_at, tz):%d.%m.%Y}" if c.reminded_at else ""
            groups["did not answer"].append(
                f"{code} (asked {local(c.asked_at, tz):%d.%m.%Y}{reminded})" if c.asked_at else code
            )
        else:
            groups["not asked"].append(f"{code} ({NOT_ASKED.get(c.reason or '', c.stage.value)})")
    click.echo("The verneombud confirms (asked by email once a unit's form was valid):")
    for group, units in groups.items():
        click.echo(f"  {group} ({len(units)}): {', '.join(units) or '-'}")
        if group == "disputed":
            for line in lines:
                click.echo(line)


def port_free(port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise click.UsageError(
                f"--port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another port"
            ) from None


def serve_web(result: DemoResult, port: int) -> None:
    """Demo users (HR and one coordinator per faculty) in the demo's users file, then the web page."""
    from service.web.app import run_server  # uvicorn and starlette load only here
    from service.web.users import add_user

    users = [("hr", "hr", None)] + [
        (c.faculty.lower(), "coordinator", c.faculty) for c in result.config.coordinators
    ]
    click.echo("")
    click.echo(f"Web page: http://127.0.0.1:{port}/  (Ctrl-C stops it). Demo logins:")
    for name, role, faculty in users:
        password = secrets.token_urlsafe(9)
        add_user(result.config.web.users_file, name, role, faculty, password)
        click.echo(f"  {name:<4} {password}   ({role}{' ' + faculty if faculty else ''})")
    run_server(result.config, result.clock, port=port)
