"""The `skjemapost` command (also `python -m service`): the group and every command."""

from __future__ import annotations

from . import cli_compile, cli_demo, cli_mail, cli_run, cli_setup, cli_web  # noqa: F401 - importing them registers their commands
from .cli_base import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="skjemapost")


if __name__ == "__main__":  # pragma: no cover
    main()
