"""The form definition: the shipped form loads and is complete; bad definitions are rejected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.errors import FormDefinitionError
from service.forms.definition import load_form
from service.forms.model import FIELD_TYPES, YES_NO, Condition, sheet_layout


def test_shipped_form_loads_with_its_sections(form):
    """The shipped form loads, with the five sections of DESIGN.md in order."""
    assert form.id == "oppsummering-og-evaluering" and form.version >= 1
    assert form.title.nb == "Oppsummering og evaluering"
    assert [s.id for s in form.sections] == ["enhet", "prosessen", "tiltak", "evaluering", "bekreftelse"]
    assert form.instructions.nb.count("\n\n") >= 3 and "DD.MM.ÅÅÅÅ" in form.instructions.nb
    assert "DD.MM.YYYY" in form.instructions.en and "reply" in form.instructions.en


def test_every_field_type_is_present(form):
    """text, longtext, integer, date, choice, multichoice, yesno, scale and table all occur."""
    types = {f.type for f in form.fields()} | {c.type for f in form.fields() for c in f.columns}
    assert types == set(FIELD_TYPES)


def test_every_label_and_choice_is_bilingual(form):
    """Every field, column and choice has a non-empty nb and en label."""
    items = [*form.fields(), *(c for f in form.fields() for c in f.columns)]
    for item in items:
        assert item.label.nb.strip() and item.label.en.strip(), item.id
        for c in item.options:
            assert c.label.nb.strip() and c.label.en.strip(), (item.id, c.value)


def test_unit_fields_come_from_the_roster(form):
    """The four Enhet fields are prefilled from the Unit."""
    assert [(f.id, f.source) for f in form.sections[0].fields] == [
        ("enhet_kode", "unit.code"),
        ("enhet_navn", "unit.name"),
        ("fakultet", "unit.faculty"),
        ("leder", "unit.leader_name"),
    ]


def test_rules_of_the_shipped_form(form):
    """Pattern, conditions, flags, the confirmation and the measures table are as designed."""
    case = form.field("saksnummer")
    assert re.fullmatch(case.pattern or "", "2020/12345")
    assert not re.fullmatch(case.pattern or "", "12345")
    assert case.required_when == Condition("handlingsplan_ephorte", ("yes",))
    assert form.field("forsvarlig_beskrivelse").required_when == Condition(
        "fullt_forsvarlig", ("no", "unsure")
    )
    flagged = {f.id: f.flag for f in form.flagged()}
    assert set(flagged) == {"verneombud_involvert", "fullt_forsvarlig", "hjelp_onsket"}
    assert all(f is not None and f.message.nb and f.message.en for f in flagged.values())
    assert flagged["verneombud_involvert"].when.holds("no")
    assert not flagged["verneombud_involvert"].when.holds("yes")
    assert flagged["hjelp_onsket"].when.holds(("ingen", "bht"))
    assert not flagged["hjelp_onsket"].when.holds(("ingen",))
    assert form.field("bekreftet").must_be == "yes"
    table = form.field("tiltak")
    assert (table.rows, table.min_rows) == (10, 1)
    assert [c.id for c in table.columns] == ["beskrivelse", "tema", "status", "ansvarlig", "frist"]
    assert len(table.columns[1].choices) == 8 and len(table.columns[2].choices) == 4
    scale = form.field("prosess_vurdering")
    assert (scale.min, scale.max) == (1, 5)


def test_choice_matching_ignores_case_space_and_language(form):
    """A label in either language, or the value id, maps to the choice; other text does not."""
    meeting = form.field("moteform")
    assert meeting.match("  digitalt   MØTE ") == meeting.choice("digitalt")
    assert meeting.match("online") == meeting.choice("digitalt")
    assert meeting.match("kombinasjon") == meeting.choice("kombinasjon")
    assert meeting.match("by phone") is None
    assert meeting.choice_label("grupper", "en") == "In smaller groups or cohorts"
    assert form.field("bekreftet").options == YES_NO


def test_layout_gives_every_row_once(form):
    """The sheet layout places every field, option and table row on its own row."""
    rows = sheet_layout(form)
    assert len(set(rows.values())) == len(rows)
    assert all(f.id in rows for f in form.fields())
    assert "tiltak/10" in rows and "hjelp_onsket/bht" in rows


BASE = """
id = "t"
version = 1
title = {{ nb = "T", en = "T" }}
instructions = {{ nb = "I", en = "I" }}
[[sections]]
id = "s"
title = {{ nb = "S", en = "S" }}
[[sections.fields]]
id = "a"
type = "yesno"
label = {{ nb = "A", en = "A" }}
[[sections.fields]]
id = "b"
label = {{ nb = "B", en = "B" }}
{b}
"""


def load(tmp_path: Path, b: str) -> FormDefinitionError:
    path = tmp_path / "form.toml"
    path.write_text(BASE.format(b=b), encoding="utf-8")
    with pytest.raises(FormDefinitionError) as info:
        load_form(path)
    return info.value


@pytest.mark.parametrize(
    ("b", "where", "message"),
    [
        (
            'type = "text"\nrequired_when = { field = "foo", in = ["yes"] }',
            "sections[0].fields[1](b).required_when.field",
            "unknown field 'foo'",
        ),
        (
            'type = "text"\nrequired_when = { field = "a", in = ["maybe"] }',
            "sections[0].fields[1](b).required_when",
            "unknown choice value 'maybe' for field 'a'",
        ),
        (
            'type = "choice"\nchoices = [{ value = "x", nb = "X", en = "X" }]\nflag.in = ["y"]\n'
            'flag.message = { nb = "F", en = "F" }',
            "sections[0].fields[1](b).flag",
            "unknown choice value 'y'",
        ),
        (
            'type = "text"\nrequired_when = { field = "b", in = ["x"] }',
            "sections[0].fields[1](b).required_when",
            "can only test a choice",
        ),
        ('type = "number"', "sections[0].fields[1](b).type", "unknown type 'number'"),
        (
            'type = "text"\n[[sections.fields]]\nid = "c"\ntype = "text"\nlabel = { nb = "C", en = "" }',
            "sections[0].fields[2](c).label.en",
            "must be a non-empty string",
        ),
        (
            'type = "text"\n[[sections.fields]]\nid = "c"\ntype = "text"\nlabel = { nb = "C" }',
            "sections[0].fields[2](c).label.en",
            "missing",
        ),
        ('type = "choice"', "sections[0].fields[1](b).choices", "a choice field needs choices"),
        (
            'type = "text"\n[[sections.fields]]\nid = "a"\ntype = "text"\nlabel = { nb = "C", en = "C" }',
            "sections[0].fields[2](a).id",
            "duplicate field id 'a'",
        ),
        (
            'type = "text"\npattern = "(\\\\d+"\nexample = "1"',
            "sections[0].fields[1](b).pattern",
            "not a valid regular expression",
        ),
        (
            'type = "text"\npattern = "\\\\d{4}/\\\\d+"\nexample = "12345"',
            "sections[0].fields[1](b).example",
            "does not match the pattern",
        ),
        ('type = "integer"\nmin = 5\nmax = 1', "sections[0].fields[1](b).min", "min 5 is greater than max 1"),
        ('type = "date"\nmin = 5', "sections[0].fields[1](b).min", "must be a date"),
        ('type = "table"', "sections[0].fields[1](b).columns", "a table needs at least one column"),
        (
            'type = "table"\n[[sections.fields.columns]]\nid = "c"\ntype = "table"\n'
            'label = { nb = "C", en = "C" }',
            "sections[0].fields[1](b).columns[0](c).type",
            "unknown type 'table'",
        ),
        ('type = "text"\nrequird = true', "sections[0].fields[1](b).requird", "unknown key"),
        (
            'type = "multichoice"\nchoices = [{ value = "x", nb = "X, Y", en = "X" }]',
            "sections[0].fields[1](b).choices[0]",
            "no commas",
        ),
        (
            'type = "choice"\nchoices = [{ value = "x", nb = "Ja", en = "X" }, '
            '{ value = "y", nb = "ja", en = "Y" }]',
            "sections[0].fields[1](b).choices[1]",
            "'ja' is also used by 'x'",
        ),
        (
            'type = "text"\nsource = "unit.shoe_size"',
            "sections[0].fields[1](b).source",
            "unknown source 'unit.shoe_size'",
        ),
        (
            'type = "yesno"\nmust_be = "maybe"',
            "sections[0].fields[1](b).must_be",
            "unknown choice value 'maybe'",
        ),
    ],
)
def test_bad_definition_is_rejected_naming_the_field(tmp_path, b, where, message):
    """Each broken definition is rejected with a problem located at the offending field."""
    error = load(tmp_path, b)
    found = [(p.where, p.message) for p in error.problems]
    assert any(w == where and message in m for w, m in found), found


def test_every_problem_is_reported_at_once(tmp_path):
    """Three independent mistakes give three problems in one error, not one per run."""
    error = load(
        tmp_path,
        'type = "integer"\nmin = 9\nmax = 1\nfoo = 1\nrequired_when = { field = "nope", in = ["x"] }',
    )
    wheres = {p.where for p in error.problems}
    assert {
        "sections[0].fields[1](b).min",
        "sections[0].fields[1](b).foo",
        "sections[0].fields[1](b).required_when.field",
    } <= wheres
    assert "3 problems" in str(error)


def test_invalid_toml_and_missing_file_are_definition_errors(tmp_path):
    """A file that is not TOML, or is missing, gives FormDefinitionError rather than a crash."""
    path = tmp_path / "broken.toml"
    path.write_text("id = [unclosed", encoding="utf-8")
    with pytest.raises(FormDefinitionError, match="not valid TOML"):
        load_form(path)
    with pytest.raises(FormDefinitionError, match="cannot read"):
        load_form(tmp_path / "missing.toml")


def test_top_level_must_have_sections(tmp_path):
    """A form without sections, title or a valid id is rejected with each key named."""
    path = tmp_path / "empty.toml"
    path.write_text('id = "Bad Id"\nversion = 0\n', encoding="utf-8")
    with pytest.raises(FormDefinitionError) as info:
        load_form(path)
    wheres = {p.where for p in info.value.problems}
    assert {"id", "version", "title", "instructions", "sections"} <= wheres
