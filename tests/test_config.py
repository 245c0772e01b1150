"""The config: loaded once, every problem reported with its key path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from service.config import settings as config
from service.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "config" / "skjemapost.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "skjemapost.toml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """
[campaign]
id = "aml-2020"
title = "Test"
opens = 2020-11-23
deadline = 2020-12-16
[mail]
from_address = "hms@example.edu"
"""


def test_example_config_loads_with_documented_defaults():
    """The shipped example loads, and its paths resolve next to the file."""
    cfg = config.load(EXAMPLE, {"SKJEMAPOST_SECRET": "s3cret"})
    assert cfg.campaign.id == "aml-2020"
    assert cfg.campaign.timezone == "Europe/Oslo"
    assert cfg.campaign.form.is_file()
    assert cfg.campaign.roster.is_file()
    assert cfg.schedule.reminder_days_before == (14, 7, 2)
    assert cfg.storage.database_url.startswith("sqlite:///")
    assert cfg.secrets.token_secret() == b"s3cret"
    assert {c.faculty for c in cfg.coordinators} == {"IE", "NV", "HF"}


def test_minimal_config_gets_defaults(tmp_path):
    """Only the required keys: everything else takes its documented default."""
    cfg = config.load(write(tmp_path, MINIMAL), {})
    assert cfg.smtp.tls == "starttls" and cfg.smtp.port == 587
    assert cfg.imap.folders.review == "Skjemapost/Til vurdering"
    assert cfg.schedule.send_hour == 9
    assert cfg.storage.database_url == f"sqlite:///{(tmp_path.parent / 'data').resolve()}/skjemapost.db"


def test_three_mistakes_are_all_reported_with_their_key_paths(tmp_path):
    """A config with three mistakes: all three are reported, each with its key path, exit code 2."""
    text = (
        MINIMAL.replace('id = "aml-2020"', 'id = "AML 2020!"')
        + """
[smtp]
port = "587"
tls = "ssl"
"""
    )
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text), {})
    where = {p.where for p in err.value.problems}
    assert where == {"campaign.id", "smtp.port", "smtp.tls"}
    assert err.value.exit_code == 2
    assert "smtp.tls" in str(err.value) and "'ssl' is not one of implicit, starttls, none" in str(err.value)


def test_missing_required_keys_and_unknown_keys_are_reported(tmp_path):
    """Missing required keys and a typo'd key are problems, not silent defaults."""
    text = """
[campaign]
title = "x"
opens = 2020-12-20
deadline = 2020-12-16
[mail]
from_adress = "hms@example.edu"
"""
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text), {})
    where = {p.where for p in err.value.problems}
    assert {"campaign.id", "campaign.deadline", "mail.from_address", "mail.from_adress"} <= where


@pytest.mark.parametrize(
    ("snippet", "key"),
    [
        ("[schedule]\nsend_hour = 24", "schedule.send_hour"),
        ("[schedule]\ndigest_weekday = 'fredag'", "schedule.digest_weekday"),
        ("[schedule]\nreminder_days_before = [14, 0]", "schedule.reminder_days_before[1]"),
        ("[schedule]\nreminder_days_before = [40]", "schedule.reminder_days_before[0]"),
        ("[campaign2]\nx = 1", "campaign2"),
        ("[[coordinators]]\nfaculty = 'IE'\nname = 'K'\nemail = 'not-an-address'", "coordinators[0].email"),
        ("[hr]\nrecipients = ['hr@example.edu', 'nope']", "hr.recipients[1]"),
        ("[security]\ntoken_secret_env = 'MY SECRET'", "security.token_secret_env"),
    ],
)
def test_bad_values_name_their_key(tmp_path, snippet, key):
    """Each bad value is rejected under its own key path."""
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, MINIMAL + snippet), {})
    assert key in {p.where for p in err.value.problems}


