"""The composition root (wiring) and the operations the shells call: setup, mailing, operations."""
