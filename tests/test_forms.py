"""The form definition: the shipped form loads and is complete; bad definitions are rejected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from harness.filling import FORM_PATH

from service.config import settings
from service.errors import ConfigError, FormDefinitionError
from service.forms.answers import most_serious_first, raised_flags, severity_of
from service.forms.definition import form_context, load_form
from service.forms.model import (
    FIELD_TYPES,
    YES_NO,
    Condition,
    Faculty,
    FormContext,
    FormDef,
    Text,
    sheet_layout,
)
from service.forms.validate import flags

GUIDANCE = "https://innsida.ntnu.no/wiki/-/wiki/Norsk/Arbeidsmiljøundersøkelse+-+for+ledere"


def test_shipped_form_loads_with_its_sections(form):
    """The shipped form loads, with its sections in the letter's order, under the title leaders
    know (formerly FaktaARK 2)."""
    assert form.id == "oppsummering-og-evaluering" and form.version >= 2
    assert form.title == Text(
        "Oppsummering og evaluering (tidligere FaktaARK 2)", "Summary and evaluation (formerly FaktaARK 2)"
    )
    assert [s.id for s in form.sections] == [
        "enhet",
        "prosessen",
        "hvordan",
        "tiltak",
        "evaluering",
        "kommentarer",
        "bekreftelse",
    ]
    assert form.instructions.nb.count("\n\n") >= 3 and "DD.MM.ÅÅÅÅ" in form.instructions.nb
    assert "DD.MM.YYYY" in form.instructions.en and "reply" in form.instructions.en


def all_texts(form: FormDef, lang: str) -> str:
    """Every word the leader reads in ``lang``: title, instructions, labels, help, choices, flags."""
    out = [form.title.get(lang), form.instructions.get(lang), *(s.title.get(lang) for s in form.sections)]
    for f in form.fields():
        for item in (f, *f.columns):
            out += [item.label.get(lang), item.help.get(lang) if item.help else ""]
            out += [c.label.get(lang) for c in item.options]
        if f.flag is not None:
            out += [f.flag.message.get(lang), *(m.get(lang) for _, m in f.flag.messages)]
    return "\n".join(out)


def test_the_letters_terms_and_nothing_invented(form):
    """The letter's words: tiltaksplan, the group processes on pages 6/7/8 of the slides, the
    Innsida page, «fully satisfactory», the survey's coordinators; no annual framing, no
    information meeting, no faculty-only coordinator, no 'fully sound'."""
    nb, en = all_texts(form, "nb"), all_texts(form, "en")
    assert "tiltaksplan" in nb and "handlingsplan" not in nb.lower()
    assert "action plan" not in en.lower() and "plan of measures" in en
    for text in (nb.lower(), en.lower()):
        for invented in ("årlig", "annual", "yearly", "informasjonsmøte", "information meeting", "lysbilde"):
            assert not re.search(rf"\b{invented}", text), invented  # "dårlig" is not "årlig"
    assert "november 2019" in form.instructions.nb and "November 2019" in form.instructions.en
    assert "koordinatoren på fakultetet" not in nb and "faculty's coordinator" not in en
    assert "Faculty coordinator" not in en and "koordinator for arbeidsmiljøundersøkelsen" in nb
    assert "fully sound" not in en and "fully satisfactory" in form.field("fullt_forsvarlig").label.en
    track = form.field("forlop")
    assert [c.value for c in track.options] == ["ingen_mote_var", "avbrutt", "handlingsplan_var"]
    for page, choice in zip((6, 7, 8), track.options, strict=True):
        assert f"Gruppeprosess på side {page}" in choice.label.nb
        assert f"group process on page {page}" in choice.label.en.lower()
    assert track.help is not None
    for lang in ("nb", "en"):
        assert "«Arbeidsmiljø på dagsorden – lysark»" in track.help.get(lang)
        assert "«Arbeidsmiljøundersøkelse – for ledere»" in track.help.get(lang)


def test_the_guidance_page_is_linked_where_the_help_names_it():
    """campaign.guidance_url goes on its own line below the help that names the Innsida page and
    into the instructions; unset, those texts end cleanly with no placeholder left."""
    linked = load_form(FORM_PATH, FormContext(GUIDANCE))
    plain = load_form(FORM_PATH)
    for lang in ("nb", "en"):
        help_linked, help_plain = linked.field("forlop").help, plain.field("forlop").help
        assert help_linked is not None and help_plain is not None
        assert help_linked.get(lang) == help_plain.get(lang) + "\n" + GUIDANCE
        assert GUIDANCE in linked.instructions.get(lang).split("\n\n")
        for text in (help_plain.get(lang), plain.instructions.get(lang), all_texts(plain, lang)):
            assert "{" not in text and "innsida.ntnu.no" not in text
        assert "\n\n\n" not in plain.instructions.get(lang)


def test_the_letters_questions_are_asked_in_both_languages(form):
    """Each question the letter asks is there, bilingual, with its type, options and duty."""
    expected = {
        # id: (type, choice values, required, required_when)
        "resultatrapport_gjennomgatt": ("choice", ["yes", "no", "planned"], True, None),
        "hvordan_har_vi_det": ("longtext", [], True, None),
        "pandemi_pavirkning": ("scale", [], True, None),
        "risikovurdert": ("choice", ["yes", "no", "in_progress"], True, None),
        "ledermote_agenda": ("yesno", ["yes", "no"], True, None),
        "planlagt_med_verneombud": (
            "yesno",
            ["yes", "no"],
            False,
            Condition("forlop", ("ingen_mote_var",)),
        ),
    }
    for field_id, (ftype, values, required, when) in expected.items():
        f = form.field(field_id)
        assert (f.type, [c.value for c in f.options], f.required, f.required_when) == (
            ftype,
            values,
            required,
            when,
        ), field_id
        assert f.label.nb.strip() and f.label.en.strip() and f.label.nb != f.label.en, field_id
        for c in f.options:
            assert c.label.nb and c.label.en, (field_id, c.value)
    assert "november 2019" in form.field("resultatrapport_gjennomgatt").label.nb
    assert "November 2019" in form.field("resultatrapport_gjennomgatt").label.en
    own_words = form.field("hvordan_har_vi_det")
    assert "koronapandemien" in own_words.label.nb and "pandemic" in own_words.label.en
    assert "risk-assessed" in form.field("risikovurdert").label.en
    assert "ledermøter" in form.field("ledermote_agenda").label.nb
    assert "verneombudet" in form.field("planlagt_med_verneombud").label.nb


#: flag: (answers that raise it, answers that do not, words its message (nb) must hold)
LETTER_FLAGS = {
    "fullt_forsvarlig": (["no", "unsure"], ["yes"], "fullt forsvarlig"),
    "hjelp_onsket": ([("koordinator",), ("ingen", "bht")], [("ingen",)], "hjelp"),
    "verneombud_involvert": (["no"], ["yes"], "bekreftet fylt ut i samråd med verneombudet"),
    "handlingsplan_ephorte": (["no", "in_progress"], ["yes"], "ePhorte innen 30. oktober"),
    "losam_involvert": (["no"], ["yes", "not_relevant"], "LOSAM"),
    "planlagt_med_verneombud": (["no"], ["yes"], "samråd med verneombudet"),
    "resultatrapport_gjennomgatt": (["no"], ["yes", "planned"], "resultatrapporten"),
    "risikovurdert": (["no"], ["yes", "in_progress"], "risikovurdert"),
    "ledermote_agenda": (["no"], ["yes"], "ledermøter"),
}


def test_the_letters_flags_with_their_conditions_and_both_languages(form):
    """Every flag the letter implies is there, rises on exactly its answers, and says so in nb and en."""
    assert {f.id for f in form.flagged()} == set(LETTER_FLAGS)
    for field_id, (raising, quiet, words) in LETTER_FLAGS.items():
        flag = form.field(field_id).flag
        assert flag is not None
        for answer in raising:
            assert flag.when.holds(answer), (field_id, answer)
            message = flag.message_for(answer)
            assert message.nb.strip() and message.en.strip() and message.nb != message.en
        for answer in quiet:
            assert not flag.when.holds(answer), (field_id, answer)
        assert words in flag.message.nb, field_id
    contradiction = form.field("verneombud_involvert").flag
    assert contradiction is not None and "confirmed" in contradiction.message.en
    assert form.field("bekreftet").must_be == "yes"  # what makes the contradiction certain


def test_unsure_has_its_own_words_not_those_of_no(form):
    """«Usikker» is not «Nei»: its message says unsure, in both languages; «Nei» says not."""
    flag = form.field("fullt_forsvarlig").flag
    assert flag is not None
    no, unsure = flag.message_for("no"), flag.message_for("unsure")
    assert no.en == "The working environment is not considered fully satisfactory."
    assert "usikre" in unsure.nb and "unsure" in unsure.en and "fully satisfactory" in unsure.en
    assert unsure != no and "ikke" not in unsure.nb
    in_progress = form.field("handlingsplan_ephorte").flag
    assert in_progress is not None and "under arbeid" in in_progress.message_for("in_progress").nb


def test_flags_are_ranked_by_seriousness(form):
    """Severity (higher is more serious): not fully satisfactory, then help, the verneombud
    contradiction, ePhorte, LOSAM, then the steps of the process."""
    rank = [
        "fullt_forsvarlig",
        "hjelp_onsket",
        "verneombud_involvert",
        "handlingsplan_ephorte",
        "losam_involvert",
        "resultatrapport_gjennomgatt",
    ]
    severities = [form.field(f).flag.severity for f in rank]  # type: ignore[union-attr]
    assert severities == sorted(severities, reverse=True) and len(set(severities)) == len(severities)
    assert form.field("planlagt_med_verneombud").flag.severity >= severities[-1]  # type: ignore[union-attr]
    answers = {
        "fullt_forsvarlig": "unsure",
        "hjelp_onsket": ("bht",),
        "verneombud_involvert": "no",
        "handlingsplan_ephorte": "in_progress",
        "losam_involvert": "no",
        "risikovurdert": "no",
        "bekreftet": "yes",
    }
    raised = flags(form, answers)
    assert [f.field for f in raised] == [  # form order
        "verneombud_involvert",
        "losam_involvert",
        "handlingsplan_ephorte",
        "risikovurdert",
        "fullt_forsvarlig",
        "hjelp_onsket",
    ]
    stored = raised_flags(form, answers)
    ordered = [f["field"] for f in most_serious_first(stored)]
    assert ordered == [
        "fullt_forsvarlig",
        "hjelp_onsket",
        "verneombud_involvert",
        "handlingsplan_ephorte",
        "losam_involvert",
        "risikovurdert",
    ]
    assert (
        stored[-2]["message_nb"] == "Leder og verneombud er usikre på om arbeidsmiljøet er fullt forsvarlig."
    )
    assert severity_of({"field": "old"}) == 1  # flags stored before severities existed


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
    """The four Enhet fields are filled in from the Unit (the faculty by its configured name)
    and locked; the verneombud's name is filled in but left open."""
    assert [(f.id, f.source) for f in form.sections[0].fields] == [
        ("enhet_kode", "unit.code"),
        ("enhet_navn", "unit.name"),
        ("fakultet", "unit.faculty_name"),
        ("leder", "unit.leader_name"),
    ]
    representative = form.field("verneombud_navn")
    assert (representative.source, representative.prefill) == (None, "unit.verneombud_name")
    names = FormContext(faculties=(Faculty("IE", Text("Fakultet for IT", "Faculty of IT")),))
    assert names.faculty_name("IE", "nb") == "Fakultet for IT (IE)"
    assert names.faculty_name("IE", "en") == "Faculty of IT (IE)"
    assert names.faculty_name("VM", "nb") == "VM"  # no name configured: the code alone


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


