"""`python -m service` is the same as `skjemapost`."""

from .cli import main

main()
