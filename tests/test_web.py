"""`skjemapost serve` in a real headless browser: Debian's chromium driven by Playwright, against
the app served by uvicorn on 127.0.0.1 (tests/harness/website.py), with a seeded store.

Without chromium or playwright the browser tests skip locally and fail under CI=true.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from harness.browsers import chromium
from harness.website import ATTEMPTS, NOW, PASSWORDS, WINDOW_MINUTES, fetch, seed, serve, web_project

from service.app.setup import Setup
from service.app.wiring import App
from service.clock import FixedClock
from service.config import settings as config_mod
from service.web.users import remove_user

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


COMMENT = "Vi hadde ikke noe møte.\nTiltak 2 er ikke startet."


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = web_project(tmp_path_factory.mktemp("web"))
    seed(p)
    cosign(p)
    return p


def cosign(p) -> None:
    """IE-U000's verneombud confirmed its form, NV-U001's answered with a comment; IE-U003's was
    not asked yet (the seed's other valid form)."""
    app = App(config_mod.load(p.config, p.env))
    try:
        vo = {u.code: u.verneombud_email for u in p.units}
        for code, reading, words, day in (
            ("IE-U000", "confirmed", "Enig", 2),
            ("NV-U001", "disputed", COMMENT, 3),
        ):
            asked = dt.datetime(2020, 12, day, 9, tzinfo=dt.UTC)
            request = app.store.record_cosign_request(
                app.campaign_id, code, version=1, message_id=f"<req.{code}@x>", asked_to=vo[code], now=asked
            )
            app.store.record_cosign_answer(
                request.id,
                reading=reading,
                words=words,
                answered_by=vo[code],
                at=asked + dt.timedelta(hours=5),
            )
    finally:
        app.close()


@pytest.fixture(scope="module")
def config(project):
    return config_mod.load(project.config, project.env)


@pytest.fixture(scope="module")
def status(config) -> dict[str, Any]:
    """`skjemapost status` numbers per faculty, the truth the page must show."""
    app = App(config)
    try:
        return {p.faculty: p for p in Setup(app).status()}
    finally:
        app.close()


@pytest.fixture(scope="module")
def site(config):
    with serve(config) as s:
        yield s


@pytest.fixture
def fresh_site(config):
    """Its own server: its own login limiter and clock, so failed logins touch no other test."""
    with serve(config, FixedClock(NOW)) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def context(browser):
    """A fresh browser profile (no cookies) that may load nothing but the site itself."""
    ctx = browser.new_context(locale="nb-NO", accept_downloads=True, viewport={"width": 1100, "height": 900})
    requests: list[str] = []
    ctx.on("request", lambda r: requests.append(r.url))
    yield ctx
    ctx.close()
    assert [u for u in requests if not u.startswith(("http://127.0.0.1:", "about:", "data:"))] == []


def login(context, site, name: str, password: str | None = None) -> Any:
    page = context.new_page()
    page.goto(site.url + "/")
    assert page.url == site.url + "/login"  # nothing without a login
    page.fill("#name", name)
    page.fill("#password", PASSWORDS.get(name, "") if password is None else password)
    page.click("button#login")
    page.wait_for_load_state()
    return page


def progress(page) -> dict[str, tuple[int, int, int, int, int]]:
    """The progress table as read from the page: faculty -> (units, submitted, valid, missing, %)."""
    out = {}
    for row in page.locator("#progress tbody tr").all():
        faculty = row.get_attribute("data-faculty")
        nums = [int(row.locator(f"td.{k}").inner_text()) for k in ("units", "submitted", "valid", "missing")]
        pct = int(row.locator("span.pct").inner_text().rstrip(" %"))
        out[faculty] = (*nums, pct)
    return out


def rows(ws) -> list[dict[str, object]]:
    header = [c.value for c in ws[1]]
    return [dict(zip(header, (c.value for c in r), strict=False)) for r in ws.iter_rows(min_row=2)]


def download(page) -> openpyxl.Workbook:
    with page.expect_download() as info:
        page.click("#download")
    dl = info.value
    assert dl.suggested_filename.endswith(".xlsx")
    return openpyxl.load_workbook(io.BytesIO(Path(dl.path()).read_bytes()))


# -- the two roles ----------------------------------------------------------------------------------


def test_hr_sees_every_faculty_as_status_counts_them_and_downloads_everything(context, site, status, project):
    """HR: the progress table equals `status`, missing units/flags/review span all faculties, and
    the downloaded workbook holds every unit."""
    page = login(context, site, "hr-kari")
    assert page.url == site.url + "/"
    seen = progress(page)
    assert seen == {
        f: (p.units, p.submitted, p.valid, p.missing, p.valid * 100 // p.units) for f, p in status.items()
    }
    assert seen["IE"] == (3, 2, 2, 1, 66) and seen["HF"] == (3, 1, 0, 3, 0)
    total = page.locator("#progress tfoot tr")
    assert total.locator("td.units").inner_text() == "9" and total.locator("td.valid").inner_text() == "3"
    assert page.locator("meter").count() == 4  # a bar per faculty and the total, with text beside it
    missing = {r.get_attribute("data-code") for r in page.locator("#missing tbody tr").all()}
    assert missing == {"IE-U006", "NV-U004", "NV-U007", "HF-U002", "HF-U005", "HF-U008"}
    assert page.locator('#missing tr[data-code="HF-U002"] .stage').inner_text() == "må rettes"
    flagged = {r.get_attribute("data-code") for r in page.locator("#flags tbody tr").all()}
    assert flagged == {"IE-U003"} and page.locator("#flags tbody tr").count() == 3
    assert "3" in page.locator("#review").inner_text()
    assert "HR" in page.locator("#who").inner_text()

    wb = download(page)
    svar = rows(wb["Svar"])
    assert sorted(r["Enhetskode"] for r in svar) == sorted(u.code for u in project.units)
    assert {r["Enhetskode"]: r["Status"] for r in svar}["HF-U002"] == "ugyldig"
    assert [r["Fakultet"] for r in rows(wb["Oversikt"]) if r["Fakultet"] != "Totalt"] == ["HF", "IE", "NV"]
    assert {r["Enhetskode"] for r in rows(wb["Mangler"])} == missing
    sheet = {r["Enhetskode"]: r for r in rows(wb["Mangler"])}
    for row in page.locator("#missing tbody tr").all():  # the page and the sheet say the same
        code = row.get_attribute("data-code")
        assert row.locator(".stage").inner_text() == sheet[code]["Status"], code
        assert int(row.locator("td.reminders .count").inner_text()) == sheet[code]["Purringer sendt"], code
        assert row.locator("td.failing").inner_text() == (sheet[code]["Feilende adresse"] or ""), code
        count = row.locator(".problems .count")
        assert (int(count.inner_text()) if count.count() else None) == sheet[code]["Feil å rette"], code
    assert sheet["HF-U002"]["Status"] == "må rettes" and sheet["HF-U002"]["Feil å rette"] == 2
    assert "adressen finnes ikke (550 5.1.1" in sheet["HF-U005"]["Feilende adresse"]


def missing_rows(page) -> dict[str, Any]:
    return {r.get_attribute("data-code"): r for r in page.locator("#missing tbody tr").all()}


def test_the_missing_list_says_where_each_unit_stands(context, site, project):
    """Each missing unit's state, from the same UnitState as the workbook: the invalid form's day
    and problems, the mails the leader got with their days, the escalation, the day an away leader
    is back, and a failing address with what the server's refusal means."""
    page = login(context, site, "hr-kari")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1100  # no sideways scrolling
    units = missing_rows(page)
    stages = {code: row.get_attribute("data-stage") for code, row in units.items()}
    assert stages == {
        "IE-U006": "invited",
        "NV-U004": "not-invited",
        "NV-U007": "away",
        "HF-U002": "needs-correction",
        "HF-U005": "address-failing",
        "HF-U008": "not-invited",
    }

    hf = units["HF-U002"]
    assert hf.locator(".stage").inner_text() == "må rettes"
    assert hf.locator(".received").inner_text() == "01.12.2020"
    assert hf.locator(".problems .count").inner_text() == "2"
    problems = hf.locator(".problems li").all_text_contents()
    assert problems == [
        "Skjema!C14: «Antall ansatte» må være et helt tall.",
        "Skjema!C20: Fyll inn datoen for oppfølgingsmøtet.",
    ]
    assert hf.locator("td.sent li").all_inner_texts() == ["01.12.2020 retting"]

    ie = units["IE-U006"]
    assert ie.locator(".stage").inner_text() == "ikke sendt"
    assert ie.locator("td.sent li").all_inner_texts() == [
        "23.11.2020 invitasjon",
        "02.12.2020 påminnelse",
        "07.12.2020 eskalert",  # to the superior leader and the coordinator
    ]
    assert ie.locator("td.reminders .count").inner_text() == "1"
    assert ie.locator(".last-reminder").inner_text() == "02.12.2020"
    assert ie.locator("li.escalated .date").inner_text() == "07.12.2020"
    assert ie.locator("td.form").inner_text() == "" and ie.locator(".problems, .received").count() == 0

    nv = units["NV-U007"]
    assert nv.locator(".stage").inner_text() == "borte"
    assert nv.locator(".back-on").inner_text() == "14.12.2020"

    failing = units["HF-U005"].locator("td.failing").inner_text()
    assert units["HF-U005"].locator(".stage").inner_text() == "adresse virker ikke"
    leader = next(u.leader_email for u in project.units if u.code == "HF-U005")
    assert failing.startswith(f"{leader}: adressen finnes ikke (550 5.1.1 <{leader}>: Recipient address")
    assert units["NV-U004"].locator("td.failing").inner_text() == ""

    page.click("#language-switch")
    page.wait_for_load_state()
    units = missing_rows(page)
    assert units["HF-U002"].locator(".stage").inner_text() == "to be corrected"
    assert units["HF-U002"].locator(".problems summary").inner_text() == "2 problems"
    assert units["HF-U002"].locator(".received").inner_text() == "2020-12-01"
    assert units["IE-U006"].locator("td.sent li").all_inner_texts() == [
        "2020-11-23 invitation",
        "2020-12-02 reminder",
        "2020-12-07 escalated",
    ]
    assert units["NV-U007"].locator(".stage").inner_text() == "away"
    failing = units["HF-U005"].locator("td.failing").inner_text()
    assert failing.startswith(f"{leader}: the address does not exist (550 5.1.1 <{leader}>")


def test_coordinator_sees_only_their_faculty_and_downloads_only_it(context, site, status):
    """A coordinator: IE only in the table, the missing list, the review count and the workbook."""
    page = login(context, site, "koord-ie")
    seen = progress(page)
    ie = status["IE"]
    assert seen == {"IE": (ie.units, ie.submitted, ie.valid, ie.missing, ie.valid * 100 // ie.units)}
    assert page.locator("#progress tfoot").count() == 0
    assert {r.get_attribute("data-code") for r in page.locator("#missing tbody tr").all()} == {"IE-U006"}
    assert "1" in page.locator("#review").inner_text()  # of the three in review, one is IE's
    body = page.locator("main").inner_text()
    assert "NV-" not in body and "HF-" not in body
    assert "IE" in page.locator("#download").inner_text()

    wb = download(page)
    assert {r["Fakultet"] for r in rows(wb["Svar"])} == {"IE"} and len(rows(wb["Svar"])) == 3
    assert {r["Enhetskode"] for r in rows(wb["Mangler"])} == {"IE-U006"}
    assert {r["Enhetskode"] for r in rows(wb["Flagg"])} == {"IE-U003"}
    assert all(str(r["Enhetskode"]).startswith("IE-") for r in rows(wb["Logg"]))


def cosign_counts(page) -> dict[str, tuple[int, ...]]:
    """The progress table's co-signature cells: faculty -> (confirmed, forms, disputed, pending,
    not asked)."""
    keys = ("confirmed", "forms", "disputed", "pending", "not-asked")
    return {
        row.get_attribute("data-faculty"): tuple(
            int(row.locator(f"td.cosign .{k}").inner_text()) for k in keys
        )
        for row in page.locator("#progress tbody tr").all()
    }


def test_the_verneombuds_confirmation_is_counted_per_faculty_and_shown_per_unit(context, site):
    """Beside each faculty's progress, its units with a valid form counted by what their verneombud
    answered; below, each such unit, the comment first with the verneombud's own words. A
    coordinator sees their faculty's only."""
    page = login(context, site, "hr-kari")
    assert cosign_counts(page) == {"IE": (1, 2, 0, 0, 1), "NV": (0, 1, 1, 0, 0), "HF": (0, 0, 0, 0, 0)}
    total = page.locator("#progress tfoot td.cosign")
    assert total.locator(".confirmed").inner_text() == "1" and total.locator(".forms").inner_text() == "3"
    units = page.locator("#cosign tbody tr").all()
    assert [(r.get_attribute("data-code"), r.get_attribute("data-cosign")) for r in units] == [
        ("NV-U001", "disputed"),
        ("IE-U003", "not-asked"),
        ("IE-U000", "confirmed"),
    ]
    nv = page.locator('#cosign tr[data-code="NV-U001"]')
    assert nv.locator(".cosign").inner_text() == "har kommentar"
    assert nv.locator("td.words").inner_text() == COMMENT
    assert nv.locator(".answered").inner_text() == "03.12.2020"
    assert page.locator('#cosign tr[data-code="IE-U003"] .cosign').inner_text() == "ikke spurt ennå"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1100

    page.click("#language-switch")
    page.wait_for_load_state()
    assert page.locator('#cosign tr[data-code="NV-U001"] .cosign').inner_text() == "has a comment"
    assert page.locator('#cosign tr[data-code="IE-U000"] .cosign').inner_text() == "confirmed"

    other = context.browser.new_context(locale="nb-NO", viewport={"width": 1100, "height": 900})
    try:
        coordinator = login(other, site, "koord-nv")
        assert cosign_counts(coordinator) == {"NV": (0, 1, 1, 0, 0)}
        listed = [r.get_attribute("data-code") for r in coordinator.locator("#cosign tbody tr").all()]
        assert listed == ["NV-U001"]
    finally:
        other.close()


def test_hr_can_download_one_faculty_chosen_in_a_form_not_a_url(context, site):
    """HR's per-faculty download posts the faculty in the form body: the workbook holds NV only,
    and the URL is the same /workbook.xlsx; a faculty that does not exist is a 404."""
    page = login(context, site, "hr-kari")
    assert page.locator("#slice-faculty option").all_inner_texts() == ["HF", "IE", "NV"]
    page.select_option("#slice-faculty", "NV")
    with page.expect_download() as info:
        page.click("#download-slice")
    assert "-NV-" in info.value.suggested_filename and info.value.url == site.url + "/workbook.xlsx"
    wb = openpyxl.load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()))
    assert {r["Fakultet"] for r in rows(wb["Svar"])} == {"NV"}
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    response = context.request.post(site.url + "/workbook.xlsx", form={"csrf": csrf, "faculty": "XX"})
    assert response.status == 404 and b"PK" not in response.body()[:2]


def test_a_coordinator_posting_another_faculty_still_gets_their_own(context, site):
    """The form's faculty counts for HR only: a coordinator who posts NV gets IE, and a post
    without the CSRF token gets nothing."""
    page = login(context, site, "koord-ie")
    assert page.locator("#slice-faculty").count() == 0
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    response = context.request.post(site.url + "/workbook.xlsx", form={"csrf": csrf, "faculty": "NV"})
    assert response.status == 200 and "-IE-" in response.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(response.body()))
    assert {r["Fakultet"] for r in rows(wb["Svar"])} == {"IE"}
    forged = context.request.post(site.url + "/workbook.xlsx", form={"csrf": "x", "faculty": "NV"})
    assert forged.status == 403 and b"PK" not in forged.body()[:2]


@pytest.mark.parametrize(
    "path",
    [
        "/workbook.xlsx?faculty=NV",
        "/workbook.xlsx?faculty=NV&role=hr",
        "/workbook.xlsx;faculty=NV",
        "/workbook.xlsx#NV",
    ],
)
def test_a_coordinator_cannot_get_another_faculty_by_typing_a_url(context, site, path):
    """Whatever the URL says, the coordinator's workbook holds their own faculty and nothing else."""
    page = login(context, site, "koord-ie")
    response = context.request.get(site.url + path)
    if response.status == 404:  # a path the app does not know: no data at all
        assert b"PK" not in response.body()[:2]
        return
    assert response.status == 200 and response.headers["content-type"] == XLSX
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "-IE-" in response.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(response.body()))
    assert {r["Fakultet"] for r in rows(wb["Svar"])} == {"IE"}
    assert [r["Fakultet"] for r in rows(wb["Oversikt"]) if r["Fakultet"] != "Totalt"] == ["IE"]
    page.goto(site.url + "/?faculty=NV")
    assert set(progress(page)) == {"IE"}


