"""The configuration: loaded once, validated once, every problem reported with its key path.

A config is a TOML file (see ``config/skjemapost.example.toml`` for every option and its default).
``load()`` reads it and the environment exactly once; nothing else in skjemapost reads
``os.environ``. Secrets never live in the file: the file names the environment variable that holds
each one, and a missing secret is only an error for the commands that need it (``Secrets.require``).
Relative paths in the file are read relative to the file's own folder.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.config.oauth import AUTH_MODES, AuthMode, OAuth, parse_oauth
from service.config.tomlkeys import KeyReader, as_date, domain, list_email
from service.config.web import Web, parse_web
from service.errors import ConfigError, Problem
from service.models import LANGUAGES, Language

TlsMode = Literal["implicit", "starttls", "none"]
TLS_MODES: tuple[TlsMode, ...] = ("implicit", "starttls", "none")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CAMPAIGN_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # fromisoformat alone also takes 20201224 and 2020-W52-4
DEFAULT_CONFIG = Path("config/skjemapost.toml")
CONFIG_ENV = "SKJEMAPOST_CONFIG"
#: ``campaign.closes`` when the config leaves it out: four weeks after the deadline, time for late
#: forms, the after-deadline reminder and the escalation to have had their effect
CLOSES_AFTER_DEADLINE = dt.timedelta(weeks=4)
#: ``mail.from_name`` when not set: the letter's HR- og HMS-avdelingen, in each language
DEFAULT_FROM_NAME: Mapping[Language, str] = {"nb": "HR- og HMS-avdelingen", "en": "HR and HSE Division"}


@dataclass(frozen=True)
class Campaign:
    id: str
    title: str
    form: Path
    roster: Path
    opens: dt.date
    deadline: dt.date
    timezone: str
    default_language: Language
    institution_domains: tuple[str, ...]
    #: the leaders' guidance page (the letter's Innsida page «Arbeidsmiljøundersøkelse – for
    #: ledere»); the form's help and the invitation link to it; "" = no link is shown
    guidance_url: str = ""
    #: the first day the campaign is closed: from then on nothing is sent but HR's final summary
    #: (docs/OPERATIONS.md); None (a Campaign built by hand) means the default after the deadline
    closes: dt.date | None = None
    #: the title in each language (``campaign.title.nb``/``.en``, or one string for all);
    #: ``title`` is the one in ``default_language``
    titles: Mapping[Language, str] = field(default_factory=dict)

    def title_for(self, lang: Language) -> str:
        """The campaign's title in ``lang``: what mails to a reader of that language and the form show."""
        return self.titles.get(lang) or self.title

    @property
    def closes_on(self) -> dt.date:
        """``campaign.closes``, or the deadline + ``CLOSES_AFTER_DEADLINE`` when not given."""
        return self.closes or self.deadline + CLOSES_AFTER_DEADLINE


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    tls: TlsMode
    user: str
    password_env: str
    auth: AuthMode  # "password" (AUTH PLAIN/LOGIN, when user is set) or "xoauth2" (see [oauth])
    timeout: float
    max_connections: int
    rate_per_minute: int
    retry_attempts: int
    retry_base_seconds: float
    ca_file: Path | None  # None: the system's trusted CAs


@dataclass(frozen=True)
class ImapFolders:
    processed: str
    review: str
    ignored: str
    quarantine: str
    sent: str  # "" = do not keep a copy of sent mail


@dataclass(frozen=True)
class Imap:
    host: str
    port: int
    tls: TlsMode
    user: str
    password_env: str
    auth: AuthMode
    inbox: str
    folders: ImapFolders
    ca_file: Path | None


