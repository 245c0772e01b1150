"""Mail templates: every kind renders in both languages, fails loudly, escapes, inlines its CSS."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import jinja2
import jinja2.meta
import pytest
from email_samples import DEADLINE, KIND_KEYS, REFERENCE, sample_context
from jinja2 import nodes

from service.errors import SkjemapostError
from service.mail.render import KINDS, PARTS, Renderer, TemplateError, inline_css

TEMPLATES = Path(__file__).parent.parent / "templates" / "email"
LANGS = ("nb", "en")
UNIT_KINDS = [k for k in KINDS if not k.endswith("-digest") and k != "hr-final"]
LEADER_KINDS = [k for k in UNIT_KINDS if k.startswith("leader-")]
NOTICE_KINDS = ("challenges-notice", "help-notice")  # about a valid form's answers: no deadline to show
NOTICE_KINDS += tuple(k for k in KINDS if "verneombud" in k or "cosign" in k)  # the co-signature's mails
DEADLINE_KINDS = [k for k in KINDS if k != "leader-receipt" and k not in NOTICE_KINDS]
LONG_DEADLINE = {"nb": "onsdag 16. desember 2020", "en": "Wednesday 16 December 2020"}
OSLO_WINTER = dt.datetime(2020, 12, 10, 13, 5, tzinfo=dt.UTC)  # 14:05 in Oslo (UTC+1)
OSLO_SUMMER = dt.datetime(2020, 6, 1, 10, 0, tzinfo=dt.UTC)  # 12:00 in Oslo (UTC+2)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


@pytest.fixture
def templates_copy(tmp_path: Path) -> Path:
    target = tmp_path / "email"
    shutil.copytree(TEMPLATES, target)
    return target


def every(kinds: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    return [(k, lang) for k in kinds for lang in LANGS]


# ------------------------------------------------------------------------------ every kind, both languages


@pytest.mark.parametrize(("kind", "lang"), every(KINDS))
def test_every_kind_renders_in_both_languages(renderer, kind, lang):
    """Each kind gives a non-empty subject, text and HTML document in each language."""
    out = renderer.render(kind, lang, sample_context(kind, lang))
    assert out.subject and out.text.strip() and out.html.strip()
    assert out.html.lstrip().startswith("<!DOCTYPE html>")
    assert f'<html lang="{lang}">' in out.html
    assert out.text.endswith("\n") and not out.text.endswith("\n\n")


@pytest.mark.parametrize(("kind", "lang"), every(KINDS))
def test_subject_is_one_line_and_unit_mails_carry_the_reference(renderer, kind, lang):
    """Subjects have no line breaks; every mail about a unit has [ref CODE] in its subject."""
    out = renderer.render(kind, lang, sample_context(kind, lang))
    assert "\n" not in out.subject and "\r" not in out.subject
    assert out.subject == out.subject.strip()
    if kind in UNIT_KINDS:
        assert f"[ref {REFERENCE}]" in out.subject


def test_subject_newlines_in_values_are_flattened(renderer):
    """A unit name with a newline still gives a one-line subject."""
    context = sample_context("leader-invitation", "nb")
    context["unit"]["name"] = "Institutt for\nbygg"
    assert "Institutt for bygg" in renderer.render("leader-invitation", "nb", context).subject


@pytest.mark.parametrize(("kind", "lang"), every(DEADLINE_KINDS))
def test_deadline_is_shown_as_weekday_and_date_in_the_mails_language(renderer, kind, lang):
    """The deadline reads 'onsdag 16. desember 2020' / 'Wednesday 16 December 2020' in text and HTML."""
    out = renderer.render(kind, lang, sample_context(kind, lang))
    assert LONG_DEADLINE[lang] in out.text
    assert LONG_DEADLINE[lang] in out.html
    other = LONG_DEADLINE["en" if lang == "nb" else "nb"]
    assert other not in out.text


@pytest.mark.parametrize(("kind", "lang"), every(UNIT_KINDS))
def test_unit_mails_show_the_reference_in_text_and_html(renderer, kind, lang):
    """The reference code stands in both bodies of every unit mail."""
    out = renderer.render(kind, lang, sample_context(kind, lang))
    assert REFERENCE in out.text
    assert REFERENCE in out.html


@pytest.mark.parametrize(("kind", "lang"), every(LEADER_KINDS))
def test_leader_mails_name_the_coordinator_with_email(renderer, kind, lang):
    """Leader mails tell whom to ask: the coordinator's name and address, in text and HTML."""
    out = renderer.render(kind, lang, sample_context(kind, lang))
    for body in (out.text, out.html):
        assert "Kari Nordmann" in body
        assert "kari.nordmann@example.edu" in body
    assert 'href="mailto:kari.nordmann@example.edu"' in out.html


@pytest.mark.parametrize("lang", LANGS)
def test_escalation_names_unit_leader_and_history(renderer, lang):
    """The escalation names the unit, its leader and every mail sent, with dates."""
    context = sample_context("escalation", lang)
    out = renderer.render("escalation", lang, context)
    for body in (out.text, out.html):
        assert context["unit"]["name"] in body and context["unit"]["code"] in body
        assert context["unit"]["leader_name"] in body and context["unit"]["leader_email"] in body
        assert ("23.11.2020" if lang == "nb" else "23 Nov 2020") in body
        assert ("17.12.2020" if lang == "nb" else "17 Dec 2020") in body
        assert "Kari Nordmann" in body


