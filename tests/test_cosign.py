"""The co-signature's stage and rules (campaign/cosign.py) and its settings ([cosign]).

Pure: a CosignRecord of literal facts and a clock value in, a CoSignState out. Each test names
one rule: the stage a fact gives, when the one reminder is due, when it is not, and what counts
as done.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from service.campaign.cosign import (
    CoSign,
    CoSignState,
    NotAsked,
    cosign_state,
    counts_as_done,
    reminder_due,
)
from service.config import settings as config
from service.config.settings import Campaign, Cosign, Schedule
from service.errors import ConfigError
from service.store.cosign import CosignRecord, CosignRequest
from service.store.reports import AwayFact, FailureFact

OSLO = ZoneInfo("Europe/Oslo")
VO = "siri.lovas@example.edu"
EXAMPLE = Path(__file__).parent.parent / "config" / "skjemapost.example.toml"


def oslo(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=OSLO).astimezone(dt.UTC)


CAMPAIGN = Campaign(
    id="aml-2020",
    title="Oppsummering og evaluering 2020",
    form=Path("forms/oppsummering-og-evaluering.toml"),
    roster=Path("config/roster.example.csv"),
    opens=dt.date(2020, 11, 23),
    deadline=dt.date(2020, 12, 16),
    timezone="Europe/Oslo",
    default_language="nb",
    institution_domains=("example.edu",),
)  # closes four weeks after the deadline: Wednesday 13 January 2021
SCHEDULE = Schedule(
    reminder_days_before=(14, 7, 2),
    reminder_after_deadline=True,
    escalation_working_days=3,
    max_reminders=4,
    send_hour=9,
    poll_minutes=5,
    digest_weekday="monday",
    digest_hour=8,
)
ASK = Cosign(mode="ask", reminder_working_days=5)
ASKED = oslo(2020, 12, 10, 14, 6)  # a Thursday: five working days later is Thursday 17 December


def request(asked_at: dt.datetime = ASKED, version: int = 1, **answer: object) -> CosignRequest:
    """Request 7, about ``version``, asked at ``asked_at``; ``answer`` sets what came of it."""
    return dataclasses.replace(CosignRequest(7, "IE-IBM", version, VO, asked_at, "<r@x>"), **answer)  # type: ignore[arg-type]


def record(
    req: CosignRequest | None = None,
    *,
    email: str = VO,
    away: dt.date | None = None,
    failing: bool = False,
) -> CosignRecord:
    return CosignRecord(
        code="IE-IBM",
        verneombud_email=email,
        request=req,
        away=AwayFact(VO, ASKED + dt.timedelta(minutes=3), away) if away else None,
        failure=FailureFact(VO, "550 5.1.1 User unknown", ASKED) if failing else None,
    )


def state(
    rec: CosignRecord,
    now: dt.datetime,
    *,
    valid: int | None = 1,
    settings: Cosign = ASK,
    campaign: Campaign = CAMPAIGN,
    schedule: Schedule = SCHEDULE,
) -> CoSignState | None:
    return cosign_state(
        rec, valid_version=valid, settings=settings, campaign=campaign, schedule=schedule, now=now
    )


# ---- the stage -----------------------------------------------------------------------------------


def test_off_means_no_co_signature_at_all():
    """With mode "off" a unit has no co-signature stage (None), whatever its facts."""
    assert state(record(request()), ASKED, settings=Cosign(mode="off")) is None


@pytest.mark.parametrize(
    ("rec", "valid", "stage", "reason"),
    [
        (record(email=""), 1, CoSign.NO_ADDRESS, NotAsked.NO_ADDRESS),
        (record(failing=True), 1, CoSign.NO_ADDRESS, NotAsked.ADDRESS_FAILING),
        (record(), None, CoSign.NOT_ASKED, NotAsked.NO_VALID_FORM),
        (record(), 1, CoSign.NOT_ASKED, NotAsked.NOT_YET),
    ],
    ids=["no-address-in-roster", "address-fails", "no-valid-form", "request-still-to-go"],
)
def test_a_unit_not_asked_says_why(rec, valid, stage, reason):
    """Not asked is one of two stages, with its reason: no address (none, or failing) or not yet."""
    got = state(rec, ASKED, valid=valid)
    assert got is not None and (got.stage, got.reason, got.asked) == (stage, reason, False)


def test_asked_and_not_answered_is_pending_with_the_request_facts():
    """A request with no answer: pending, about its version, to its address, since its time."""
    got = state(record(request(version=2)), ASKED, valid=2)
    assert got is not None and got.stage is CoSign.PENDING and got.reason is None
    assert (got.version, got.asked_to, got.asked_at, got.request_id) == (2, VO, ASKED, 7)


@pytest.mark.parametrize("reading", ["confirmed", "disputed"])
def test_the_answer_gives_the_stage_with_their_words(reading):
    """Confirmed or disputed, with their words, who and when; no reminder is ever due."""
    at = ASKED + dt.timedelta(days=1)
    req = request(reading=reading, words="Enig." if reading == "confirmed" else "Nei.", answered_at=at)
    req = dataclasses.replace(req, answered_by=VO)
    got = state(record(req), oslo(2020, 12, 28))
    assert got is not None and got.stage == CoSign(reading) and got.answered
    assert (got.answered_at, got.answered_by) == (at, VO)
    assert got.words == ("Enig." if reading == "confirmed" else "Nei.")
    assert got.remind_from is None and not reminder_due(got, oslo(2020, 12, 28))


def test_an_answer_stands_even_if_the_address_fails_later():
    """A bounce after they answered changes nothing: the reading stands."""
    got = state(record(request(reading="confirmed", words="Enig"), failing=True), oslo(2020, 12, 14))
    assert got is not None and got.stage is CoSign.CONFIRMED


def test_a_request_that_bounced_is_not_asked_after_all():
    """Pending, but the verneombud's address fails: no-address (failing), and no reminder."""
    got = state(record(request(), failing=True), oslo(2020, 12, 21))
    assert got is not None and (got.stage, got.reason) == (CoSign.NO_ADDRESS, NotAsked.ADDRESS_FAILING)
    assert got.version == 1 and got.remind_from is None


