"""Mail as values, no I/O: references, templates, every letter the service sends, the exact bytes; inbound bytes parsed and classified."""