@pytest.mark.parametrize(
    "path", ["/NV/workbook.xlsx", "/workbook.xlsx/NV", "/faculty/NV", "/workbook-NV.xlsx"]
)
def test_urls_naming_a_faculty_do_not_exist(context, site, path):
    """No route takes a faculty: such paths are 404 even when logged in."""
    login(context, site, "koord-ie")
    response = context.request.get(site.url + path)
    assert response.status == 404 and "NV-" not in response.text()


# -- logins -----------------------------------------------------------------------------------------


def test_a_wrong_password_and_an_unknown_user_are_refused_alike(context, fresh_site):
    """Both stay on the login page with the same message; neither reaches the dashboard."""
    page = login(context, fresh_site, "hr-kari", "not-the-password")
    assert page.url == fresh_site.url + "/login"
    message = page.locator("#login-error").inner_text()
    assert message == "Feil brukernavn eller passord."
    page = login(context, fresh_site, "nobody", "whatever-it-is")
    assert page.locator("#login-error").inner_text() == message
    page.goto(fresh_site.url + "/")
    assert page.url == fresh_site.url + "/login"
    assert context.request.get(fresh_site.url + "/workbook.xlsx").status == 401


def test_after_too_many_failures_the_right_password_is_refused_until_the_window_passes(context, fresh_site):
    """N failures, then the right password is refused (429); when the window has passed it works."""
    for _ in range(ATTEMPTS):
        page = login(context, fresh_site, "koord-nv", "wrong-password")
        assert "Feil brukernavn" in page.locator("#login-error").inner_text()
    page = login(context, fresh_site, "koord-nv")
    assert page.url == fresh_site.url + "/login"
    assert "For mange mislykkede forsøk" in page.locator("#login-error").inner_text()
    fresh_site.clock.advance(dt.timedelta(minutes=WINDOW_MINUTES, seconds=1))
    page = login(context, fresh_site, "koord-nv")
    assert page.url == fresh_site.url + "/"
    assert set(progress(page)) == {"NV"}


