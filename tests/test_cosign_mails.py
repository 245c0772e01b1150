"""The co-signature's mails as the service composes them: who gets each, in which language, with
what attached, threaded how, and what the reader sees (the wordings are pinned by the goldens)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import os
from email.message import EmailMessage
from pathlib import Path

import pytest
from email_samples import sample_context
from projects import ROOT, make_units, new_project

from service.app.wiring import App
from service.config import settings as config_mod
from service.mail.compose import Attachment, Mailbox
from service.mail.cosignletters import COSIGN_KINDS, COSIGN_MACHINE_KINDS, Answer, Asked, CosignLetters
from service.mail.letters import MACHINE_KINDS, Reply
from service.mail.render import KINDS, Renderer
from service.models import NewMail, Unit

NOW = dt.datetime(2020, 12, 10, 13, 6, tzinfo=dt.UTC)
ASKED = Asked(
    version=2,
    received_at=dt.datetime(2020, 12, 10, 13, 5, tzinfo=dt.UTC),
    summary=({"label": "Antall ansatte", "value": "42"}, {"label": "Møteform", "value": "Digitalt"}),
    updated=True,
)
FORM = Attachment("Oppsummering og evaluering – IE-U000.xlsx", b"PK\x03\x04 the leader's own file")
COMMENT = "Jeg er ikke enig i punkt 3.\nVi hadde bare ett møte."


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> App:
    p = new_project(tmp_path_factory.mktemp("cosign-mails"), n_units=3)
    application = App(config_mod.load(p.config, p.env))
    yield application
    application.close()


@pytest.fixture(scope="module")
def units() -> list[Unit]:
    return make_units(3)  # IE-U000 (nb), NV-U001 (nb), HF-U002 (en)


def message(mail: NewMail) -> EmailMessage:
    return email.message_from_bytes(mail.payload, policy=email.policy.default)  # type: ignore[return-value]


def text(mail: NewMail) -> str:
    body = message(mail).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return body.replace("\r\n", "\n")


def answer(reading: str, words: str) -> Answer:
    return Answer(reading, words, NOW + dt.timedelta(hours=20), "Verneombud 0 (vo000@example.test)")


def test_every_cosign_kind_is_a_template_kind():
    """The five kinds are mail kinds the renderer knows, so `check` looks for their templates."""
    assert set(COSIGN_KINDS) <= set(KINDS)


def test_the_request_goes_to_the_verneombud_with_the_file_and_wants_their_out_of_office(app, units):
    """One mail to the roster's verneombud, in the unit's language, with the leader's file and the
    reference; not Auto-Submitted, so an out-of-office reply tells us they are away."""
    unit = units[0]
    mail = CosignLetters(app.letters).request(unit, ASKED, FORM, now=NOW)
    msg = message(mail)
    assert mail.kind == "verneombud-request" and mail.unit_code == unit.code
    assert mail.recipients == (unit.verneombud_email,)
    assert mail.dedupe_key == f"aml-2020:{unit.code}:cosign-request:2"
    assert msg["Auto-Submitted"] is None
    assert "[ref " in msg["Subject"] and msg["Subject"].startswith("Ny versjon: stemmer skjemaet")
    files = [(p.get_filename(), p.get_content()) for p in msg.iter_attachments()]
    assert files == [(FORM.filename, FORM.data)]
    body = text(mail)
    assert f"Hei {unit.verneombud_name}," in body
    assert "Svar på denne e-posten med «Enig»" in body
    assert "Antall ansatte: 42" in body and "Møteform: Digitalt" in body
    assert "versjon 2" in body


def test_an_english_unit_is_asked_in_english(app, units):
    """The roster's language decides: "Agree", not «Enig»."""
    mail = CosignLetters(app.letters).request(
        units[2], dataclasses.replace(ASKED, updated=False), FORM, now=NOW
    )
    assert message(mail)["Subject"].startswith("Does the form for")
    assert "Reply to this email with “Agree”" in text(mail)


def test_the_reminder_threads_under_the_request_and_names_its_day(app, units):
    """The one reminder answers the request's Message-ID and says when we asked."""
    letters = CosignLetters(app.letters)
    request = letters.request(units[0], ASKED, FORM, now=NOW)
    later = NOW + dt.timedelta(days=7)
    mail = letters.reminder(
        units[0], ASKED, FORM, asked_at=NOW, request_message_id=request.message_id, now=later
    )
    msg = message(mail)
    assert mail.kind == "verneombud-reminder" and mail.dedupe_key.endswith(":cosign-reminder:2")
    assert msg["In-Reply-To"] == request.message_id and msg["Auto-Submitted"] is None
    assert "torsdag 10. desember 2020" in text(mail)
    assert [p.get_filename() for p in msg.iter_attachments()] == [FORM.filename]


def test_a_unit_without_a_verneombud_address_cannot_be_asked(app, units):
    """No address in the roster is a clear error naming the unit, never a mail to nobody."""
    unit = dataclasses.replace(units[0], verneombud_email="")
    with pytest.raises(ValueError, match=f"{unit.code} has no verneombud address"):
        CosignLetters(app.letters).request(unit, ASKED, FORM, now=NOW)


@pytest.mark.parametrize(
    ("reading", "words", "says"),
    [
        ("confirmed", "Enig.", "Vi har registrert at du bekrefter skjemaet"),
        ("disputed", COMMENT, "Vi har sendt kommentaren din til Leder Ås 0"),
    ],
)
def test_the_acknowledgement_answers_whoever_answered(app, units, reading, words, says):
    """The ack goes to the sender of the answer, threaded under it; a comment is quoted back."""
    reply = Reply(
        Mailbox("vo000@example.test", "Verneombud 0"), "IE-U000:cosign-ack:17", "<answer@example.test>"
    )
    mail = CosignLetters(app.letters).ack(units[0], ASKED, answer(reading, words), reply, now=NOW)
    assert mail.recipients == ("vo000@example.test",) and mail.dedupe_key == "aml-2020:IE-U000:cosign-ack:17"
    assert message(mail)["In-Reply-To"] == "<answer@example.test>"
    body = text(mail)
    assert says in body
    assert ("Vi hadde bare ett møte." in body) is (reading == "disputed")


