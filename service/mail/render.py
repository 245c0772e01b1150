"""Mail templates in, subject + plain text + HTML out: pure, no network, no database.

Layout of ``templates/email/`` (see its README.md): ``<lang>/<kind>.subject.txt``, ``<lang>/<kind>.txt``
and ``<lang>/<kind>.html`` per kind and language; files starting with ``_`` are shared pieces. The
loader looks in ``<lang>/`` first, then in the top folder, so a language may override a shared piece.

Design note — CSS inlining at load time. Outlook ignores ``<style>``, so every style must sit in a
``style=`` attribute. css-inline does that fast, but doing it per message would cost more than the
render itself, so it happens once, to the template *source*, before Jinja compiles it. Feeding
Jinja source to an HTML parser naively breaks it (a ``{% for %}`` between ``<tr>`` rows is moved by
the parser, and ``<tbody>`` gets inserted around only part of a loop), so the source is never
re-serialised. Instead:

1. every Jinja construct is swapped for a comment marker, so the parser sees plain HTML;
2. every start tag gets a ``data-sp-N`` attribute, located by ``html.parser`` (a tokenizer that
   builds no tree and so moves nothing);
3. css-inline inlines a copy; from that copy we read only each ``data-sp-N`` element's ``style``;
4. those styles are written into the *original* tags, ``<style>`` blocks dropped, markers restored.

The stylesheet is the ``<style>`` of ``_base.html`` (plus a template's own ``<style>``, if any). A
child template is inlined as a fragment without its parent's elements around it, so selectors must
not rely on ancestors that live in another file (``.content p`` would not match; ``p`` and
``.data th`` do).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

import css_inline
import jinja2

from service.errors import Problem, SkjemapostError
from service.mail.filters import filters
from service.models import LANGUAGES, Language, MailKind

#: template kinds, named by audience and purpose
KINDS: tuple[str, ...] = tuple(k.value for k in MailKind)
#: the three files of a kind: ``<kind>.subject.txt``, ``<kind>.txt``, ``<kind>.html``
PARTS: tuple[str, ...] = ("subject.txt", "txt", "html")
STYLESHEET_TEMPLATE = "_base.html"


class TemplateError(SkjemapostError, LookupError):
    """A mail template is missing, broken, or needs a variable the context does not have.

    ``template`` is the file being rendered (``nb/leader-invitation.html``), relative to the
    templates folder; the message also says where inside an extended or included file it failed.
    """

    exit_code = 2

    def __init__(self, message: str, *, template: str) -> None:
        self.template = template
        super().__init__(f"template {template}: {message}")


@dataclass(frozen=True)
class Rendered:
    """One message's three parts; ``subject`` is a single line."""

    subject: str
    text: str
    html: str


def _finalize(value: object) -> object:
    # StrictUndefined catches a missing key; this catches a present one left as None, which in a
    # mail would read "None". Optional values are tested with {% if %} before they are printed.
    if value is None:
        raise ValueError("a None value was printed; test optional values with {% if %} first")
    return value


