"""`skjemapost serve`: the small web page for HR and coordinators (Starlette, run by uvicorn).

Pages: ``/login``, ``/`` (the dashboard), ``/workbook.xlsx`` (the master workbook the user's role
allows), ``/healthz`` (no login, no campaign data), and POST-only ``/logout`` and ``/language``.
No URL carries a unit or a faculty: what a user sees is decided by the role in the users file,
read again at every request, never by the request (``web.views.scope``).

Sessions are Starlette's signed cookies (itsdangerous), HttpOnly, SameSite=Lax, Secure unless
``web.secure_cookies`` is off. The session holds the user's name, when they logged in, a
fingerprint of their password hash (so a changed password or a removed user ends it) and a CSRF
token that every POST form must return. Login clears the session and starts a new one, so a
session planted before login is worth nothing after it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
import shutil
import tempfile
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.app.operations import CompileError
from service.app.wiring import App
from service.clock import Clock
from service.config.settings import Config
from service.errors import ConfigError, Problem
from service.models import LANGUAGES, Language
from service.web.users import LoginLimiter, UserDirectory, UsersFileError, WebUser, key
from service.web.views import Views

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "web"
SECRET_MIN = 16
log = logging.getLogger("skjemapost.web")

SECURITY_HEADERS = {
    # no script at all, styles only from our own file, forms only back to us, never in a frame
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders:
    """Adds the security headers to every response, and ``no-store`` to all but the stylesheet."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].removeprefix(scope.get("root_path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                extra = dict(SECURITY_HEADERS)
                if not static:
                    extra["cache-control"] = "no-store"
                headers += [(k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in have]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def load_texts() -> dict[str, dict[str, Any]]:
    """The page texts per language (templates/web/text/<lang>.toml); both must have every key."""
    folder = TEMPLATES / "text"
    texts: dict[str, dict[str, Any]] = {
        lang: tomllib.loads((folder / f"{lang}.toml").read_text(encoding="utf-8")) for lang in LANGUAGES
    }
    keys = [set(t) for t in texts.values()]
    if any(k != keys[0] for k in keys):
        diff = sorted(set[str]().union(*keys) - keys[0].intersection(*keys))
        raise ConfigError([Problem(str(TEMPLATES / "text"), f"keys missing in one language: {diff}")])
    return texts


def pick_language(accept: str, default: Language) -> Language:
    """The first of nb/en the browser's Accept-Language asks for (no, nn and nb all mean nb)."""
    wanted: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        wanted.append((-q, i, tag.strip().lower().split("-")[0]))
    for q, _, tag in sorted(wanted):
        if q < 0 and tag in ("nb", "no", "nn"):
            return "nb"
        if q < 0 and tag == "en":
            return "en"
    return default


class Web:
    """What the routes share: config, clock, users, views, templates, texts and the limiter."""

    def __init__(self, config: Config, clock: Clock | None) -> None:
        self.config = config
        self.app = App(config, clock)
        # made once here, not lazily by the first requests' threads at the same time
        _ = self.app.store, self.app.form
        self.clock = self.app.clock
        self.views = Views(self.app)
        self.users = UserDirectory(config.web.users_file)
        self.users.users()  # fail at start on a missing or bad file, not at the first login
        window = dt.timedelta(minutes=config.web.login_window_minutes)
        self.limiter = LoginLimiter(config.web.login_attempts, window)
        self.texts = load_texts()
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["day"] = day

    # -- request helpers ------------------------------------------------------------------------

    def language(self, request: Request) -> Language:
        chosen = request.session.get("lang")
        if chosen in LANGUAGES:
            return chosen  # type: ignore[no-any-return]
        accept = request.headers.get("accept-language", "")
        return pick_language(accept, self.config.campaign.default_language)

    def user(self, request: Request) -> WebUser | None:
        """The logged-in user, as the users file has them now; None if the session is not valid."""
        name, at = request.session.get("user"), request.session.get("at")
        if not isinstance(name, str) or not isinstance(at, str):
            return None
        try:
            user = self.users.get(name)
            since = self.clock.now() - dt.datetime.fromisoformat(at)
        except UsersFileError as exc:
            log.error("users file unreadable, nobody is logged in: %s", exc)
            return None
        except ValueError:
            return None
        if user is None or request.session.get("fp") != user.fingerprint:
            return None
        if not dt.timedelta(0) <= since <= dt.timedelta(hours=self.config.web.session_hours):
            return None
        return user

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        lang = self.language(request)
        base = request.scope.get("root_path", "")
        html = self.env.get_template(template).render(
            t=self.texts[lang],
            lang=lang,
            other=next(x for x in LANGUAGES if x != lang),
            base=base,
            csrf=csrf_token(request),
            here=request.scope["path"].removeprefix(base) or "/",
            me=context.pop("me", None),
            **context,
        )
        return HTMLResponse(html, status)

    def url(self, request: Request, path: str) -> str:
        return str(request.scope.get("root_path", "")) + path


def day(value: dt.date | None, lang: str) -> str:
    """A date as people write it: 16.12.2020 in Norwegian, 2020-12-16 in English."""
    if value is None:
        return ""
    return value.strftime("%d.%m.%Y") if lang == "nb" else value.strftime("%Y-%m-%d")


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if isinstance(token, str):
        return token
    new = secrets.token_urlsafe(32)
    request.session["csrf"] = new
    return new


async def checked_form(request: Request) -> FormData:
    """The POSTed form, if it carries this session's CSRF token; else 403."""
    form = await request.form(max_files=0, max_fields=10)
    sent, expected = form.get("csrf"), request.session.get("csrf")
    if not (isinstance(sent, str) and isinstance(expected, str) and secrets.compare_digest(sent, expected)):
        raise HTTPException(403, "csrf")
    return form


# -- routes ---------------------------------------------------------------------------------------


def routes(web: Web) -> list[Route | Mount]:  # noqa: C901 - each page is a small closure here; mccabe counts them all as one
    async def dashboard(request: Request) -> Response:
        user = web.user(request)
        if user is None:
            return RedirectResponse(web.url(request, "/login"), 303)
        data = await run_in_threadpool(web.views.dashboard, user, web.language(request))
        return web.page(request, "dashboard.html", me=user, d=data)

    async def login_page(request: Request) -> Response:
        if web.user(request) is not None:
            return RedirectResponse(web.url(request, "/"), 303)
        return web.page(request, "login.html", error=None, name="")

    async def login(request: Request) -> Response:
        form = await checked_form(request)
        name, password = str(form.get("name") or "").strip(), str(form.get("password") or "")
        client = request.client.host if request.client else "unknown"
        keys, now = [f"user:{key(name)}", f"addr:{client}"], web.clock.now()
        until = web.limiter.blocked_until(keys, now)
        if until is not None:
            log.warning("login refused (rate limit): user %r from %s", name, client)
            minutes = max(1, -(-int((until - now).total_seconds()) // 60))
            return web.page(request, "login.html", 429, error="limited", minutes=minutes, name=name)
        try:
            user = await run_in_threadpool(web.users.authenticate, name, password)
        except UsersFileError as exc:
            log.error("users file unreadable, login refused: %s", exc)
            user = None
        if user is None:
            web.limiter.failed(keys, now)
            log.warning("login failed: user %r from %s", name, client)
            return web.page(request, "login.html", 401, error="failed", name=name)
        web.limiter.clear(keys[0])
        lang = request.session.get("lang")
        request.session.clear()  # a new session at login: nothing from before it survives
        request.session.update(
            user=user.name, at=now.isoformat(), fp=user.fingerprint, csrf=secrets.token_urlsafe(32)
        )
        if lang in LANGUAGES:
            request.session["lang"] = lang
        log.info("login: user %r (%s) from %s", user.name, user.role, client)
        return RedirectResponse(web.url(request, "/"), 303)

    async def logout(request: Request) -> Response:
        await checked_form(request)
        lang = request.session.get("lang")
        request.session.clear()
        if lang in LANGUAGES:
            request.session["lang"] = lang
        return RedirectResponse(web.url(request, "/login"), 303)

    async def language(request: Request) -> Response:
        form = await checked_form(request)
        lang, back = form.get("lang"), form.get("next")
        if lang in LANGUAGES:
            request.session["lang"] = lang
        return RedirectResponse(web.url(request, back if back in ("/", "/login") else "/"), 303)

    async def workbook(request: Request) -> Response:
        """GET: the role's workbook. POST (HR's per-faculty form): the faculty comes in the body,
        never in the URL, and only HR's choice counts (``web.views.scope``)."""
        wanted = None
        if request.method == "POST":
            form = await checked_form(request)
            wanted = str(form.get("faculty") or "") or None
        user = web.user(request)
        if user is None:
            return PlainTextResponse(
                "401 Unauthorized: log in first\n",
                401,
                headers={"WWW-Authenticate": 'Cookie realm="skjemapost"'},
            )
        folder = Path(tempfile.mkdtemp(prefix="skjemapost-web-"))
        try:
            path, name = await run_in_threadpool(web.views.workbook, user, folder, wanted)
        except CompileError:
            shutil.rmtree(folder, ignore_errors=True)
            raise HTTPException(404, "no units") from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        log.info("workbook: user %r (%s %s)", user.name, user.role, user.faculty or "all")
        return FileResponse(
            path,
            filename=name,
            content_disposition_type="attachment",
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )

    async def healthz(request: Request) -> Response:
        try:
            await run_in_threadpool(web.views.health)
        except Exception:
            log.exception("health check: the database does not answer")
            return JSONResponse({"status": "error", "database": "unavailable"}, 503)
        return JSONResponse({"status": "ok", "database": "ok"})

    return [
        Route("/", dashboard, methods=["GET"], name="dashboard"),
        Route("/login", login_page, methods=["GET"], name="login_page"),
        Route("/login", login, methods=["POST"], name="login"),
        Route("/logout", logout, methods=["POST"], name="logout"),
        Route("/language", language, methods=["POST"], name="language"),
        Route("/workbook.xlsx", workbook, methods=["GET", "POST"], name="workbook"),
        Route("/healthz", healthz, methods=["GET"], name="healthz"),
        Mount("/static", StaticFiles(directory=TEMPLATES / "static"), name="static"),
    ]


def create_app(config: Config, clock: Clock | None = None) -> Starlette:
    """The web app for ``config``; raises ConfigError/UsersFileError if the session secret or the
    users file is missing or bad, so a misconfigured service stops at start."""
    secret = config.secrets.require(
        config.web.session_secret_env, "the key that signs the web page's session cookies"
    )
    if len(secret) < SECRET_MIN:
        raise ConfigError(
            [
                Problem(
                    config.web.session_secret_env,
                    f"the session key must be at least {SECRET_MIN} characters "
                    "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
                )
            ]
        )
    web = Web(config, clock)

    async def error_page(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        kind = {403: "403", 404: "404", 405: "405"}.get(status, "other")
        return web.page(request, "error.html", status, kind=kind, me=web.user(request))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        web.app.close()

    app = Starlette(
        routes=routes(web),
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie="skjemapost_session",
                max_age=config.web.session_hours * 3600,
                path=(config.web.root_path or "/"),
                same_site="lax",
                https_only=config.web.secure_cookies,
            ),
        ],
        exception_handlers={HTTPException: error_page},
        lifespan=lifespan,
        max_body_size=64 * 1024,  # the largest form is a login
    )
    app.state.web = web
    return app


def server_config(
    config: Config, clock: Clock | None = None, *, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """uvicorn's settings for ``config``: root_path and the proxies trusted for X-Forwarded-*."""
    trusted = config.web.forwarded_allow_ips
    return uvicorn.Config(
        create_app(config, clock),
        host=host or config.web.host,
        port=port or config.web.port,
        root_path=config.web.root_path,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        server_header=False,
    )


def run_server(
    config: Config, clock: Clock | None = None, *, host: str | None = None, port: int | None = None
) -> None:
    """Serve until stopped (Ctrl-C or SIGTERM): blocking."""
    uvicorn.Server(server_config(config, clock, host=host, port=port)).run()
