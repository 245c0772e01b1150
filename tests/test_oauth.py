"""XOAUTH2 for Microsoft 365: tokens from msal against a local identity provider (tests/harness/oauth_idp.py),
checked by a real Dovecot (oauth2 passdb, introspection) and the aiosmtpd relay (Exchange's answers).

msal talks HTTPS only; it trusts the identity provider's throwaway certificate through
REQUESTS_CA_BUNDLE in the project's environment (requests reads it, as it would for a
TLS-inspecting proxy in production), so skjemapost needs no test-only setting.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from harness.filling import fill, shipped_form, valid_answers
from harness.mailservers import MailWorld, OAuthServers, start_for_pytest
from harness.oauth_idp import IdentityProvider, make_certificate, sha1_thumbprint
from projects import SECRET, Project, make_units
from test_poll import invitation, reply

from service.config.oauth import OAuth
from service.config.settings import Secrets
from service.errors import ConfigError
from service.net.oauth import (
    OAuthError,
    OAuthUnavailable,
    TokenSource,
    credential_from,
    decode_challenge,
    describe_refusal,
    read_certificate,
    xoauth2_initial_response,
)

pytestmark = pytest.mark.servers
FORM = shipped_form()
SCOPE = "https://outlook.office365.com/.default"


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def oauth_world(idp) -> Iterator[MailWorld]:
    """Dovecot and the relay, both also taking XOAUTH2 tokens checked at ``idp``."""
    world = start_for_pytest(["service@example.test"], OAuthServers(idp.introspection_url, idp.ca_file))
    yield world
    world.stop()


class App:
    """An app registration at the identity provider, and the env that proves it."""

    def __init__(self, idp: IdentityProvider, mailbox: str, credential: str = "secret") -> None:
        self.tenant, self.client_id = str(uuid.uuid4()), str(uuid.uuid4())
        self.secret = f"secret~{uuid.uuid4().hex}"
        self.pem, cert = make_certificate()
        self.thumbprint = sha1_thumbprint(cert)
        if credential == "secret":
            idp.register(self.tenant, self.client_id, secret=self.secret, mailbox=mailbox)
            self.env = {"SKJEMAPOST_OAUTH_SECRET": self.secret}
        else:
            idp.register(self.tenant, self.client_id, certificate=cert, mailbox=mailbox)
            self.env = {"SKJEMAPOST_OAUTH_CERTIFICATE": self.pem}

    def oauth(self, idp: IdentityProvider) -> OAuth:
        return OAuth(
            self.tenant,
            self.client_id,
            "SKJEMAPOST_OAUTH_SECRET",
            "SKJEMAPOST_OAUTH_CERTIFICATE",
            idp.url,
            SCOPE,
        )


def oauth_project(
    tmp_path,
    world: MailWorld,
    idp: IdentityProvider,
    n: int,
    *,
    credential: str = "secret",
    grant_other_mailbox: bool = False,
    max_connections: int = 3,
) -> tuple[Project, App]:
    """A project whose SMTP and IMAP logins are xoauth2 as its own service mailbox."""
    service = world.new_user("svc")
    units = make_units(n, prefix=f"l{uuid.uuid4().hex[:6]}-")
    world.add_users(u.leader_email for u in units)
    app = App(idp, world.new_user("other") if grant_other_mailbox else service, credential)
    # no SMTP or IMAP password anywhere: xoauth2 must not need one
    env = {"SKJEMAPOST_SECRET": SECRET, "REQUESTS_CA_BUNDLE": str(idp.ca_file), **app.env}
    p = Project(tmp_path, units, env)
    p.service = service
    p.write_config(
        smtp={
            "host": world.host,
            "port": world.smtp_port,
            "tls": "starttls",
            "user": service,
            "auth": "xoauth2",
            "ca_file": str(world.cert_path),
            "max_connections": max_connections,
            "rate_per_minute": 100_000,
            "retry_base_seconds": 0.01,
        },
        imap={"host": world.host, "port": world.imap_port, "tls": "none", "user": service, "auth": "xoauth2"},
        mail={"from_address": service},
        extra=f'[oauth]\ntenant_id = "{app.tenant}"\nclient_id = "{app.client_id}"\n'
        f'authority_host = "{idp.url}"',
    )
    p.write_roster()
    p.setup()
    return p, app


def smtp_logins(world: MailWorld, user: str) -> list[dict]:
    return [e for e in world.smtp_journal() if e["event"] == "auth" and e.get("user") == user]


# -- end to end --------------------------------------------------------------------------------


@pytest.mark.parametrize("credential", ["secret", "certificate"])
def test_invitations_and_replies_over_xoauth2_with_one_token_per_run(tmp_path, oauth_world, idp, credential):
    """send and poll log in with XOAUTH2 on SMTP and IMAP; one token per command serves
    every SMTP connection and the IMAP login."""
    p, app = oauth_project(tmp_path, oauth_world, idp, 6, credential=credential, max_connections=3)
    result = p.cli("send")
    assert result.exit_code == 0, result.output
    assert "sent 6, failed 0" in result.output
    for unit in p.units:
        assert len(oauth_world.messages(unit.leader_email)) == 1
    logins = smtp_logins(oauth_world, p.service)
    assert len({tuple(e["peer"]) for e in logins}) == 3 and all(e["ok"] for e in logins)
    requests = idp.requests_for(app.client_id)
    assert [(r.method, r.ok) for r in requests] == [(credential, True)]  # 3 connections, 1 token

    for unit in p.units[:4]:
        original = invitation(oauth_world, unit)
        (att,) = list(original.iter_attachments())
        data = fill(att.get_content(), FORM, valid_answers(0), unit.language)
        oauth_world.deliver(
            reply(unit, original, (att.get_filename(), data)), p.service, mail_from=unit.leader_email
        )
    introspected = len(idp.introspections)
    result = p.cli("poll")
    assert result.exit_code == 0, result.output
    assert "polled: 4 new" in result.output and "answers: sent 4" in result.output
    for unit in p.units[:4]:
        assert len(oauth_world.messages(unit.leader_email)) == 2  # invitation + receipt
    doc = json.loads(p.cli("status", "--json").output)["total"]
    assert doc["valid"] == 4
    # the poll's IMAP login and its receipts' SMTP connections: one more token, not one each
    assert len(idp.requests_for(app.client_id)) == 2
    assert len(idp.introspections) - introspected >= 2  # Dovecot and the relay each checked it


def test_concurrent_callers_share_one_token_request(idp, monkeypatch):
    """Eight threads asking at once (connections opening together) cause one request."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(idp.ca_file))
    app = App(idp, "service@example.test")
    source = TokenSource(app.oauth(idp), app.secret, "client secret")
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(source.token())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and len(got) == 8
    assert len(idp.requests_for(app.client_id)) == 1 and source.fetched == 1