def test_a_newer_version_asked_about_is_pending_again():
    """The newest request counts: version 2 asked after version 1 was confirmed is pending."""
    v2 = request(asked_at=oslo(2020, 12, 14, 10), version=2)
    got = state(record(v2), oslo(2020, 12, 14, 11), valid=2)
    assert got is not None and (got.stage, got.version) == (CoSign.PENDING, 2)


# ---- the one reminder ----------------------------------------------------------------------------


def test_the_reminder_is_due_at_the_send_hour_five_working_days_after_the_request():
    """Asked Thursday 10 Dec: not due on Wednesday 16 Dec, due from 09:00 on Thursday 17 Dec."""
    got = state(record(request()), oslo(2020, 12, 11))
    assert got is not None and got.remind_from == oslo(2020, 12, 17, 9)
    assert not reminder_due(got, oslo(2020, 12, 16, 20))
    assert not reminder_due(got, oslo(2020, 12, 17, 8, 59))
    assert reminder_due(got, oslo(2020, 12, 17, 9))


def test_the_number_of_working_days_is_configurable():
    """With reminder_working_days = 2, Thursday's request is reminded on Monday."""
    got = state(record(request()), oslo(2020, 12, 11), settings=Cosign(mode="ask", reminder_working_days=2))
    assert got is not None and got.remind_from == oslo(2020, 12, 14, 9)


def test_working_days_skip_christmas_and_the_institutions_closed_days():
    """Asked Monday 21 Dec: 25 Dec and the weekend do not count (Tuesday 29 Dec); with romjul
    closed (24 and 28–31 Dec) it is Wednesday 6 January."""
    asked = oslo(2020, 12, 21, 10)
    plain = state(record(request(asked_at=asked)), asked)
    assert plain is not None and plain.remind_from == oslo(2020, 12, 29, 9)
    romjul = tuple(dt.date(2020, 12, d) for d in (24, 28, 29, 30, 31))
    closed = state(
        record(request(asked_at=asked)), asked, schedule=dataclasses.replace(SCHEDULE, closed_days=romjul)
    )
    assert closed is not None and closed.remind_from == oslo(2021, 1, 6, 9)


