"""A seeded project served by `skjemapost serve`'s own app on a free 127.0.0.1 port, in a thread.

Nine units over IE/NV/HF (three each), with submissions, mails, a bounce and an out-of-office
reply stored straight into the store (no mail servers), users for HR and each faculty's
coordinator, and a FixedClock the tests can move.
"""

from __future__ import annotations

import datetime as dt
import http.client
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from projects import Project, new_project

from harness.filling import answers_with_mistakes, valid_answers
from service.app.wiring import App
from service.clock import FixedClock
from service.config import settings as config_mod
from service.config.settings import Config
from service.forms.answers import raised_flags, to_json
from service.models import Decision, NewMail, NewSubmission
from service.web.app import server_config
from service.web.users import add_user

WEB_SECRET = "web-session-secret-for-tests-0123456789"
T0 = dt.datetime(2020, 12, 1, 8, 30, tzinfo=dt.UTC)
NOW = dt.datetime(2020, 12, 8, 9, 0, tzinfo=dt.UTC)
PROBLEMS = (
    {"cell": "Skjema!C14", "label": "Antall ansatte", "message": "«Antall ansatte» må være et helt tall."},
    {"cell": "Skjema!C20", "label": "Dato", "message": "Fyll inn datoen for oppfølgingsmøtet."},
)
BOUNCE = "550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table"
PASSWORDS = {"hr-kari": "hr-password-1", "koord-ie": "ie-password-1", "koord-nv": "nv-password-1"}
ATTEMPTS = 3
WINDOW_MINUTES = 15


def web_project(tmp_path: Path, *, extra: str = "") -> Project:
    p = new_project(
        tmp_path,
        9,
        extra=(
            f"[web]\nsecure_cookies = false\nlogin_attempts = {ATTEMPTS}\n"
            f'login_window_minutes = {WINDOW_MINUTES}\nusers_file = "users.toml"\n{extra}'
        ),
    )
    p.env["SKJEMAPOST_WEB_SECRET"] = WEB_SECRET
    return p


def seed(p: Project) -> None:
    """init + roster; IE: 2 valid (one flagged) of 3; NV: 1 valid; HF: 1 invalid (two problems,
    a correction sent); 3 in review. IE-U006 invited, reminded and escalated; HF-U005's leader's
    address bounced; NV-U007's leader is away until 14 Dec (after NOW)."""
    p.setup()
    app = App(config_mod.load(p.config, p.env))
    try:
        submit(app, 1, "IE-U000", valid_answers(1), True)  # variant 1: no flags
        submit(app, 2, "IE-U003", valid_answers(0), True)  # variant 0: flags rise
        submit(app, 3, "NV-U001", valid_answers(5), True)
        submit(app, 4, "HF-U002", answers_with_mistakes(1), False, PROBLEMS)
        for n, code in ((5, "IE-U006"), (6, "NV-U004"), (7, None)):
            review(app, n, code)
        mail(app, "HF-U002", "leader-correction", "correction:1", T0 + dt.timedelta(hours=4, minutes=5))
        mail(app, "IE-U006", "leader-invitation", "invitation", dt.datetime(2020, 11, 23, 8, tzinfo=dt.UTC))
        mail(
            app,
            "IE-U006",
            "leader-reminder-before",
            "reminder-before:1",
            dt.datetime(2020, 12, 2, 8, tzinfo=dt.UTC),
        )
        mail(app, "IE-U006", "escalation", "escalation", dt.datetime(2020, 12, 7, 8, tzinfo=dt.UTC))
        leaders = {u.code: u.leader_email for u in p.units}
        bounce(app, 8, leaders["HF-U005"], BOUNCE.format(address=leaders["HF-U005"]))
        away(app, 9, "NV-U007", leaders["NV-U007"], dt.date(2020, 12, 14))
    finally:
        app.close()
    users = p.dir / "users.toml"
    add_user(users, "hr-kari", "hr", None, PASSWORDS["hr-kari"])
    add_user(users, "koord-ie", "coordinator", "IE", PASSWORDS["koord-ie"])
    add_user(users, "koord-nv", "coordinator", "NV", PASSWORDS["koord-nv"])


def _inbound(app: App, n: int, sender: str = "") -> tuple[int, dt.datetime]:
    at = T0 + dt.timedelta(hours=n)
    row = app.store.store_inbound(
        app.campaign_id,
        message_id=f"<m{n}@example.test>",
        folder="INBOX",
        uidvalidity=1,
        uid=n,
        received_at=at,
        sender=sender or f"s{n}@example.test",
        subject="skjema",
        raw_path=f"raw/{n}.eml",
        sha256=f"{n:064x}",
        now=at,
    )
    return row, at


def submit(
    app: App,
    n: int,
    code: str,
    answers: dict[str, object],
    valid: bool,
    problems: tuple[dict[str, str], ...] = (),
) -> None:
    row, at = _inbound(app, n)
    flags = tuple(raised_flags(app.form, answers)) if valid else ()
    sub = NewSubmission(
        code, at, f"s{n}@example.test", valid, to_json(answers), problems, flags, "skjema.xlsx", f"{n:064d}"
    )
    outcome = "receipt" if valid else "correction"
    decision = Decision("submission", outcome, "Behandlet", code, submissions=(sub,))
    app.store.record_decision(app.campaign_id, row, decision, at)


def review(app: App, n: int, code: str | None) -> None:
    row, at = _inbound(app, n)
    app.store.record_decision(app.campaign_id, row, Decision("unknown", "review", "Til vurdering", code), at)


def mail(app: App, code: str, kind: str, key: str, at: dt.datetime) -> None:
    """A mail about ``code`` in the outbox, as the chase would have queued it at ``at``."""
    new = NewMail(
        kind,
        code,
        f"{app.campaign_id}:{code}:{key}",
        f"<{key}.{code}@example.test>",
        ("x@example.test",),
        "x",
        b"x",
    )
    app.store.queue(app.campaign_id, [new], at)


def bounce(app: App, n: int, address: str, reason: str) -> None:
    row, at = _inbound(app, n, "mailer-daemon@example.test")
    decision = Decision("bounce", "bounce-recorded", "Ignorert", failing_addresses=((address, reason),))
    app.store.record_decision(app.campaign_id, row, decision, at)


def away(app: App, n: int, code: str, leader: str, back: dt.date) -> None:
    """The leader's out-of-office reply: back on ``back``."""
    row, at = _inbound(app, n, leader)
    decision = Decision(
        "auto-reply",
        "auto-reply-noted",
        "Ignorert",
        code,
        {"address": leader, "returns_on": back.isoformat()},
    )
    app.store.record_decision(app.campaign_id, row, decision, at)


@dataclass
class Site:
    url: str
    config: Config
    clock: FixedClock
    server: uvicorn.Server


@contextmanager
def serve(config: Config, clock: FixedClock | None = None) -> Iterator[Site]:
    """The app on a free loopback port until the block ends."""
    clock = clock or FixedClock(NOW)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = server_config(config, clock, host="127.0.0.1", port=port)
    settings.access_log = False
    server = uvicorn.Server(settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:  # a readiness wait, not a wait for time to pass
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web app did not start")
        time.sleep(0.01)
    try:
        yield Site(f"http://127.0.0.1:{port}", config, clock, server)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def fetch(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """(status, headers, body) without following redirects or raising on 4xx/5xx."""
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
