"""One sender and one title, in the reader's language: the config, the mails as composed, `check`.

The templates' words are pinned by test_golden_mails; here the values come from a real config
through ``Letters``, as the service sends them: the From name, the subject's title, the signature,
the verneombud's copy, and the correction that names every field.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import tomllib
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from projects import new_project

from service.app.wiring import App
from service.config import settings
from service.errors import ConfigError
from service.forms.answers import problem_rows
from service.forms.read import read_form
from service.forms.validate import validate
from service.mail.compose import Mailbox
from service.mail.letters import Letters, Reply
from service.models import NewMail, Unit

SENDER = {"nb": "HR- og HMS-avdelingen", "en": "HR and HSE Division"}
TITLE = {"nb": "Oppsummering og evaluering 2020", "en": "Summary and evaluation 2020"}
NOW = dt.datetime(2020, 11, 23, 8, 0, tzinfo=dt.UTC)

MINIMAL = """
[campaign]
id = "aml-2020"
{title}
opens = 2020-11-23
deadline = 2020-12-16
[mail]
from_address = "hms@example.edu"
{from_name}
"""


def parsed(title: str = 'title = "T"', from_name: str = "") -> settings.Config:
    raw = tomllib.loads(MINIMAL.format(title=title, from_name=from_name))
    return settings.parse(raw, Path("/tmp/skjemapost.toml"), {})


def problems(title: str, from_name: str = "") -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parsed(title, from_name)
    return {p.where: p.message for p in caught.value.problems}


def message(mail: NewMail) -> EmailMessage:
    msg = email.message_from_bytes(mail.payload, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def body(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body((subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------- the config


def test_the_sender_defaults_to_the_letters_department_in_each_language():
    """No mail.from_name: HR- og HMS-avdelingen in Norwegian, the HR and HSE Division in English."""
    cfg = parsed()
    assert {lang: cfg.from_name_for(lang) for lang in ("nb", "en")} == SENDER
    assert cfg.mail.from_name == SENDER["nb"]  # the campaign's default language
    assert cfg.mail.cc_verneombud is True


def test_a_title_and_a_sender_are_one_string_or_one_per_language():
    """A string serves every language; a table gives each its own; the default language's is the
    plain ``title`` others read."""
    one = parsed('title = "Oppsummering 2020"', 'from_name = "HMS-seksjonen"')
    assert one.title_for("en") == one.title_for("nb") == one.campaign.title == "Oppsummering 2020"
    assert one.from_name_for("en") == "HMS-seksjonen"
    each = parsed(
        f'title = {{ nb = "{TITLE["nb"]}", en = "{TITLE["en"]}" }}\ndefault_language = "en"',
        'from_name = { nb = "HR- og HMS-avdelingen", en = "HR and HSE Division" }',
    )
    assert {lang: each.title_for(lang) for lang in ("nb", "en")} == TITLE
    assert each.campaign.title == TITLE["en"] and each.mail.from_name == SENDER["en"]


def test_a_table_must_name_every_language_and_no_other():
    """A missing or empty language, an unknown one, or a value of the wrong type is named by key."""
    assert "campaign.title.en" in problems('title = { nb = "Oppsummering" }')
    assert "campaign.title.de" in problems('title = { nb = "A", en = "B", de = "C" }')
    assert "every language" in problems('title = { nb = "A", en = "" }')["campaign.title.en"]
    assert "campaign.title" in problems("title = 2020")
    assert "campaign.title" in problems("")
    assert "mail.from_name" in problems('title = "T"', 'from_name = ""')
    assert "mail.from_name.nb" in problems('title = "T"', 'from_name = { en = "HR and HSE Division" }')


def test_the_example_config_shows_both_languages():
    """The shipped example names the title and the sender in nb and en, and copies the verneombud."""
    cfg = settings.load(Path(__file__).parent.parent / "config/skjemapost.example.toml", {})
    assert {lang: cfg.title_for(lang) for lang in ("nb", "en")} == TITLE
    assert {lang: cfg.from_name_for(lang) for lang in ("nb", "en")} == SENDER
    assert cfg.mail.cc_verneombud


# -------------------------------------------------------------------------------- the mails as sent


@pytest.fixture
def project(tmp_path):
    p = new_project(tmp_path)
    text = p.config.read_text(encoding="utf-8")
    text = text.replace(
        'title = "Oppsummering og evaluering 2020"',
        f'title = {{ nb = "{TITLE["nb"]}", en = "{TITLE["en"]}" }}',
    )
    p.config.write_text(text, encoding="utf-8")  # no from_name: the default sender
    return p


def letters_of(project, **mail: object) -> Letters:
    config = settings.load(project.config, project.env)
    config = replace(config, mail=replace(config.mail, **mail)) if mail else config
    return App(config).letters


def unit_in(project, lang: str) -> Unit:
    return next(u for u in project.units if u.language == lang)


@pytest.mark.parametrize("lang", ["nb", "en"])
def test_the_from_name_the_title_and_the_signature_follow_the_readers_language(project, lang):
    """A leader reading nb or en gets the From name, the subject's title and the signature in
    that language, and nothing of the other."""
    letters = letters_of(project)
    unit = unit_in(project, lang)
    other = "en" if lang == "nb" else "nb"
    for mail in (letters.invitation(unit, NOW), letters.reminder_after(unit, 1, NOW)):
        msg = message(mail)
        assert msg["From"].addresses[0].display_name == SENDER[lang]
        assert TITLE[lang] in str(msg["Subject"]) and TITLE[other] not in str(msg["Subject"])
        text = body(msg, "plain")
        assert text.rstrip().endswith(SENDER[lang])
        assert SENDER[other] not in text and TITLE[other] not in text
        assert SENDER[lang] in body(msg, "html")


def test_mails_in_the_campaigns_language_are_from_its_sender(project):
    """Mails to readers other than the leader go in the campaign's default language (nb)."""
    letters = letters_of(project)
    unit = unit_in(project, "en")
    notice = letters.help_notice(
        unit,
        audience="coordinator",
        to=[Mailbox("koord-hf@example.test")],
        wanted=["Koordinator for arbeidsmiljøundersøkelsen"],
        words=[],
        received_at=NOW,
        key="help:x",
        now=NOW,
    )
    msg = message(notice)
    assert msg["From"].addresses[0].display_name == SENDER["nb"] and TITLE["nb"] in str(msg["Subject"])