@pytest.mark.parametrize("lang", LANGS)
def test_invitation_names_the_verneombud_or_leaves_the_name_out(renderer, lang):
    """A known verneombud is named in the invitation; an unknown one leaves no gap or 'None'."""
    context = sample_context("leader-invitation", lang)
    assert "Siri Løvås" in renderer.render("leader-invitation", lang, context).text
    context["unit"]["verneombud_name"] = ""
    text = renderer.render("leader-invitation", lang, context).text
    assert "verneombud" in text.lower() and ", ." not in text and "None" not in text


@pytest.mark.parametrize("lang", LANGS)
def test_invitation_describes_the_three_tracks(renderer, lang):
    """The invitation explains the group processes on pages 6, 7 and 8 of the slides briefly."""
    out = renderer.render("leader-invitation", lang, sample_context("leader-invitation", lang))
    word = "side" if lang == "nb" else "page"
    for n in (6, 7, 8):
        assert f"{word} {n}:" in out.text.lower()
        assert f"{word} {n}:" in out.html.lower()
    slides = (
        "«Arbeidsmiljø på dagsorden – lysark»" if lang == "nb" else "“Arbeidsmiljø på dagsorden – lysark”"
    )
    assert slides in out.text and slides in out.html


# --------------------------------------------------------------------------- numbers in words


@pytest.mark.parametrize(
    ("lang", "days_left", "subject_words", "body_words"),
    [
        ("nb", 0, "fristen er i dag", "Fristen er i dag, onsdag 16. desember 2020"),
        ("nb", 1, "fristen er i morgen", "Fristen er i morgen, onsdag 16. desember 2020"),
        ("nb", 2, "fristen er om 2 dager", "Fristen er om 2 dager, onsdag 16. desember 2020"),
        ("en", 0, "the deadline is today", "The deadline is today, Wednesday 16 December 2020"),
        ("en", 1, "the deadline is tomorrow", "The deadline is tomorrow, Wednesday 16 December 2020"),
        ("en", 2, "the deadline is in 2 days", "The deadline is in 2 days, Wednesday 16 December 2020"),
    ],
)
def test_reminder_counts_days_left_in_words(renderer, lang, days_left, subject_words, body_words):
    """0, 1 and 2 days left read today / tomorrow / in 2 days, in subject, text and HTML."""
    context = sample_context("leader-reminder-before", lang) | {"days_left": days_left}
    out = renderer.render("leader-reminder-before", lang, context)
    assert subject_words in out.subject
    assert body_words in out.text
    assert body_words in out.html


@pytest.mark.parametrize(
    ("lang", "days_overdue", "words"),
    [
        ("nb", 1, "gikk ut i går"),
        ("nb", 3, "gikk ut for 3 dager siden"),
        ("en", 1, "was yesterday"),
        ("en", 3, "was 3 days ago"),
    ],
)
def test_reminder_after_counts_days_overdue_in_words(renderer, lang, days_overdue, words):
    """After the deadline the reminder says yesterday / N days ago in the right language."""
    context = sample_context("leader-reminder-after", lang) | {"days_overdue": days_overdue}
    out = renderer.render("leader-reminder-after", lang, context)
    assert words in out.text and words in out.html


def test_days_filter_agrees_with_the_number(renderer):
    """days gives 1 dag / 2 dager and 1 day / 2 days."""
    nb, en = renderer.environment("nb"), renderer.environment("en")
    assert [nb.filters["days"](n) for n in (0, 1, 2)] == ["0 dager", "1 dag", "2 dager"]
    assert [en.filters["days"](n) for n in (0, 1, 2)] == ["0 days", "1 day", "2 days"]


def test_date_filters_follow_the_language(renderer):
    """longdate, shortdate and datetime give Norwegian and British forms, in Oslo time."""
    nb, en = renderer.environment("nb").filters, renderer.environment("en").filters
    assert nb["longdate"](DEADLINE) == "onsdag 16. desember 2020"
    assert en["longdate"](DEADLINE) == "Wednesday 16 December 2020"
    assert nb["shortdate"](DEADLINE) == "16.12.2020"
    assert en["shortdate"](DEADLINE) == "16 Dec 2020"
    assert nb["datetime"](OSLO_WINTER) == "10.12.2020 kl. 14:05"
    assert en["datetime"](OSLO_WINTER) == "10 Dec 2020 at 14:05"
    assert nb["datetime"](OSLO_SUMMER) == "01.06.2020 kl. 12:00"


def test_date_of_a_late_evening_time_is_the_oslo_date(renderer):
    """23:30 UTC on 15 December is already 16 December in Oslo."""
    late = dt.datetime(2020, 12, 15, 23, 30, tzinfo=dt.UTC)
    assert renderer.environment("nb").filters["shortdate"](late) == "16.12.2020"


