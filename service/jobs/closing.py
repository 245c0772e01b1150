"""A campaign ends: HR's final summary, once, with the master workbook.

From ``campaign.closes`` on nothing more goes out (``plan.is_closed``: no reminder, escalation,
digest or notice). What does go is one final summary to ``hr.recipients``: the numbers per faculty,
the flagged answers counted by kind, the units that never handed in a valid form, and the master
workbook attached. `run`'s cycle sends it from the send hour of the first working day at or after
the closing day (``plan.is_final_summary_time``); `skjemapost final-summary` sends it by hand once
the campaign is closed. Its outbox key (``final:hr``) makes it go once, however often either runs;
``again`` sends a fresh copy under a key of its own (``final:hr@2``…), e.g. after late forms.

A form that comes after the closing is still read, checked and stored (the workbook compiled later
has it), and its sender gets an answer: ``leader-after-closing`` (see ``Letters.after_closing``).
This module decides; ``app.mailing`` queues and sends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from service.campaign.plan import is_closed, is_final_summary_time
from service.campaign.state import unit_states
from service.clock import local
from service.config.settings import Config
from service.errors import SkjemapostError
from service.jobs.digest import faculty_lines
from service.jobs.flagged import flag_counts
from service.mail.compose import Attachment, Envelope, Mailbox
from service.mail.letters import Letters, unit_mapping
from service.models import NewMail
from service.store.database import Store

FINAL_KEY = "final:hr"


class NotClosed(SkjemapostError, ValueError):
    """A final summary asked for by hand while the campaign is still open (or with no HR)."""

    exit_code = 2


def final_keys(config: Config) -> list[str]:
    """The outbox keys a final summary may have: the first, and the copies sent again by hand."""
    cid = config.campaign.id
    return [f"{cid}:{FINAL_KEY}", *(f"{cid}:{FINAL_KEY}@{n}" for n in range(2, 100))]


def sent_count(store: Store, config: Config) -> int:
    """How many final summaries are in the outbox (queued or sent)."""
    return len(store.existing_keys(config.campaign.id, final_keys(config)))


def final_summary_due(store: Store, config: Config, now: dt.datetime) -> bool:
    """True when `run` should send the final summary now: HR is configured, its time has come
    (``plan.is_final_summary_time``) and none is in the outbox yet."""
    if not config.hr_recipients or not is_final_summary_time(now, config.campaign, config.schedule):
        return False
    return sent_count(store, config) == 0


def require_closed(config: Config, now: dt.datetime) -> None:
    """For a final summary by hand: the campaign must be closed and HR configured."""
    campaign = config.campaign
    if not config.hr_recipients:
        raise NotClosed("hr.recipients is empty: there is nobody to send the final summary to")
    if not is_closed(now, campaign):
        raise NotClosed(
            f"the campaign is open until {campaign.closes_on - dt.timedelta(days=1)}: it closes on "
            f"{campaign.closes_on} (campaign.closes), and the final summary goes then; set an earlier "
            "campaign.closes to end it sooner"
        )


def final_summary(
    store: Store,
    config: Config,
    letters: Letters,
    now: dt.datetime,
    workbook: Sequence[Attachment],
    *,
    again: bool = False,
) -> NewMail | None:
    """HR's final summary with ``workbook`` attached; None when one went already and not ``again``."""
    count = sent_count(store, config)
    if count and not again:
        return None
    key = FINAL_KEY if count == 0 else f"{FINAL_KEY}@{count + 1}"
    lang = config.campaign.default_language
    ctx = letters.base_context() | _context(store, config, letters, now, workbook)
    envelope = Envelope(to=tuple(Mailbox(a) for a in config.hr_recipients))
    return letters.mail("hr-final", key, lang, ctx, envelope, now=now, attachments=workbook)


def _context(
    store: Store, config: Config, letters: Letters, now: dt.datetime, workbook: Sequence[Attachment]
) -> dict[str, Any]:
    cid, tz = config.campaign.id, config.campaign.timezone
    lang = config.campaign.default_language
    states = unit_states(store, config.campaign, config.schedule, now, include_inactive=False)
    units = {u.code: u for u in store.units(cid)}
    total, faculties = faculty_lines(store.faculty_progress(cid), states)
    return {
        "closes_on": config.campaign.closes_on,
        "as_of": local(now, tz),
        "progress": total,
        "faculties": faculties,
        "flag_counts": flag_counts(letters.form, states, lang),
        "without_form": [
            {"unit": unit_mapping(units[s.code]), "state": s.stage.value}
            for s in sorted(states, key=lambda s: (s.faculty, s.code))
            if not s.has_valid and s.code in units
        ],
        "workbook_name": workbook[0].filename if workbook else "",
        "web_url": config.web.public_url,
    }