@dataclass(frozen=True)
class Mail:
    from_address: str
    from_name: str
    reply_to: str
    reply_to_plus_token: bool
    cc_verneombud: bool
    auto_submitted_on_outreach: bool
    max_per_address_per_hour: int
    templates: Path
    digest_workbook: bool  # attach the faculty's slice of the master workbook to its digest
    #: the sender's name in each language (``mail.from_name.nb``/``.en``, or one string for all);
    #: ``from_name`` is the one in the campaign's default language
    from_names: Mapping[Language, str] = field(default_factory=dict)

    def from_name_for(self, lang: Language) -> str:
        """Who the mail is from, in ``lang``: the From display name and every signature."""
        return self.from_names.get(lang) or self.from_name

    @property
    def inbox_address(self) -> str:
        """The address whose inbox skjemapost reads: replies and bounces (MAIL FROM) go here."""
        return self.reply_to or self.from_address


@dataclass(frozen=True)
class Inbox:
    max_attachment_mb: int
    max_unpacked_mb: int
    max_rows: int
    convert_with_libreoffice: bool  # read .ods/.xls by converting them; else ask for .xlsx


@dataclass(frozen=True)
class Coordinator:
    faculty: str
    name: str
    email: str


@dataclass(frozen=True)
class Observer:
    """``[[observers]]``: copied on the letter (HVO, the unions); a weekly digest of numbers only."""

    name: str
    email: str
    language: Language


@dataclass(frozen=True)
class Schedule:
    reminder_days_before: tuple[int, ...]
    reminder_after_deadline: bool
    escalation_working_days: int
    max_reminders: int
    send_hour: int
    digest_weekday: str
    digest_hour: int
    poll_minutes: int
    compile_hour: int = 2  # `run` writes the master workbook once a day from this local hour
    # days the institution is closed on top of Norway's public holidays (romjul, local days):
    # non-working days for every step, the send time and the digest day
    closed_days: tuple[dt.date, ...] = ()
    # the first weekly digest goes on the first digest day at least this many working days after
    # the invitations, when they have had time to be answered
    first_digest_after_working_days: int = 5


@dataclass(frozen=True)
class Storage:
    data_dir: Path
    database_url: str


@dataclass(frozen=True)
class Secrets:
    """Secrets read from the environment at load time; ``None`` where the variable was unset."""

    token_secret_env: str
    values: Mapping[str, str | None] = field(default_factory=dict)

    def get(self, env_name: str) -> str | None:
        return self.values.get(env_name)

    def require(self, env_name: str, purpose: str) -> str:
        """The secret in ``env_name``, or a ConfigError saying which variable to set and why."""
        value = self.values.get(env_name)
        if not value:
            raise ConfigError([Problem(env_name, f"environment variable is not set; it holds {purpose}")])
        return value

    def token_secret(self) -> bytes:
        return self.require(self.token_secret_env, "the secret behind the reference tokens").encode()


@dataclass(frozen=True)
class Notices:
    """``[notices]``: who hears about a unit's answers beyond the digest (see docs/STATES.md)."""

    special_challenges: bool = True  # the superior leader and the coordinator, once per change
    help_requests: bool = True  # whoever the unit asks for help
    hr_hms: tuple[str, ...] = ()  # HR- og HMS-avdelingen; none: a note in the HR digest
    bht: tuple[str, ...] = ()  # Bedriftshelsetjenesten; none: a note in the HR digest


CosignMode = Literal["off", "ask", "required"]
COSIGN_MODES: tuple[CosignMode, ...] = ("off", "ask", "required")


@dataclass(frozen=True)
class Cosign:
    """``[cosign]``: the verneombud confirms the form by email (campaign/cosign.py).

    ``mode``: "off" (nobody is asked), "ask" (the verneombud is asked to confirm each valid
    version; the unit counts as done with its valid form) or "required" (a unit counts as done only
    once its verneombud confirmed). ``reminder_working_days``: one reminder that many working days
    after the request, while no answer has come."""

    mode: CosignMode = "ask"
    reminder_working_days: int = 5


@dataclass(frozen=True)
class FacultyName:
    """``[faculties]``: the name of a faculty (or the museum, the joint administration) whose
    code the roster's faculty column holds; the form shows it beside the code."""

    code: str
    nb: str
    en: str


