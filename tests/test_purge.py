"""`skjemapost purge`: retention for a closed campaign, on SQLite and on a real PostgreSQL.

A campaign is built through the store as the pipeline would (invitations with their forms sent,
submissions, a bounce, a message in review, a late reply, a reminder never sent), then purged
with the CLI at a fixed time (`--as-of`), and every table is read back.
"""

from __future__ import annotations

import datetime as dt
import json
from email.message import EmailMessage
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from harness.filling import valid_answers
from projects import Project, new_project

from service.app.mailing import Mailing
from service.app.operations import Operations
from service.app.wiring import App
from service.clock import FixedClock
from service.config import settings as config_mod
from service.forms.answers import to_json
from service.jobs import purge as retention
from service.models import Decision, NewMail, NewSubmission
from service.store import tables as t

AS_OF = "2021-03-01T10:00"  # well past the deadline (2020-12-16) plus 30 days
BEFORE = "2021-01-01"
SENT = dt.datetime(2020, 11, 23, 9, 0, tzinfo=dt.UTC)
LATE = dt.datetime(2021, 2, 10, 9, 0, tzinfo=dt.UTC)  # after BEFORE: must be kept


@pytest.fixture
def project(tmp_path, db_url) -> Project:
    p = new_project(tmp_path)
    p.use_database(db_url)
    build_campaign(p)
    return p


def app_for(p: Project, at: dt.datetime = SENT) -> App:
    return App(config_mod.load(p.config, p.env), FixedClock(at))


