"""Setting a campaign up and looking at it: init, check, the roster, the forms, status.

Each method is one command's work (`skjemapost init`, `check`, `roster import`, `form build`,
`form check`, `status`), on the parts of an ``App``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from service.app.wiring import App
from service.campaign.roster import Roster, read_roster
from service.campaign.state import UnitState, unit_states
from service.config.settings import Config
from service.errors import Problem, ProblemsError, SkjemapostError
from service.forms.build import build_form
from service.forms.model import FormReading
from service.forms.read import read_form
from service.forms.validate import validate
from service.jobs.match import match_form
from service.mail import tokens
from service.models import Language, Unit
from service.net.oauth import credential_from
from service.store.base import shown_url
from service.store.reports import FacultyProgress
from service.store.roster import RosterDiff


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


STRONG_SECRET = 16  # characters of the token secret `check` asks for (as for the web's session key)

ShellCheck = Callable[[Config], tuple[list[str], list[str]]]
"""(facts, problems) that a shell adds to `skjemapost check`."""


class Setup:
    def __init__(self, app: App) -> None:
        self.app = app

    def init(self) -> tuple[str | None, str, bool]:
        """Create or upgrade the database and record the campaign; (from, to, campaign is new)."""
        self.app.config.storage.data_dir.mkdir(parents=True, exist_ok=True)
        before, after = self.app.store.upgrade()
        created = self.app.store.ensure_campaign(self.app.campaign_info(), self.app.clock.now())
        return before, after, created

    def read_roster(self, path: Path | None = None) -> Roster:
        return read_roster(path or self.app.config.campaign.roster, self.app.config.campaign.default_language)

    def import_roster(self, path: Path | None = None) -> tuple[Roster, RosterDiff]:
        self.app.ready()
        roster = self.read_roster(path)
        return roster, self.app.store.import_roster(self.app.campaign_id, roster.units, self.app.clock.now())

    def check(self, *, shells: Sequence[ShellCheck] = ()) -> CheckReport:
        """Validate everything the config points at, collecting every problem rather than stopping.

        ``shells`` are the checks of the parts above the application (the web page's users file):
        the CLI passes them in, since nothing here may import a shell."""
        report = CheckReport()
        c = self.app.config.campaign
        report.facts.append(
            f"config {self.app.config.path}: campaign {c.id} «{c.title}», opens {c.opens}, "
            f"deadline {c.deadline} ({c.timezone})"
        )
        try:
            form = self.app.form
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
            known = {co.faculty for co in self.app.config.coordinators}
            for faculty in sorted(set(per) - known):
                report.problems.append(f"coordinators: no coordinator for faculty {faculty!r} in the roster")
        except SkjemapostError as exc:
            report.problems.append(str(exc))
        try:
            template_problems = self.app.renderer.check()
            report.problems.extend(
                f"templates {self.app.config.mail.templates}: {p}" for p in template_problems
            )
            if not template_problems:
                report.facts.append(f"templates {self.app.config.mail.templates}: every kind in nb and en")
        except SkjemapostError as exc:
            report.problems.append(str(exc))
        self._check_secrets(report)
        self._check_oauth(report)
        for shell in shells:
            facts, problems = shell(self.app.config)
            report.facts.extend(facts)
            report.problems.extend(problems)
        try:
            self.app.store.require_current()
            report.facts.append(f"database {self._safe_url()}: up to date")
        except SkjemapostError as exc:
            report.problems.append(f"database {self._safe_url()}: {exc}")
        return report

    def _check_secrets(self, report: CheckReport) -> None:
        """Which secrets the environment holds, and whether the token secret is strong enough."""
        secrets = self.app.config.secrets
        needs: list[tuple[str, str]] = [
            (secrets.token_secret_env, "tokens; needed by every command that builds or reads a form")
        ]
        if self.app.config.smtp.auth == "password":
            needs.append((self.app.config.smtp.password_env, "the SMTP password; needed to send"))
        if self.app.config.imap.auth == "password":
            needs.append((self.app.config.imap.password_env, "the IMAP password; needed to poll"))
        for env, purpose in needs:
            state = "set" if secrets.get(env) else "NOT set"
            report.facts.append(f"${env} {state} ({purpose})")
        token = secrets.get(secrets.token_secret_env)
        if not token:
            report.problems.append(
                f"{secrets.token_secret_env}: environment variable is not set; "
                "it holds the secret behind the reference tokens"
            )
        elif len(token) < STRONG_SECRET:
            # a guessable key lets anyone forge a unit's stamp or reference (tokens.py)
            report.problems.append(
                f"{secrets.token_secret_env}: only {len(token)} characters; use at least {STRONG_SECRET}, "
                "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )

    def _check_oauth(self, report: CheckReport) -> None:
        """For the servers that log in with xoauth2: is the app's secret or certificate there
        (and a usable certificate)? Offline: no token is requested."""
        servers = [
            name
            for name, auth in (("smtp", self.app.config.smtp.auth), ("imap", self.app.config.imap.auth))
            if auth == "xoauth2"
        ]
        if not servers:
            return
        o = self.app.config.oauth
        for env, what in ((o.client_secret_env, "client secret"), (o.certificate_env, "certificate")):
            state = "set" if self.app.config.secrets.get(env) else "NOT set"
            report.facts.append(f"${env} {state} (the app's {what}; xoauth2 for {', '.join(servers)})")
        try:
            _, described = credential_from(o, self.app.config.secrets)
            report.facts.append(
                f"oauth: app {o.client_id} in tenant {o.tenant_id} at {o.authority_host} "
                f"will use the {described}"
            )
        except ProblemsError as exc:
            report.problems.extend(str(p) for p in exc.problems)

    def _safe_url(self) -> str:
        return shown_url(self.app.config.storage.database_url)

    def build_form(self, code: str, lang: Language | None = None) -> tuple[Unit, bytes]:
        """The personalised .xlsx for unit ``code``, in its language unless ``lang`` is given."""
        self.app.ready()
        unit = self.app.store.unit(self.app.campaign_id, code)
        secret = self.app.config.secrets.token_secret()
        lang = lang or unit.language
        data = build_form(
            self.app.form,
            unit,
            lang=lang,
            reference=tokens.reference(secret, self.app.campaign_id, unit.code),
            stamp=tokens.stamp(secret, self.app.campaign_id, unit.code),
            campaign_title=self.app.config.campaign.title_for(lang),
            deadline=self.app.config.campaign.deadline,
        )
        return unit, data

    def units(self, *, include_inactive: bool = False) -> list[Unit]:
        self.app.ready()
        return self.app.store.units(self.app.campaign_id, include_inactive=include_inactive)

    def check_form(self, data: bytes, lang: Language | None = None) -> FormCheck:
        """Read a filled form, find its unit by stamp, then reference, and validate it."""
        reading = read_form(data, self.app.form)
        found = match_form(reading, self.app.directory())
        unit = self.app.store.unit(self.app.campaign_id, found.unit) if found.unit else None
        match = found.trouble or found.how
        language = lang or (unit.language if unit else self.app.config.campaign.default_language)
        return FormCheck(reading, unit, language, match, validate(self.app.form, reading, language))

    def status(self) -> list[FacultyProgress]:
        self.app.ready()
        return self.app.store.faculty_progress(self.app.campaign_id)

    def unit_status(self, *, include_inactive: bool = False) -> list[UnitState]:
        """Where every active unit (or every unit) stands now (``campaign.state``)."""
        self.app.ready()
        cfg = self.app.config
        return unit_states(
            self.app.store,
            cfg.campaign,
            cfg.schedule,
            self.app.clock.now(),
            include_inactive=include_inactive,
            cosign=cfg.cosign,
        )
