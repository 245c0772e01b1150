"""The web commands: `serve` (the dashboard and workbook download) and `user add/list/remove`
(the users file, ``web.users_file``). Passwords are prompted with hidden input or read from
stdin; neither a password nor a hash is ever printed."""

from __future__ import annotations

import contextlib
import sys

import click

from service.app.setup import Setup
from service.cli.base import app_for, cli
from service.errors import SkjemapostError
from service.web.users import ROLES, UserError, add_user, load_users, remove_user

__all__ = ["cli"]

PASSWORD_MIN = 10


@cli.command("serve")
@click.option("--host", metavar="HOST", help="Listen on HOST. Default: web.host (127.0.0.1).")
@click.option(
    "--port", type=click.IntRange(1, 65535), metavar="PORT", help="Listen on PORT. Default: web.port."
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the web page for HR and coordinators until stopped (Ctrl-C or SIGTERM).

    Keep it on 127.0.0.1 behind a reverse proxy with TLS (docs/WEB.md). Needs the session key in
    $SKJEMAPOST_WEB_SECRET (web.session_secret_env) and at least one user (`skjemapost user add`).

    Example: SKJEMAPOST_WEB_SECRET=... skjemapost serve --port 8080
    """
    from service.web.app import run_server  # uvicorn and starlette load only for this command

    app = app_for(ctx)
    run_server(app.config, app.clock, host=host, port=port)


@cli.group("user")
def user() -> None:
    """Users of the web page and their roles (the file web.users_file, mode 0600)."""


@user.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    required=True,
    help="hr sees every faculty; coordinator sees one (--faculty).",
)
@click.option("--faculty", metavar="F", help="The coordinator's faculty (as in the roster).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.pass_context
def user_add(ctx: click.Context, name: str, role: str, faculty: str | None, password_stdin: bool) -> None:
    """Add a user, or replace the one of that name (a new password ends their sessions).

    \b
    Examples:
      skjemapost user add kari --role hr
      skjemapost user add ola --role coordinator --faculty IE
      printf '%s\\n' "$PW" | skjemapost user add ola --role coordinator --faculty IE --password-stdin
    """
    app = app_for(ctx)
    if role == "coordinator":
        known = known_faculties(ctx)
        if faculty not in known:
            raise UserError(
                f"--faculty {faculty!r}: use one of {', '.join(sorted(known)) or '(none known)'} "
                "(the faculties of [[coordinators]] and the roster)"
            )
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < PASSWORD_MIN:
        raise UserError(f"the password must be at least {PASSWORD_MIN} characters")
    path = app.config.web.users_file
    add_user(path, name, role, faculty if role == "coordinator" else None, password)
    what = f"coordinator {faculty}" if role == "coordinator" else role
    click.echo(f"user {name} ({what}) saved in {path}")


def known_faculties(ctx: click.Context) -> set[str]:
    app = app_for(ctx)
    known = {c.faculty for c in app.config.coordinators}
    with contextlib.suppress(SkjemapostError):  # no roster yet: the config's coordinators still count
        known |= {u.faculty for u in Setup(app).read_roster().units}
    return known


@user.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """List the users: name, role and faculty (never their password hashes).

    Example: skjemapost user list
    """
    users = load_users(app_for(ctx).config.web.users_file)
    for u in sorted(users.values(), key=lambda u: (u.role, u.faculty or "", u.name.casefold())):
        click.echo(f"{u.name:<24} {u.role:<12} {u.faculty or ''}".rstrip())
    if not users:
        click.echo("no users")


@user.command("remove")
@click.argument("name")
@click.pass_context
def user_remove(ctx: click.Context, name: str) -> None:
    """Remove a user; their open sessions end at their next request.

    Example: skjemapost user remove ola
    """
    path = app_for(ctx).config.web.users_file
    if not remove_user(path, name):
        raise UserError(f"no user {name!r} in {path}")
    click.echo(f"user {name} removed from {path}")
