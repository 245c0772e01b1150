"""Our own Message-IDs: made here, and recognised here.

Every Message-ID the service makes carries one mark, so its own mail can be told from everything
else: a copy that came back to the inbox (one IMAP header search finds them all), a bounce or an
auto-reply that quotes it, a reply that refers to it. Making and recognising the mark live
together so they cannot drift apart.
"""

from __future__ import annotations

import secrets

# the substring an IMAP SEARCH HEADER Message-ID looks for
MARK = ".skjemapost@"


def make_message_id(domain: str) -> str:
    """A fresh, globally unique Message-ID in our own domain."""
    return f"<{secrets.token_hex(12)}{MARK}{domain}>"


def is_ours(message_id: str) -> bool:
    """True for a Message-ID the service made."""
    return MARK in message_id
