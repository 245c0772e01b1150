"""`skjemapost demo`: a whole campaign, on simulated days, against mail servers inside this process.

The demo writes a folder (its config, roster, SQLite database, archive, every sent mail as .eml
and the master workbook), starts the embedded SMTP and IMAP servers (``demo.servers``) on loopback,
and replays the example campaign of autumn 2020 with a ``FixedClock``: invitations on the opening
day, then one turn a day until the escalation. Leaders act in the morning; at 10:00 the service
polls and runs the same ``Operations.cycle`` as `skjemapost run` (reminders, digests, the nightly
workbook). Nothing is mocked: the service's mail goes over SMTP to the servers; the leaders'
replies arrive in its INBOX as mail from outside does, and are read over IMAP, parsed,
classified, validated and answered by the production code.

The cast (units of ``config/roster.example.csv``), chosen so each kind of mail the service meets
shows up at least once: most leaders send a valid form, some on the first days and some after a
reminder or after the deadline; three send one with mistakes, get a correction and send it fixed;
one sends mistakes and never fixes them; one is away (an autoresponder answers the invitation,
the service must not answer it) and replies when back; one address no longer exists (the
invitation bounces: no reminders go to it); two never reply and are escalated.

The co-signature (docs/COSIGN.md): once a unit's form is valid the service asks its verneombud to
confirm it, and each verneombud answers the next morning from their own mailbox
(``demo.verneombud``): «Enig» from Outlook above the quoted request (nb), "Agree, thanks!" above
Gmail's quote (en). One disagrees in two sentences (``DISPUTES``: the leader and the coordinator
hear of it), one never answers (``NEVER_ANSWERS``: one reminder, five working days later), and
one unit's roster row has no address for its verneombud (``NO_VERNEOMBUD``: not asked).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from service.app.mailing import Mailing
from service.app.operations import Operations
from service.app.setup import Setup
from service.app.wiring import App
from service.campaign.cosign import CoSignState
from service.campaign.plan import plan
from service.campaign.roster import read_roster, write_csv
from service.campaign.workdays import is_working_day
from service.clock import FixedClock
from service.config import settings as config_mod
from service.config.settings import Config
from service.demo import verneombud
from service.demo.fill import fill, valid_answers, with_mistakes
from service.demo.servers import DemoServers
from service.errors import SkjemapostError
from service.jobs.poll import StopFlag
from service.models import Language, Unit
from service.store.reports import FacultyProgress

ROOT = Path(__file__).resolve().parents[2]  # the checkout: service/demo/ -> .
MARKER = ".skjemapost-demo"  # only a folder holding this is ever replaced
SERVICE = "hms-skjema@example.edu"
TOKEN_SECRET = "skjemapost-demo-secret-not-for-real-use"  # printed: lets `form check` work afterwards
ENV_SECRET, ENV_IMAP, ENV_WEB = (
    "SKJEMAPOST_DEMO_SECRET",
    "SKJEMAPOST_DEMO_IMAP_PASSWORD",
    "SKJEMAPOST_DEMO_WEB_SECRET",
)
TZ = "Europe/Oslo"
D = dt.date
OPENS, DEADLINE = D(2020, 11, 23), D(2020, 12, 16)

Action = Literal["valid", "mistakes"]
# (day, unit, what the leader sends that morning)
REPLIES: tuple[tuple[dt.date, str, Action], ...] = (
    (D(2020, 11, 24), "IE-IDI", "valid"),
    (D(2020, 11, 24), "IE-ADM", "valid"),  # one leader, two units
    (D(2020, 11, 25), "IE-IES", "valid"),
    (D(2020, 11, 26), "IE-IIK", "mistakes"),
    (D(2020, 11, 27), "NV-IBI", "valid"),
    (D(2020, 11, 30), "IE-IIK", "valid"),
    (D(2020, 11, 30), "HF-IFR", "valid"),
    (D(2020, 12, 1), "IE-ITK", "valid"),
    (D(2020, 12, 1), "HF-ADM", "valid"),
    (D(2020, 12, 3), "IE-IMF", "valid"),
    (D(2020, 12, 3), "NV-IFY", "mistakes"),
    (D(2020, 12, 4), "NV-IFY", "valid"),
    (D(2020, 12, 8), "NV-IKJ", "valid"),  # back from leave
    (D(2020, 12, 10), "NV-IBT", "valid"),
    (D(2020, 12, 10), "HF-IHR", "mistakes"),
    (D(2020, 12, 11), "HF-IKM", "valid"),
    (D(2020, 12, 14), "NV-ADM", "valid"),
    (D(2020, 12, 14), "HF-IMU", "mistakes"),
    (D(2020, 12, 15), "HF-IHR", "valid"),
    (D(2020, 12, 18), "NV-IKP", "valid"),  # after the deadline and its reminder
)
AWAY = (
    "NV-IKJ",
    "I am out of the office until 7 December 2020, with limited access to e-mail.\n"
    "Jeg er på permisjon til 7. desember 2020.",
)
BOUNCES = "IE-IEL"  # the leader's address no longer exists
SILENT = ("NV-IMT", "HF-ISL")  # never reply: reminders, then escalation
COORDINATORS = (
    ("IE", "Kari Nordmann", "kari.nordmann@example.edu"),
    ("NV", "Ola Hansen", "ola.hansen@example.edu"),
    ("HF", "Ingrid Berg", "ingrid.berg@example.edu"),
)
# the faculties' names, as the example config has them: the form and the mails show the name
FACULTIES = """[faculties]
IE = { nb = "Fakultet for informasjonsteknologi og elektroteknikk", en = "Faculty of Information Technology and Electrical Engineering" }
NV = { nb = "Fakultet for naturvitenskap", en = "Faculty of Natural Sciences" }
HF = { nb = "Det humanistiske fakultet", en = "Faculty of Humanities" }
"""
HR = "hr-hms@example.edu"
BHT = "bht@example.edu"
# the verneombud: each confirms the morning after the request (AGREE, in the unit's language) but
DISPUTES = (
    "NV-IBI",
    "Jeg er ikke enig i at alle ansatte var med på oppfølgingsmøtet. "
    "Vi hadde bare ett kort møte på Teams, og verkstedet var ikke invitert.",
)
NEVER_ANSWERS = "HF-IKM"  # one reminder, five working days after the request
NO_VERNEOMBUD = "HF-ADM"  # the roster names the verneombud but has no address: not asked
AGREE: dict[Language, str] = {"nb": "Enig", "en": "Agree, thanks!"}


class DemoError(SkjemapostError, RuntimeError):
    exit_code = 2


@dataclass
class DemoResult:
    folder: Path
    config: Config
    environ: dict[str, str]
    clock: FixedClock
    workbook: Path = Path()
    eml_dir: Path = Path()
    sent: int = 0  # messages that went out over SMTP (each one saved as .eml)
    status: list[FacultyProgress] = field(default_factory=list)
    mailbox: dict[str, int] = field(default_factory=dict)  # the service's folders -> messages, at the end
    cast: dict[str, str] = field(default_factory=dict)  # unit -> its part in the story
    states: dict[str, str] = field(default_factory=dict)  # unit -> where it stands at the end
    notices: dict[str, list[str]] = field(default_factory=dict)  # notice kind -> units it went for
    # each unit with a valid form -> its co-signature at the end (what its verneombud answered)
    cosign: dict[str, CoSignState] = field(default_factory=dict)

    @property
    def inbox_left(self) -> int:
        """Messages still in the service's INBOX at the end: none, when every one was handled."""
        return self.mailbox.get("INBOX", 0)


