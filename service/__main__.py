"""`python -m service` is the same as `skjemapost`."""

from service.cli.main import main

main()