def test_bad_timezone_and_not_toml(tmp_path):
    """An unknown time zone is named; a file that is not TOML says so."""
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, MINIMAL.replace("[mail]", 'timezone = "Europe/Oslö"\n[mail]')), {})
    assert [p.where for p in err.value.problems] == ["campaign.timezone"]
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[campaign\n"), {})


def test_secrets_come_only_from_the_environment_given_at_load(tmp_path):
    """A missing secret is an error naming the variable, only when it is needed."""
    cfg = config.load(write(tmp_path, MINIMAL), {"SKJEMAPOST_SMTP_PASSWORD": "pw"})
    assert cfg.secrets.require("SKJEMAPOST_SMTP_PASSWORD", "x") == "pw"
    with pytest.raises(ConfigError, match="SKJEMAPOST_SECRET"):
        cfg.secrets.token_secret()


def test_config_path_resolution():
    """--config wins, then $SKJEMAPOST_CONFIG, then config/skjemapost.toml."""
    assert config.resolve_path("a.toml", {"SKJEMAPOST_CONFIG": "b.toml"}) == Path("a.toml")
    assert config.resolve_path(None, {"SKJEMAPOST_CONFIG": "b.toml"}) == Path("b.toml")
    assert config.resolve_path(None, {}) == Path("config/skjemapost.toml")


XOAUTH2 = (
    MINIMAL
    + """
[smtp]
user = "skjemapost@example.edu"
auth = "xoauth2"
[imap]
user = "skjemapost@example.edu"
auth = "xoauth2"
"""
)


def test_xoauth2_needs_tenant_and_client_id_and_a_user(tmp_path):
    """With xoauth2, a missing oauth.tenant_id and oauth.client_id are reported by key, as is
    a server without the mailbox user; with passwords none of them is required."""
    no_smtp_user = XOAUTH2.replace(
        'user = "skjemapost@example.edu"\nauth = "xoauth2"\n[imap]', 'auth = "xoauth2"\n[imap]'
    )
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, no_smtp_user), {})
    assert {p.where for p in err.value.problems} == {"oauth.tenant_id", "oauth.client_id", "smtp.user"}
    assert config.load(write(tmp_path, MINIMAL), {}).oauth.tenant_id == ""


def test_oauth_keys_and_their_secrets(tmp_path):
    """The [oauth] keys load with Exchange's defaults; both credential variables are read at
    load; an http:// authority other than loopback is refused."""
    text = XOAUTH2 + '[oauth]\ntenant_id = "t-1"\nclient_id = "c-1"\ncertificate_env = "MY_CERT"\n'
    cfg = config.load(write(tmp_path, text), {"SKJEMAPOST_OAUTH_SECRET": "s", "MY_CERT": "pem"})
    assert (cfg.smtp.auth, cfg.imap.auth) == ("xoauth2", "xoauth2")
    assert cfg.oauth.authority_host == "https://login.microsoftonline.com"
    assert cfg.oauth.scope == "https://outlook.office365.com/.default"
    assert (cfg.secrets.get("SKJEMAPOST_OAUTH_SECRET"), cfg.secrets.get("MY_CERT")) == ("s", "pem")
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text + 'authority_host = "http://login.example.edu"\n'), {})
    assert [p.where for p in err.value.problems] == ["oauth.authority_host"]


def test_closed_days_take_toml_dates_and_iso_strings(tmp_path):
    """schedule.closed_days: TOML dates and "YYYY-MM-DD" strings, sorted, each day once; none by default."""
    assert config.load(write(tmp_path, MINIMAL), {}).schedule.closed_days == ()
    assert config.load(EXAMPLE, {}).schedule.closed_days == ()
    text = MINIMAL + '[schedule]\nclosed_days = [2020-12-31, "2020-12-24", 2020-12-28, " 2020-12-31 "]\n'
    cfg = config.load(write(tmp_path, text), {})
    assert cfg.schedule.closed_days == (dt.date(2020, 12, 24), dt.date(2020, 12, 28), dt.date(2020, 12, 31))


def test_bad_closed_days_are_named_by_index(tmp_path):
    """Each entry that is not a date is reported as schedule.closed_days[i]: a Norwegian-style date,
    a number, a date-time, a day that does not exist, a compact ISO date; good entries are not."""
    text = MINIMAL + (
        '[schedule]\nclosed_days = [2020-12-24, "24.12.2020", 5, 2020-12-28T09:00:00, '
        '"2020-02-30", "20201229"]\n'
    )
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text), {})
    assert {p.where for p in err.value.problems} == {f"schedule.closed_days[{i}]" for i in range(1, 6)}
    assert "24.12.2020" in next(p.message for p in err.value.problems if p.where.endswith("[1]"))
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, MINIMAL + '[schedule]\nclosed_days = "2020-12-24"\n'), {})
    assert [p.where for p in err.value.problems] == ["schedule.closed_days"]