def test_the_limit_counts_the_client_address_across_user_names(context, fresh_site):
    """Failures spread over many names from one address block that address too."""
    for i in range(ATTEMPTS):
        login(context, fresh_site, f"guess{i}", "wrong-password")
    page = login(context, fresh_site, "hr-kari")
    assert "For mange" in page.locator("#login-error").inner_text()


def test_a_removed_user_is_logged_out_at_the_next_request(context, fresh_site, project):
    """The users file is re-read when it changes: removing a user ends their session."""
    from service.web.users import add_user

    users = project.dir / "users.toml"
    add_user(users, "temp-ie", "coordinator", "IE", "temporary-pw-1")
    page = login(context, fresh_site, "temp-ie", "temporary-pw-1")
    assert page.url == fresh_site.url + "/"
    assert remove_user(users, "temp-ie")
    page.goto(fresh_site.url + "/")
    assert page.url == fresh_site.url + "/login"


def test_logout_ends_the_session(context, site):
    page = login(context, site, "hr-kari")
    page.click("button#logout")
    page.wait_for_url(site.url + "/login")
    assert context.request.get(site.url + "/workbook.xlsx").status == 401


# -- without a login, and without a token --------------------------------------------------------


def test_without_a_login_the_download_is_401_and_pages_redirect(site):
    status, headers, body = fetch(site.url + "/workbook.xlsx?faculty=IE")
    assert status == 401 and not body.startswith(b"PK")
    status, headers, _ = fetch(site.url + "/")
    assert status == 303 and headers["location"] == "/login"


