"""Every mail the service sends, pinned: a wording change is a reviewed diff.

Each kind is rendered in both languages from its fixed sample context (``email_samples``) and
compared with ``tests/golden/email/<lang>/<kind>.txt`` (the subject, a blank line, the plain
text). A change to a template that changes what a person reads fails here until the golden file
is written again and the diff reviewed:

    SKJEMAPOST_WRITE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_mails.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from email_samples import sample_context

from service.mail.render import KINDS, Renderer

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden" / "email"
WRITE = os.environ.get("SKJEMAPOST_WRITE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(ROOT / "templates" / "email")


def reading(renderer: Renderer, kind: str, lang: str) -> str:
    """What a person reads: the subject, then the plain-text body."""
    out = renderer.render(kind, lang, sample_context(kind, lang))  # type: ignore[arg-type]
    return f"Subject: {out.subject}\n\n{out.text.rstrip()}\n"


@pytest.mark.parametrize(("kind", "lang"), [(k, lang) for k in KINDS for lang in ("nb", "en")])
def test_the_mail_reads_as_pinned(renderer, kind, lang):
    path = GOLDEN / lang / f"{kind}.txt"
    got = reading(renderer, kind, lang)
    if WRITE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"no golden rendering {path}: write it with SKJEMAPOST_WRITE_GOLDEN=1 and review it"
    assert got == path.read_text(encoding="utf-8"), f"{kind} ({lang}) reads differently from {path}"


def test_no_golden_file_is_left_over():
    """A kind that is gone takes its golden files with it."""
    kept = {f"{lang}/{k}.txt" for k in KINDS for lang in ("nb", "en")}
    found = {str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*.txt")}
    assert found == kept


# ------------------------------------------------------------------- the letter's words, one sender

#: framing the letter never uses: it is not an annual exercise, it says *tiltaksplan*, and there
#: was no information meeting; and the sender is one department, never "HMS-avdelingen" alone
INVENTED = re.compile(
    r"årlig|annual|handlingsplan|action plan|informasjonsmøte|information meeting|(?<!HR- og )HMS-avdelingen",
    re.IGNORECASE,
)
SENDER = {"nb": "HR- og HMS-avdelingen", "en": "HR and HSE Division"}
TITLE = {"nb": "Oppsummering og evaluering 2020", "en": "Summary and evaluation 2020"}


@pytest.mark.parametrize(("kind", "lang"), [(k, lang) for k in KINDS for lang in ("nb", "en")])
def test_every_mail_speaks_the_letters_words_from_one_sender(renderer, kind, lang):
    """Every kind, both languages: no invented framing (annual, handlingsplan, information
    meeting, 'HMS-avdelingen' alone) in the subject, text or HTML; signed by the sender in the
    mail's language; the campaign's title only in the mail's language."""
    context = sample_context(kind, lang)  # type: ignore[arg-type]
    assert context["sender"]["name"] == SENDER[lang] and context["campaign"]["title"] == TITLE[lang]
    out = renderer.render(kind, lang, context)  # type: ignore[arg-type]
    other = "en" if lang == "nb" else "nb"
    for part, body in (("subject", out.subject), ("text", out.text), ("html", out.html)):
        found = INVENTED.search(body)
        assert found is None, f"{kind} ({lang}) {part} says {found.group(0)!r}"
        assert TITLE[other] not in body and SENDER[other] not in body, f"{kind} ({lang}) {part}"
    assert SENDER[lang] in out.html  # the footer, at least
    if kind not in ("coordinator-digest", "hr-digest"):
        assert out.text.rstrip().endswith(SENDER[lang]), f"{kind} ({lang}) is not signed by the sender"
    if "{{ campaign.title }}" in (ROOT / "templates/email" / lang / f"{kind}.subject.txt").read_text("utf-8"):
        assert TITLE[lang] in out.subject
