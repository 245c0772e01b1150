"""The service's work, one step each: drain the outbox, poll the inbox and decide each message, chase, digests, the workbook, purge, the lock and the run loop."""
