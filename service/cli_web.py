"""The `web` commands (filled in by the web work)."""

from __future__ import annotations

from .cli_base import cli

__all__ = ["cli"]
