"""The `skjemapost` command (also `python -m service`): the group and every command."""

from __future__ import annotations

# importing the command modules registers their commands on the group
from service.cli import demo, mail, run, setup, web, workbook  # noqa: F401
from service.cli.base import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="skjemapost")


if __name__ == "__main__":  # pragma: no cover
    main()
