"""`skjemapost demo`: a whole campaign on simulated days against mail servers inside the process."""