def test_naive_datetime_is_refused(renderer):
    """A naive received_at stops the mail with a TemplateError instead of guessing a zone."""
    context = sample_context("leader-receipt", "nb")
    context["submission"]["received_at"] = dt.datetime(2020, 12, 10, 14, 5)
    with pytest.raises(TemplateError, match="naive"):
        renderer.render("leader-receipt", "nb", context)


def test_percent_and_bar_filters(renderer):
    """pct spaces the sign in Norwegian only; bar draws tenths."""
    nb, en = renderer.environment("nb").filters, renderer.environment("en").filters
    assert nb["pct"](70) == "70\u00a0%" and en["pct"](70) == "70%"
    assert nb["bar"](70) == "███████░░░"
    assert nb["bar"](0) == "░" * 10 and nb["bar"](100) == "█" * 10


# ------------------------------------------------------------------------------- receipts, corrections


@pytest.mark.parametrize("lang", LANGS)
def test_receipt_lists_what_was_registered_and_the_flags(renderer, lang):
    """The receipt shows every summary row and every flag, and says 'updated' for a new version."""
    context = sample_context("leader-receipt", lang)
    out = renderer.render("leader-receipt", lang, context)
    for row in context["submission"]["summary"] + context["submission"]["flags"]:
        assert row["label"] in out.text and row["value"] in out.text
        assert row["value"] in out.html
    for flag in context["submission"]["flags"]:
        assert flag["message"] in out.text and flag["message"] in out.html
    updated = "oppdatert" if lang == "nb" else "updated"
    assert updated in out.subject.lower() and updated in out.text.lower()


@pytest.mark.parametrize("lang", LANGS)
def test_first_receipt_does_not_say_updated(renderer, lang):
    """A first version's receipt neither says 'updated' nor shows an empty flags section."""
    context = sample_context("leader-receipt", lang)
    context["submission"].update(version=1, updated=False, flags=[])
    out = renderer.render("leader-receipt", lang, context)
    updated = "oppdatert" if lang == "nb" else "updated"
    assert updated not in out.subject.lower() and updated not in out.text.lower()
    heading = "SVAR SOM FAKULTETET" if lang == "nb" else "ANSWERS THE FACULTY"
    assert heading not in out.text


def test_receipt_names_a_deputy_sender(renderer):
    """When a deputy sent the form, the receipt says who did."""
    context = sample_context("leader-receipt", "nb")
    context["submission"]["sent_by"] = "Ola Nordmann (ola.nordmann@example.edu)"
    assert "sendt av Ola Nordmann" in renderer.render("leader-receipt", "nb", context).text


@pytest.mark.parametrize("lang", LANGS)
def test_correction_lists_every_problem_with_label_cell_and_message(renderer, lang):
    """Each problem's field, cell and instruction appear in text and HTML."""
    context = sample_context("leader-correction", lang)
    out = renderer.render("leader-correction", lang, context)
    for problem in context["problems"]:
        for key in ("label", "cell", "message"):
            assert problem[key] in out.text
            assert problem[key] in out.html
    kept = "svarene dine" if lang == "nb" else "your answers"
    assert kept in out.text and context["attachment_name"] in out.text


@pytest.mark.parametrize("lang", LANGS)
def test_correction_with_a_blank_form_says_so(renderer, lang):
    """When the answers could not be kept, the mail says a blank form is attached."""
    context = sample_context("leader-correction", lang) | {"answers_kept": False, "days_left": -3}
    out = renderer.render("leader-correction", lang, context)
    assert ("tomt skjema" if lang == "nb" else "blank copy") in out.text
    assert ("svarene dine" if lang == "nb" else "your answers") not in out.text
    assert LONG_DEADLINE[lang] not in out.text  # no deadline to point to once it has passed


# ------------------------------------------------------------------ a form in, but with mistakes


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("answers_kept", "days_left"), [(True, 2), (False, -3)])
def test_correction_reminder_never_says_the_form_was_not_received(renderer, lang, answers_kept, days_left):
    """The reminder to a unit whose form came with mistakes says when it came and what to fix."""
    context = sample_context("leader-reminder-correction", lang)
    context.update(answers_kept=answers_kept, days_left=days_left)
    out = renderer.render("leader-reminder-correction", lang, context)
    received = {"nb": "torsdag 10. desember 2020", "en": "Thursday 10 December 2020"}[lang]
    for body in (out.subject, out.text, out.html):
        assert "ikke mottatt" not in body.lower() and "not received" not in body.lower()
        assert "not yet received" not in body.lower() and "ikke fått" not in body.lower()
    for body in (out.text, out.html):
        assert received in body and context["attachment_name"] in body
        for problem in context["problems"]:
            assert problem["cell"] in body and problem["message"] in body
    own = "eget utfylte skjema" if lang == "nb" else "own filled-in copy"
    fresh = "nytt skjema ligger vedlagt" if lang == "nb" else "new copy of the form is attached"
    assert (own in out.text) is answers_kept and (fresh in out.text) is not answers_kept


