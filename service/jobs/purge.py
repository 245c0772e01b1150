"""Retention: ``purge()`` removes the archived raw mail and the personal data of a closed
campaign, up to a date, and says what it removed.

What is personal here: the addresses and names of people (leaders, verneombud, superiors,
whoever wrote to us), the subjects and bytes of mails (they carry names, and the attachments
carry the forms), file names, notes, and any e-mail address inside free text (SMTP errors,
bounce reasons). What stays, because HR's reports are built from it and it describes units,
not people: unit codes, names and faculties; statuses, outcomes and counts; Message-IDs (the
inbox needs them never to process a message twice); the SHA-256 of every message and file;
and the answers as submitted, except those the form marks ``personal`` (the shipped form: the
leader's and the verneombud's names), which are emptied. The free text a unit wrote is kept
(it is the unit's evaluation), and `purge --help` and docs/OPERATIONS.md say so.

Safety first: only a campaign past its deadline plus ``GRACE_DAYS`` can be purged (late forms,
the last reminder, the escalation and the last digest are all behind it), never while a runner
holds the campaign's lock, never past today, and not while messages before the date still wait
for a person's review (unless asked). Files are deleted before the rows forget them, so a purge
cut short is finished by running it again; a second run finds nothing and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from service.clock import local
from service.errors import SkjemapostError
from service.store.database import Store
from service.store.purge import UNIT_CONTACTS, RowsPurged, Scrub

GRACE_DAYS = 30
REMOVED = "[removed]"
# keys whose values name or address a person, wherever they appear in a JSON detail
PERSONAL_KEYS = frozenset(
    {"sender", "address", "failed", "recipients", "file", "sent_by", "note", "from_name", *UNIT_CONTACTS}
)
EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


class PurgeError(SkjemapostError, ValueError):
    exit_code = 2


@dataclass(frozen=True)
class PurgeReport:
    campaign: str
    before: dt.date
    cutoff: dt.datetime  # UTC: local midnight at the start of ``before``
    timezone: str
    dry_run: bool
    raw_files: int  # deleted (or, in a dry run, that would be)
    raw_files_shared: int  # kept: a row that is not purged still needs them
    raw_files_missing: int  # already gone from disk
    rows: RowsPurged

    @property
    def removed_anything(self) -> bool:
        return bool(self.raw_files or self.raw_files_missing or self.rows.total)

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "before": self.before.isoformat(),
            "cutoff_utc": self.cutoff.isoformat(),
            "timezone": self.timezone,
            "dry_run": self.dry_run,
            "raw_files": {
                "removed": self.raw_files,
                "kept_shared": self.raw_files_shared,
                "already_gone": self.raw_files_missing,
            },
            "rows": {k: v for k, v in asdict(self.rows).items() if k != "outbox_pending"},
            "outbox_not_sent_kept": self.rows.outbox_pending,
            "removed_anything": self.removed_anything,
        }


def scrub(value: Any, personal: bool = False) -> Any:
    """``value`` (JSON) with every value under a personal key emptied and every e-mail address
    in other text replaced; the structure stays, so readers of the detail keep working."""
    if isinstance(value, dict):
        return {k: scrub(v, personal or k in PERSONAL_KEYS) for k, v in value.items()}
    if isinstance(value, list):
        return [] if personal else [scrub(v) for v in value]
    if isinstance(value, str):
        return "" if personal else EMAIL.sub(REMOVED, value)
    return value


def closed_from(deadline: dt.date, closes: dt.date | None = None) -> dt.date:
    """The first day a campaign with ``deadline`` may be purged: after ``GRACE_DAYS``, and not
    before ``closes`` (``campaign.closes``), so a campaign kept open longer keeps its mail until
    it ends."""
    return max(deadline + dt.timedelta(days=GRACE_DAYS + 1), closes or deadline)


def answer_scrubber(personal: Mapping[str, frozenset[str]]) -> Scrub:
    """Stored answers (JSON) -> the same with the personal ones emptied: a whole answer for a
    personal field, the personal columns in each row of a table (``FormDef.personal_answers``)."""

    def clean(answers: Any) -> Any:
        if not isinstance(answers, dict):
            return answers
        out = dict(answers)
        for field_id, columns in personal.items():
            value = out.get(field_id)
            if value in (None, "", []):
                continue
            if not columns:
                out[field_id] = None
            elif isinstance(value, list):
                out[field_id] = [
                    {k: (None if k in columns else v) for k, v in row.items()}
                    if isinstance(row, dict)
                    else row
                    for row in value
                ]
        return out

    return clean


def purge(
    store: Store,
    campaign_id: str,
    before: dt.date,
    now: dt.datetime,
    archive_root: Path,
    *,
    dry_run: bool = False,
    include_review: bool = False,
    personal: Mapping[str, frozenset[str]] | None = None,
    closes: dt.date | None = None,
) -> PurgeReport:
    """Remove the raw mail and personal data of ``campaign_id`` received or sent before
    ``before`` (local midnight in the campaign's zone), and the contacts of its units."""
    known = store.campaign_ids()
    if campaign_id not in known:
        raise PurgeError(
            f"--campaign {campaign_id!r}: no such campaign in the database "
            f"(it has: {', '.join(known) or 'none'})"
        )
    info = store.campaign(campaign_id)
    today = local(now, info.timezone).date()
    if before > today:
        raise PurgeError(
            f"--before {before}: that is in the future (today is {today} in "
            f"{info.timezone}); purge only removes what is past"
        )
    if today < closed_from(info.deadline, closes):
        raise PurgeError(
            f"campaign {campaign_id} is not closed: its deadline is {info.deadline}, "
            # the closing day is named only when it, not the grace, decides
            + (f"it closes on {closes}, " if closes and closes > closed_from(info.deadline) else "")
            + f"and it can be purged from {closed_from(info.deadline, closes)} ({GRACE_DAYS} "
            "days' grace after the deadline for late forms, the last reminder and the "
            "escalation, and never before the campaign closes)"
        )
    lock = store.runner(campaign_id)
    if lock is not None and lock.alive(now):
        raise PurgeError(
            f"`skjemapost run` ({lock.holder}) holds campaign {campaign_id} until "
            f"{lock.expires_at:%Y-%m-%d %H:%M} UTC; stop it first"
        )
    cutoff = dt.datetime.combine(before, dt.time(0), ZoneInfo(info.timezone)).astimezone(dt.UTC)
    files = store.raw_files(campaign_id, cutoff)
    if files.in_review and not include_review:
        raise PurgeError(
            f"{files.in_review} message(s) received before {before} still wait for review; "
            "decide them with `skjemapost review`, or pass --include-review to purge "
            "them undecided"
        )
    root = archive_root.resolve()
    outside = [p for p in files.remove if not Path(p).resolve().is_relative_to(root)]
    if outside:
        raise PurgeError(
            f"{len(outside)} archived message(s) lie outside this host's archive {root}, "
            f"e.g. {outside[0]}: run purge where storage.data_dir holds them"
        )
    removed = missing = 0
    for name in files.remove:
        path = Path(name)
        if not path.exists():
            missing += 1
            continue
        if not dry_run:
            path.unlink()
        removed += 1
    event = {"before": before.isoformat(), "raw_files": removed, "raw_files_already_gone": missing}
    rows = store.purge_personal_data(
        campaign_id,
        cutoff,
        now,
        scrub=scrub,
        event=event,
        dry_run=dry_run,
        scrub_answers=answer_scrubber(personal) if personal else None,
    )
    return PurgeReport(
        campaign_id, before, cutoff, info.timezone, dry_run, removed, len(files.shared), missing, rows
    )
