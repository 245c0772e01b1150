"""A throwaway skjemapost deployment for tests: a config, a roster and a SQLite file in a temp
folder (or a PostgreSQL database, ``use_database``), using the repository's real form and
templates. It can point at a MailWorld."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner, Result

from service.campaign.roster import write_csv
from service.cli.main import cli
from service.models import Unit

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-of-32-characters-long"
FACULTIES = ("IE", "NV", "HF")


def make_units(n: int, domain: str = "example.test", prefix: str = "leader") -> list[Unit]:
    """n units over three faculties, every third in English, leaders with their own address."""
    return [
        Unit(
            code=f"{FACULTIES[i % 3]}-U{i:03d}",
            name=f"Institutt nr. {i} for æøå-studier",
            faculty=FACULTIES[i % 3],
            leader_name=f"Leder Ås {i}",
            leader_email=f"{prefix}{i:03d}@{domain}",
            language="en" if i % 3 == 2 else "nb",
            verneombud_name=f"Verneombud {i}",
            verneombud_email=f"vo{i:03d}@{domain}",
            superior_email=f"dekan-{FACULTIES[i % 3].lower()}@{domain}",
        )
        for i in range(n)
    ]


@dataclass
class Project:
    dir: Path
    units: list[Unit]
    env: dict[str, str] = field(default_factory=dict)
    database_url: str = ""  # "" = the SQLite file under data/

    @property
    def config(self) -> Path:
        return self.dir / "skjemapost.toml"

    def write_config(
        self,
        *,
        smtp: dict[str, object] | None = None,
        imap: dict[str, object] | None = None,
        mail: dict[str, object] | None = None,
        extra: str = "",
    ) -> None:
        def table(name: str, values: dict[str, object]) -> str:
            lines = [f"[{name}]"]
            for k, v in values.items():
                lines.append(f"{k} = {_toml(v)}")
            return "\n".join(lines)

        coordinators = "\n".join(
            f'[[coordinators]]\nfaculty = "{f}"\nname = "Koordinator {f}"\n'
            f'email = "koord-{f.lower()}@example.test"'
            for f in FACULTIES
        )
        text = "\n\n".join(
            [
                table(
                    "campaign",
                    {
                        "id": "aml-2020",
                        "title": "Oppsummering og evaluering 2020",
                        "form": str(ROOT / "forms/oppsummering-og-evaluering.toml"),
                        "roster": "roster.csv",
                        "opens": "2020-11-23",
                        "deadline": "2020-12-16",
                        "institution_domains": ["example.test"],
                    },
                ),
                table("smtp", smtp or {"host": "127.0.0.1", "port": 1, "tls": "none"}),
                table("imap", imap or {"host": "127.0.0.1", "port": 1, "tls": "none"}),
                table(
                    "mail",
                    {
                        "from_address": "service@example.test",
                        "templates": str(ROOT / "templates/email"),
                        **(mail or {}),
                    },
                ),
                coordinators,
                table("hr", {"recipients": ["hr@example.test"]}),
                table("storage", {"data_dir": "data"}),
                extra,
            ]
        )
        self.config.write_text(text, encoding="utf-8")

    def write_roster(self, units: Sequence[Unit] | None = None) -> Path:
        path = self.dir / "roster.csv"
        path.write_text(write_csv(units if units is not None else self.units), encoding="utf-8")
        return path

    def use_database(self, url: str) -> None:
        """Point the project at the empty database ``url`` and set it up there."""
        self.config.write_text(
            self.config.read_text().replace('data_dir = "data"', f'data_dir = "data"\ndatabase_url = "{url}"')
        )
        self.database_url = url
        self.setup()

    def query(self, sql: str) -> list[tuple]:
        """Rows of ``sql`` in the project's database, whichever it is."""
        engine = sa.create_engine(
            self.database_url or f"sqlite:///{self.dir / 'data' / 'skjemapost.db'}",
            poolclass=sa.pool.NullPool,
        )
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql))]
        finally:
            engine.dispose()

    def cli(self, *args: str) -> Result:
        """Run skjemapost in-process with this project's config and environment."""
        return CliRunner().invoke(
            cli, ["--config", str(self.config), *args], env=self.env, catch_exceptions=False
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Run skjemapost as its own process (for tests that kill it)."""
        env = {**os.environ, **self.env}
        return subprocess.Popen(
            [sys.executable, "-m", "service", "--config", str(self.config), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def setup(self) -> None:
        """init + roster import, asserting both succeed."""
        for args in (("init",), ("roster", "import")):
            result = self.cli(*args)
            assert result.exit_code == 0, result.output


def _toml(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def new_project(tmp_path: Path, n_units: int = 6, **config: dict[str, object]) -> Project:
    p = Project(tmp_path, make_units(n_units), {"SKJEMAPOST_SECRET": SECRET})
    p.write_config(**config)
    p.write_roster()
    return p


def mail_project(
    tmp_path: Path,
    world,
    n: int,
    *,
    sent_folder: str = "",
    max_connections: int = 2,
    rate: int = 100_000,
    password: str | None = None,
) -> Project:
    """A project whose n leaders and own service address are real users of ``world``."""
    service = world.new_user("svc")
    units = make_units(n, prefix=f"l{uuid.uuid4().hex[:6]}-")
    # the leaders, and whoever else the service writes to: the verneombud (copies, the request to
    # confirm), superiors (escalations, notices), the coordinators and HR (digests, notices), so no
    # test depends on another having added them
    world.add_users(
        [u.leader_email for u in units]
        + [u.verneombud_email for u in units if u.verneombud_email]
        + [u.superior_email for u in units]
        + [f"koord-{f.lower()}@example.test" for f in FACULTIES]
        + ["hr@example.test"]
    )
    pw = password or world.password(service)
    p = Project(
        tmp_path,
        units,
        {
            "SKJEMAPOST_SECRET": SECRET,
            "SKJEMAPOST_SMTP_PASSWORD": pw,
            "SKJEMAPOST_IMAP_PASSWORD": world.password(service),
        },
    )
    p.service = service
    p.write_config(
        smtp={
            "host": world.host,
            "port": world.smtp_port,
            "tls": "starttls",
            "user": service,
            "ca_file": str(world.cert_path),
            "max_connections": max_connections,
            "rate_per_minute": rate,
            "retry_base_seconds": 0.01,
        },
        imap={"host": world.host, "port": world.imap_port, "tls": "none", "user": service},
        mail={"from_address": service},
        extra=f'[imap.folders]\nsent = "{sent_folder}"' if sent_folder else "",
    )
    p.write_roster()
    p.setup()
    return p