def shipped(relative: str) -> Path:
    """A file that ships with the checkout (the form, the templates, the example roster)."""
    path = ROOT / relative
    if not path.exists():
        raise DemoError(
            f"{path} is missing: the demo runs from a checkout installed with "
            "`pip install -e .`, which keeps forms/, templates/ and config/ beside service/"
        )
    return path


def prepare(folder: Path) -> Path:
    """Empty (or create) the demo folder and write its roster; refuse a folder that is not ours."""
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise DemoError(
            f"{folder} exists and is not a skjemapost demo folder (no {MARKER} in it); choose another --dir"
        )
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text(
        "Written by `skjemapost demo`; replaced by its next run.\n", encoding="utf-8"
    )
    units = read_roster(shipped("config/roster.example.csv"), "nb").units
    no_address = [replace(u, verneombud_email="") if u.code == NO_VERNEOMBUD else u for u in units]
    (folder / "roster.csv").write_text(write_csv(no_address), encoding="utf-8")
    return folder / "skjemapost.toml"


def write_config(path: Path, smtp_port: int, imap_port: int, web_port: int) -> None:
    def s(value: object) -> str:  # a TOML string (JSON's escapes are TOML's)
        return json.dumps(str(value), ensure_ascii=False)

    coordinators = "".join(
        f"[[coordinators]]\nfaculty = {s(f)}\nname = {s(n)}\nemail = {s(e)}\n\n" for f, n, e in COORDINATORS
    )

    path.write_text(
        f"""# Written by `skjemapost demo`: its campaign, against the mail servers inside it.
# The servers are gone when the demo ends; `status`, `compile` and `form check` still work:
#   {ENV_SECRET}={TOKEN_SECRET} skjemapost --config {s(path)} status --units

[campaign]
id = "demo-2020"
title = {{ nb = "Oppsummering og evaluering 2020 (demo)", en = "Summary and evaluation 2020 (demo)" }}
guidance_url = "https://innsida.ntnu.no/wiki/-/wiki/Norsk/Arbeidsmiljøundersøkelse+-+for+ledere"
form = {s(shipped("forms/oppsummering-og-evaluering.toml"))}
roster = "roster.csv"
opens = {OPENS}
deadline = {DEADLINE}
timezone = "{TZ}"
institution_domains = ["example.edu"]

[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"                             # loopback only
rate_per_minute = 100000
retry_base_seconds = 0.2

[imap]
host = "127.0.0.1"
port = {imap_port}
tls = "none"                             # loopback only
user = "{SERVICE}"
password_env = "{ENV_IMAP}"

[mail]
from_address = "{SERVICE}"
templates = {s(shipped("templates/email"))}

[inbox]
convert_with_libreoffice = false         # a fresh machine has no LibreOffice; the demo sends .xlsx

{coordinators}
{FACULTIES}
[hr]
recipients = ["{HR}"]

[notices]
hr_hms = ["{HR}"]
bht = ["{BHT}"]

[storage]
data_dir = "data"

[security]
token_secret_env = "{ENV_SECRET}"

[web]
port = {web_port}
users_file = "users.toml"
session_secret_env = "{ENV_WEB}"
secure_cookies = false                   # plain HTTP on loopback
""",
        encoding="utf-8",
    )