def test_no_reminder_while_the_verneombud_is_away():
    """Their out-of-office says back Monday 21 Dec: nothing on 17 or 18 Dec, due from 09:00 that
    Monday; once they are back the plain rule holds."""
    rec = record(request(), away=dt.date(2020, 12, 21))
    away = state(rec, oslo(2020, 12, 17, 10))
    assert away is not None and away.back_on == dt.date(2020, 12, 21)
    assert not reminder_due(away, oslo(2020, 12, 18, 12))
    assert away.remind_from == oslo(2020, 12, 21, 9)
    back = state(rec, oslo(2020, 12, 21, 10))
    assert back is not None and back.back_on is None and reminder_due(back, oslo(2020, 12, 21, 10))


def test_only_one_reminder():
    """Once the reminder went, no other is ever due."""
    got = state(record(request(reminded_at=oslo(2020, 12, 17, 9))), oslo(2021, 1, 5))
    assert got is not None and got.stage is CoSign.PENDING and got.remind_from is None
    assert not reminder_due(got, oslo(2021, 1, 5))


def test_no_reminder_after_the_campaign_closes():
    """Closing Friday 18 Dec: a request of 10 Dec is reminded on 17 Dec; one of 14 Dec (due
    21 Dec) never is; and once closed, none is due however late."""
    closes = dataclasses.replace(CAMPAIGN, closes=dt.date(2020, 12, 18))
    early = state(record(request()), oslo(2020, 12, 17, 9), campaign=closes)
    assert early is not None and reminder_due(early, oslo(2020, 12, 17, 9))
    late = state(record(request(asked_at=oslo(2020, 12, 14, 10))), oslo(2020, 12, 17), campaign=closes)
    assert late is not None and late.stage is CoSign.PENDING and late.remind_from is None
    after = state(record(request()), oslo(2020, 12, 18, 9), campaign=closes)
    assert after is not None and not reminder_due(after, oslo(2020, 12, 18, 9))


def test_nothing_to_remind_when_not_asked():
    """No request, no reminder."""
    assert not reminder_due(state(record(), oslo(2021, 1, 5)), oslo(2021, 1, 5))
    assert not reminder_due(None, oslo(2021, 1, 5))


# ---- what counts as done -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "ask", "required"),
    [
        (CoSign.CONFIRMED, True, True),
        (CoSign.PENDING, True, False),
        (CoSign.DISPUTED, True, False),
        (CoSign.NO_ADDRESS, True, False),
        (CoSign.NOT_ASKED, True, False),
    ],
)
def test_required_mode_counts_a_unit_as_done_only_when_confirmed(stage, ask, required):
    """With a valid form: "ask" counts it done; "required" only once the verneombud confirmed."""
    cs = CoSignState(stage=stage)
    assert counts_as_done(True, cs, "ask") is ask
    assert counts_as_done(True, cs, "required") is required


def test_no_valid_form_is_never_done():
    """Without a valid form nothing is done, confirmed or not, in any mode."""
    for mode in ("off", "ask", "required"):
        assert not counts_as_done(False, CoSignState(stage=CoSign.CONFIRMED), mode)  # type: ignore[arg-type]
    assert counts_as_done(True, None, "off")


# ---- [cosign] ------------------------------------------------------------------------------------

MINIMAL = """
[campaign]
id = "aml-2020"
title = "Test"
opens = 2020-11-23
deadline = 2020-12-16
[mail]
from_address = "hms@example.edu"
"""


def test_the_default_is_ask_with_a_reminder_after_five_working_days(tmp_path):
    """No [cosign] section: mode "ask", reminder after 5 working days; the example says the same."""
    path = tmp_path / "skjemapost.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert config.load(path, {}).cosign == Cosign(mode="ask", reminder_working_days=5)
    assert config.load(EXAMPLE, {}).cosign == Cosign(mode="ask", reminder_working_days=5)


def test_cosign_settings_are_read_and_bad_ones_named_by_key(tmp_path):
    """mode "required" and 3 days are read; a wrong mode, a bad number of days and an unknown key
    are all reported with their key paths."""
    path = tmp_path / "skjemapost.toml"
    path.write_text(MINIMAL + '[cosign]\nmode = "required"\nreminder_working_days = 3\n', encoding="utf-8")
    assert config.load(path, {}).cosign == Cosign(mode="required", reminder_working_days=3)
    path.write_text(
        MINIMAL + '[cosign]\nmode = "always"\nreminder_working_days = 0\nremind = 1\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        config.load(path, {})
    where = {p.where for p in caught.value.problems}
    assert {"cosign.mode", "cosign.reminder_working_days", "cosign.remind"} <= where