@pytest.mark.parametrize(
    ("lang", "days_left", "words"),
    [
        ("nb", 2, "Fristen er om 2 dager, onsdag 16. desember 2020."),
        ("nb", -3, "Fristen gikk ut for 3 dager siden, onsdag 16. desember 2020, men vi tar gjerne imot"),
        ("en", 0, "The deadline is today, Wednesday 16 December 2020."),
        ("en", -1, "The deadline was yesterday, Wednesday 16 December 2020, but we are glad to receive"),
    ],
)
def test_correction_reminder_speaks_of_the_deadline_before_and_after(renderer, lang, days_left, words):
    """Before the deadline it counts down; after it, it says the corrected form is still welcome."""
    context = sample_context("leader-reminder-correction", lang) | {"days_left": days_left}
    out = renderer.render("leader-reminder-correction", lang, context)
    assert words in out.text and words in out.html


# ----------------------------------------------------------------------------------- escalation


def plain(body: str) -> str:
    """The words of a body: HTML tags dropped (their inlined styles too), text left as it is."""
    return re.sub(r"<[^>]+>", "", body)


FAILURE = {
    "address": "lars.haugen@example.edu",
    "reason": "550 5.1.1 User unknown",
    "since": dt.date(2020, 11, 23),
}


def test_escalation_in_nb_addresses_the_readers_as_dere_and_lists_the_correction(renderer):
    """The superior leader and the coordinator are "dere"; the form's errors and every mail are listed."""
    context = sample_context("escalation", "nb")
    out = renderer.render("escalation", "nb", context)
    for body in (out.text, out.html):
        assert "Dere får denne e-posten" in body and ("Vi ber dere" in body or "Hva vi ber dere om" in body)
        assert not re.search(r"\b(du|deg|din|ditt)\b", body.split("Vennlig hilsen")[0], re.IGNORECASE)
        assert "overordnet leder" in body and "Kari Nordmann" in body
        assert "sendte skjemaet «Oppsummering og evaluering» torsdag 10. desember 2020" in plain(body)
        assert "2 feil som ennå ikke er rettet" in plain(body)
        for problem in context["problems"]:
            assert problem["cell"] in body and problem["message"] in body
        assert "eskjed om hva som må rettes" in body  # the correction among the mails
        assert "har ikke levert" not in body  # it did send a form
    assert out.subject.startswith("Skjemaet må rettes: ")


@pytest.mark.parametrize("lang", LANGS)
def test_escalation_when_the_address_fails_says_the_leader_got_nothing(renderer, lang):
    """A failing address: the address, since when and why; bounced mails marked; ask to tell HR."""
    context = sample_context("escalation", lang)
    context.update(
        stage="address-failing",
        received_on=None,
        problems=[],
        failure=dict(FAILURE),
        mails=[{"day": dt.date(2020, 11, 23), "what": "invitation", "bounced": True}],
    )
    out = renderer.render("escalation", lang, context)
    since = {"nb": "mandag 23. november 2020", "en": "Monday 23 November 2020"}[lang]
    bounced = {"nb": "kom ikke fram", "en": "not delivered"}[lang]
    not_got = {
        "nb": "Lederen har derfor ikke fått e-postene våre",
        "en": "The leader has therefore not received our emails",
    }[lang]
    for body in (out.text, out.html):
        assert FAILURE["address"] in body and FAILURE["reason"] in body and since in body
        assert bounced in body and not_got in body and "HR" in body


@pytest.mark.parametrize("lang", LANGS)
def test_escalation_when_the_leader_is_away_gives_the_day_they_are_back(renderer, lang):
    """An absent leader: the escalation says so and names the day they are back."""
    context = sample_context("escalation", lang)
    context.update(stage="away", received_on=None, problems=[], back_on=dt.date(2021, 1, 4))
    out = renderer.render("escalation", lang, context)
    back = {"nb": "er tilbake mandag 4. januar 2021", "en": "back on Monday 4 January 2021"}[lang]
    for body in (out.text, out.html):
        assert back in plain(body)


@pytest.mark.parametrize(("lang", "stage"), [(lang, s) for lang in LANGS for s in ("invited", "not-invited")])
def test_escalation_of_a_unit_without_a_form_says_it_has_not_submitted(renderer, lang, stage):
    """No form: "has not submitted"; with no mail yet, the list says none and no reply is suggested."""
    context = sample_context("escalation", lang)
    context.update(
        stage=stage, received_on=None, problems=[], mails=[] if stage == "not-invited" else context["mails"]
    )
    out = renderer.render("escalation", lang, context)
    missing = {"nb": "har ikke levert skjemaet", "en": "has not submitted the form"}[lang]
    assert missing in out.text
    if stage == "not-invited":
        assert ("ingen ennå" if lang == "nb" else "none yet") in out.text
        assert ("svare på en av e-postene" if lang == "nb" else "reply to any of our emails") not in out.text


# ------------------------------------------------------------------------ receipts with challenges