def test_a_post_without_the_csrf_token_is_403(context, site):
    """Login, logout and the language switch all need the session's token."""
    body = b"name=hr-kari&password=" + PASSWORDS["hr-kari"].encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert fetch(site.url + "/login", data=body, headers=form)[0] == 403
    page = login(context, site, "hr-kari")
    assert page.url == site.url + "/"
    for path, data in (
        ("/logout", {}),
        ("/language", {"lang": "en", "next": "/"}),
        ("/login", {"name": "hr-kari", "password": PASSWORDS["hr-kari"], "csrf": "forged"}),
    ):
        assert context.request.post(site.url + path, form=data).status == 403
    page.goto(site.url + "/")
    assert page.url == site.url + "/"  # still logged in: the forged logout did nothing


# -- language, phone, headers, health ---------------------------------------------------------------


def test_the_language_switch_changes_the_text_and_the_lang_attribute(context, site):
    page = context.new_page()
    page.goto(site.url + "/login")
    assert page.locator("html").get_attribute("lang") == "nb"
    assert page.locator("h1").inner_text() == "Logg inn"
    page.click("#language-switch")
    page.wait_for_load_state()
    assert page.url == site.url + "/login"
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Log in"
    page.fill("#name", "hr-kari")
    page.fill("#password", PASSWORDS["hr-kari"])
    page.click("button#login")
    page.wait_for_url(site.url + "/")
    assert page.locator("html").get_attribute("lang") == "en"  # the choice survives the login
    assert page.locator("#progress-h").inner_text() == "Progress per faculty"
    page.click("#language-switch")
    page.wait_for_load_state()
    assert page.url == site.url + "/"
    assert page.locator("#progress-h").inner_text() == "Framdrift per fakultet"


