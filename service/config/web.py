"""The ``[web]`` section: where `skjemapost serve` listens and how it keeps its sessions.

Users and their roles live in the file ``web.users_file`` names (beside the config, written by
`skjemapost user add`), so the service can add a user without rewriting the operator's commented
config, and the file holding password hashes can be kept at mode 0600.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.config.tomlkeys import KeyReader


@dataclass(frozen=True)
class Web:
    host: str
    port: int
    root_path: str  # the prefix a reverse proxy serves the app under, e.g. "/skjemapost"
    users_file: Path
    session_secret_env: str
    session_hours: int
    secure_cookies: bool  # False only for plain-HTTP loopback use (the demo, tests)
    login_attempts: int  # failed logins allowed per user and per client address in the window
    login_window_minutes: int
    forwarded_allow_ips: str  # proxies trusted for X-Forwarded-For / -Proto; "" = none
    # the page's address as its readers open it (behind the proxy), for the HR digest and the
    # final summary to link to; "" = not said (the mails then leave the line out)
    public_url: str = ""


def parse_web(r: KeyReader) -> Web:
    root = r.text("web.root_path", "", nonempty=False).rstrip("/")
    if root and not root.startswith("/"):
        r.bad("web.root_path", f"{root!r} must start with '/' (e.g. \"/skjemapost\"), or be empty")
    return Web(
        host=r.text("web.host", "127.0.0.1"),
        port=r.integer("web.port", 8080, 1, 65535),
        root_path=root,
        users_file=r.path("web.users_file", "users.toml"),
        session_secret_env=r.env_name("web.session_secret_env", "SKJEMAPOST_WEB_SECRET"),
        session_hours=r.integer("web.session_hours", 8, 1, 24 * 14),
        secure_cookies=r.flag("web.secure_cookies", True),
        login_attempts=r.integer("web.login_attempts", 5, 1, 1000),
        login_window_minutes=r.integer("web.login_window_minutes", 15, 1, 24 * 60),
        forwarded_allow_ips=r.text("web.forwarded_allow_ips", "127.0.0.1", nonempty=False),
        public_url=_public_url(r),
    )


def _public_url(r: KeyReader) -> str:
    url = r.text("web.public_url", "", nonempty=False).strip()
    if url and not url.startswith(("https://", "http://")):
        r.bad(
            "web.public_url",
            f'{url!r} must be an http(s) address (e.g. "https://skjema.example.edu/"), or empty',
        )
    return url
