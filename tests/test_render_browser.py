"""The invitation as a leader sees it: rendered in headless Chromium, the key facts are visible.

Uses Debian's chromium (``apt-get install chromium``) through the ``playwright`` package, never a
browser that playwright downloads. Without chromium the tests skip locally and fail under CI=true.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from email_samples import REFERENCE, sample_context
from harness.browsers import chromium

from service.mail.render import Renderer

TEMPLATES = Path(__file__).parent.parent / "templates" / "email"
MUST_SEE = {
    "nb": [
        "onsdag 16. desember 2020",
        REFERENCE,
        "Svar på denne e-posten og legg ved det utfylte skjemaet.",
        "ikke som PDF",
        "Fyll ut skjemaet i samråd med verneombudet.",
        "Hovedfokuset høsten 2020",
    ],
    "en": [
        "Wednesday 16 December 2020",
        REFERENCE,
        "Reply to this email with the completed form attached.",
        "not as a PDF",
        "Fill in the form in consultation with your safety representative.",
        "The main focus in autumn 2020",
    ],
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    # a mail may load nothing from the network; any request but the page itself is a failure
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    yield page
    page.close()
    assert [url for url in requests if not url.startswith(("about:", "data:"))] == []


def visible(locator: Any) -> bool:
    """True when some element the locator matches is shown (the hidden preheader repeats text)."""
    return any(locator.nth(i).is_visible() for i in range(locator.count()))


def invitation_html(lang: str) -> str:
    context = sample_context("leader-invitation", lang)
    return Renderer(TEMPLATES).render("leader-invitation", lang, context).html


@pytest.mark.parametrize("lang", ["nb", "en"])
def test_invitation_shows_deadline_reference_and_how_to_return(page, lang, tmp_path):
    """Deadline, reference and the return instructions are visible on screen, in the right language."""
    page.set_content(invitation_html(lang))
    body = page.inner_text("body")
    for text in MUST_SEE[lang]:
        assert text in body
        assert visible(page.get_by_text(text, exact=False)), f"{text!r} is not visible"
    shot = tmp_path / f"invitation-{lang}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_preheader_is_hidden(page):
    """The inbox preview line is in the HTML but not shown in the message."""
    page.set_content(invitation_html("nb"))
    preheader = page.locator(".preheader")
    assert preheader.count() == 1 and not preheader.is_visible()


def test_invitation_is_at_most_600_px_wide_and_fits_a_phone(page):
    """The message column is capped at 600 px and a 375 px screen needs no sideways scrolling."""
    page.set_content(invitation_html("nb"))
    box = page.locator("table.container").bounding_box()
    assert box is not None and box["width"] <= 602  # 600 plus the 1 px border on each side
    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert visible(page.get_by_text(REFERENCE))