# ------------------------------------------------------------------------------ CSS at load time

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_MARKER = re.compile(r"<!--sp:(\d+)-->")
_STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)</style\s*>\s*", re.DOTALL | re.IGNORECASE)
_STYLE_ATTR = re.compile(r"""\sstyle\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)


class _StartTags(HTMLParser):
    """Collects the source offset of every start tag; builds no tree, so it moves nothing."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.found: list[tuple[int, int, str]] = []  # (offset of "<", length of the tag, name)
        self.feed(source)
        self.close()

    def _here(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((self._here(), len(self.get_starttag_text() or ""), tag))

    handle_startendtag = handle_starttag


class _InlinedStyles(HTMLParser):
    """Reads css-inline's output: the ``style`` of each element tagged ``data-sp-N``."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.styles: dict[int, str] = {}
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name in names:
            if name.startswith("data-sp-") and names.get("style"):
                self.styles[int(name[8:])] = names["style"] or ""

    handle_startendtag = handle_starttag


def stylesheet(source: str) -> str:
    """The CSS of a template's ``<style>`` blocks (they must hold no Jinja)."""
    css = "\n".join(_STYLE_BLOCK.findall(source))
    if _JINJA.search(css):
        raise ValueError("a <style> block holds Jinja; styles are inlined before rendering")
    return css


def inline_css(source: str, css: str) -> str:
    """Jinja HTML source with ``css`` (and its own ``<style>``) written into ``style=`` attributes.

    A full document (one with ``<html``) is inlined as a document, anything else as a fragment.
    """
    saved: list[str] = []

    def protect(match: re.Match[str]) -> str:
        saved.append(match.group(0))
        return f"<!--sp:{len(saved) - 1}-->"

    protected = _JINJA.sub(protect, source)
    css = "\n".join(filter(None, (css, stylesheet(protected))))
    protected = _STYLE_BLOCK.sub("", protected)
    tags = _StartTags(protected).found

    tagged, last = [], 0
    for n, (at, _, name) in enumerate(tags):
        cut = at + 1 + len(name)
        tagged += [protected[last:cut], f" data-sp-{n}"]
        last = cut
    tagged.append(protected[last:])
    probe = "".join(tagged)
    if re.search(r"<html\b", probe, re.IGNORECASE):
        inlined = css_inline.inline(probe, extra_css=css, load_remote_stylesheets=False)
    else:
        inlined = css_inline.inline_fragment(probe, css, load_remote_stylesheets=False)
    styles = _InlinedStyles(inlined).styles

    out, last = [], 0
    for n, (at, length, _) in enumerate(tags):
        if n in styles:
            end = at + length - (2 if protected[at + length - 2] == "/" else 1)  # before "/>" or ">"
            value = styles[n].replace("&", "&amp;").replace('"', "&quot;")
            tag = _STYLE_ATTR.sub("", protected[at:end])
            out += [protected[last:at], tag, f' style="{value}"']
            last = end
    out.append(protected[last:])
    result = "".join(out)
    return _MARKER.sub(lambda m: saved[int(m.group(1))], result)


class _InliningLoader(jinja2.FileSystemLoader):
    """A FileSystemLoader that inlines CSS into every ``.html`` template as it loads it."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if template.endswith(".html"):
            base = source if template == STYLESHEET_TEMPLATE else self._base(environment)
            try:
                source = inline_css(source, stylesheet(base))
            except (ValueError, css_inline.InlineError) as exc:
                raise jinja2.TemplateSyntaxError(
                    f"CSS could not be inlined: {exc}", 1, template, filename
                ) from exc
        return source, filename, uptodate

    def _base(self, environment: jinja2.Environment) -> str:
        try:
            return super().get_source(environment, STYLESHEET_TEMPLATE)[0]
        except jinja2.TemplateNotFound:
            return ""  # no shared layout: each template brings its own <style>, if any


# ------------------------------------------------------------------------------------ the renderer


class Renderer:
    """Renders the mail of one kind in one language from a context (see templates/email/README.md).

    Templates are compiled, with CSS inlined, the first time each is used, and kept: edits to the
    files take effect in a new Renderer (a restart), never half-way through a batch of mail.
    """

    def __init__(self, templates_dir: Path, *, timezone: str = "Europe/Oslo") -> None:
        self.templates_dir = Path(templates_dir)
        tz = ZoneInfo(timezone)
        self._envs = {lang: self._environment(lang, tz) for lang in LANGUAGES}

    def _environment(self, lang: Language, tz: ZoneInfo) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=_InliningLoader([self.templates_dir / lang, self.templates_dir]),
            undefined=jinja2.StrictUndefined,
            # .html escaped; .txt (bodies and subjects) is plain text and must stay as written
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
            finalize=_finalize,
        )
        env.filters.update(filters(lang, tz))
        env.globals["lang"] = lang
        return env

    def environment(self, lang: Language) -> jinja2.Environment:
        """The Jinja environment of ``lang``, with the filters; for previews and template checks."""
        return self._envs[lang]

    def render(self, kind: str, lang: Language, context: Mapping[str, object]) -> Rendered:
        """Subject (one line), plain text and HTML (CSS inlined) of ``kind`` in ``lang``."""
        if kind not in KINDS:
            raise TemplateError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}", template=kind)
        if lang not in self._envs:
            raise TemplateError(f"unknown language {lang!r}", template=f"{lang}/{kind}")
        subject = " ".join(self._render(kind, "subject.txt", lang, context).split())
        text = self._render(kind, "txt", lang, context)
        html = self._render(kind, "html", lang, context, subject=subject)
        return Rendered(subject=subject, text=text.strip() + "\n", html=html)

    def _render(
        self, kind: str, part: str, lang: Language, context: Mapping[str, object], **extra: object
    ) -> str:
        name = f"{kind}.{part}"
        try:
            template = self._envs[lang].get_template(name)
            return template.render(context, **extra)
        except jinja2.TemplateNotFound as exc:
            missing = exc.name if isinstance(exc.name, str) else name
            raise TemplateError(
                f"missing file {missing!r} (looked in {self.templates_dir / lang} and {self.templates_dir})",
                template=f"{lang}/{name}",
            ) from exc
        except jinja2.TemplateSyntaxError as exc:
            where = self._relative(exc.filename) or exc.name or name
            raise TemplateError(
                f"{exc.message} ({where}, line {exc.lineno})", template=f"{lang}/{name}"
            ) from exc
        except (jinja2.TemplateError, ValueError, TypeError, AttributeError) as exc:
            raise TemplateError(f"{exc}{self._where(exc.__traceback__)}", template=f"{lang}/{name}") from exc

    def _relative(self, filename: str | None) -> str:
        if not filename:
            return ""
        try:
            return Path(filename).relative_to(self.templates_dir).as_posix()
        except ValueError:
            return filename

    def _where(self, tb: TracebackType | None) -> str:
        # Jinja rewrites tracebacks so template frames carry the template's file and line; the
        # innermost such frame is where the variable was needed (maybe a layout, not the kind).
        where = ""
        while tb is not None:
            filename = tb.tb_frame.f_code.co_filename
            if filename.endswith((".html", ".txt")):
                where = f" (in {self._relative(filename)}, line {tb.tb_lineno})"
            tb = tb.tb_next
        return where

    def check(self) -> list[Problem]:
        """Loads every kind's three files in every language; returns what is missing or broken."""
        problems: list[Problem] = []
        for lang in LANGUAGES:
            for kind in KINDS:
                for part in PARTS:
                    name = f"{kind}.{part}"
                    try:
                        self._envs[lang].get_template(name)
                    except jinja2.TemplateNotFound:
                        problems.append(Problem(f"{lang}/{name}", "missing"))
                    except jinja2.TemplateSyntaxError as exc:
                        where = self._relative(exc.filename) or name
                        message = f"{exc.message} ({where}, line {exc.lineno})"
                        problems.append(Problem(f"{lang}/{name}", message))
        return problems