def test_accept_language_picks_english(browser, site):
    ctx = browser.new_context(locale="en-GB")
    try:
        page = ctx.new_page()
        page.goto(site.url + "/login")
        assert page.locator("html").get_attribute("lang") == "en"
    finally:
        ctx.close()


def test_pages_fit_a_360_px_phone(browser, site):
    """No horizontal scrolling on the login page or the dashboard at 360 px."""
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, locale="nb-NO", is_mobile=True)
    try:
        page = login(ctx, site, "hr-kari")
        assert page.url == site.url + "/"
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert page.locator("#download").is_visible()
        hf = page.locator('#missing tr[data-code="HF-U002"]')
        hf.locator("summary").click()  # the problems open within the card
        assert hf.locator(".problems li").first.is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        # a card shows what the unit has, each value with its label; nothing empty
        assert hf.locator("td.failing").is_hidden() and hf.locator(".stage").is_visible()
        failing = page.locator('#missing tr[data-code="HF-U005"] td.failing')
        assert failing.is_visible() and failing.bounding_box()["width"] <= 360
        page.goto(site.url + "/login")  # logged in: redirected to the dashboard
        page.click("button#logout")
        page.wait_for_url(site.url + "/login")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
    finally:
        ctx.close()


def test_security_headers_and_cookie_flags(site):
    status, headers, body = fetch(site.url + "/login")
    assert status == 200
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script" not in csp
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"
    cookie = headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # the test config has secure_cookies = false
    assert b"<script" not in body and b'name="viewport"' in body


