"""Every sample message in tests/corpus parses and classifies as its twin .json says.

The corpus is built by tests/corpus/make_corpus.py; each ``name.eml`` has a ``name.json`` naming
only the facts that matter for it. A key the .json leaves out is not checked.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from service.forms.definition import load_form
from service.forms.read import read_form
from service.mail.classifier import Classification, classify, is_machine
from service.mail.parser import InboundMail, parse
from service.mail.tokens import read_stamp

CORPUS = Path(__file__).parent / "corpus"
MESSAGES = sorted(CORPUS.glob("*.eml"))
# what a .json may list: the facts of the parsed mail and of its classification
MATCHED = (
    "kind",
    "from_address",
    "from_name",
    "subject",
    "message_id",
    "in_reply_to",
    "references",
    "failed_recipients",
    "delayed",
    "status",
    "original_message_id",
    "returns_on",
    "report_type",
    "text",
    "date",
)


def facts(mail: InboundMail, c: Classification) -> dict[str, Any]:
    """The parse and classification results as JSON-like values."""
    return {
        "kind": c.kind,
        "from_address": mail.from_address,
        "from_name": mail.from_name,
        "subject": mail.subject,
        "message_id": mail.message_id,
        "in_reply_to": mail.in_reply_to,
        "references": list(c.references),
        "failed_recipients": list(c.failed_recipients),
        "delayed": c.delayed,
        "status": list(c.status),
        "original_message_id": c.original_message_id,
        "returns_on": c.returns_on.isoformat() if c.returns_on else None,
        "report_type": c.report_type,
        "text": mail.text,
        "date": mail.date.isoformat() if mail.date else None,
        "attachments": [
            {
                "filename": a.filename,
                "origin": a.origin,
                "content_type": a.content_type,
                "size": len(a.data),
                "sha256": hashlib.sha256(a.data).hexdigest(),
            }
            for a in mail.attachments
        ],
        "forwarded_subjects": [f.subject for f in mail.forwarded if not f.headers_only],
    }


SNIPPETS = ("text_contains", "text_excludes", "diagnostic_contains", "defects_contain")


def check(raw: bytes, expected: dict[str, Any]) -> None:
    unknown = set(expected) - {*MATCHED, *SNIPPETS, "attachments", "forwarded_subjects"}
    assert not unknown, f"the twin names facts the test does not know: {unknown}"
    mail = parse(raw)
    c = classify(mail)
    got = facts(mail, c)
    for key in MATCHED:
        if key in expected:
            assert got[key] == expected[key], f"{key}: got {got[key]!r}, expected {expected[key]!r}"
    if "attachments" in expected:
        # each expected attachment names only the fields it cares about; "form_unit" is checked by
        # test_the_forms_in_the_corpus_are_real
        want = [{k: v for k, v in a.items() if k != "form_unit"} for a in expected["attachments"]]
        assert len(got["attachments"]) == len(want), got["attachments"]
        assert [{k: a[k] for k in w} for a, w in zip(got["attachments"], want, strict=True)] == want
    if "forwarded_subjects" in expected:
        assert got["forwarded_subjects"] == expected["forwarded_subjects"]
    for snippet in expected.get("text_contains", []):
        assert snippet in mail.text, f"{snippet!r} not in the text:\n{mail.text}"
    for snippet in expected.get("text_excludes", []):
        assert snippet not in mail.text, f"{snippet!r} should not be in the text:\n{mail.text}"
    for snippet in expected.get("diagnostic_contains", []):
        assert snippet in c.diagnostic, f"{snippet!r} not in the diagnostic {c.diagnostic!r}"
    for snippet in expected.get("defects_contain", []):
        assert snippet in mail.defects, f"{snippet!r} not in {mail.defects}"
    assert is_machine(c) == (c.kind not in ("submission", "question"))


def test_the_corpus_is_big_enough():
    """The corpus holds at least 45 messages, each with its twin of expected results."""
    assert len(MESSAGES) >= 45
    assert all(m.with_suffix(".json").exists() for m in MESSAGES)


@pytest.mark.parametrize("path", MESSAGES, ids=[m.stem for m in MESSAGES])
def test_corpus_message(path: Path):
    """The message parses and classifies without raising, as its twin .json says."""
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    check(path.read_bytes(), expected)


def test_the_forms_in_the_corpus_are_real():
    """Every form a twin names reads back as that unit's form, stamped with the corpus secret."""
    # fails when the form changed and the corpus was not rebuilt (tests/corpus/make_corpus.py)
    form = load_form(Path(__file__).parent.parent / "forms" / "oppsummering-og-evaluering.toml")
    checked = 0
    for path in MESSAGES:
        expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        attachments = parse(path.read_bytes()).attachments
        for want, got in zip(expected["attachments"], attachments, strict=True):
            if "form_unit" in want:
                reading = read_form(got.data, form)
                assert reading.unit_code == want["form_unit"], path.name
                assert read_stamp(b"corpus-secret", reading.stamp).unit_code == want["form_unit"]
                checked += 1
    assert checked >= 20


def test_a_30_mb_attachment_is_parsed_whole():
    """A reply with a 30 MB workbook (built here, not stored) keeps the file whole: a submission."""
    sys.path.insert(0, str(CORPUS))
    try:
        import make_corpus
    finally:
        sys.path.remove(str(CORPUS))
    raw, expected = make_corpus.large_message()
    assert len(raw) > 40 * 2**20  # base64 makes 30 MB into 40
    check(raw, expected)
