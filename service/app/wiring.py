"""The composition root: the parts every command uses, built from one config on first use.

``App`` holds the config and the clock and builds, once each and only when asked, the store, the
form definition, the templates, the letters, the OAuth token source, the SMTP and IMAP settings and
the inbox's processor. It has no operations: those live in ``setup`` (init, check, roster, forms,
status), ``mailing`` (invitations, the outbox, the inbox, review) and ``operations`` (reminders,
digests, the workbook, `run`), each given the App to take its parts from.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property

from service.clock import Clock, SystemClock
from service.config.settings import Config
from service.forms.definition import form_context, load_form
from service.forms.intake import soffice_converter
from service.forms.model import FormDef
from service.jobs.decide import Processor
from service.jobs.drain import Transport
from service.jobs.match import Directory
from service.jobs.poll import Archive
from service.mail.letters import Letters
from service.mail.render import Renderer
from service.net.imap import ImapSettings, SentCopies
from service.net.oauth import TokenSource
from service.net.smtp import SmtpSettings
from service.store.database import Store
from service.store.roster import CampaignInfo


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
        return load_form(self.config.campaign.form, form_context(self.config))

    def ready(self) -> None:
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

    def directory(self) -> Directory:
        """Who is who in the campaign, as it stands now."""
        return Directory.load(self.store, self.campaign_id, self.config.secrets.token_secret())

    def processor(self) -> Processor:
        converter = soffice_converter if self.config.inbox.convert_with_libreoffice else None
        return Processor(
            self.config, self.form, self.letters, self.store, self.directory(), converter=converter
        )

    @property
    def archive(self) -> Archive:
        return Archive(self.config.storage.data_dir / "raw")

    def today(self) -> dt.date:
        from service.clock import local

        return local(self.clock.now(), self.config.campaign.timezone).date()