@dataclass(frozen=True)
class Config:
    path: Path
    campaign: Campaign
    smtp: Smtp
    imap: Imap
    mail: Mail
    inbox: Inbox
    coordinators: tuple[Coordinator, ...]
    hr_recipients: tuple[str, ...]
    schedule: Schedule
    storage: Storage
    secrets: Secrets
    web: Web
    oauth: OAuth
    notices: Notices = Notices()
    observers: tuple[Observer, ...] = ()
    faculties: tuple[FacultyName, ...] = ()
    cosign: Cosign = Cosign()

    def coordinators_for(self, faculty: str) -> tuple[Coordinator, ...]:
        return tuple(c for c in self.coordinators if c.faculty == faculty)

    def title_for(self, lang: Language) -> str:
        """The campaign's title in ``lang`` (``Campaign.title_for``)."""
        return self.campaign.title_for(lang)

    def from_name_for(self, lang: Language) -> str:
        """The sender's name in ``lang`` (``Mail.from_name_for``)."""
        return self.mail.from_name_for(lang)


def resolve_path(cli_path: str | Path | None, environ: Mapping[str, str]) -> Path:
    """Where the config is: ``--config``, else ``$SKJEMAPOST_CONFIG``, else config/skjemapost.toml."""
    if cli_path:
        return Path(cli_path)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return DEFAULT_CONFIG