def run_demo(folder: Path, say: Callable[[str], None], *, web_port: int = 8080) -> DemoResult:
    """Run the whole demo campaign in ``folder``; ``say`` gets one line per simulated day."""
    config_path = prepare(folder)
    environ = {
        ENV_SECRET: TOKEN_SECRET,
        ENV_IMAP: secrets.token_urlsafe(12),
        ENV_WEB: secrets.token_urlsafe(32),
    }
    units = read_roster(folder / "roster.csv", "nb").units
    by_code = {u.code: u for u in units}
    addresses = {
        SERVICE,
        HR,
        BHT,
        *(e for _, _, e in COORDINATORS),
        *(a for u in units for a in (u.leader_email, u.verneombud_email, u.superior_email) if a),
    }
    addresses.discard(by_code[BOUNCES].leader_email)
    users = {a: (environ[ENV_IMAP] if a == SERVICE else secrets.token_urlsafe(8)) for a in addresses}
    clock = FixedClock(_at(OPENS, 8))
    servers = DemoServers(
        users, folder / "outbox-eml", now=clock.now, away={by_code[AWAY[0]].leader_email: AWAY[1]}
    )
    with servers:
        write_config(config_path, servers.smtp_port, servers.imap_port, web_port)
        config = config_mod.load(config_path, environ)
        result = DemoResult(folder, config, environ, clock, eml_dir=servers.eml_dir, cast=_cast())
        app = App(config, clock)
        try:
            _campaign(app, servers, by_code, say)
            result.workbook, _ = Operations(app).compile(folder / f"{config.campaign.id}.xlsx")
            result.status = Setup(app).status()
            states = Operations(app).states(include_inactive=False)
            result.states = {s.code: s.stage.value for s in states}
            result.cosign = {s.code: s.cosign for s in states if s.has_valid and s.cosign is not None}
            for row in app.store.outbox_rows(app.campaign_id, ["sent"]):
                if row.kind in ("challenges-notice", "help-notice"):
                    result.notices.setdefault(row.kind, []).append(row.unit_code or "")
        finally:
            app.close()
        result.sent = len(servers.saved)
        result.mailbox = {f: len(servers.messages(SERVICE, f)) for f in servers.folders(SERVICE)}
    return result