def test_health_says_ok_without_campaign_data(site):
    status, _, body = fetch(site.url + "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok", "database": "ok"}


def test_health_is_503_when_the_database_is_not_there(tmp_path):
    p = web_project(tmp_path)
    from service.web.users import add_user

    add_user(p.dir / "users.toml", "hr", "hr", None, "hr-password-1")
    with serve(config_mod.load(p.config, p.env)) as s:  # never `init`ed: no schema
        status, _, body = fetch(s.url + "/healthz")
    assert status == 503 and json.loads(body)["status"] == "error"


def test_behind_a_proxy_the_root_path_prefixes_every_link(tmp_path, project):
    """With web.root_path, links, the stylesheet, redirects and the cookie path carry the prefix."""
    p = web_project(tmp_path, extra='root_path = "/skjemapost"\n')
    (p.dir / "users.toml").write_bytes((project.dir / "users.toml").read_bytes())
    with serve(config_mod.load(p.config, p.env)) as s:
        status, headers, _ = fetch(s.url + "/")
        assert status == 303 and headers["location"] == "/skjemapost/login"
        status, headers, body = fetch(s.url + "/login")
        assert status == 200 and b'href="/skjemapost/static/style.css"' in body
        assert b'action="/skjemapost/login"' in body and "path=/skjemapost;" in headers["set-cookie"]
        assert fetch(s.url + "/static/style.css")[0] == 200


