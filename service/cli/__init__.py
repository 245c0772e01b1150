"""The `skjemapost` command: a thin shell, one module per command group."""
