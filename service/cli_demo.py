"""The `demo` commands (filled in by the demo work)."""

from __future__ import annotations

from .cli_base import cli

__all__ = ["cli"]
