"""A local identity provider for tests: the parts of Microsoft Entra ID that skjemapost and the
test mail servers talk to, over HTTPS on 127.0.0.1.

* ``GET /{tenant}/v2.0/.well-known/openid-configuration``: what msal reads first (tenant
  discovery). An unknown tenant gets Entra's ``AADSTS90002`` answer.
* ``POST /{tenant}/oauth2/v2.0/token``: the client-credentials grant. It checks the client id,
  then either ``client_secret`` or a ``client_assertion`` JWT signed with a registered
  certificate (signature, ``aud``, ``iss``/``sub`` and the ``x5t#S256`` header are verified with
  PyJWT), then the scope. Failures are Entra-shaped JSON (``error``, ``error_description``
  starting ``AADSTS…``, ``error_codes``). Every request is recorded in ``token_requests``.
* ``POST /introspect`` (form ``token=…``): RFC 7662-style, for Dovecot's oauth2 passdb and the
  SMTP relay: ``{"active": true, "email": mailbox, ...}``. A token is active for the one mailbox
  its app was granted (``register(..., mailbox=...)``); that models Exchange's mailbox permission.

    with IdentityProvider() as idp:
        idp.register("tenant-1", "app-1", secret="s3cret", mailbox="svc@example.test")
        authority_host = idp.url          # trust idp.ca_file (REQUESTS_CA_BUNDLE for msal)
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def make_certificate(
    name: str = "skjemapost-test", *, days: int = 365, key_size: int = 2048
) -> tuple[str, x509.Certificate]:
    """A self-signed RSA certificate for an app registration: (PEM key + certificate, cert)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem + cert.public_bytes(serialization.Encoding.PEM).decode(), cert


def _server_certificate() -> tuple[bytes, bytes]:
    """(key PEM, cert PEM) for HTTPS on 127.0.0.1 (SAN IP and localhost), self-signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _unb64url(text: str) -> bytes:
    """base64url, padded or not (msal pads; RFC 7515 does not)."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return b""


@dataclass
class Client:
    tenant: str
    client_id: str
    secret: str | None
    certificate: x509.Certificate | None
    mailbox: str


@dataclass
class Issued:
    client_id: str
    mailbox: str
    expires: float
    revoked: bool = False


@dataclass
class TokenRequest:
    tenant: str
    client_id: str
    method: str  # "secret" | "certificate" | "none"
    ok: bool
    error: str = ""  # the AADSTS code when refused


class _AadError(Exception):
    def __init__(self, status: int, error: str, code: int, text: str) -> None:
        self.status, self.error, self.code, self.text = status, error, code, text

    def body(self) -> dict[str, Any]:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        trace = str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.text} Trace ID: {trace} "
            f"Correlation ID: {uuid.uuid4()} Timestamp: {stamp}",
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