def test_forwarded_headers_from_a_trusted_proxy_set_the_client_address(context, fresh_site):
    """Behind the proxy (127.0.0.1 is trusted), X-Forwarded-For is the address the limit counts."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    page = context.new_page()
    page.goto(fresh_site.url + "/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.content()).group(1)

    def post(client: str, name: str, password: str) -> int:
        r = context.request.post(
            fresh_site.url + "/login",
            headers={**form, "X-Forwarded-For": client},
            data=f"name={name}&password={password}&csrf={token}",
            max_redirects=0,
        )
        return r.status

    assert [post("192.0.2.7", f"n{i}", "x") for i in range(ATTEMPTS)] == [401] * ATTEMPTS
    assert post("192.0.2.7", "hr-kari", PASSWORDS["hr-kari"]) == 429
    assert post("192.0.2.8", "hr-kari", PASSWORDS["hr-kari"]) == 303


def test_skjemapost_serve_runs_as_a_process_and_stops_on_sigterm(project):
    """The command itself: uvicorn on the given loopback port, healthy, gone after SIGTERM."""
    import signal
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = project.popen("serve", "--host", "127.0.0.1", "--port", str(port))
    try:
        deadline = time.monotonic() + 30
        while True:  # a readiness wait for the process to listen
            try:
                status, _, body = fetch(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "skjemapost serve did not start"
                time.sleep(0.05)
        assert status == 200 and json.loads(body)["status"] == "ok"
        assert fetch(f"http://127.0.0.1:{port}/workbook.xlsx")[0] == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    # uvicorn shuts down cleanly, then re-raises SIGTERM (which systemd counts as a clean stop)
    assert proc.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in err