def load(path: Path, environ: Mapping[str, str]) -> Config:
    """Read and validate the config at ``path``; raise ConfigError listing every problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), "no such file")], str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(str(path), f"not valid TOML: {exc}")], str(path)) from None
    return parse(raw, path, environ)


def parse(raw: Mapping[str, Any], path: Path, environ: Mapping[str, str]) -> Config:
    """Validate an already parsed TOML document; see ``load``."""
    r = KeyReader(raw, path.resolve().parent)
    campaign = _campaign(r)
    smtp = Smtp(
        host=r.text("smtp.host", "127.0.0.1"),
        port=r.integer("smtp.port", 587, 1, 65535),
        tls=cast(TlsMode, r.choice("smtp.tls", TLS_MODES, "starttls")),
        user=r.text("smtp.user", "", nonempty=False),
        password_env=r.env_name("smtp.password_env", "SKJEMAPOST_SMTP_PASSWORD"),
        auth=cast(AuthMode, r.choice("smtp.auth", AUTH_MODES, "password")),
        timeout=float(r.integer("smtp.timeout_seconds", 30, 1, 600)),
        max_connections=r.integer("smtp.max_connections", 4, 1, 32),
        rate_per_minute=r.integer("smtp.rate_per_minute", 600, 1, 100_000),
        retry_attempts=r.integer("smtp.retry_attempts", 4, 1, 20),
        retry_base_seconds=r.number("smtp.retry_base_seconds", 2.0, 0.0, 600.0),
        ca_file=r.optional_file("smtp.ca_file"),
    )
    imap = Imap(
        host=r.text("imap.host", "127.0.0.1"),
        port=r.integer("imap.port", 993, 1, 65535),
        tls=cast(TlsMode, r.choice("imap.tls", TLS_MODES, "implicit")),
        user=r.text("imap.user", "", nonempty=False),
        password_env=r.env_name("imap.password_env", "SKJEMAPOST_IMAP_PASSWORD"),
        auth=cast(AuthMode, r.choice("imap.auth", AUTH_MODES, "password")),
        inbox=r.text("imap.inbox", "INBOX"),
        folders=ImapFolders(
            processed=r.text("imap.folders.processed", "Skjemapost/Behandlet"),
            review=r.text("imap.folders.review", "Skjemapost/Til vurdering"),
            ignored=r.text("imap.folders.ignored", "Skjemapost/Ignorert"),
            quarantine=r.text("imap.folders.quarantine", "Skjemapost/Karantene"),
            sent=r.text("imap.folders.sent", "", nonempty=False),
        ),
        ca_file=r.optional_file("imap.ca_file"),
    )
    from_names = in_each_language(r, "mail.from_name", DEFAULT_FROM_NAME)
    mail = Mail(
        from_address=r.email("mail.from_address"),
        from_name=from_names[campaign.default_language],
        from_names=from_names,
        reply_to=r.email("mail.reply_to", ""),
        reply_to_plus_token=r.flag("mail.reply_to_plus_token", False),
        cc_verneombud=r.flag("mail.cc_verneombud", True),
        auto_submitted_on_outreach=r.flag("mail.auto_submitted_on_outreach", False),
        max_per_address_per_hour=r.integer("mail.max_per_address_per_hour", 5, 1, 1000),
        templates=r.path("mail.templates", "../templates/email"),
        digest_workbook=r.flag("mail.digest_workbook", False),
    )
    inbox = Inbox(
        max_attachment_mb=r.integer("inbox.max_attachment_mb", 10, 1, 100),
        max_unpacked_mb=r.integer("inbox.max_unpacked_mb", 50, 1, 1000),
        max_rows=r.integer("inbox.max_rows", 1000, 50, 100_000),
        convert_with_libreoffice=r.flag("inbox.convert_with_libreoffice", True),
    )
    coordinators = _coordinators(r)
    hr = tuple(list_email(r, f"hr.recipients[{i}]", item) for i, item in enumerate(r.items("hr.recipients")))
    schedule = _schedule(r, campaign)
    observers = _observers(r, campaign.default_language)
    faculties = _faculties(r)
    notices = Notices(
        special_challenges=r.flag("notices.special_challenges", True),
        help_requests=r.flag("notices.help_requests", True),
        hr_hms=tuple(
            list_email(r, f"notices.hr_hms[{i}]", item) for i, item in enumerate(r.items("notices.hr_hms"))
        ),
        bht=tuple(list_email(r, f"notices.bht[{i}]", item) for i, item in enumerate(r.items("notices.bht"))),
    )
    cosign = Cosign(
        mode=cast(CosignMode, r.choice("cosign.mode", COSIGN_MODES, "ask")),
        reminder_working_days=r.integer("cosign.reminder_working_days", 5, 1, 60),
    )
    data_dir = r.path("storage.data_dir", "../data")
    url = r.text("storage.database_url", "", nonempty=False)
    storage = Storage(data_dir=data_dir, database_url=url or f"sqlite:///{data_dir / 'skjemapost.db'}")
    token_env = r.env_name("security.token_secret_env", "SKJEMAPOST_SECRET")
    web = parse_web(r)
    oauth = parse_oauth(r, needed="xoauth2" in (smtp.auth, imap.auth))
    for server in ("smtp", "imap"):
        if r._get(f"{server}.auth") == "xoauth2" and not r._get(f"{server}.user"):
            r.bad(f"{server}.user", "is required with xoauth2: the mailbox address to log in as")
    r.unknown_keys()
    if r.problems:
        raise ConfigError(r.problems, str(path))
    names = {
        token_env,
        smtp.password_env,
        imap.password_env,
        web.session_secret_env,
        oauth.client_secret_env,
        oauth.certificate_env,
    }
    secrets = Secrets(token_env, {n: environ.get(n) or None for n in names})
    return Config(
        path.resolve(),
        campaign,
        smtp,
        imap,
        mail,
        inbox,
        coordinators,
        hr,
        schedule,
        storage,
        secrets,
        web,
        oauth,
        notices,
        observers,
        faculties,
        cosign=cosign,
    )


def _campaign(r: KeyReader) -> Campaign:
    cid = r.text("campaign.id")
    if cid and not CAMPAIGN_ID.match(cid):
        r.bad("campaign.id", f"{cid!r} must be lower-case letters, digits and dashes (≤ 40)")
    tz = r.text("campaign.timezone", "Europe/Oslo")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        r.bad("campaign.timezone", f"unknown time zone {tz!r}")
    opens, deadline = r.date("campaign.opens"), r.date("campaign.deadline")
    if opens > deadline:
        r.bad("campaign.deadline", f"{deadline} is before campaign.opens {opens}")
    closes = deadline + CLOSES_AFTER_DEADLINE
    if r._get("campaign.closes") is not None:
        closes = r.date("campaign.closes")
        if closes <= deadline:
            r.bad(
                "campaign.closes",
                f"{closes} is not after campaign.deadline {deadline}: it is the first day the "
                "campaign is closed (nothing more is sent), so it must come after the deadline",
            )
    domains = tuple(
        domain(r, f"campaign.institution_domains[{i}]", d)
        for i, d in enumerate(r.items("campaign.institution_domains"))
    )
    default_language = cast(Language, r.choice("campaign.default_language", LANGUAGES, "nb"))
    titles = in_each_language(r, "campaign.title")
    return Campaign(
        id=cid,
        title=titles[default_language],
        titles=titles,
        form=r.path("campaign.form", "../forms/oppsummering-og-evaluering.toml"),
        roster=r.path("campaign.roster", "roster.csv"),
        opens=opens,
        deadline=deadline,
        timezone=tz,
        default_language=default_language,
        institution_domains=domains,
        closes=closes,
        guidance_url=_web_address(r, "campaign.guidance_url"),
    )


def in_each_language(
    r: KeyReader, key: str, default: Mapping[Language, str] | None = None
) -> dict[Language, str]:
    """``key`` as one string for every language, or as a table with a string per language
    (``key.nb``, ``key.en``); each must be non-empty. ``default`` when the key is absent (None:
    the key is required)."""
    got = r._get(key)  # marks the whole table read: its keys are checked here
    if got is None and default is not None:
        return dict(default)
    every = " and ".join(LANGUAGES)
    if isinstance(got, Mapping):
        for other in sorted(set(got) - set(LANGUAGES)):
            r.bad(f"{key}.{other}", f"unknown language; the table takes {every}")
        out: dict[Language, str] = {}
        for lang in LANGUAGES:
            text = got.get(lang)
            if not isinstance(text, str) or not text.strip():
                r.bad(
                    f"{key}.{lang}", f"missing or empty: give it in every language ({every}), or one string"
                )
            out[lang] = text.strip() if isinstance(text, str) else ""
        return out
    if got is None:
        r.bad(key, f"missing; expected a string, or a table with {every}")
        return {lang: "" for lang in LANGUAGES}
    if not isinstance(got, str) or not got.strip():
        r.bad(key, f"expected a non-empty string, or a table with {every}; got {got!r}")
        return {lang: "" for lang in LANGUAGES}
    return {lang: got.strip() for lang in LANGUAGES}


def _web_address(r: KeyReader, key: str) -> str:
    """An optional http(s) address shown to people as a link; "" when not set."""
    url = r.text(key, "", nonempty=False).strip()
    if url and (not re.match(r"^https?://[^\s/]+", url) or re.search(r"\s", url)):
        r.bad(key, f"{url!r} must be a web address starting with https:// (no spaces)")
    return url


def _coordinators(r: KeyReader) -> tuple[Coordinator, ...]:
    out = []
    for i, item in enumerate(r.items("coordinators")):
        key = f"coordinators[{i}]"
        if not isinstance(item, Mapping):
            r.bad(key, "expected a table with faculty, name and email")
            continue
        sub = KeyReader(item, r.base)
        c = Coordinator(sub.text("faculty"), sub.text("name"), sub.email("email"))
        sub.unknown_keys()
        r.problems.extend(Problem(f"{key}.{p.where}", p.message) for p in sub.problems)
        out.append(c)
    return tuple(out)


def _schedule(r: KeyReader, campaign: Campaign) -> Schedule:
    days = []
    given = r.items("schedule.reminder_days_before")
    if r._get("schedule.reminder_days_before") is None:
        given = [14, 7, 2]
    for i, d in enumerate(given):
        key = f"schedule.reminder_days_before[{i}]"
        if not isinstance(d, int) or isinstance(d, bool) or d < 1:
            # 0 or less would fall on or after the deadline: that is the after-deadline reminder
            r.bad(key, f"{d!r} must be a whole number of days before the deadline, at least 1")
            continue
        if campaign.deadline - dt.timedelta(days=d) < campaign.opens:
            r.bad(key, f"{d} days before the deadline falls before campaign.opens")
        days.append(d)
    if len(set(days)) != len(days):
        r.bad("schedule.reminder_days_before", "has the same offset twice")
    weekday = r.text("schedule.digest_weekday", "monday").lower()
    if weekday not in WEEKDAYS:
        r.bad("schedule.digest_weekday", f"{weekday!r} is not a weekday name ({', '.join(WEEKDAYS)})")
    return Schedule(
        reminder_days_before=tuple(sorted(days, reverse=True)),
        reminder_after_deadline=r.flag("schedule.reminder_after_deadline", True),
        escalation_working_days=r.integer("schedule.escalation_working_days", 3, 0, 60),
        max_reminders=r.integer("schedule.max_reminders", 5, 0, 50),
        send_hour=r.integer("schedule.send_hour", 9, 0, 23),
        digest_weekday=weekday,
        digest_hour=r.integer("schedule.digest_hour", 8, 0, 23),
        poll_minutes=r.integer("schedule.poll_minutes", 5, 1, 1440),
        compile_hour=r.integer("schedule.compile_hour", 2, 0, 23),
        closed_days=_closed_days(r),
        first_digest_after_working_days=r.integer("schedule.first_digest_after_working_days", 5, 0, 30),
    )


def _faculties(r: KeyReader) -> tuple[FacultyName, ...]:
    """``[faculties]``: CODE = "name", or CODE = { nb = "…", en = "…" }; optional."""
    table = r._get("faculties")  # reading the table marks its keys known; each is checked here
    if table is None:
        return ()
    if not isinstance(table, Mapping):
        r.bad("faculties", 'expected a table of CODE = "name" or CODE = { nb = "…", en = "…" }')
        return ()
    out = []
    for code, value in table.items():
        names = {"nb": value, "en": value} if isinstance(value, str) else value
        if (
            not isinstance(names, Mapping)
            or not names
            or set(names) - {"nb", "en"}
            or not all(isinstance(n, str) and n.strip() for n in names.values())
        ):
            r.bad(f"faculties.{code}", 'expected the name, or { nb = "…", en = "…" }')
            continue
        nb = str(names.get("nb") or names["en"]).strip()
        out.append(FacultyName(str(code), nb, str(names.get("en") or nb).strip()))
    return tuple(out)


def _observers(r: KeyReader, default_language: Language) -> tuple[Observer, ...]:
    """``[[observers]]``: name, email and (optional) language of each; bad entries named by index."""
    out = []
    for i, item in enumerate(r.items("observers")):
        key = f"observers[{i}]"
        if not isinstance(item, Mapping):
            r.bad(key, "expected a table with name, email and language")
            continue
        sub = KeyReader(item, r.base)
        lang = cast(Language, sub.choice("language", LANGUAGES, default_language))
        o = Observer(sub.text("name"), sub.email("email"), lang)
        sub.unknown_keys()
        r.problems.extend(Problem(f"{key}.{p.where}", p.message) for p in sub.problems)
        out.append(o)
    return tuple(out)


def _closed_days(r: KeyReader) -> tuple[dt.date, ...]:
    """``schedule.closed_days``: TOML dates, or "YYYY-MM-DD" strings; each bad entry named by index."""
    out: set[dt.date] = set()
    for i, item in enumerate(r.items("schedule.closed_days")):
        strict = not isinstance(item, str) or ISO_DATE.match(item.strip())
        day = as_date(item) if strict else None
        if day is None:
            r.bad(f"schedule.closed_days[{i}]", f"expected a date YYYY-MM-DD, got {item!r}")
        else:
            out.add(day)
    return tuple(sorted(out))