@pytest.mark.parametrize("lang", LANGS)
def test_receipt_with_challenges_gives_the_letters_words_and_names_who_can_help(renderer, lang):
    """Answers saying "not fully satisfactory": the leader's responsibility, the superior leader,
    the coordinators, HR- og HMS-avdelingen and Bedriftshelsetjenesten; no "nothing to do"."""
    context = sample_context("leader-receipt", lang)
    context["submission"]["flags"] = []
    out = renderer.render("leader-receipt", lang, context)
    words = {
        "nb": [
            "selvstendig ansvar",
            "overordnet leder",
            "koordinatorene",
            "HR- og HMS-avdelingen",
            "Bedriftshelsetjenesten",
            "ingen feil",
        ],
        "en": [
            "independent responsibility",
            "superior leader",
            "coordinators",
            "HR and HSE Division",
            "Bedriftshelsetjenesten",
            "no errors",
        ],
    }[lang]
    informed = "har fått en orientering" if lang == "nb" else "have been informed"
    for body in (out.text, out.html):
        for word in words:
            assert word in body
        assert informed in body
        assert ("trenger ikke gjøre noe" if lang == "nb" else "do not need to do anything") not in body
        for answer in context["submission"]["challenges"]:
            assert answer["label"] in body and answer["value"] in body
    context["submission"]["challenges_shared"] = False
    assert informed not in renderer.render("leader-receipt", lang, context).text


@pytest.mark.parametrize("lang", LANGS)
def test_receipt_shows_a_challenge_once_and_keeps_the_other_flags(renderer, lang):
    """A flagged answer that is also a challenge is shown once; other flags keep their own list."""
    context = sample_context("leader-receipt", lang)
    out = renderer.render("leader-receipt", lang, context)
    challenge, other = context["submission"]["flags"]
    assert out.text.count(challenge["label"]) == 1 and out.text.count(other["label"]) == 1
    assert (
        "ANDRE SVAR SOM BLIR FULGT OPP" if lang == "nb" else "OTHER ANSWERS THAT WILL BE FOLLOWED UP"
    ) in out.text
    assert ("trenger ikke gjøre noe" if lang == "nb" else "do not need to do anything") not in out.text


@pytest.mark.parametrize("lang", LANGS)
def test_receipt_without_challenges_says_there_is_nothing_to_do(renderer, lang):
    """No challenge: the flags are listed with the reassurance that nothing needs doing now."""
    context = sample_context("leader-receipt", lang)
    context["submission"].update(challenges=[], challenges_shared=False)
    out = renderer.render("leader-receipt", lang, context)
    assert ("trenger ikke gjøre noe nå" if lang == "nb" else "do not need to do anything now") in out.text
    assert ("selvstendig ansvar" if lang == "nb" else "independent responsibility") not in out.text


# ------------------------------------------------------------------------------------- notices


@pytest.mark.parametrize("lang", LANGS)
def test_challenges_notice_shows_the_answers_and_the_units_words_verbatim(renderer, lang):
    """The answers, the unit's own words (line breaks kept), the leader and where help is."""
    context = sample_context("challenges-notice", lang)
    out = renderer.render("challenges-notice", lang, context)
    for body in (out.text, out.html):
        for row in context["answers"]:
            assert row["label"] in body and row["value"] in body
        assert context["unit"]["leader_email"] in body and context["unit"]["verneombud_email"] in body
        assert "Bedriftshelsetjenesten" in body
        assert ("selvstendig ansvar" if lang == "nb" else "independent responsibility") in body
    first, second = context["words"][0]["value"].split("\n")
    assert f"    {first}\n    {second}\n" in out.text
    assert f"{first}<br>{second}" in out.html


def test_challenges_notice_says_dere_to_several_readers_and_du_to_one(renderer):
    """Superior leader and coordinator: "Dere"; one coordinator alone: "Du"."""
    context = sample_context("challenges-notice", "nb")
    assert "Dere får denne e-posten" in renderer.render("challenges-notice", "nb", context).text
    context["has_superior"] = False
    assert "Du får denne e-posten" in renderer.render("challenges-notice", "nb", context).text


@pytest.mark.parametrize("lang", LANGS)
def test_challenges_notice_says_when_the_answers_changed(renderer, lang):
    """A newer version that changed these answers says so, in the subject and the body."""
    context = sample_context("challenges-notice", lang) | {"changed": True}
    out = renderer.render("challenges-notice", lang, context)
    word = "endre" if lang == "nb" else "changed"
    assert word in out.subject and word in out.text and word in out.html


@pytest.mark.parametrize(
    ("lang", "audience", "who"),
    [
        ("nb", "coordinator", "ber koordinatoren for arbeidsmiljøundersøkelsen om hjelp"),
        ("nb", "hr_hms", "ber HR- og HMS-avdelingen om hjelp"),
        ("nb", "bht", "ber Bedriftshelsetjenesten om hjelp"),
        ("en", "coordinator", "asks the coordinator for the work-environment survey for help"),
        ("en", "hr_hms", "asks the HR and HSE Division for help"),
        ("en", "bht", "asks the occupational health service (Bedriftshelsetjenesten) for help"),
    ],
)
def test_help_notice_names_the_unit_its_people_what_it_wants_and_its_words(renderer, lang, audience, who):
    """To whoever was asked: who asks, what for, the leader and verneombud, and the unit's words."""
    context = sample_context("help-notice", lang) | {"audience": audience}
    out = renderer.render("help-notice", lang, context)
    for body in (out.text, out.html):
        assert who in body
        for person in ("leader", "verneombud"):
            assert context["unit"][f"{person}_name"] in body and context["unit"][f"{person}_email"] in body
        for choice in context["wanted"]:
            assert choice in body
        for row in context["words"]:
            assert row["label"] in body and row["value"].split("\n")[0] in body
        # the coordinator is greeted by name, or else listed as a contact
        assert "Kari Nordmann" in body
    assert out.text.startswith("Hei Kari Nordmann," if lang == "nb" else "Dear Kari Nordmann,") is (
        audience == "coordinator"
    )


