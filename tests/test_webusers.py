"""The web page's users file and the `user` / `serve` commands, without a browser or a server."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from click.testing import CliRunner
from harness.website import WEB_SECRET, web_project

from service.cli.main import cli
from service.config import settings as config_mod
from service.errors import ConfigError
from service.web.app import create_app, load_texts, pick_language
from service.web.users import (
    LoginLimiter,
    UserDirectory,
    UserError,
    UsersFileError,
    add_user,
    load_users,
    parse_users,
    remove_user,
    verify_password,
)

T = dt.datetime(2020, 12, 1, 9, 0, tzinfo=dt.UTC)


def test_add_user_writes_an_argon2id_hash_in_a_0600_file_and_replaces_by_name(tmp_path):
    path = tmp_path / "sub" / "users.toml"
    add_user(path, "Kari", "hr", None, "first-password")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "first-password" not in text and "$argon2id$" in text
    kari = load_users(path)["kari"]
    assert kari.role == "hr" and kari.faculty is None
    assert verify_password(kari.password_hash, "first-password")
    assert not verify_password(kari.password_hash, "First-password")
    add_user(path, "kari", "coordinator", "IE", "second-password")  # same name, other case: replaced
    users = load_users(path)
    assert list(users) == ["kari"] and users["kari"].faculty == "IE"
    assert not verify_password(users["kari"].password_hash, "first-password")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_remove_user(tmp_path):
    path = tmp_path / "users.toml"
    add_user(path, "a", "hr", None, "password-a")
    add_user(path, "b", "coordinator", "NV", "password-b")
    assert remove_user(path, "A") is True
    assert remove_user(path, "nobody") is False
    assert list(load_users(path)) == ["b"]


@pytest.mark.parametrize(
    ("role", "faculty", "password", "message"),
    [
        ("admin", None, "pw-long-enough", "role 'admin'"),
        ("coordinator", None, "pw-long-enough", "needs --faculty"),
        ("hr", "IE", "pw-long-enough", "leave out --faculty"),
        ("hr", None, "", "password is empty"),
    ],
)
def test_add_user_refuses_bad_roles_and_passwords(tmp_path, role, faculty, password, message):
    with pytest.raises(UserError, match=message):
        add_user(tmp_path / "users.toml", "x", role, faculty, password)
    assert not (tmp_path / "users.toml").exists()


def test_a_name_with_spaces_is_refused(tmp_path):
    with pytest.raises(UserError, match="without spaces"):
        add_user(tmp_path / "users.toml", "kari nordmann", "hr", None, "pw-long-enough")


def test_a_bad_file_names_every_bad_entry_and_key(tmp_path):
    good = load_users(_one(tmp_path))["ok"].password_hash
    raw = {
        "users": [
            {"name": "ok", "role": "hr", "password_hash": good},
            {"name": "x", "role": "boss", "password_hash": good},
            {"name": "y", "role": "coordinator", "password_hash": good},
            {"name": "z", "role": "hr", "password_hash": "plain-text"},
            {"role": "hr", "password_hash": good, "colour": "blue"},
            {"name": "OK", "role": "hr", "password_hash": good},
        ],
        "admins": [],
    }
    with pytest.raises(UsersFileError) as err:
        parse_users(raw, "users.toml")
    where = {p.where for p in err.value.problems}
    assert where == {
        "admins",
        "users[1].role",
        "users[2].faculty",
        "users[3].password_hash",
        "users[4].name",
        "users[4].colour",
        "users[5].name",
    }


def test_a_missing_or_broken_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(UsersFileError, match=r"no such file.*user add"):
        load_users(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("[[users]\nname=", encoding="utf-8")
    with pytest.raises(UsersFileError, match=r"bad\.toml.*not valid TOML"):
        load_users(tmp_path / "bad.toml")


def _one(tmp_path):
    path = tmp_path / "one.toml"
    add_user(path, "ok", "hr", None, "ok-password")
    return path


def test_the_directory_rereads_the_file_when_it_changes_and_fails_closed(tmp_path):
    path = tmp_path / "users.toml"
    add_user(path, "a", "hr", None, "password-a")
    users = UserDirectory(path)
    assert users.authenticate("a", "password-a") is not None
    assert users.authenticate("a", "wrong") is None
    assert users.authenticate("b", "password-b") is None  # unknown: same answer as a wrong password
    add_user(path, "b", "coordinator", "IE", "password-b")
    assert users.authenticate("B", "password-b").faculty == "IE"
    path.write_text("not toml [", encoding="utf-8")
    with pytest.raises(UsersFileError):
        users.get("a")


def test_the_login_limiter_counts_failures_in_a_sliding_window():
    limiter = LoginLimiter(3, dt.timedelta(minutes=15))
    keys = ["user:kari", "addr:192.0.2.1"]
    for i in range(3):
        assert limiter.blocked_until(keys, T) is None
        limiter.failed(keys, T + dt.timedelta(minutes=i))
    assert limiter.blocked_until(keys, T + dt.timedelta(minutes=3)) == T + dt.timedelta(minutes=15)
    assert limiter.blocked_until(["user:other"], T) is None
    assert limiter.blocked_until(keys, T + dt.timedelta(minutes=15)) is None  # the first one left
    limiter.failed(keys, T + dt.timedelta(minutes=15))
    assert limiter.blocked_until(keys, T + dt.timedelta(minutes=15)) is not None
    limiter.clear("user:kari")
    assert limiter.blocked_until(["user:kari"], T + dt.timedelta(minutes=15)) is None
    assert limiter.blocked_until(["addr:192.0.2.1"], T + dt.timedelta(minutes=15)) is not None


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("", "nb"),
        ("en-GB,en;q=0.9", "en"),
        ("nn-NO,en;q=0.5", "nb"),
        ("de,en;q=0.3,nb;q=0.7", "nb"),
        ("fr", "nb"),
        ("en;q=0.2, no;q=0.1", "en"),
        ("garbage;q=x", "nb"),
    ],
)
def test_accept_language(header, lang):
    assert pick_language(header, "nb") == lang


def test_both_languages_have_every_text():
    texts = load_texts()
    assert set(texts["nb"]) == set(texts["en"]) and texts["nb"]["login_title"] != texts["en"]["login_title"]


# -- the commands ---------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path):
    return web_project(tmp_path)


def run(p, *args: str, input: str | None = None):
    """skjemapost in-process with the project's config, feeding ``input`` to stdin (or a prompt)."""
    return CliRunner().invoke(
        cli, ["--config", str(p.config), *args], env=p.env, input=input, catch_exceptions=False
    )