def raw_mail(sender: str, name: str, n: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"] = f"{name} <{sender}>", "service@example.test"
    msg["Subject"], msg["Message-ID"] = f"Skjema fra {name}", f"<m{n}@example.test>"
    msg.set_content(f"Hilsen {name}, {sender}")
    msg.add_attachment(
        b"PK-not-really", maintype="application", subtype="octet-stream", filename=f"skjema {name}.xlsx"
    )
    return msg.as_bytes()


def inbound(
    app: App, n: int, at: dt.datetime, sender: str, name: str, decision: Decision, raw: bytes | None = None
) -> bytes:
    raw = raw or raw_mail(sender, name, n)
    path, digest = app.archive.put(raw)
    row = app.store.store_inbound(
        app.campaign_id,
        message_id=f"<m{n}@example.test>",
        folder="INBOX",
        uidvalidity=1,
        uid=n,
        received_at=at,
        sender=sender,
        subject=f"Skjema fra {name}",
        raw_path=path,
        sha256=digest,
        now=at,
    )
    assert app.store.record_decision(app.campaign_id, row, decision, at)
    return raw


def build_campaign(p: Project) -> None:
    app = app_for(p)
    units = [app.store.unit(app.campaign_id, u.code) for u in p.units]  # the roster's order
    assert Mailing(app).queue_invitations(units) == len(units)
    for row in app.store.outbox_rows(app.campaign_id, ["queued"]):
        app.store.mark(row.id, "sending", SENT)
        app.store.mark(row.id, "sent", SENT, f"250 ok for {row.recipients[0]}")
    first = b""
    for i, unit in enumerate(units[:3]):  # three forms in December, each answered by a receipt
        at = dt.datetime(2020, 12, 10, 9, i, tzinfo=dt.UTC)
        sub = NewSubmission(
            unit.code,
            at,
            unit.leader_email,
            True,
            to_json(valid_answers(i)),
            (),
            (),
            f"skjema {unit.leader_name}.xlsx",
            f"{i:064x}",
        )
        receipt = NewMail(
            "leader-receipt",
            unit.code,
            f"aml-2020:{unit.code}:receipt:{i}",
            f"<kv{i}@example.test>",
            (unit.leader_email,),
            f"Kvittering {unit.name}",
            b"receipt bytes " + unit.leader_name.encode(),
        )
        raw = inbound(
            app,
            i,
            at,
            unit.leader_email,
            unit.leader_name,
            Decision(
                "submission",
                "receipt",
                "Skjemapost/Behandlet",
                unit.code,
                {
                    "sender": unit.leader_email,
                    "forms": [{"file": f"skjema {unit.leader_name}.xlsx", "unit": unit.code}],
                },
                submissions=(sub,),
                answers=(receipt,),
            ),
        )
        first = first or raw
    for row in app.store.outbox_rows(app.campaign_id, ["queued"]):  # the receipts went out
        app.store.mark(row.id, "sent", dt.datetime(2020, 12, 10, 10, tzinfo=dt.UTC))
    bounced = units[3]
    inbound(
        app,
        3,
        dt.datetime(2020, 11, 24, 8, tzinfo=dt.UTC),
        "mailer-daemon@example.test",
        "Daemon",
        Decision(
            "bounce",
            "bounce-recorded",
            "Skjemapost/Ignorert",
            bounced.code,
            {"failed": [bounced.leader_email], "reason": f"550 5.1.1 <{bounced.leader_email}>"},
            failing_addresses=((bounced.leader_email, f"550 5.1.1 <{bounced.leader_email}>"),),
        ),
    )
    asked = units[4]
    inbound(
        app,
        4,
        dt.datetime(2020, 12, 12, 8, tzinfo=dt.UTC),
        asked.leader_email,
        asked.leader_name,
        Decision(
            "question",
            "review",
            "Skjemapost/Til vurdering",
            asked.code,
            {"sender": asked.leader_email, "why": f"a question from {asked.leader_email}"},
        ),
    )
    late = units[5]
    sub = NewSubmission(
        late.code, LATE, late.leader_email, True, to_json(valid_answers(5)), (), (), "late.xlsx", "5" * 64
    )
    inbound(
        app,
        5,
        LATE,
        late.leader_email,
        late.leader_name,
        Decision(
            "submission",
            "receipt",
            "Skjemapost/Behandlet",
            late.code,
            {"sender": late.leader_email},
            submissions=(sub,),
        ),
    )
    # the very bytes of unit 0's message again, after BEFORE: its raw file must survive
    inbound(
        app,
        6,
        LATE,
        "forwarder@example.test",
        "Forwarder",
        Decision("auto-reply", "ignored", "Skjemapost/Ignorert"),
        raw=first,
    )
    app.store.queue(
        app.campaign_id,
        [
            NewMail(
                "leader-reminder-after",
                bounced.code,
                "aml-2020:x:never",
                "<never@example.test>",
                (bounced.leader_email,),
                "purring",
                b"never sent",
            )
        ],
        dt.datetime(2020, 12, 20, tzinfo=dt.UTC),
    )
    app.close()


def dump(p: Project) -> dict[str, list[dict[str, object]]]:
    app = app_for(p)
    with app.store.engine.connect() as conn:
        out = {
            tb.name: [dict(r._mapping) for r in conn.execute(sa.select(tb).order_by(*tb.primary_key))]
            for tb in t.metadata.sorted_tables
        }
    app.close()
    return out


def compile_workbook(p: Project, name: str) -> tuple[Path, dict[str, int]]:
    app = app_for(p, dt.datetime(2021, 3, 1, 9, tzinfo=dt.UTC))
    try:
        return Operations(app).compile(p.dir / name)
    finally:
        app.close()


def purge(p: Project, *args: str, before: str = BEFORE, as_of: str = AS_OF):
    return p.cli("--as-of", as_of, "purge", "--campaign", "aml-2020", "--before", before, *args)


def test_purge_removes_raw_mail_sent_bytes_and_personal_data_and_keeps_what_hr_needs(project):
    """Old raw files and mail bytes gone, no old address or name left anywhere in the database,
    answers, statuses and SHA-256 kept, newer mail untouched, a purge.done event, and the
    master workbook still compiles."""
    p = project
    before = dump(p)
    old_people = [u for u in p.units[:5]]
    files = {r["id"]: Path(r["raw_path"]) for r in before["inbound"]}
    assert all(f.exists() for f in files.values())
    compiled = compile_workbook(p, "before-purge.xlsx")

    result = purge(p, "--yes", "--include-review", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["raw_files"] == {"removed": 4, "kept_shared": 1, "already_gone": 0}
    assert summary["rows"] == {
        "inbound": 5,
        "submissions": 3,
        "outbox": 9,
        "units": 6,
        "events": 11,
        "address_failures": 1,
        "cosign": 0,
    }
    assert summary["outbox_not_sent_kept"] == 1 and summary["removed_anything"] is True

    after = dump(p)
    old_in = [r for r in after["inbound"] if r["received_at"] < LATE]
    assert [r["raw_path"] for r in old_in] == [""] * 5
    assert not any(files[r["id"]].exists() for r in old_in[1:])
    assert files[1] == files[7] and files[1].exists()  # row 7 has the same bytes, after BEFORE
    assert all(r["sender"] == "" and r["subject"] == "" for r in old_in)
    assert [r["sha256"] for r in after["inbound"]] == [r["sha256"] for r in before["inbound"]]
    assert [(r["status"], r["outcome"], r["kind"]) for r in after["inbound"]] == [
        (r["status"], r["outcome"], r["kind"]) for r in before["inbound"]
    ]
    late = [r for r in after["inbound"] if r["received_at"] >= LATE]
    assert late == [r for r in before["inbound"] if r["received_at"] >= LATE]

    assert [(s["file_sha256"], s["valid"], s["current"]) for s in after["submissions"]] == [
        (s["file_sha256"], s["valid"], s["current"]) for s in before["submissions"]
    ]
    # the answers stay, but for those the form marks personal: the names, emptied before DATE
    personal = {"leder", "verneombud_navn"}
    for old, new in zip(before["submissions"][:3], after["submissions"][:3], strict=True):
        assert old["answers"].get("verneombud_navn") and new["answers"]["verneombud_navn"] is None
        assert {k: v for k, v in new["answers"].items() if k not in personal} == {
            k: v for k, v in old["answers"].items() if k not in personal
        }
    assert after["submissions"][3]["answers"] == before["submissions"][3]["answers"]  # after DATE
    assert [s["sender"] for s in after["submissions"]] == ["", "", "", p.units[5].leader_email]

    sent = [o for o in after["outbox"] if o["status"] == "sent"]
    assert len(sent) == 9 and all(
        o["payload"] is None
        and o["recipients"] == []
        and o["subject"] == ""
        and "@" not in (o["last_error"] or "")
        for o in sent
    )
    (never,) = [o for o in after["outbox"] if o["status"] == "queued"]
    assert never["payload"] == b"never sent"  # not sent yet: kept as it is

    for before_u, after_u in zip(before["units"], after["units"], strict=True):
        assert (after_u["code"], after_u["name"], after_u["faculty"]) == (
            before_u["code"],
            before_u["name"],
            before_u["faculty"],
        )
        assert after_u["leader_name"] == after_u["leader_email"] == after_u["verneombud_email"] == ""
    assert after["address_failures"] == []

    # no old person's address survives anywhere but in the answers, which are kept
    # (and the one mail never sent, which is kept whole and reported)
    text = json.dumps({k: [r for r in v if r is not never] for k, v in after.items()}, default=str)
    text = text.replace(json.dumps([s["answers"] for s in after["submissions"]], default=str), "")
    for u in old_people:
        assert u.leader_email not in text and u.verneombud_email not in text
    (done,) = [e for e in after["events"] if e["kind"] == "purge.done"]
    assert done["detail"]["before"] == BEFORE and done["detail"]["raw_files"] == 4
    assert done["detail"]["rows"]["units"] == 6

    _, counts_before = compiled
    path, counts = compile_workbook(p, "after-purge.xlsx")
    assert counts == counts_before and counts["Svar"] == 6  # the same rows, one per unit in "Svar"
    cells = [
        str(c)
        for ws in openpyxl.load_workbook(path).worksheets
        for row in ws.iter_rows(values_only=True)
        for c in row
        if c is not None
    ]
    assert not any(u.leader_email in c for u in old_people for c in cells)


def test_a_second_purge_removes_nothing_and_says_so(tmp_path):
    """Idempotent: the second run reports nothing to remove and changes no row."""
    p = new_project(tmp_path)
    p.setup()
    build_campaign(p)
    assert purge(p, "--yes", "--include-review").exit_code == 0
    once = dump(p)
    result = purge(p, "--yes", "--include-review")
    assert result.exit_code == 0 and "nothing to remove" in result.output
    assert dump(p) == once
    again = json.loads(purge(p, "--yes", "--include-review", "--json").output)
    assert again["removed_anything"] is False and set(again["rows"].values()) == {0}


def test_dry_run_and_a_declined_prompt_change_nothing(tmp_path):
    """--dry-run counts what would go; answering no at the prompt removes nothing."""
    p = new_project(tmp_path)
    p.setup()
    build_campaign(p)
    before = dump(p)
    dry = purge(p, "--dry-run", "--include-review")
    assert dry.exit_code == 0 and "would remove" in dry.output and "4  raw mail files" in dry.output
    declined = CliInput(p, "n\n", "--include-review")
    assert declined.exit_code == 1 and "Remove this for good?" in declined.output
    assert dump(p) == before
    assert all(Path(r["raw_path"]).exists() for r in before["inbound"])


def CliInput(p: Project, text: str, *args: str):
    from click.testing import CliRunner

    from service.cli.main import cli

    return CliRunner().invoke(
        cli,
        [
            "--config",
            str(p.config),
            "--as-of",
            AS_OF,
            "purge",
            "--campaign",
            "aml-2020",
            "--before",
            BEFORE,
            *args,
        ],
        env=p.env,
        input=text,
    )


@pytest.mark.parametrize(
    ("campaign", "before", "as_of", "review", "message"),
    [
        (
            "aml-1999",
            BEFORE,
            AS_OF,
            True,
            "--campaign 'aml-1999': no such campaign in the database (it has: aml-2020)",
        ),
        (
            "aml-2020",
            "2021-03-02",
            AS_OF,
            True,
            "--before 2021-03-02: that is in the future (today is 2021-03-01",
        ),
        (
            "aml-2020",
            BEFORE,
            "2021-01-10T10:00",
            True,
            "campaign aml-2020 is not closed: its deadline is "
            "2020-12-16, and it can be purged from 2021-01-16",
        ),
        ("aml-2020", BEFORE, AS_OF, False, "1 message(s) received before 2021-01-01 still wait for review"),
    ],
    ids=["unknown-campaign", "future-date", "not-closed", "review-pending"],
)
def test_refusals_name_the_reason_and_change_nothing(tmp_path, campaign, before, as_of, review, message):
    p = new_project(tmp_path)
    p.setup()
    build_campaign(p)
    snapshot = dump(p)
    result = p.cli(
        "--as-of",
        as_of,
        "purge",
        "--campaign",
        campaign,
        "--before",
        before,
        "--yes",
        *(["--include-review"] if review else []),
    )
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert dump(p) == snapshot


def test_refused_while_run_holds_the_campaign(tmp_path):
    """A live runner lock on the campaign: purge refuses, naming the holder."""
    p = new_project(tmp_path)
    p.setup()
    build_campaign(p)
    app = app_for(p)
    at = dt.datetime(2021, 3, 1, 9, tzinfo=dt.UTC)
    assert app.store.acquire_runner("aml-2020", "host-a:4242", at, dt.timedelta(minutes=10))
    app.close()
    result = purge(p, "--yes", "--include-review")
    assert result.exit_code == 2 and "`skjemapost run` (host-a:4242) holds campaign aml-2020" in result.output


def test_the_form_says_which_answers_name_a_person():
    """`personal = true` on a field empties its whole answer; on a table column, that column in
    every row; other answers, and empty ones, stay as they are."""
    from harness.filling import shipped_form

    from service.jobs.purge import answer_scrubber

    assert shipped_form().personal_answers() == {"leder": frozenset(), "verneombud_navn": frozenset()}
    clean = answer_scrubber({"leder": frozenset(), "tiltak": frozenset({"ansvarlig"})})
    answers = {
        "leder": "Kari Nordmann",
        "antall_ansatte": 12,
        "kommentarer": "",
        "tiltak": [{"beskrivelse": "Møteplasser", "ansvarlig": "Ola Hansen"}],
    }
    assert clean(answers) == {
        "leder": None,
        "antall_ansatte": 12,
        "kommentarer": "",
        "tiltak": [{"beskrivelse": "Møteplasser", "ansvarlig": None}],
    }
    assert clean(clean(answers)) == clean(answers) and clean({"antall_ansatte": 3}) == {"antall_ansatte": 3}


def test_a_campaign_kept_open_past_the_grace_is_not_purged_before_it_closes():
    """campaign.closes later than the deadline's grace: purge waits for it (the final summary
    and late forms belong to the campaign until then); an earlier close changes nothing."""
    deadline = dt.date(2020, 12, 16)
    assert retention.closed_from(deadline) == dt.date(2021, 1, 16)
    assert retention.closed_from(deadline, dt.date(2021, 1, 13)) == dt.date(2021, 1, 16)
    assert retention.closed_from(deadline, dt.date(2021, 2, 15)) == dt.date(2021, 2, 15)