# -------------------------------------------------------------------------------------- digests


@pytest.mark.parametrize("lang", LANGS)
def test_coordinator_digest_shows_progress_as_numbers_and_bars(renderer, lang):
    """Progress stands as 14 of 20, a text bar with percent, and an HTML bar with width 70%."""
    out = renderer.render("coordinator-digest", lang, sample_context("coordinator-digest", lang))
    assert ("14 av 20" if lang == "nb" else "14 of 20") in out.text
    assert ("███████░░░ 70\u00a0%" if lang == "nb" else "███████░░░ 70%") in out.text
    assert 'width="70%"' in out.html and 'width="30%"' in out.html
    assert "width: 70%" in out.html


# HR's digest lists only the units someone must act on: tests/test_digest_mails.py
@pytest.mark.parametrize(("kind", "lang"), every(("coordinator-digest",)))
def test_digests_list_missing_flags_bounces_absences_and_review(renderer, kind, lang):
    """Corrections, missing units with their reminders, flags, bounces, absences and review all show."""
    context = sample_context(kind, lang)
    out = renderer.render(kind, lang, context)
    for body in (out.text, out.html):
        for row in context["missing_units"]:
            assert row["unit"]["name"] in body and row["unit"]["leader_email"] in body
            for day in row["reminders"]:
                assert (day.strftime("%d.%m.%Y") if lang == "nb" else f"{day.day} {day:%b %Y}") in body
        for row in context["new_submissions"]:
            assert row["unit"]["name"] in body
        for row in context["flags"]:
            assert row["label"] in body and row["value"] in body
        for row in context["corrections_pending"] + context["away"]:
            assert row["unit"]["name"] in body
        for row in context["bounces"]:
            assert row["address"] in body
        assert ("18.12.2020" if lang == "nb" else "18 Dec 2020") in body  # a return date
        assert f"{context['review_count']} " in body


def test_coordinator_digest_covers_only_its_faculty():
    """The coordinator's sample holds IE units only, and HR's holds every faculty."""
    coordinator = sample_context("coordinator-digest", "nb")
    faculties = {
        row["unit"]["faculty"]
        for key in ("new_submissions", "missing_units", "flags")
        for row in coordinator[key]
    }
    assert faculties == {"IE"}
    assert {row["faculty"] for row in sample_context("hr-digest", "nb")["faculties"]} == {"HF", "IE", "NV"}


@pytest.mark.parametrize("lang", LANGS)
def test_hr_digest_has_a_row_and_bar_per_faculty(renderer, lang):
    """Every faculty appears with its numbers and a bar, in text and HTML."""
    context = sample_context("hr-digest", lang)
    out = renderer.render("hr-digest", lang, context)
    for row in context["faculties"]:
        assert re.search(rf"{row['faculty']}\s+[█░]{{10}}", out.text)
        assert f'width="{row["percent"]}%"' in out.html


@pytest.mark.parametrize("lang", LANGS)
def test_empty_digest_says_none_instead_of_empty_tables(renderer, lang):
    """With nothing to report, each section says so in words."""
    context = sample_context("coordinator-digest", lang)
    for key in ("new_submissions", "corrections_pending", "missing_units", "away", "flags", "bounces"):
        context[key] = []
    context["review_count"] = 0
    context["cosign"] |= {"disputed": [], "pending": [], "not_asked": []}  # counts only
    out = renderer.render("coordinator-digest", lang, context)
    assert out.text.count("Ingen" if lang == "nb" else "None") >= 4
    assert '<table class="data"' not in out.html


@pytest.mark.parametrize(("kind", "lang"), every(("coordinator-digest",)))
def test_digests_group_the_units_by_where_they_stand(renderer, kind, lang):
    """Corrections, failing addresses, absences, units without a form, then flags, new forms, review."""
    context = sample_context(kind, lang)
    out = renderer.render(kind, lang, context)
    headings = {
        "nb": [
            "SKJEMA MOTTATT, MÅ RETTES (1)",
            "E-POSTADRESSER SOM IKKE VIRKER (1)",
            "LEDERE SOM ER BORTE (2)",
            "ENHETER SOM IKKE HAR SENDT SKJEMA",
            "SVAR SOM BØR FØLGES OPP",
            "NYE SKJEMAER SIDEN FORRIGE OVERSIKT",
            "TIL MANUELL VURDERING",
        ],
        "en": [
            "FORM RECEIVED, NEEDS CORRECTING (1)",
            "EMAIL ADDRESSES THAT DO NOT WORK (1)",
            "LEADERS WHO ARE AWAY (2)",
            "UNITS THAT HAVE NOT SENT THE FORM",
            "ANSWERS TO FOLLOW UP",
            "NEW FORMS SINCE THE LAST SUMMARY",
            "WAITING FOR REVIEW",
        ],
    }[lang]
    for body in (out.text, plain(out.html).upper()):
        at = [body.index(h) for h in headings]
        assert at == sorted(at)
    row_words = {
        # back_on is the first day back: "tilbake D", never "borte til D"
        "nb": ["adressen virker ikke", "borte, tilbake 18.12.2020", "2 feil"],
        "en": ["the address does not work", "away, back 18 dec 2020", "2 errors"],
    }[lang]
    for body in (out.text.lower(), out.html.lower()):
        for words in row_words:
            assert words in body
        assert "out-of-office" not in body and "fraværsmelding" not in body