def test_user_add_list_remove(project):
    users = project.dir / "users.toml"
    r = run(project, "user", "add", "kari", "--role", "hr", "--password-stdin", input="kari-password\n")
    assert r.exit_code == 0, r.output
    r = run(
        project,
        "user",
        "add",
        "ola",
        "--role",
        "coordinator",
        "--faculty",
        "IE",
        input="ola-password-1\nola-password-1\n",
    )  # prompted twice, hidden
    assert r.exit_code == 0, r.output
    assert "ola-password-1" not in r.output
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    r = run(project, "user", "list")
    assert r.exit_code == 0
    assert [line.split() for line in r.output.splitlines()] == [["ola", "coordinator", "IE"], ["kari", "hr"]]
    assert "argon2" not in r.output and "password" not in r.output
    assert run(project, "user", "remove", "ola").exit_code == 0
    assert list(load_users(users)) == ["kari"]
    r = run(project, "user", "remove", "ola")
    assert r.exit_code == 2 and "no user 'ola'" in r.output


def test_user_add_refuses_an_unknown_faculty_and_a_short_password(project):
    r = run(
        project,
        "user",
        "add",
        "x",
        "--role",
        "coordinator",
        "--faculty",
        "MED",
        "--password-stdin",
        input="long-enough-pw\n",
    )
    assert r.exit_code == 2 and "--faculty 'MED'" in r.output and "HF, IE, NV" in r.output
    r = run(project, "user", "add", "x", "--role", "hr", "--password-stdin", input="short\n")
    assert r.exit_code == 2 and "at least 10 characters" in r.output
    assert not (project.dir / "users.toml").exists()


def test_serve_stops_with_a_clear_error_without_the_session_key_or_users(project):
    env = dict(project.env)
    project.env.pop("SKJEMAPOST_WEB_SECRET")
    r = run(project, "serve", "--port", "1")
    assert r.exit_code == 2 and "SKJEMAPOST_WEB_SECRET" in r.output and "session cookies" in r.output
    project.env.update(env)
    r = run(project, "serve", "--port", "1")
    assert r.exit_code == 2 and "users.toml" in r.output and "user add" in r.output


def test_a_short_session_key_is_refused(project):
    add_user(project.dir / "users.toml", "kari", "hr", None, "kari-password")
    cfg = config_mod.load(project.config, {**project.env, "SKJEMAPOST_WEB_SECRET": "short"})
    with pytest.raises(ConfigError, match="at least 16"):
        create_app(cfg)
    assert create_app(config_mod.load(project.config, {**project.env, "SKJEMAPOST_WEB_SECRET": WEB_SECRET}))