# -- errors ------------------------------------------------------------------------------------


def test_wrong_client_secret_names_the_aadsts_code_and_never_the_secret(tmp_path, oauth_world, idp):
    """A wrong secret: exit 3, Entra's AADSTS7000215 and a hint; the secret is not printed;
    nothing is sent and the invitations stay queued."""
    p, app = oauth_project(tmp_path, oauth_world, idp, 2)
    p.env["SKJEMAPOST_OAUTH_SECRET"] = wrong = "wrong~" + uuid.uuid4().hex
    result = p.cli("send")
    assert result.exit_code == 3
    assert "AADSTS7000215" in result.output and "Invalid client secret" in result.output
    assert "not its Secret ID" in result.output and app.client_id in result.output
    assert wrong not in result.output and app.secret not in result.output
    assert "Trace ID" not in result.output
    assert [r.error for r in idp.requests_for(app.client_id)] == ["AADSTS7000215"]
    assert smtp_logins(oauth_world, p.service) == []
    assert all(oauth_world.messages(u.leader_email) == [] for u in p.units)


def test_a_token_the_servers_refuse_is_a_clear_auth_error(tmp_path, oauth_world, idp):
    """The app has no right to this mailbox: the identity provider issues a token, the SMTP
    relay answers 334 + JSON then 535, Dovecot says NO; each error names server and user."""
    p, app = oauth_project(tmp_path, oauth_world, idp, 2, grant_other_mailbox=True)
    result = p.cli("send")
    assert result.exit_code == 3, result.output
    out = result.output
    smtp = f"127.0.0.1:{oauth_world.smtp_port}"
    assert f"SMTP server {smtp} refused the XOAUTH2 login for user '{p.service}'" in out
    assert "535 5.7.3" in out and "status 401" in out and "SMTP.SendAsApp" in out
    result = p.cli("poll")
    assert result.exit_code == 3, result.output
    assert (
        f"IMAP server 127.0.0.1:{oauth_world.imap_port} refused the XOAUTH2 login for user '{p.service}'"
        in result.output
        and "AUTHENTICATIONFAILED" in result.output
    )
    tokens = [t for t, issued in idp.tokens.items() if issued.client_id == app.client_id]
    assert tokens and not any(t in out or t in result.output for t in tokens)
    logins = smtp_logins(oauth_world, p.service)
    assert logins and not any(e["ok"] for e in logins)