# ------------------------------------------------------------------------------------------ HTML


def test_html_is_autoescaped_and_text_is_not(renderer):
    """A unit name with <script> is escaped in HTML and left as written in the text and subject."""
    context = sample_context("leader-invitation", "nb")
    context["unit"]["name"] = "Enhet <script>alert('x')</script> & co"
    out = renderer.render("leader-invitation", "nb", context)
    assert "<script" not in out.html
    assert "&lt;script&gt;" in out.html and "&amp; co" in out.html
    assert "<script>alert('x')</script> & co" in out.text
    assert "<script>alert('x')</script> & co" in out.subject


@pytest.mark.parametrize(("kind", "lang"), every(KINDS))
def test_css_is_inlined_and_no_style_block_is_left(renderer, kind, lang):
    """The HTML carries its styles in style= attributes and has no <style> block or markers left."""
    html = renderer.render(kind, lang, sample_context(kind, lang)).html
    assert "<style" not in html.lower()
    assert "data-sp-" not in html and "<!--sp:" not in html
    assert re.search(r'<td class="content"[^>]*style="[^"]*padding', html)
    assert re.search(r'<p\b[^>]*style="[^"]*margin', html)
    assert "max-width: 600px" in html


def test_fact_box_gets_its_frame_inline(renderer):
    """The reference/deadline box is framed by inline styles, as Outlook needs."""
    html = renderer.render("leader-invitation", "en", sample_context("leader-invitation", "en")).html
    assert re.search(r'<table[^>]*class="box"[^>]*style="[^"]*border: 2px solid', html)
    assert re.search(r'<span class="ref" style="[^"]*monospace', html)


@pytest.mark.parametrize(("kind", "lang"), every(KINDS))
def test_html_loads_no_external_resources(renderer, kind, lang):
    """No image, stylesheet or script, and no http(s) address in any src; a web address stands
    only in a link the reader chooses to follow (<a href>), never in anything loaded."""
    html = renderer.render(kind, lang, sample_context(kind, lang)).html
    assert not re.search(r"<(img|link|script|iframe|object|embed)\b", html, re.IGNORECASE)
    for value in re.findall(r"""\bsrc\s*=\s*["']([^"']*)""", html, re.IGNORECASE):
        assert not re.match(r"(https?:)?//", value), value
    for tag, value in re.findall(r"""<(\w+)\b[^>]*\bhref\s*=\s*["']([^"']*)""", html, re.IGNORECASE):
        assert tag.lower() == "a" or not re.match(r"(https?:)?//", value), (tag, value)
    assert "url(" not in html


def test_inliner_keeps_jinja_loops_between_table_rows_intact():
    """A {% for %} between <tr> rows survives inlining and renders one styled row per item."""
    source = (
        '<table class="t">\n{% for x in items %}\n<tr><td class="c" width="{{ x }}%">{{ x }}</td></tr>\n'
        "{% endfor %}\n</table>"
    )
    inlined = inline_css(source, ".c { color: red; } .t { border: 0; }")
    assert "{% for x in items %}" in inlined and "<tbody>" not in inlined
    html = jinja2.Environment(trim_blocks=True).from_string(inlined).render(items=[10, 20, 30])
    assert html.count('<td class="c" width="') == 3
    assert html.count('style="color: red;"') == 3
    assert '<table class="t" style="border: 0;">' in html


# -------------------------------------------------------------------------------------- failures


def test_missing_variable_raises_template_error_naming_the_template(renderer):
    """Leaving out a variable stops the mail with a TemplateError that names the file."""
    context = sample_context("leader-invitation", "nb")
    del context["reference"]
    with pytest.raises(TemplateError) as caught:
        renderer.render("leader-invitation", "nb", context)
    assert caught.value.template == "nb/leader-invitation.subject.txt"
    assert "nb/leader-invitation.subject.txt" in str(caught.value)
    assert "reference" in str(caught.value)
    assert isinstance(caught.value, SkjemapostError)


def test_missing_key_of_a_mapping_also_raises(renderer):
    """A mapping without a needed key (unit.leader_name) fails as loudly as a missing variable."""
    context = sample_context("leader-reminder-after", "en")
    del context["unit"]["leader_name"]
    with pytest.raises(TemplateError, match=r"en/leader-reminder-after\.txt.*leader_name"):
        renderer.render("leader-reminder-after", "en", context)


