"""The `skjemapost` command group and what its commands share: loading the App once, and
turning skjemapost's own errors into a message and an exit code (here, and only here).

The commands live in ``cli.setup`` (config, roster, form, status) and ``cli.mail`` (send,
preview, poll, review); ``cli`` puts them together. Each command's docstring is its ``--help``.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Any, cast

import click

from service.app.wiring import App
from service.clock import FixedClock, parse_as_of
from service.config import settings as config_mod
from service.errors import SkjemapostError
from service.jobs.lease import exclusive, lock_ttl
from service.models import LANGUAGES


class ErrorsAsMessages(click.Group):
    """Turns skjemapost's own errors into a clear message and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SkjemapostError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(exc.exit_code)


def app_for(ctx: click.Context) -> App:
    """Load the config once, on first use, so `--help` works without one."""
    obj = ctx.find_root().ensure_object(dict)
    if "app" not in obj:
        cfg = config_mod.load(config_mod.resolve_path(obj.get("config"), os.environ), os.environ)
        as_of = obj.get("as_of")
        clock = FixedClock(parse_as_of(as_of, cfg.campaign.timezone)) if as_of else None
        obj["app"] = App(cfg, clock)
        ctx.call_on_close(obj["app"].close)
    return cast(App, obj["app"])


def working(app: App, task: str) -> AbstractContextManager[None]:
    """The runner lock (``service.jobs.lease``) for a command that touches the mailbox or the outbox."""
    return exclusive(app.store, app.campaign_id, app.clock, task, lock_ttl(app.config.schedule))


LANG = click.Choice(LANGUAGES)


@click.group(cls=ErrorsAsMessages, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    metavar="PATH",
    help="Config file. Default: $SKJEMAPOST_CONFIG, else config/skjemapost.toml.",
)
@click.option(
    "--as-of",
    metavar="TIME",
    help="Act as if it were TIME (YYYY-MM-DD, YYYY-MM-DDTHH:MM local, or ISO 8601).",
)
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
