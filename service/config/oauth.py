"""The ``[oauth]`` section: client-credentials OAuth2 for Microsoft 365 / Exchange Online.

Where ``smtp.auth`` or ``imap.auth`` is ``"xoauth2"``, skjemapost logs in with an access token
that it gets for the app registration named here (tenant and client id), proving itself with a
client secret or a certificate, both taken from the environment. Exchange Online is turning
password logins (basic auth) off for SMTP AUTH, so a university on Microsoft 365 needs this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from service.config.tomlkeys import KeyReader

AuthMode = Literal["password", "xoauth2"]
AUTH_MODES: tuple[AuthMode, ...] = ("password", "xoauth2")
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"


@dataclass(frozen=True)
class OAuth:
    tenant_id: str
    client_id: str
    client_secret_env: str  # holds the client secret, or is unset when a certificate is used
    certificate_env: str  # holds PEM text: the certificate's private key and the certificate
    authority_host: str  # tests point this at a local identity server
    scope: str


def parse_oauth(r: KeyReader, needed: bool) -> OAuth:
    """The section; tenant and client id are required only when a server uses xoauth2."""
    oauth = OAuth(
        tenant_id=r.text("oauth.tenant_id", "", nonempty=False),
        client_id=r.text("oauth.client_id", "", nonempty=False),
        client_secret_env=r.env_name("oauth.client_secret_env", "SKJEMAPOST_OAUTH_SECRET"),
        certificate_env=r.env_name("oauth.certificate_env", "SKJEMAPOST_OAUTH_CERTIFICATE"),
        authority_host=r.text("oauth.authority_host", "https://login.microsoftonline.com").rstrip("/"),
        scope=r.text("oauth.scope", EXCHANGE_SCOPE),
    )
    if needed:
        for key, value in (("oauth.tenant_id", oauth.tenant_id), ("oauth.client_id", oauth.client_id)):
            if not value:
                r.bad(key, 'is required when smtp.auth or imap.auth is "xoauth2"')
    if not oauth.authority_host.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        r.bad("oauth.authority_host", f"{oauth.authority_host!r} must be an https:// address")
    return oauth
