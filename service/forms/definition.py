"""Loading a form definition (forms/*.toml): read the file, check it, build ``forms.FormDef``.

``load_form`` checks a whole file and reports every problem with its location, so an operator
fixes a form in one pass instead of one error per run. The values it builds, and the layout
helpers, are in ``forms``; this module is only the loader, so ``forms`` does not import it.
"""

from __future__ import annotations

import datetime
import re
import tomllib
from pathlib import Path
from typing import TypeVar

from service.config.settings import Config
from service.errors import FormDefinitionError, Problem
from service.forms.model import (
    CHOICE_TYPES,
    COLUMN_TYPES,
    FIELD_TYPES,
    NOTICES,
    PLACEHOLDERS,
    PREFILLS,
    Bound,
    Choice,
    Column,
    Condition,
    Faculty,
    Field,
    Flag,
    FormContext,
    FormDef,
    Item,
    Section,
    Text,
    normalise,
)
from service.models import LANGUAGES

_ItemT = TypeVar("_ItemT", Field, Column)
_T = TypeVar("_T")
_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")
_FORM_ID = re.compile(r"[a-z][a-z0-9_-]{0,59}")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
#: Excel writes a list validation inline as "a,b,c" and caps it at 255 characters
_LIST_LIMIT = 250
_ITEM = {
    "id",
    "type",
    "label",
    "help",
    "required",
    "choices",
    "min",
    "max",
    "pattern",
    "example",
    "max_length",
    "must_be",
    "personal",
}
_FIELD = _ITEM | {"source", "prefill", "required_when", "flag", "exclusive", "rows", "min_rows", "columns"}
_FLAG = {"message", "messages", "severity", "notice", "words"}
Raw = dict[str, object]


