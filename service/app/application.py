"""The operations behind the CLI (and later the web page and the runner), one method each.

``App`` ties a loaded config to the store, the form definition and a clock. It holds no logic of
its own beyond putting those parts together: the CLI stays a few lines per command, and tests
drive the same methods the commands do.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from imap_tools import BaseMailBox

from service.campaign.roster import Roster, read_roster
from service.clock import Clock, SystemClock
from service.config.settings import Config
from service.errors import Problem, ProblemsError, SkjemapostError
from service.forms.build import build_form
from service.forms.definition import load_form
from service.forms.intake import soffice_converter
from service.forms.model import FormDef, FormReading
from service.forms.read import read_form
from service.forms.validate import validate
from service.jobs.decide import Processor
from service.jobs.drain import DrainReport, Transport, drain_once
from service.jobs.match import Directory, match_form
from service.jobs.poll import Archive, PollReport, poll_once, settle_review
from service.mail import tokens
from service.mail.letters import Letters
from service.mail.parser import parse
from service.mail.render import Renderer
from service.models import Decision, Language, NewMail, Unit
from service.net.imap import ImapSettings, SentCopies
from service.net.imap import connect as connect_imap
from service.net.oauth import TokenSource, credential_from
from service.net.smtp import Result, SmtpSettings
from service.store.base import shown_url
from service.store.database import Store
from service.store.inbox import InboundRow
from service.store.outbox import OutboxRow
from service.store.reports import FacultyProgress, UnitRecord
from service.store.roster import CampaignInfo, RosterDiff

ShellCheck = Callable[[Config], tuple[list[str], list[str]]]
"""(facts, problems) that a shell adds to `skjemapost check`."""


class ReviewError(SkjemapostError, ValueError):
    exit_code = 2


@dataclass(frozen=True)
class CheckReport:
    """What `skjemapost check` found: facts worth saying, and problems (errors) if any."""

    facts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FormCheck:
    """What `skjemapost form check` found in a filled form."""

    reading: FormReading
    unit: Unit | None
    language: Language
    match: str  # how the unit was recognised, or why it was not
    problems: list[Problem]


class App:
    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._checked = False

    @cached_property
    def store(self) -> Store:
        return Store.open(self.config.storage.database_url)

    @cached_property
    def form(self) -> FormDef:
        return load_form(self.config.campaign.form)

    def _ready(self) -> None:
        """Check once per App that the database schema is current (it cannot change under us)."""
        if not self._checked:
            self.store.require_current()
            self._checked = True

    @property
    def campaign_id(self) -> str:
        return self.config.campaign.id

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    @cached_property
    def renderer(self) -> Renderer:
        return Renderer(self.config.mail.templates, timezone=self.config.campaign.timezone)

    @cached_property
    def letters(self) -> Letters:
        return Letters(self.config, self.form, self.renderer, self.config.secrets.token_secret())

    @cached_property
    def oauth_tokens(self) -> TokenSource:
        """One token source for the App's life, shared by SMTP and IMAP: msal caches the token
        until shortly before it expires, so connections and polls reuse it."""
        return TokenSource.from_config(self.config.oauth, self.config.secrets)

    def smtp_settings(self) -> SmtpSettings:
        s = self.config.smtp
        oauth = self.oauth_tokens if s.auth == "xoauth2" else None
        password = (
            self.config.secrets.require(s.password_env, f"the password of SMTP user {s.user}")
            if s.user and oauth is None
            else None
        )
        return SmtpSettings.from_config(s, password=password, oauth=oauth)

    def imap_settings(self) -> ImapSettings:
        i = self.config.imap
        oauth = self.oauth_tokens if i.auth == "xoauth2" else None
        password = (
            None
            if oauth
            else self.config.secrets.require(i.password_env, f"the password of IMAP user {i.user}")
        )
        return ImapSettings.from_config(i, password=password, oauth=oauth)

    def transport(self) -> Transport:
        sent_folder = self.config.imap.folders.sent
        copies = SentCopies(self.imap_settings(), sent_folder) if sent_folder else None
        return Transport(
            self.smtp_settings(),
            self.config.mail.inbox_address,
            copies,
            self.config.mail.inbox_address if copies else "",
        )

    def campaign_info(self) -> CampaignInfo:
        c = self.config.campaign
        return CampaignInfo(c.id, c.title, self.form.id, self.form.version, c.opens, c.deadline, c.timezone)

    # -- init, check, roster ------------------------------------------------------------------

    def init(self) -> tuple[str | None, str, bool]:
        """Create or upgrade the database and record the campaign; (from, to, campaign is new)."""
        self.config.storage.data_dir.mkdir(parents=True, exist_ok=True)
        before, after = self.store.upgrade()
        created = self.store.ensure_campaign(self.campaign_info(), self.clock.now())
        return before, after, created

    def read_roster(self, path: Path | None = None) -> Roster:
        return read_roster(path or self.config.campaign.roster, self.config.campaign.default_language)

    def import_roster(self, path: Path | None = None) -> tuple[Roster, RosterDiff]:
        self._ready()
        roster = self.read_roster(path)
        return roster, self.store.import_roster(self.campaign_id, roster.units, self.clock.now())

    def check(self, *, shells: Sequence[ShellCheck] = ()) -> CheckReport:
        """Validate everything the config points at, collecting every problem rather than stopping.

        ``shells`` are the checks of the parts above the application (the web page's users file):
        the CLI passes them in, since nothing here may import a shell."""
        report = CheckReport()
        c = self.config.campaign
        report.facts.append(
            f"config {self.config.path}: campaign {c.id} «{c.title}», opens {c.opens}, "
            f"deadline {c.deadline} ({c.timezone})"
        )
        try:
            form = self.form
            flags = sum(1 for f in form.fields() if f.flag is not None)
            report.facts.append(
                f"form {c.form}: {form.id} v{form.version}, {len(form.fields())} fields, {flags} flags"
            )
        except SkjemapostError as exc:
            report.problems.append(str(exc))
        try:
            roster = self.read_roster()
            per = Counter(u.faculty for u in roster.units)
            report.facts.append(
                f"roster {c.roster}: {len(roster.units)} units in {len(per)} "
                f"faculties ({', '.join(f'{k} {v}' for k, v in sorted(per.items()))})"
            )
            report.facts.extend(f"roster warning: {w}" for w in roster.warnings)
            known = {co.faculty for co in self.config.coordinators}
            for faculty in sorted(set(per) - known):
                report.problems.append(f"coordinators: no coordinator for faculty {faculty!r} in the roster")
        except SkjemapostError as exc:
            report.problems.append(str(exc))
        try:
            template_problems = self.renderer.check()
            report.problems.extend(f"templates {self.config.mail.templates}: {p}" for p in template_problems)
            if not template_problems:
                report.facts.append(f"templates {self.config.mail.templates}: every kind in nb and en")
        except SkjemapostError as exc:
            report.problems.append(str(exc))
        secrets = self.config.secrets
        needs: list[tuple[str, str]] = [
            (secrets.token_secret_env, "tokens; needed by every command that builds or reads a form")
        ]
        if self.config.smtp.auth == "password":
            needs.append((self.config.smtp.password_env, "the SMTP password; needed to send"))
        if self.config.imap.auth == "password":
            needs.append((self.config.imap.password_env, "the IMAP password; needed to poll"))
        for env, purpose in needs:
            state = "set" if secrets.get(env) else "NOT set"
            report.facts.append(f"${env} {state} ({purpose})")
        if not secrets.get(secrets.token_secret_env):
            report.problems.append(
                f"{secrets.token_secret_env}: environment variable is not set; "
                "it holds the secret behind the reference tokens"
            )
        self._check_oauth(report)
        for shell in shells:
            facts, problems = shell(self.config)
            report.facts.extend(facts)
            report.problems.extend(problems)
        try:
            self.store.require_current()
            report.facts.append(f"database {self._safe_url()}: up to date")
        except SkjemapostError as exc:
            report.problems.append(f"database {self._safe_url()}: {exc}")
        return report

    def _check_oauth(self, report: CheckReport) -> None:
        """For the servers that log in with xoauth2: is the app's secret or certificate there
        (and a usable certificate)? Offline: no token is requested."""
        servers = [
            name
            for name, auth in (("smtp", self.config.smtp.auth), ("imap", self.config.imap.auth))
            if auth == "xoauth2"
        ]
        if not servers:
            return
        o = self.config.oauth
        for env, what in ((o.client_secret_env, "client secret"), (o.certificate_env, "certificate")):
            state = "set" if self.config.secrets.get(env) else "NOT set"
            report.facts.append(f"${env} {state} (the app's {what}; xoauth2 for {', '.join(servers)})")
        try:
            _, described = credential_from(o, self.config.secrets)
            report.facts.append(
                f"oauth: app {o.client_id} in tenant {o.tenant_id} at {o.authority_host} "
                f"will use the {described}"
            )
        except ProblemsError as exc:
            report.problems.extend(str(p) for p in exc.problems)

    def _safe_url(self) -> str:
        return shown_url(self.config.storage.database_url)

    # -- the form -----------------------------------------------------------------------------

    def build_form(self, code: str, lang: Language | None = None) -> tuple[Unit, bytes]:
        """The personalised .xlsx for unit ``code``, in its language unless ``lang`` is given."""
        self._ready()
        unit = self.store.unit(self.campaign_id, code)
        secret = self.config.secrets.token_secret()
        data = build_form(
            self.form,
            unit,
            lang=lang or unit.language,
            reference=tokens.reference(secret, self.campaign_id, unit.code),
            stamp=tokens.stamp(secret, self.campaign_id, unit.code),
            campaign_title=self.config.campaign.title,
            deadline=self.config.campaign.deadline,
        )
        return unit, data

    def units(self, *, include_inactive: bool = False) -> list[Unit]:
        self._ready()
        return self.store.units(self.campaign_id, include_inactive=include_inactive)

    def check_form(self, data: bytes, lang: Language | None = None) -> FormCheck:
        """Read a filled form, find its unit by stamp, then reference, and validate it."""
        reading = read_form(data, self.form)
        found = match_form(reading, self.directory())
        unit = self.store.unit(self.campaign_id, found.unit) if found.unit else None
        match = found.trouble or found.how
        language = lang or (unit.language if unit else self.config.campaign.default_language)
        return FormCheck(reading, unit, language, match, validate(self.form, reading, language))

    # -- invitations and the outbox -----------------------------------------------------------

    def invitations_due(self) -> list[Unit]:
        """Active units that have no invitation in the outbox yet."""
        units = self.units()
        have = self.store.existing_keys(
            self.campaign_id, (f"{self.campaign_id}:{u.code}:invitation" for u in units)
        )
        return [u for u in units if f"{self.campaign_id}:{u.code}:invitation" not in have]

    def queue_invitations(self, units: list[Unit], batch: int = 100) -> int:
        """Render each unit's invitation with its form and queue it, ``batch`` per transaction."""
        queued = 0
        for i in range(0, len(units), batch):
            now = self.clock.now()
            mails: list[NewMail] = [self.letters.invitation(u, now) for u in units[i : i + batch]]
            queued += self.store.queue(self.campaign_id, mails, now)
        return queued

    def queued_count(self) -> int:
        """Rows waiting to be sent (or left in flight), without loading their messages."""
        self._ready()
        counts = self.store.outbox_counts(self.campaign_id)
        return counts.get("queued", 0) + counts.get("sending", 0)

    def queued(self) -> list[OutboxRow]:
        self._ready()
        return self.store.outbox_rows(self.campaign_id, ["queued", "sending"])

    def drain(
        self,
        progress: Callable[[OutboxRow, Result], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> DrainReport:
        self._ready()
        return drain_once(
            self.store,
            self.campaign_id,
            self.transport(),
            self.clock,
            progress=progress,
            should_stop=should_stop,
        )

    # -- the inbox ---------------------------------------------------------------------------

    def directory(self) -> Directory:
        """Who is who in the campaign, as it stands now."""
        return Directory.load(self.store, self.campaign_id, self.config.secrets.token_secret())

    def processor(self) -> Processor:
        converter = soffice_converter if self.config.inbox.convert_with_libreoffice else None
        return Processor(
            self.config, self.form, self.letters, self.store, self.directory(), converter=converter
        )

    def poll(
        self,
        progress: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        box: BaseMailBox | None = None,
    ) -> tuple[PollReport, DrainReport]:
        """Read everything new in the inbox, then send the answers it queued."""
        self._ready()
        own_box = box is None
        box = box or connect_imap(self.imap_settings())
        try:
            report = poll_once(
                box,
                self.store,
                self.processor(),
                self.archive,
                self.clock,
                progress=progress,
                should_stop=should_stop,
            )
        finally:
            if own_box:
                box.logout()
        sent = self.drain(should_stop=should_stop) if self.queued_count() else DrainReport()
        return report, sent

    @property
    def archive(self) -> Archive:
        return Archive(self.config.storage.data_dir / "raw")

    def review_queue(self) -> list[InboundRow]:
        self._ready()
        return self.store.review_queue(self.campaign_id)

    def review(self, row_id: int, *, unit: str | None = None, note: str = "") -> Decision:
        """A person's choice for a message in review: assign it to ``unit`` (it is then processed
        as that unit's submission) or, without a unit, dismiss it. Recorded in the event log."""
        self._ready()
        row = self.store.inbound_by_id(row_id)
        if row.outcome != "review":
            raise ReviewError(f"message {row_id} is not waiting for review (it is {row.outcome})")
        now = self.clock.now()
        processor = self.processor()
        code = self.store.unit(self.campaign_id, unit).code if unit is not None else None  # a typo stops here

        def decide() -> Decision:
            if code is None:
                return Decision(
                    row.kind or "unknown",
                    "dismissed",
                    self.config.imap.folders.ignored,
                    row.unit_code,
                    {"review": "dismissed", "note": note},
                )
            mail = parse(self.archive.get(row.raw_path))
            decision = processor.decide(mail, row.id, row.received_at, now, force_unit=code)
            return replace(decision, detail=decision.detail | {"review": "assigned", "note": note})

        box = connect_imap(self.imap_settings())
        try:
            decision = settle_review(box, self.store, processor, row, now=now, decide=decide)
        finally:
            box.logout()
        if decision.answers:
            self.drain()
        return decision

    def unit_status(self) -> list[UnitRecord]:
        self._ready()
        return self.store.unit_records(self.campaign_id, include_inactive=False)

    # -- status -------------------------------------------------------------------------------

    def status(self) -> list[FacultyProgress]:
        self._ready()
        return self.store.faculty_progress(self.campaign_id)

    def today(self) -> dt.date:
        from service.clock import local

        return local(self.clock.now(), self.config.campaign.timezone).date()
