"""Access tokens for XOAUTH2 logins to Microsoft 365 / Exchange Online, from msal.

skjemapost logs in as an app (the OAuth2 client-credentials grant): ``TokenSource`` proves the
app registration's identity to the identity provider with a client secret or, preferably, a
certificate, and gets a bearer token for Exchange Online's scope. The SMTP and IMAP clients put
it in the XOAUTH2 initial response, naming the mailbox to act on.

One ``TokenSource`` lives as long as the process (the App holds it): msal keeps the token in
its in-memory cache until shortly before it expires, so one token request serves every SMTP
connection and IMAP login in that time. A new source per connection would ask the identity
provider every time, and Entra throttles that.

Nothing here prints a secret or a token: errors name the environment variable, the tenant, the
client id and the identity provider's own AADSTS code and description.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.config.oauth import OAuth
from service.config.settings import Secrets
from service.errors import ConfigError, Problem, SkjemapostError

#: What to check when a mail server refuses a token the identity provider issued
REFUSED_HINT = (
    "check that the app has the Exchange Online application permission for this "
    "protocol (IMAP.AccessAsApp / SMTP.SendAsApp) with admin consent, and that its "
    "service principal has FullAccess (and SendAs) on this mailbox; "
    "see docs/MICROSOFT365.md"
)

# Entra's commonest refusals, with what usually causes them (the codes are Entra's own)
_HINTS = {
    7000215: "the client secret is wrong: use the secret's Value, not its Secret ID",
    7000222: "the client secret has expired: add a new one in Certificates & secrets",
    700016: "no app with this client id in this tenant: check oauth.client_id and oauth.tenant_id",
    90002: "no such tenant: check oauth.tenant_id",
    700027: "the certificate is not uploaded to the app registration (or a different one is)",
    1002012: "the scope is not valid: check oauth.scope",
}
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.S)


class OAuthError(SkjemapostError, PermissionError):
    """The identity provider refused to issue a token, or the credential is unusable."""

    exit_code = 3


class OAuthUnavailable(SkjemapostError, ConnectionError):
    """The identity provider could not be reached."""

    exit_code = 3


@dataclass(frozen=True)
class Certificate:
    """The parts of a certificate credential msal needs, and what an operator checks it by."""

    private_key_pem: str
    certificate_pem: str
    sha1_thumbprint: str  # as Entra's portal shows it, upper-case hex
    subject: str
    not_after: dt.datetime

    def credential(self) -> dict[str, str]:
        # with the certificate (not only a thumbprint) msal signs with PS256 and names the key
        # by its SHA-256 thumbprint, which Entra prefers over the legacy SHA-1 one
        return {"private_key": self.private_key_pem, "public_certificate": self.certificate_pem}


def read_certificate(pem: str, env: str) -> Certificate:
    """Parse the PEM text in ``env``: an unencrypted RSA private key and its certificate."""

    def bad(message: str) -> ConfigError:
        return ConfigError([Problem(env, message)])

    blocks = {m.group(1): m.group(0) for m in _PEM.finditer(pem)}
    if "ENCRYPTED PRIVATE KEY" in blocks:
        raise bad(
            "the private key is encrypted; store it unencrypted (the variable is "
            "the secret), e.g. `openssl pkey -in key.pem`"
        )
    key_pem = blocks.get("PRIVATE KEY") or blocks.get("RSA PRIVATE KEY")
    cert_pem = blocks.get("CERTIFICATE")
    if not key_pem or not cert_pem:
        parts = (("private key", key_pem), ("certificate", cert_pem))
        missing = " and no ".join(name for name, found in parts if not found)
        raise bad(
            f"holds no {missing}; it must hold the PEM text of both "
            "(-----BEGIN PRIVATE KEY----- … and -----BEGIN CERTIFICATE----- …)"
        )
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except (ValueError, TypeError) as exc:
        raise bad(f"is not a readable PEM key and certificate: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise bad("the key must be RSA: Entra ID signs in apps with RSA certificates only")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, spki) != cert.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise bad("the private key does not belong to the certificate")
    normal_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return Certificate(
        normal_key,
        cert_pem,
        cert.fingerprint(hashes.SHA1()).hex().upper(),
        cert.subject.rfc4514_string(),
        cert.not_valid_after_utc,
    )


def pem_text(value: str, env: str) -> str:
    """The variable's PEM text, or the text of the file it names: a multi-line PEM does not fit
    a systemd EnvironmentFile or an --env-file, a path (to a root-only file, or a systemd
    credential) does."""
    if "-----BEGIN" in value:
        return value
    try:
        return Path(value.strip()).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [
                Problem(
                    env,
                    f"holds neither PEM text nor the path of a readable PEM file: "
                    f"{exc.strerror if isinstance(exc, OSError) else exc}",
                )
            ]
        ) from None


def credential_from(oauth: OAuth, secrets: Secrets) -> tuple[str | dict[str, str], str]:
    """(the credential for msal, a description of it without the secret); the certificate wins
    when both variables are set, since it is the one Microsoft recommends."""
    pem = secrets.get(oauth.certificate_env)
    if pem:
        cert = read_certificate(pem_text(pem, oauth.certificate_env), oauth.certificate_env)
        return cert.credential(), (
            f"certificate {cert.sha1_thumbprint} ({cert.subject}, valid until "
            f"{cert.not_after:%Y-%m-%d}) from ${oauth.certificate_env}"
        )
    secret = secrets.get(oauth.client_secret_env)
    if secret:
        return secret, f"client secret from ${oauth.client_secret_env}"
    raise ConfigError(
        [
            Problem(
                f"{oauth.client_secret_env} / {oauth.certificate_env}",
                f"neither environment variable is set; one must hold the client secret or the certificate "
                f"(PEM: private key + certificate) of app {oauth.client_id} in tenant {oauth.tenant_id}, "
                "needed for the xoauth2 login",
            )
        ]
    )


class TokenSource:
    """Bearer tokens for one app registration, cached by msal until shortly before expiry.

    Thread-safe: concurrent callers (several SMTP connections starting at once) share one
    request to the identity provider instead of each making their own.
    """

    def __init__(
        self, oauth: OAuth, credential: str | dict[str, str], description: str, timeout: float = 30.0
    ) -> None:
        self.oauth = oauth
        self.description = description
        self._credential = credential
        self._timeout = timeout
        self._app: Any = None  # msal.ConfidentialClientApplication, built on first use
        self._lock = threading.Lock()
        self.fetched = 0  # tokens fetched from the identity provider (not from the cache)

    @classmethod
    def from_config(cls, oauth: OAuth, secrets: Secrets) -> TokenSource:
        credential, description = credential_from(oauth, secrets)
        return cls(oauth, credential, description)

    @property
    def authority(self) -> str:
        return f"{self.oauth.authority_host}/{self.oauth.tenant_id}"

    def _where(self) -> str:
        o = self.oauth
        return f"for app {o.client_id} in tenant {o.tenant_id} at {o.authority_host}"

    def token(self) -> str:
        """A valid access token for ``oauth.scope``: from msal's cache, or fetched now."""
        with self._lock:
            try:
                if self._app is None:
                    # imported here: msal (with requests) costs ~0.1 s, and every command would
                    # pay it at start-up though only xoauth2 logins need it
                    import msal

                    # msal reads the tenant's OpenID configuration here; instance discovery is
                    # off because it would ask login.microsoftonline.com about any other host
                    self._app = msal.ConfidentialClientApplication(
                        self.oauth.client_id,
                        client_credential=self._credential,
                        authority=self.authority,
                        instance_discovery=False,
                        timeout=self._timeout,
                    )
                result = self._app.acquire_token_for_client(scopes=[self.oauth.scope])
            except ValueError as exc:  # msal: the tenant discovery failed or a bad credential
                raise OAuthError(f"cannot get a token {self._where()}: {_first_line(str(exc))}") from None
            except OSError as exc:  # requests' errors are OSErrors: unreachable, TLS...
                raise OAuthUnavailable(
                    f"cannot reach the identity provider {self._where()}: {_first_line(str(exc))}"
                ) from None
        if "access_token" not in result:
            raise OAuthError(
                f"the identity provider refused a token {self._where()} "
                f"(using the {self.description}): {describe_refusal(result)}"
            )
        if result.get("token_source") != "cache":
            self.fetched += 1
        return str(result["access_token"])


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def describe_refusal(result: dict[str, Any]) -> str:
    """Entra's error (its AADSTS code and description, without the trace ids) and a hint."""
    desc = str(result.get("error_description") or "")
    desc = re.split(r"\s*Trace ID:", desc, maxsplit=1)[0].strip() or str(result.get("error", "unknown error"))
    codes = [int(c) for c in result.get("error_codes") or [] if str(c).isdigit()]
    if codes and "AADSTS" not in desc:
        desc = f"AADSTS{codes[0]}: {desc}"
    if not codes and (m := re.match(r"AADSTS(\d+)", desc)):
        codes = [int(m.group(1))]
    hint = next((_HINTS[c] for c in codes if c in _HINTS), "")
    error = result.get("error")
    return f"{error}: {desc}" + (f" ({hint})" if hint else "") if error else desc


def xoauth2_string(user: str, token: str) -> str:
    """The XOAUTH2 initial response before base64 (imaplib encodes it itself)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def xoauth2_initial_response(user: str, token: str) -> bytes:
    """``base64("user=" + user + "^Aauth=Bearer " + token + "^A^A")`` for ``AUTH XOAUTH2``."""
    return base64.b64encode(xoauth2_string(user, token).encode())


def decode_challenge(text: str) -> str:
    """A server's XOAUTH2 failure challenge (base64 JSON) as readable text, e.g. ``status 401,
    schemes bearer, scope https://…``; the raw text if it is not base64 JSON."""
    try:
        data = json.loads(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError):
        return text.strip()
    if isinstance(data, dict):
        return ", ".join(f"{k} {v}" for k, v in data.items())
    return str(data)