CHOICE_XY = (
    'type = "choice"\nchoices = [{ value = "x", nb = "X", en = "X" }, { value = "y", nb = "Y", en = "Y" }]'
)


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
        (
            'type = "text"\nprefill = "unit.shoe"',
            "sections[0].fields[1](b).prefill",
            "unknown prefill 'unit.shoe'",
        ),
        ('type = "integer"\nprefill = "unit.name"', "sections[0].fields[1](b).prefill", "text and longtext"),
        (
            'type = "text"\nsource = "unit.name"\nprefill = "unit.name"',
            "sections[0].fields[1](b).prefill",
            "not both",
        ),
        (
            'type = "text"\nhelp = { nb = "Se {lenke}", en = "See" }',
            "sections[0].fields[1](b).help.nb",
            "unknown placeholder {lenke}",
        ),
        (
            'type = "text"\n[[sections.fields]]\nid = "c"\ntype = "text"\n'
            'label = { nb = "C", en = "See {guidance_url}" }',
            "sections[0].fields[2](c).label.en",
            "for instructions and help texts only",
        ),
        (
            f'{CHOICE_XY}\nflag.in = ["x"]\nflag.message = {{ nb = "F", en = "F" }}\n'
            'flag.messages.y = { nb = "Y", en = "Y" }',
            "sections[0].fields[1](b).flag.messages",
            "'y' does not raise this flag",
        ),
        (
            f'{CHOICE_XY}\nflag.in = ["x"]\nflag.message = {{ nb = "F", en = "F" }}\n'
            'flag.messages.z = { nb = "Z", en = "Z" }',
            "sections[0].fields[1](b).flag.messages",
            "unknown choice value 'z'",
        ),
        (
            f'{CHOICE_XY.replace("choice", "multichoice")}\nflag.in = ["x"]\n'
            'flag.message = { nb = "F", en = "F" }\nflag.messages.x = { nb = "X", en = "X" }',
            "sections[0].fields[1](b).flag.messages",
            "choice and yesno fields only",
        ),
        (
            f'{CHOICE_XY}\nflag.in = ["x"]\nflag.message = {{ nb = "F", en = "F" }}\nflag.severity = 0',
            "sections[0].fields[1](b).flag.severity",
            "must be 1 or more",
        ),
        (
            f'{CHOICE_XY}\nflag.in = ["x"]\nflag.message = {{ nb = "F", en = "F" }}\nflag.severity = "high"',
            "sections[0].fields[1](b).flag.severity",
            "must be a whole number",
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


CONFIG = """{top}
[campaign]
id = "aml-2020"
title = "Test"
opens = 2020-11-23
deadline = 2020-12-16
{campaign}
[mail]
from_address = "hms@example.edu"
{rest}
"""


def test_the_forms_context_comes_from_the_config(tmp_path):
    """The example config's guidance page and faculty names reach the form; a minimal config
    gives a form with neither (no link, codes alone)."""
    example = Path(__file__).resolve().parent.parent / "config" / "skjemapost.example.toml"
    context = form_context(settings.load(example, {}))
    assert context.guidance_url == GUIDANCE
    assert context.faculty_name("IE", "nb") == "Fakultet for informasjonsteknologi og elektroteknikk (IE)"
    assert context.faculty_name("HF", "en") == "Faculty of Humanities (HF)"
    path = tmp_path / "minimal.toml"
    path.write_text(
        CONFIG.format(top="", campaign="", rest='[faculties]\nVM = "Vitenskapsmuseet"'), encoding="utf-8"
    )
    plain = form_context(settings.load(path, {}))
    assert plain.guidance_url == "" and plain.faculty_name("VM", "en") == "Vitenskapsmuseet (VM)"


@pytest.mark.parametrize(
    ("campaign", "rest", "where"),
    [
        ('guidance_url = "innsida.ntnu.no/ledere"', "", "campaign.guidance_url"),
        ('guidance_url = "https://innsida.ntnu.no/for ledere"', "", "campaign.guidance_url"),
        ("", '[faculties]\nIE = ""', "faculties.IE"),
        ("", '[faculties]\nIE = { nb = "Fakultet", fr = "Faculté" }', "faculties.IE"),
        ("", "[faculties]\nIE = 3", "faculties.IE"),
        ("", "", "faculties"),  # a list, not a table (written above [campaign])
    ],
)
def test_a_bad_guidance_page_or_faculty_name_is_named(tmp_path, campaign, rest, where):
    """A guidance address that is not a web address, or a faculty name that is not a name, is
    reported at its key."""
    path = tmp_path / "bad.toml"
    top = 'faculties = ["IE"]' if where == "faculties" else ""
    path.write_text(CONFIG.format(top=top, campaign=campaign, rest=rest), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        settings.load(path, {})
    assert where in {p.where for p in info.value.problems}