@dataclass
class IdentityProvider:
    token_lifetime: int = 3599
    clients: dict[tuple[str, str], Client] = field(default_factory=dict)
    tokens: dict[str, Issued] = field(default_factory=dict)
    token_requests: list[TokenRequest] = field(default_factory=list)
    introspections: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dir = Path()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> IdentityProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> IdentityProvider:
        self.dir = Path(tempfile.mkdtemp(prefix="idp-", dir="/tmp"))
        self.dir.chmod(0o755)  # Dovecot's auth process reads the CA file as another user
        key_pem, cert_pem = _server_certificate()
        (self.dir / "key.pem").write_bytes(key_pem)
        self.ca_file.write_bytes(cert_pem)
        self.ca_file.chmod(0o644)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.ca_file, self.dir / "key.pem")
        idp = self

        class Handler(_Handler):
            provider = idp

        server = ThreadingHTTPServer((HOST, 0), Handler)
        server.daemon_threads = True
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="idp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.dir != Path():
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self) -> str:
        """The authority host: ``https://127.0.0.1:PORT``."""
        return f"https://{HOST}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def introspection_url(self) -> str:
        return f"{self.url}/introspect"

    # -- registrations and tokens --------------------------------------------------------------
    def register(
        self,
        tenant: str,
        client_id: str,
        *,
        mailbox: str,
        secret: str | None = None,
        certificate: x509.Certificate | None = None,
    ) -> None:
        """An app registration with a secret and/or certificate, granted access to ``mailbox``."""
        with self._lock:
            client = Client(tenant, client_id, secret, certificate, mailbox.lower())
            self.clients[(tenant, client_id)] = client

    def requests_for(self, client_id: str) -> list[TokenRequest]:
        with self._lock:
            return [r for r in self.token_requests if r.client_id == client_id]

    def revoke(self, client_id: str) -> None:
        """Make every token issued to ``client_id`` so far inactive (the servers refuse them)."""
        with self._lock:
            for t in self.tokens.values():
                if t.client_id == client_id:
                    t.revoked = True

    def introspect(self, token: str) -> dict[str, Any]:
        with self._lock:
            issued = self.tokens.get(token)
            active = issued is not None and not issued.revoked and issued.expires > time.time()
            result: dict[str, Any] = {"active": active}
            if issued is not None and active:
                result.update(
                    email=issued.mailbox,
                    client_id=issued.client_id,
                    scope=EXCHANGE_SCOPE,
                    exp=int(issued.expires),
                )
            else:
                result["email"] = ""  # Dovecot wants the attribute; empty never matches a user
            self.introspections.append({"active": active, "client_id": issued.client_id if issued else None})
            return result

    def grant(self, tenant: str, form: dict[str, str]) -> dict[str, Any]:
        client_id = form.get("client_id", "")
        method = (
            "certificate" if "client_assertion" in form else "secret" if "client_secret" in form else "none"
        )
        record = TokenRequest(tenant, client_id, method, ok=False)
        with self._lock:
            self.token_requests.append(record)
        try:
            client = self._check_grant(tenant, client_id, form)
        except _AadError as exc:
            record.error = f"AADSTS{exc.code}"
            raise
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = Issued(client_id, client.mailbox, time.time() + self.token_lifetime)
        record.ok = True
        return {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        }

    def _check_grant(self, tenant: str, client_id: str, form: dict[str, str]) -> Client:
        if form.get("grant_type") != "client_credentials":
            raise _AadError(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        client = self.clients.get((tenant, client_id))
        if client is None:
            raise _AadError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        if "client_assertion" in form:
            self._check_assertion(client, form)
        elif "client_secret" in form:
            if client.secret is None or not secrets.compare_digest(form["client_secret"], client.secret):
                raise _AadError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the "
                    "request is the client secret value, not the client secret ID, for a "
                    f"secret added to app '{client_id}'.",
                )
        else:
            raise _AadError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
            )
        if form.get("scope", "").split() != [EXCHANGE_SCOPE]:
            raise _AadError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope')!r} is not valid.",
            )
        return client

    def _check_assertion(self, client: Client, form: dict[str, str]) -> None:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise _AadError(400, "invalid_request", 50027, "Invalid client assertion type.")
        assertion = form["client_assertion"]
        cert = client.certificate
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise _AadError(
                401, "invalid_client", 50027, f"JWT token is invalid or malformed: {exc}"
            ) from None
        presented = str(header.get("x5t#S256", ""))
        if cert is None or _unb64url(presented) != cert.fingerprint(hashes.SHA256()):
            raise _AadError(
                401,
                "invalid_client",
                700027,
                f"The certificate with identifier used to sign the client assertion is not "
                f"registered on application. [Reason - The key was not found., Thumbprint "
                f"of key used by client: '{header.get('x5t#S256')}']",
            )
        token_endpoint = f"https://{HOST}:{self.port}/{client.tenant}/oauth2/v2.0/token"
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),
                algorithms=["PS256", "RS256"],  # type: ignore[arg-type]
                audience=token_endpoint,
                issuer=client.client_id,
                options={"require": ["exp", "aud", "iss", "sub", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise _AadError(
                401, "invalid_client", 700027, f"Client assertion failed signature validation. ({exc})"
            ) from None
        if claims["sub"] != client.client_id:
            raise _AadError(401, "invalid_client", 700023, "Client assertion subject is not the client id.")

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        if not any(t == tenant for t, _ in self.clients):
            raise _AadError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.",
            )
        base = f"{self.url}/{tenant}"
        return {
            "issuer": f"{base}/v2.0",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        }


class _Handler(BaseHTTPRequestHandler):
    provider: IdentityProvider
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def do_GET(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        try:
            if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                self._send(200, self.provider.openid_configuration(parts[0]))
            else:
                self._send(404, {"error": "not_found"})
        except _AadError as exc:
            self._send(exc.status, exc.body())

    def do_POST(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        form = self._form()
        try:
            if parts == ["introspect"]:
                self._send(200, self.provider.introspect(form.get("token", "")))
            elif len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
                self._send(200, self.provider.grant(parts[0], form))
            else:
                self._send(404, {"error": "not_found"})
        except _AadError as exc:
            self._send(exc.status, exc.body())


def sha1_thumbprint(cert: x509.Certificate) -> str:
    """As the Entra portal shows it: upper-case hex of the SHA-1 digest."""
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