def load_form(path: str | Path, context: FormContext | None = None) -> FormDef:
    """Read and check a form definition; raise FormDefinitionError listing every problem.

    ``context``: the campaign's values the texts refer to (``{guidance_url}``) and the faculty
    names the form shows; the default is a form with no link and faculty codes alone.
    """
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise FormDefinitionError([Problem("", f"cannot read the file: {exc}")], str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise FormDefinitionError([Problem("", f"not valid TOML: {exc}")], str(path)) from exc
    p = _Parser(context or FormContext())
    form = p.form(raw)
    p.references(form)
    if p.problems:
        raise FormDefinitionError(p.problems, str(path))
    return form


def form_context(config: Config) -> FormContext:
    """What the config adds to the form: ``campaign.guidance_url`` and ``[faculties]``."""
    return FormContext(
        config.campaign.guidance_url,
        tuple(Faculty(f.code, Text(f.nb, f.en)) for f in config.faculties),
    )


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


class _Parser:
    """Builds the dataclasses and collects problems instead of stopping at the first one."""

    def __init__(self, context: FormContext) -> None:
        self.context = context
        self.problems: list[Problem] = []
        self.where: dict[str, str] = {}  # field id -> location, for the cross-reference pass

    def err(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def keys(self, raw: Raw, allowed: set[str], where: str) -> None:
        for key in sorted(set(raw) - allowed):
            self.err(_at(where, key), "unknown key")

    def typed(self, raw: Raw, key: str, where: str, default: _T, what: str) -> _T:
        value = raw.get(key, default)
        if type(value) is not type(default):  # exact: TOML's true is not a whole number
            self.err(_at(where, key), f"must be {what}")
            return default
        return value

    def string(self, raw: Raw, key: str, where: str, required: bool = True) -> str:
        value = raw.get(key)
        if value is None or not isinstance(value, str) or (required and not value.strip()):
            if value is not None or required:
                self.err(_at(where, key), "missing" if value is None else "must be a non-empty string")
            return ""
        return value

    def ident(self, raw: Raw, key: str, where: str, rule: re.Pattern[str] = _ID) -> str:
        value = self.string(raw, key, where)
        if value and not rule.fullmatch(value):
            self.err(
                _at(where, key),
                f"{value!r} must be lowercase a-z, 0-9 and "
                f"{'_ or -' if rule is _FORM_ID else '_'}, starting with a letter",
            )
        return value

    def text(self, raw: Raw, key: str, where: str, *, fill: bool = False) -> Text:
        """A {nb, en} table; ``fill``: placeholders allowed (instructions and help) and filled."""
        value = raw.get(key)
        if not isinstance(value, dict):
            self.err(
                _at(where, key),
                "missing: give a table with nb and en" if value is None else "must be a table with nb and en",
            )
            return Text("", "")
        self.keys(value, set(LANGUAGES), _at(where, key))
        at = _at(where, key)
        nb, en = (self.placeholders(self.string(value, lang, at), f"{at}.{lang}", fill) for lang in LANGUAGES)
        return Text(nb, en)

    def placeholders(self, text: str, where: str, fill: bool) -> str:
        """``text`` with its ``{name}`` placeholders filled from the context; a line whose
        placeholder is empty is left out (the texts are written to read well without it)."""
        names = _PLACEHOLDER.findall(text)
        if not names:
            return text
        if not fill:
            self.err(where, "placeholders like {guidance_url} are for instructions and help texts only")
            return text
        for name in names:
            if name not in PLACEHOLDERS:
                self.err(where, f"unknown placeholder {{{name}}}; known: {', '.join(PLACEHOLDERS)}")
        values = {name: str(getattr(self.context, name, "")) for name in PLACEHOLDERS}
        lines = []
        for line in text.split("\n"):
            found = [n for n in _PLACEHOLDER.findall(line) if n in values]
            if any(not values[n] for n in found):
                continue
            lines.append(_PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), line))
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()

    def form(self, raw: Raw) -> FormDef:
        self.keys(raw, {"id", "version", "title", "instructions", "sections"}, "")
        form_id = self.ident(raw, "id", "", _FORM_ID)
        version = self.typed(raw, "version", "", 0, "a whole number")
        if version < 1:
            self.err("version", "must be 1 or more")
        sections = raw.get("sections")
        if not isinstance(sections, list) or not sections:
            self.err("sections", "at least one [[sections]] is needed")
            sections = []
        parsed, seen = [], set()
        for i, s in enumerate(sections):
            where = f"sections[{i}]"
            s = s if isinstance(s, dict) else {}
            self.keys(s, {"id", "title", "fields"}, where)
            sid = self.ident(s, "id", where)
            if sid in seen:
                self.err(f"{where}.id", f"duplicate section id {sid!r}")
            seen.add(sid)
            fields = s.get("fields")
            if not isinstance(fields, list) or not fields:
                self.err(f"{where}.fields", "a section needs at least one field")
                fields = []
            out = [self.item(f, f"{where}.fields[{j}]", Field) for j, f in enumerate(fields)]
            parsed.append(Section(sid, self.text(s, "title", where), tuple(out)))
        return FormDef(
            form_id,
            version,
            self.text(raw, "title", ""),
            self.text(raw, "instructions", "", fill=True),
            tuple(parsed),
            self.context,
        )

    def item(self, raw: object, where: str, kind: type[_ItemT]) -> _ItemT:
        raw = raw if isinstance(raw, dict) else {}
        fid = self.ident(raw, "id", where)
        if fid:
            where = f"{where}({fid})"
            if kind is Field and fid in self.where:
                self.err(f"{where}.id", f"duplicate field id {fid!r}")
            if kind is Field:
                self.where.setdefault(fid, where)
        self.keys(raw, _FIELD if kind is Field else _ITEM, where)
        ftype = self.string(raw, "type", where)
        allowed = FIELD_TYPES if kind is Field else sorted(COLUMN_TYPES)
        if ftype and ftype not in allowed:
            self.err(f"{where}.type", f"unknown type {ftype!r}; use one of {', '.join(allowed)}")
        kw: Raw = {
            "id": fid,
            "type": ftype,
            "label": self.text(raw, "label", where),
            "help": self.text(raw, "help", where, fill=True) if "help" in raw else None,
            "required": self.typed(raw, "required", where, False, "true or false"),
            "personal": self.typed(raw, "personal", where, False, "true or false"),
            "choices": self.choices(raw, ftype, where),
            "pattern": self.pattern(raw, ftype, where),
            "example": self.string(raw, "example", where, required=False) or None,
        }
        kw["min"], kw["max"] = self.bounds(raw, ftype, where)
        if "max_length" in raw:
            kw["max_length"] = length = self.typed(raw, "max_length", where, 1, "a whole number")
            if ftype not in ("text", "longtext") or not 0 < length <= 32767:
                self.err(f"{where}.max_length", "only for text/longtext, between 1 and 32767")
        if "must_be" in raw:
            kw["must_be"] = self.string(raw, "must_be", where)
            if ftype not in ("choice", "yesno"):
                self.err(f"{where}.must_be", "only for choice and yesno fields")
        if kind is Field:
            self.field_extras(raw, ftype, where, kw)
        return kind(**kw)  # type: ignore[arg-type]

    def choices(self, raw: Raw, ftype: str, where: str) -> tuple[Choice, ...]:
        items, at = raw.get("choices"), f"{where}.choices"
        if ftype in ("choice", "multichoice") and not items:
            self.err(at, f"a {ftype} field needs choices")
        if items is None:
            return ()
        if ftype not in ("choice", "multichoice"):
            self.err(
                at,
                f"a {ftype or 'field'} takes no choices"
                + (" (yes/no are built in)" if ftype == "yesno" else ""),
            )
        out: list[Choice] = []
        for k, c in enumerate(items if isinstance(items, list) else [items]):
            c = c if isinstance(c, dict) else {}
            self.keys(c, {"value", *LANGUAGES}, f"{at}[{k}]")
            out.append(
                Choice(
                    self.ident(c, "value", f"{at}[{k}]"),
                    Text(self.string(c, "nb", f"{at}[{k}]"), self.string(c, "en", f"{at}[{k}]")),
                )
            )
        # the reader maps a typed label or value id back to its choice, so no two may share one
        seen: dict[str, str] = {}
        for k, c in enumerate(out):
            for name in (c.value, c.label.nb, c.label.en):
                key = normalise(name)
                if key and seen.setdefault(key, c.value) != c.value:
                    self.err(f"{at}[{k}]", f"{name!r} is also used by {seen[key]!r}")
                if any(ch in name for ch in ',"'):
                    self.err(
                        f"{at}[{k}]",
                        f"{name!r}: no commas or double quotes in a choice "
                        "(spreadsheet dropdowns split on commas)",
                    )
        for lang in LANGUAGES:
            if sum(len(c.label.get(lang)) + 1 for c in out) > _LIST_LIMIT:
                self.err(
                    at,
                    f"the {lang} labels are too long for a dropdown "
                    f"(at most {_LIST_LIMIT} characters together)",
                )
        return tuple(out)

    def pattern(self, raw: Raw, ftype: str, where: str) -> str | None:
        if "pattern" not in raw:
            return None
        pattern = self.string(raw, "pattern", where)
        if ftype != "text":
            self.err(f"{where}.pattern", "only text fields take a pattern")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            self.err(f"{where}.pattern", f"not a valid regular expression: {exc}")
            return None
        example = raw.get("example")
        if not isinstance(example, str):
            self.err(f"{where}.example", "a pattern needs an example the leader can follow")
        elif not compiled.fullmatch(example):
            self.err(f"{where}.example", f"{example!r} does not match the pattern")
        return pattern

    def bounds(self, raw: Raw, ftype: str, where: str) -> tuple[Bound | None, Bound | None]:
        kind: type = datetime.date if ftype == "date" else int
        lo, hi = (
            (raw.get("min", 1), raw.get("max", 5)) if ftype == "scale" else (raw.get("min"), raw.get("max"))
        )
        for key, value in (("min", lo), ("max", hi)):
            if value is not None and ftype not in ("integer", "scale", "date"):
                self.err(f"{where}.{key}", "only integer, scale and date fields take bounds")
                return None, None
            if value is not None and type(value) is not kind:
                what = "a date (1990-01-31, no quotes)" if kind is datetime.date else "an integer"
                self.err(f"{where}.{key}", f"must be {what}")
                return None, None
        if lo is not None and hi is not None and lo > hi:  # type: ignore[operator]
            self.err(f"{where}.min", f"min {lo} is greater than max {hi}")
        if ftype == "scale" and isinstance(lo, int) and isinstance(hi, int) and hi - lo > 10:
            self.err(f"{where}.max", "a scale has at most 11 steps")
        return lo, hi  # type: ignore[return-value]

    def field_extras(self, raw: Raw, ftype: str, where: str, kw: Raw) -> None:  # noqa: C901 - one flat check per optional key, in file order
        for key, types in (("source", ("text",)), ("prefill", ("text", "longtext"))):
            if key not in raw:
                continue
            kw[key] = source = self.string(raw, key, where)
            if ftype not in types:
                self.err(f"{where}.{key}", f"{' and '.join(types)} fields only")
            elif source not in PREFILLS:
                self.err(f"{where}.{key}", f"unknown {key} {source!r}; use one of {', '.join(PREFILLS)}")
        if "source" in raw and "prefill" in raw:
            self.err(f"{where}.prefill", "give source (locked) or prefill (open), not both")
        for key in ("required_when", "flag"):
            table, at = raw.get(key), f"{where}.{key}"
            if table is None:
                continue
            table = table if isinstance(table, dict) else {}
            allowed = {"field"} if key == "required_when" else _FLAG
            self.keys(table, {"in", "not_in", *allowed}, at)
            cond = self.condition(
                table, self.ident(table, "field", at) if key == "required_when" else str(kw["id"]), at
            )
            kw[key] = cond if key == "required_when" else self.flag(table, cond, ftype, at)
        if "exclusive" in raw:
            values = raw["exclusive"]
            ok = isinstance(values, list) and all(isinstance(v, str) for v in values)
            if not ok or ftype != "multichoice":
                self.err(f"{where}.exclusive", "a list of choice values, for multichoice only")
            kw["exclusive"] = tuple(values) if ok else ()  # type: ignore[arg-type]
        if ftype != "table":
            if {"rows", "min_rows", "columns"} & set(raw):
                self.err(where, "rows, min_rows and columns are for table fields only")
            return
        kw["rows"] = rows = self.typed(raw, "rows", where, 10, "a whole number")
        kw["min_rows"] = least = self.typed(raw, "min_rows", where, 0, "a whole number")
        if not 0 <= least <= rows <= 50:
            self.err(f"{where}.rows", "need 0 <= min_rows <= rows <= 50")
        cols = raw.get("columns")
        if not isinstance(cols, list) or not cols:
            self.err(f"{where}.columns", "a table needs at least one column")
            cols = []
        out = [self.item(c, f"{where}.columns[{k}]", Column) for k, c in enumerate(cols)]
        for k, col in enumerate(out):
            if col.id and col.id in [c.id for c in out[:k]]:
                self.err(f"{where}.columns[{k}].id", f"duplicate column id {col.id!r}")
        kw["columns"] = tuple(out)

    def flag(self, raw: Raw, cond: Condition, ftype: str, where: str) -> Flag:
        notice = raw.get("notice", "")
        if notice and notice not in NOTICES:
            self.err(f"{where}.notice", f"unknown notice {notice!r}; use one of {', '.join(NOTICES)}")
        words = raw.get("words", [])
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            self.err(f"{where}.words", "must be a list of field ids")
            words = []
        severity = self.typed(raw, "severity", where, 1, "a whole number")
        if severity < 1:
            self.err(f"{where}.severity", "must be 1 or more (higher is more serious)")
        table = raw.get("messages", {})
        if not isinstance(table, dict):
            self.err(f"{where}.messages", "must be a table: {choice value = { nb, en }}")
            table = {}
        if table and ftype not in ("choice", "yesno"):
            self.err(f"{where}.messages", "messages per answer are for choice and yesno fields only")
        messages = tuple((str(value), self.text(table, value, f"{where}.messages")) for value in table)
        return Flag(cond, self.text(raw, "message", where), str(notice), tuple(words), messages, severity)

    def condition(self, raw: Raw, field_id: str, where: str) -> Condition:
        negate = "not_in" in raw
        if ("in" in raw) == negate:
            self.err(where, "give exactly one of 'in' and 'not_in'")
        values = raw.get("not_in" if negate else "in", [])
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            self.err(f"{where}.{'not_in' if negate else 'in'}", "must be a non-empty list of choice values")
            values = []
        return Condition(field_id, tuple(values), negate)

    def references(self, form: FormDef) -> None:
        """Second pass: conditions and flags may name fields defined further down."""
        for f in form.fields():
            where = self.where.get(f.id, f.id)
            tests = [
                (f"{where}.{key}", cond)
                for key, cond in (
                    ("required_when", f.required_when),
                    ("flag", f.flag.when if f.flag else None),
                )
                if cond is not None
            ]
            for at, cond in tests:
                target = _field_or_none(form, cond.field)
                if target is None:
                    self.err(f"{at}.field", f"unknown field {cond.field!r}")
                elif target.type not in CHOICE_TYPES:
                    self.err(
                        at,
                        f"can only test a choice, multichoice or yesno field; {target.id!r} is {target.type}",
                    )
                elif cond.field == f.id and at.endswith("required_when"):
                    self.err(f"{at}.field", "a field cannot depend on itself")
                else:
                    self.known_values(target, cond.values, at)
            for word in f.flag.words if f.flag else ():
                if _field_or_none(form, word) is None:
                    self.err(f"{where}.flag.words", f"unknown field {word!r}")
            for value, _ in f.flag.messages if f.flag else ():
                self.known_values(f, (value,), f"{where}.flag.messages")
                if (
                    f.flag is not None
                    and not f.flag.when.holds(value)
                    and value in {c.value for c in f.options}
                ):
                    self.err(f"{where}.flag.messages", f"{value!r} does not raise this flag")
            self.known_values(f, f.exclusive, f"{where}.exclusive")
            for item, at in ((f, where), *((c, f"{where}.columns[{k}]") for k, c in enumerate(f.columns))):
                if item.must_be:
                    self.known_values(item, (item.must_be,), f"{at}.must_be")

    def known_values(self, item: Item, values: tuple[str, ...], where: str) -> None:
        known = {c.value for c in item.options}
        for v in values:
            if v not in known:
                self.err(
                    where,
                    f"unknown choice value {v!r} for field {item.id!r}; known: {', '.join(sorted(known))}",
                )


def _field_or_none(form: FormDef, field_id: str) -> Field | None:
    try:
        return form.field(field_id)
    except LookupError:
        return None