def test_the_verneombud_is_copied_and_told_why(project):
    """By default the invitation and reminders copy the verneombud, and say why in both bodies;
    switched off, or with no address in the roster, neither the copy nor the note."""
    letters = letters_of(project)
    unit = unit_in(project, "nb")
    for mail in (letters.invitation(unit, NOW), letters.reminder_before(unit, 1, 7, NOW.date(), NOW)):
        msg = message(mail)
        assert unit.verneombud_email in mail.recipients
        assert msg["Cc"].addresses[0].addr_spec == unit.verneombud_email
        for part in ("plain", "html"):
            assert f"Verneombudet, {unit.verneombud_name}, får kopi av denne e-posten" in body(msg, part)
    quiet = letters_of(project, cc_verneombud=False).invitation(unit, NOW)
    no_address = letters.invitation(replace(unit, verneombud_email=""), NOW)
    for mail in (quiet, no_address):
        assert "Cc" not in message(mail) and "får kopi" not in body(message(mail), "plain")


def test_the_invitation_reads_well_without_a_guidance_link(project):
    """No campaign.guidance_url: the Innsida page is named, with no gap, link or 'None'."""
    text = body(message(letters_of(project).invitation(unit_in(project, "nb"), NOW)), "plain")
    assert "under «Arbeidsmiljøundersøkelse – for ledere».\n" in text
    assert "http" not in text and "None" not in text


@pytest.mark.parametrize("lang", ["nb", "en"])
def test_the_correction_names_the_field_in_every_row(project, lang):
    """A blank form sent back: every row of the correction's table names its field (the first
    column, 'Felt', was once empty), and every numbered line of the text starts with it."""
    letters = letters_of(project)
    unit = unit_in(project, lang)
    blank = letters.form_for(unit, lang)
    reading = read_form(blank.data, letters.form)
    rows = problem_rows(letters.form, reading, validate(letters.form, reading, lang), lang)
    assert len(rows) > 5
    mail = letters.correction(
        unit, Reply(Mailbox(unit.leader_email), "x:1"), rows, received_at=NOW, attachment=blank, now=NOW
    )
    msg = message(mail)
    html = body(msg, "html")
    cells = re.findall(r"<tr><td[^>]*>(.*?)</td><td[^>]*class=\"code\"", html, re.DOTALL)
    assert len(cells) == len(rows)
    for cell, row in zip(cells, rows, strict=True):
        assert cell.strip() and row["label"] in cell
    lines = re.findall(r"^  \d+\. (.*)$", body(msg, "plain"), re.MULTILINE)
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        assert line.startswith(f"{row['label']} ("), line


def test_check_names_the_sender_and_the_title_in_each_language(project):
    """`check` says whom the mails are from and what they call the campaign, in nb and en, and
    that the verneombud is copied; a single string is pointed out."""
    project.setup()
    out = project.cli("check").output
    assert f"mail from nb «{SENDER['nb']}» / en «{SENDER['en']}»" in out
    assert f"campaign title nb «{TITLE['nb']}» / en «{TITLE['en']}»" in out
    assert "the verneombud is copied on invitations and reminders" in out
    assert "one string" not in out
    project.config.write_text(
        project.config.read_text().replace(
            f'title = {{ nb = "{TITLE["nb"]}", en = "{TITLE["en"]}" }}', 'title = "Oppsummering 2020"'
        )
    )
    assert "campaign.title is one string" in project.cli("check").output
