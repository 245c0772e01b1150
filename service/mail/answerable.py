"""Never answer a machine: the one rule every answer to an inbound message passes. Pure.

Design note. A service that answers mail must never answer a machine, or two machines answer
each other for ever (RFC 3834 section 2; DESIGN.md, "Never answer a machine"). The rule is here
and nowhere else; ``jobs/decide`` asks it before it queues any receipt, correction or refusal
for the sender of an inbound message. No answer goes to:

- a machine's mail, as the classifier sees it (bounce, delay, auto-reply, report, list, own);
- a daemon or no-reply address (``bounces.daemon_kind``), in From or in the address an answer
  would go to (Reply-To), in any domain, the institution's own included;
- mail with an empty envelope sender (``Return-Path: <>``), which only machines send;
- mail that carries a copy of a mail we sent in a returned part (a message/rfc822 or
  text/rfc822-headers part, or header lines quoted in the text, with our Message-ID mark):
  a returned copy of our own mail is a machine talking back;
- mail with ``Auto-Submitted`` other than ``no``;
- mail from a list (``List-Id``, ``List-Unsubscribe``, ``List-Post``…, ``Precedence: list``);
- an address the service has already sent ``max_per_address_per_hour`` mails in the last hour.

``Precedence: bulk`` or ``junk`` alone is no reason: some mail clients and gateways stamp
people's mail so, and a leader's reply carrying the form must still get its receipt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service.mail.bounces import daemon_kind, returned_copy
from service.mail.classifier import Classification, is_machine, list_header
from service.mail.parser import InboundMail


@dataclass(frozen=True)
class NoAnswer:
    """Why an inbound message gets no answer: ``rule`` names which part of the rule applied
    ("machine", "daemon", "null-sender", "returned-copy", "auto-submitted", "list", "cap")."""

    rule: str
    reason: str


def answer_address(mail: InboundMail) -> str:
    """Where an answer to ``mail`` goes: its Reply-To, else its From."""
    return mail.reply_to or mail.from_address


def refusal(
    mail: InboundMail, c: Classification, *, sent_last_hour: Callable[[str], int], per_hour: int
) -> NoAnswer | None:
    """Why ``mail`` (classified as ``c``) must not be answered, or None when it may be.

    ``sent_last_hour(address)`` counts the mails the service sent (or queued) to an address in
    the last hour; it is asked last, only when nothing else already refuses.
    """
    if is_machine(c):
        return NoAnswer("machine", f"a machine's mail ({c.kind}: {c.reason})")
    to = answer_address(mail)
    if not to:
        return NoAnswer("daemon", "no address to answer")
    for address in dict.fromkeys((mail.from_address, to)):
        if address and (kind := daemon_kind(address)):
            return NoAnswer("daemon", f"{address} is a {kind} address, not a person's")
    if mail.header("return-path").strip() == "<>":
        return NoAnswer("null-sender", "the envelope sender is empty (Return-Path: <>)")
    returned = returned_copy(mail)
    if returned is not None:
        return NoAnswer("returned-copy", f"it returns a copy of our own mail {returned.message_id}")
    auto = mail.header("auto-submitted").strip()
    if auto and auto.split(";")[0].split("(")[0].strip().lower() != "no":  # "no (a comment)" is no
        return NoAnswer("auto-submitted", f"Auto-Submitted: {auto}")
    listed = list_header(mail) or ""
    if listed or mail.header("precedence").strip().lower() == "list":
        return NoAnswer("list", f"a list's mail ({listed or 'Precedence: list'})")
    sent = sent_last_hour(to)
    if sent >= per_hour:
        return NoAnswer("cap", f"{to} already had {sent} mails in the last hour (the cap is {per_hour})")
    return None
