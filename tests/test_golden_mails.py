"""Every mail the service sends, pinned: a wording change is a reviewed diff.

Each kind is rendered in both languages from its fixed sample context (``email_samples``) and
compared with ``tests/golden/email/<lang>/<kind>.txt`` (the subject, a blank line, the plain
text). A change to a template that changes what a person reads fails here until the golden file
is written again and the diff reviewed:

    SKJEMAPOST_WRITE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_mails.py
"""

from __future__ import annotations

import os
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