def test_unknown_tenant_and_unreachable_identity_provider(idp, monkeypatch):
    """A tenant the identity provider does not know, and one that is not listening, each say
    what they are, naming tenant and client id."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(idp.ca_file))
    app = App(idp, "service@example.test")
    bad_tenant = OAuth("no-such-tenant", app.client_id, "A", "B", idp.url, SCOPE)
    with pytest.raises(OAuthError, match="no-such-tenant") as err:
        TokenSource(bad_tenant, app.secret, "client secret").token()
    assert app.secret not in str(err.value)
    closed = OAuth(app.tenant, app.client_id, "A", "B", "https://127.0.0.1:9", SCOPE)
    with pytest.raises(OAuthUnavailable, match=f"cannot reach the identity provider for app {app.client_id}"):
        TokenSource(closed, app.secret, "client secret").token()


def test_check_asks_for_the_oauth_secret_not_the_passwords(tmp_path, oauth_world, idp):
    """`check` with xoauth2: the missing secret/certificate is a problem naming both variables;
    the SMTP and IMAP passwords are not asked for; with a certificate it says which one."""
    p, app = oauth_project(tmp_path, oauth_world, idp, 1)
    del p.env["SKJEMAPOST_OAUTH_SECRET"]
    out = p.cli("check").output
    both = "SKJEMAPOST_OAUTH_SECRET / SKJEMAPOST_OAUTH_CERTIFICATE"
    assert f"{both}: neither environment variable is set" in out
    assert "SKJEMAPOST_SMTP_PASSWORD" not in out and "SKJEMAPOST_IMAP_PASSWORD" not in out
    p.env["SKJEMAPOST_OAUTH_CERTIFICATE"] = app.pem
    out = p.cli("check").output
    assert f"will use the certificate {app.thumbprint}" in out and "neither" not in out
    del p.env["SKJEMAPOST_OAUTH_CERTIFICATE"]
    result = p.cli("send")  # without any, nothing can be sent: a config error
    assert result.exit_code == 2 and "SKJEMAPOST_OAUTH_CERTIFICATE" in result.output


# -- the parts -------------------------------------------------------------------------------


def test_certificate_problems_name_the_variable():
    """Encrypted key, EC key, missing certificate, a key of another certificate: each a clear
    config error naming the variable."""
    pem, cert = make_certificate()
    assert read_certificate(pem, "CERT").sha1_thumbprint == sha1_thumbprint(cert)
    other_pem, _ = make_certificate()
    key_only = pem.split("-----BEGIN CERTIFICATE-----")[0]
    other_cert = "-----BEGIN CERTIFICATE-----" + other_pem.split("-----BEGIN CERTIFICATE-----")[1]
    ec_key = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
        .decode()
    )
    cases = [
        (key_only, "holds no certificate"),
        (key_only + other_cert, "does not belong"),
        (ec_key + other_cert, "encrypted"),
        ("", "holds no private key and no certificate"),
    ]
    for text, expected in cases:
        with pytest.raises(ConfigError, match=expected) as err:
            read_certificate(text, "CERT")
        assert [p.where for p in err.value.problems] == ["CERT"]
    ec_plain = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    with pytest.raises(ConfigError, match="must be RSA"):
        read_certificate(ec_plain + other_cert, "CERT")


def test_xoauth2_wire_format_and_error_texts():
    """The initial response is base64 of user, ^A, bearer token, ^A^A; challenges and Entra
    errors are turned into readable text."""
    raw = base64.b64decode(xoauth2_initial_response("svc@example.test", "tok123"))
    assert raw == b"user=svc@example.test\x01auth=Bearer tok123\x01\x01"
    challenge = base64.b64encode(b'{"status":"401","schemes":"bearer"}').decode()
    assert decode_challenge(challenge) == "status 401, schemes bearer"
    assert decode_challenge("not base64 !") == "not base64 !"
    refusal = {
        "error": "invalid_client",
        "error_codes": [7000222],
        "error_description": "AADSTS7000222: The provided client secret keys are expired.\r\n"
        "Trace ID: abc Correlation ID: def",
    }
    text = describe_refusal(refusal)
    assert text.startswith("invalid_client: AADSTS7000222: The provided client secret keys are expired.")
    assert "has expired" in text and "Trace ID" not in text


def test_the_certificate_variable_may_name_a_pem_file(tmp_path):
    """A multi-line PEM does not fit an EnvironmentFile: the variable may hold the file's path
    instead; a path that cannot be read is a config error naming the variable."""
    pem, cert = make_certificate()
    (tmp_path / "app.pem").write_text(pem)
    oauth = OAuth("t-1", "c-1", "SECRET_ENV", "CERT_ENV", "https://login.example.test", "scope")
    credential, described = credential_from(oauth, Secrets("TOKEN", {"CERT_ENV": str(tmp_path / "app.pem")}))
    assert sha1_thumbprint(cert) in described and isinstance(credential, dict)
    with pytest.raises(ConfigError, match="neither PEM text nor the path") as err:
        credential_from(oauth, Secrets("TOKEN", {"CERT_ENV": str(tmp_path / "missing.pem")}))
    assert [p.where for p in err.value.problems] == ["CERT_ENV"]