def test_the_leader_hears_the_comment_kindly(app, units):
    """To the leader: the verneombud's words verbatim, and a request to talk with them."""
    mail = CosignLetters(app.letters).leader_comment(
        units[0], ASKED, answer("disputed", COMMENT), key="IE-U000:cosign-comment:17", now=NOW
    )
    assert mail.recipients == (units[0].leader_email,) and mail.kind == "leader-cosign-comment"
    body = text(mail)
    assert "    Jeg er ikke enig i punkt 3.\n    Vi hadde bare ett møte." in body
    assert "Vi ber deg ta en prat med Verneombud 0 om den." in body


def test_the_coordinator_notice_names_the_unit_both_people_and_the_words(app, units):
    """To the faculty's coordinator, in the campaign's language: unit, leader, verneombud, words."""
    unit = units[2]  # an English unit: the coordinator still reads the institution's language
    mail = CosignLetters(app.letters).coordinator_notice(
        unit, ASKED, answer("disputed", COMMENT), key=f"{unit.code}:cosign-notice:17", now=NOW
    )
    assert mail is not None and mail.recipients == ("koord-hf@example.test",)
    body = text(mail)
    assert body.startswith("Hei Koordinator HF,")
    for fact in (unit.name, unit.leader_email, unit.verneombud_email, "Vi hadde bare ett møte."):
        assert fact in body


def test_no_coordinator_no_notice(app, units):
    """A faculty without a coordinator gets no notice (None), rather than a mail to nobody."""
    unit = dataclasses.replace(units[0], faculty="XX")
    assert (
        CosignLetters(app.letters).coordinator_notice(
            unit, ASKED, answer("disputed", COMMENT), key="k", now=NOW
        )
        is None
    )


def test_the_answers_and_notices_are_machine_mail_and_the_request_is_not():
    """An out-of-office reply to the request tells us they are away; nothing answers the rest."""
    assert COSIGN_MACHINE_KINDS <= MACHINE_KINDS
    assert not {"verneombud-request", "verneombud-reminder"} & MACHINE_KINDS


def test_the_leader_is_asked_about_the_verneombuds_version(app, units):
    """A version the verneombud sent goes to the leader to confirm, in their own words."""
    unit = units[0]
    mail = CosignLetters(app.letters).request(unit, ASKED, FORM, now=NOW, to_leader=True)
    assert mail.recipients == (unit.leader_email,) and mail.dedupe_key.endswith(":cosign-request:2")
    body = text(mail)
    assert body.startswith(f"Hei {unit.leader_name},")
    assert "ber vi deg som leder bekrefte" in body and f"Verneombud: {unit.verneombud_name}" in body


def test_with_mode_required_the_reminder_copies_the_leader(app, units):
    unit = units[0]
    mail = CosignLetters(app.letters).reminder(
        unit, ASKED, FORM, asked_at=NOW, request_message_id="<r@x>", now=NOW, copy_leader=True
    )
    msg = message(mail)
    assert mail.recipients == (unit.verneombud_email, unit.leader_email)
    assert unit.leader_email in msg["Cc"] and "får en kopi av denne påminnelsen" in text(mail)


# ---- the variants' wordings, pinned like tests/golden/email (SKJEMAPOST_WRITE_GOLDEN=1 rewrites) ----

GOLDEN = Path(__file__).parent / "golden" / "cosign"
WRITE = os.environ.get("SKJEMAPOST_WRITE_GOLDEN") == "1"


def _variant(name: str, lang: str) -> tuple[str, dict[str, object]]:
    """The kind and context of variant ``name``: a sample context (email_samples) changed."""
    kind, _, variant = name.partition(".")
    ctx = sample_context(kind, lang)
    if variant == "to-leader":  # the verneombud sent version 2: the leader is asked
        ctx["to_leader"] = True
        ctx["submission"] = ctx["submission"] | {"version": 2, "updated": True}
    elif variant == "leader-copied":
        ctx["leader_copied"] = True
    elif variant == "by-leader":  # the leader's comment on the verneombud's version
        who = f"{ctx['unit']['leader_name']} ({ctx['unit']['leader_email']})"
        ctx["cosign"] = ctx["cosign"] | {"by_leader": True, "answered_by": who}
    return kind, ctx


VARIANTS = (
    "verneombud-request.to-leader",
    "verneombud-reminder.to-leader",
    "verneombud-reminder.leader-copied",
    "verneombud-ack.by-leader",
    "coordinator-cosign-notice.by-leader",
)


@pytest.mark.parametrize(("name", "lang"), [(n, lang) for n in VARIANTS for lang in ("nb", "en")])
def test_each_variant_reads_as_pinned(name, lang):
    kind, ctx = _variant(name, lang)
    out = Renderer(ROOT / "templates" / "email").render(kind, lang, ctx)  # type: ignore[arg-type]
    got = f"Subject: {out.subject}\n\n{out.text.rstrip()}\n"
    path = GOLDEN / lang / f"{name}.txt"
    if WRITE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"no golden rendering {path}: write it with SKJEMAPOST_WRITE_GOLDEN=1 and review it"
    assert got == path.read_text(encoding="utf-8"), f"{name} ({lang}) reads differently from {path}"