def test_missing_variable_in_a_layout_names_the_layout_too(templates_copy):
    """A variable missing in a shared layout names the kind's file and the layout file and line."""
    layout = templates_copy / "nb" / "_layout.html"
    layout.write_text(layout.read_text().replace("{{ sender.name }}", "{{ sender.name }} {{ ukjent }}"))
    context = sample_context("leader-invitation", "nb")
    with pytest.raises(TemplateError) as caught:
        Renderer(templates_copy).render("leader-invitation", "nb", context)
    message = str(caught.value)
    assert "nb/leader-invitation.html" in message and "nb/_layout.html" in message
    assert "ukjent" in message


def test_printing_none_is_an_error(renderer):
    """A None value printed into a mail raises instead of showing 'None'."""
    context = sample_context("leader-invitation", "nb") | {"attachment_name": None}
    with pytest.raises(TemplateError, match="None"):
        renderer.render("leader-invitation", "nb", context)


def test_missing_template_file_raises_template_error(templates_copy):
    """A kind whose file is missing fails with a TemplateError naming that file."""
    (templates_copy / "en" / "leader-receipt.txt").unlink()
    renderer = Renderer(templates_copy)
    with pytest.raises(TemplateError, match=r"en/leader-receipt\.txt.*missing") as caught:
        renderer.render("leader-receipt", "en", sample_context("leader-receipt", "en"))
    assert isinstance(caught.value, SkjemapostError)
    assert [str(p) for p in renderer.check()] == ["en/leader-receipt.txt: missing"]


def test_broken_template_syntax_names_the_file_and_line(templates_copy):
    """A syntax error is reported with the file and line, by render and by check."""
    path = templates_copy / "nb" / "escalation.txt"
    path.write_text("Hei,\n{% if unit.name %}\nuten slutt\n")
    renderer = Renderer(templates_copy)
    with pytest.raises(TemplateError, match=r"nb/escalation\.txt"):
        renderer.render("escalation", "nb", sample_context("escalation", "nb"))
    assert [p.where for p in renderer.check()] == ["nb/escalation.txt"]


def test_unknown_kind_is_refused(renderer):
    """An unknown kind raises a TemplateError listing the known ones."""
    with pytest.raises(TemplateError, match="leader-invitation"):
        renderer.render("leader-invite", "nb", {})


def test_shipped_templates_have_no_problems(renderer):
    """Every kind has its three files in both languages, and each compiles."""
    assert renderer.check() == []
    for lang in LANGS:
        for kind in KINDS:
            for part in PARTS:
                assert (TEMPLATES / lang / f"{kind}.{part}").is_file()


# -------------------------------------------------------------------------------------- the README


def documented_names(env: jinja2.Environment) -> dict[str, set[str]]:
    """Every context variable the templates read, as README paths (unit.name, flags[].label)."""
    found: dict[str, set[str]] = {}
    for path in sorted(TEMPLATES.rglob("*")):
        if path.suffix not in (".txt", ".html"):
            continue
        ast = env.parse(path.read_text(encoding="utf-8"))
        where = str(path.relative_to(TEMPLATES))
        imported = {n.target for n in ast.find_all(nodes.Import)}
        top = jinja2.meta.find_undeclared_variables(ast) - imported - {"loop"}
        names = set(top)
        names |= {
            f"{g.node.name}.{g.attr}"
            for g in ast.find_all(nodes.Getattr)
            if isinstance(g.node, nodes.Name) and g.node.name in top
        }
        for loop in ast.find_all(nodes.For):
            prefix = dotted(loop.iter)
            if prefix is None or not isinstance(loop.target, nodes.Name) or prefix.split(".")[0] not in top:
                continue
            names |= {
                f"{prefix}[].{g.attr}"
                for g in loop.find_all(nodes.Getattr)
                if isinstance(g.node, nodes.Name) and g.node.name == loop.target.name
            }
        for name in names:
            found.setdefault(name, set()).add(where)
    return found


def dotted(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        head = dotted(node.node)
        return f"{head}.{node.attr}" if head else None
    return None


def test_readme_documents_every_variable_the_templates_use(renderer):
    """templates/email/README.md mentions each variable and field any template reads."""
    readme = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    used = documented_names(renderer.environment("nb"))
    assert "unit.leader_name" in used and "missing_units[].reminders" in used  # the walk works
    missing = {name: sorted(files) for name, files in used.items() if f"`{name}`" not in readme}
    assert not missing, f"not in templates/email/README.md: {missing}"


@pytest.mark.parametrize(("kind", "lang"), every(KINDS))
def test_every_variable_a_kind_is_given_is_one_it_needs(renderer, kind, lang):
    """Each top-level key of a sample context is read: leaving any one out fails the render."""
    for key in KIND_KEYS[kind] + ("campaign", "sender"):
        context = sample_context(kind, lang)
        del context[key]
        with pytest.raises(TemplateError, match=key):
            renderer.render(kind, lang, context)


def test_readme_lists_every_kind():
    """Each kind has a row in the README's table of kinds."""
    readme = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    for kind in KINDS:
        assert f"| `{kind}` |" in readme