def _cast() -> dict[str, str]:
    """Each unit's part in the story, for the summary."""
    sends: dict[str, tuple[Action, ...]] = {}
    for _, code, what in REPLIES:
        sends[code] = (*sends.get(code, ()), what)
    parts = {
        ("valid",): "valid form",
        ("mistakes", "valid"): "form with mistakes, then fixed",
        ("mistakes",): "form with mistakes, never fixed",
    }
    cast = {code: parts[whats] for code, whats in sends.items()}
    cast[AWAY[0]] = "away (autoreply), then a valid form"
    cast[BOUNCES] = "address bounces"
    cast.update({code: "never replies" for code in SILENT})
    return cast


def verneombud_cast() -> dict[str, str]:
    """The verneombud who do not simply confirm, for the summary."""
    return {
        DISPUTES[0]: "disagrees in two sentences",
        NEVER_ANSWERS: "never answers",
        NO_VERNEOMBUD: "no address in the roster",
    }


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(TZ))


# how a day's inbox outcomes (the poller's "inbound.*" events) read in the progress line
INBOX_WORDS = {
    "receipt": "valid → receipt",
    "correction": "with mistakes → correction",
    "bounce-recorded": "bounce",
    "auto-reply-noted": "out-of-office (not answered)",
    "review": "for review",
    "cosign-confirmed": "verneombud confirmed",
    "cosign-disputed": "verneombud with a comment",
}
# the outreach a day's line counts (the answers to what came in are counted as it came in)
STEP_WORDS = {
    "leader-reminder-before": ("reminder", "reminders"),
    "leader-reminder-after": ("reminder after the deadline", "reminders after the deadline"),
    "leader-reminder-correction": ("reminder to correct", "reminders to correct"),
    "escalation": ("escalation (superior + coordinator)", "escalations (superior + coordinator)"),
    "verneombud-request": ("verneombud asked to confirm", "verneombud asked to confirm"),
    "verneombud-reminder": ("verneombud reminded", "verneombud reminded"),
}


def _campaign(app: App, servers: DemoServers, units: Mapping[str, Unit], say: Callable[[str], None]) -> None:
    """Day by day: leaders act at 08:30, then at 10:00 the service does what `send` (on the opening
    day) and `run` (every day: poll, remind, digest, nightly workbook) do."""
    config, clock = app.config, app.clock
    assert isinstance(clock, FixedClock)
    ops = Operations(app)
    stop = StopFlag()
    Setup(app).init()
    Setup(app).import_roster()
    steps = plan(config.campaign, config.schedule)
    seen = 0  # inbound events already reported
    went: set[int] = set()  # outbox rows already reported
    answered: set[str] = set()  # the requests the verneombud answered (Message-IDs)
    day = config.campaign.opens
    while day <= steps[-1].day:  # until the escalation
        clock.set(_at(day, 8, 30))
        replies = [(code, what, n) for n, (when, code, what) in enumerate(REPLIES) if when == day]
        for code, what, n in replies:
            _reply(app, servers, units[code], what, n)
        vo_replies = _cosign_answers(app, servers, units, answered)
        clock.set(_at(day, 10))
        parts = []
        if day == config.campaign.opens:
            Mailing(app).queue_invitations(Mailing(app).invitations_due())
            parts.append(f"{Mailing(app).drain().sent} invitations sent")
        done = ops.cycle(stop)
        events = app.store.events(app.campaign_id, "inbound.")
        outcomes = Counter(e["kind"].removeprefix("inbound.") for e in events[seen:])
        seen = len(events)
        if outcomes:
            parts.append("in: " + ", ".join(f"{n} {INBOX_WORDS.get(k, k)}" for k, n in outcomes.items()))
        elif replies or vo_replies:  # cannot happen unless the poll stopped early; say so
            parts.append(f"{len(replies) + len(vo_replies)} replies not read yet")
        new = [r for r in app.store.outbox_rows(app.campaign_id, ["sent", "bounced"]) if r.id not in went]
        sent = Counter(r.kind for r in new if r.kind in STEP_WORDS)
        went |= {r.id for r in new}
        parts += [f"{sent[k]} {words[sent[k] != 1]}" for k, words in STEP_WORDS.items() if sent[k]]
        if done.get("digests"):
            parts.append(f"{done['digests']} weekly digests (coordinators, HR)")
        idle = (
            "deadline"
            if day == config.campaign.deadline
            else "nothing new"
            if is_working_day(day, config.schedule.closed_days)
            else "weekend"
        )
        valid = sum(p.valid for p in Setup(app).status())
        say(f"{day:%a %d.%m.%Y}  valid {valid:>2}/{len(units)}  {'; '.join(parts) or idle}")
        day += dt.timedelta(days=1)


def _cosign_answers(
    app: App, servers: DemoServers, units: Mapping[str, Unit], answered: set[str]
) -> list[str]:
    """This morning's answers to the co-signature: each verneombud answers the requests that came
    before today in their mailbox, once each (``NEVER_ANSWERS`` never does); the units answered."""
    out = []
    today = app.today()
    tz = app.config.campaign.timezone
    for code, unit in units.items():
        if code == NEVER_ANSWERS or not unit.verneombud_email:
            continue
        reference = app.letters.reference(unit)
        for request in verneombud.requests(servers.messages(unit.verneombud_email), reference):
            when = request["Date"].datetime.astimezone(ZoneInfo(tz)).date()
            if request["Message-ID"] in answered or when >= today:
                continue
            sender = (unit.verneombud_name, unit.verneombud_email)
            now = app.clock.now()
            if code == DISPUTES[0]:
                raw = verneombud.outlook(request, sender, DISPUTES[1], now, tz)
            elif unit.language == "nb":
                raw = verneombud.outlook(request, sender, AGREE["nb"], now, tz)
            else:
                raw = verneombud.gmail(request, sender, AGREE["en"], now, tz)
            if not servers.deliver(unit.verneombud_email, SERVICE, raw):
                raise DemoError(f"the demo mail server does not know {SERVICE}")
            answered.add(request["Message-ID"])
            out.append(code)
    return out


def _reply(app: App, servers: DemoServers, unit: Unit, what: Action, variant: int) -> None:
    """``unit``'s leader fills in the form attached to their invitation and replies to it."""
    reference = app.letters.reference(unit)
    invitation = next(
        (
            m
            for m in (
                message_from_bytes(raw, policy=default_policy) for raw in servers.messages(unit.leader_email)
            )
            if f"[ref {reference}]" in str(m["Subject"]) and any(m.iter_attachments())
        ),
        None,
    )
    if invitation is None:
        raise DemoError(f"{unit.leader_email} has no mail with the form of {unit.code} to reply to")
    attachment = next(iter(invitation.iter_attachments()))
    assert isinstance(attachment, EmailMessage)
    today = app.today()
    answers = valid_answers(variant, today, unit.verneombud_name)
    if what == "mistakes":
        answers = with_mistakes(answers)
    data = fill(attachment.get_content(), app.form, answers, unit.language)
    msg = EmailMessage()
    msg["From"] = f"{unit.leader_name} <{unit.leader_email}>"
    msg["To"] = invitation["Reply-To"] or invitation["From"]
    msg["Subject"] = ("SV: " if unit.language == "nb" else "RE: ") + str(invitation["Subject"])
    msg["Date"] = format_datetime(app.clock.now())
    msg["Message-ID"] = make_msgid(domain="example.edu")
    msg["In-Reply-To"] = invitation["Message-ID"]
    msg["References"] = invitation["Message-ID"]
    msg.set_content("Her er skjemaet vårt.\n" if unit.language == "nb" else "Our form is attached.\n")
    msg.add_attachment(
        data,
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename=attachment.get_filename(),
    )
    if not servers.deliver(unit.leader_email, SERVICE, msg.as_bytes(policy=SMTP_POLICY)):
        raise DemoError(f"the demo mail server does not know {SERVICE}")
