"""The words a reply to the co-signature request is read with, in bokmål and English: what counts
as agreement, what is only politeness, and what a signature line looks like. Pure; used by
``replyread``.

The agreement list is a whitelist of whole phrases: a piece of text agrees only if *all* of it is
one of them ("enig", "jeg er helt enig", "det stemmer", "agreed", "looks good to me"). So "ikke
enig", "enig i det meste", "agree, except 3" and "I don't agree" never match, without a list of
negations to keep complete. The signature words work the other way round: a line is a signature
line only if it looks like one *and* holds none of the reservation words below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_AGREE_NB = r"""
(?:ja\ |ok\ |okei\ )?
(?:
  (?:(?:jeg|vi)\ )?(?:er\ )?(?:helt\ |fullt\ |fullstendig\ )?enige?
    (?:\ (?:i|med)\ (?:dette|det|det\ som\ står|skjemaet|innholdet|svarene|alle\ svarene|alt|alt\ sammen))?
  | (?:(?:jeg|vi)\ )?(?:kan\ )?bekrefter?(?:\ (?:dette|det|skjemaet|innholdet|svarene))?
    (?:\ at\ (?:det|dette|skjemaet|svarene|innholdet|alt)\ (?:stemmer|er\ riktig|er\ korrekt))?
  | bekreftet | bekreftes
  | (?:(?:det|dette|alt|skjemaet|svarene|innholdet)\ )?
    (?:stemmer|er\ riktig|er\ korrekt|er\ i\ orden|er\ greit|er\ ok|ser\ bra\ ut|ser\ greit\ ut|ser\ riktig\ ut)
    (?:\ (?:bra|helt|det))?
    (?:\ (?:med|slik)\ (?:det\ )?(?:vi|jeg)\ (?:ble\ enige?\ om|avtalte|har\ avtalt))?
  | ja | jepp | ok | okei | greit | riktig | korrekt | helt\ riktig | godkjent
  | (?:(?:jeg|vi)\ )?godkjenner(?:\ (?:dette|det|skjemaet))?
  | ok\ for\ meg | greit\ for\ meg | det\ er\ greit | det\ er\ ok | alt\ ok | alt\ i\ orden | i\ orden
)
"""
_AGREE_EN = r"""
(?:yes\ |ok\ |okay\ )?
(?:
  (?:(?:i|we)\ )?(?:fully\ |completely\ |totally\ )?(?:agree|agreed)
    (?:\ (?:with|to)\ (?:this|it|that|the\ form|the\ answers|everything|all\ of\ it))?
  | (?:(?:i|we)\ )?(?:can\ )?confirm(?:\ (?:this|it|that|the\ form|the\ answers))?
  | confirmed
  | (?:(?:this|it|that|the\ form|everything|all)\ )?(?:is\ |looks\ |seems\ )(?:correct|right|fine|ok|okay|accurate|good)(?:\ to\ me)?
  | (?:that|it)'?s\ (?:correct|right|fine)
  | (?:(?:this|it|that|the\ form|everything)\ )?(?:matches|reflects)\ what\ (?:we|i)\ agreed(?:\ on|\ upon)?
  | as\ agreed | yes | yep | yeah | ok | okay | correct | fine | fine\ by\ me | all\ good | all\ fine
  | sounds\ good | looks\ good | lgtm | approved | (?:(?:i|we)\ )?approve(?:\ (?:this|it|the\ form))?
)
"""
_AGREEMENT = re.compile(rf"(?:{_AGREE_NB}|{_AGREE_EN})", re.VERBOSE)

_GREETING = re.compile(
    r"(hei hei|hei|hallo|heisann|god morgen|god dag|hi|hello|hey|dear|good morning|good afternoon)(?: (.*))?"
)
_GREETING_WORDS = frozenset({"alle", "sammen", "dere", "all", "there", "everyone", "team"})
_THANKS = re.compile(
    r"(?:tusen |mange )?takk(?: for (?:det|dette|sist|svaret|beskjeden|e-?posten|mailen|påminnelsen|"
    r"informasjonen|oppfølgingen))?(?: skal (?:du|dere) ha)?"
    r"|thanks?(?: a lot| so much| very much)?|thank you(?: (?:very|so) much)?"
    r"(?: for (?:this|that|the reminder|the email|the information))?|many thanks|thx"
)
_SIGN_OFF = re.compile(
    r"(med vennlig hilsen|vennlig hilsen|beste hilsen|beste hilsener|varm hilsen|hilsen|mvh|m v h|vh"
    r"|best regards|kind regards|warm regards|regards|best wishes|all the best|best|br|cheers"
    r"|sincerely|yours sincerely|many thanks|thanks|thank you|tusen takk|takk)(?: (.*))?"
)
_FOOTER = re.compile(
    r"(?:sent from|sendt fra|get outlook for|hent outlook for|sent with|sendt med|sent via|sendt via"
    r"|sent using)\b[^\n]{0,80}",
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|(?:https?://|www\.)\S+", re.IGNORECASE)
_PHONE = re.compile(r"\+?\d[\d ()./-]{6,}\d")
_CONTACT_WORD = re.compile(
    r"(?:tlf|tel|telefon|phone|mob|mobil|mobile|e-?post|e-?mail|web|adresse|address|besøksadresse"
    r"|postadresse|rom|room|kontor|office)\b",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"\[(?:cid:[^\]]{1,120}|[^\]\n]{1,40})\]")  # Outlook's "[cid:image001.png@…]"
_ORG = re.compile(
    r"\b(?:ntnu|universitet\w*|university|institutt\w*|institute|fakultet\w*|faculty|department|dept"
    r"|avdeling\w*|seksjon\w*|section|division|senter|centre|center|campus|gløshaugen|dragvoll"
    r"|kalvskinnet|trondheim|gjøvik|ålesund|postboks|vitenskapsmuseet|museum|fellesadministrasjonen"
    r"|administrasjon\w*|administration)\b",
    re.IGNORECASE,
)
_TITLE_WORDS = re.compile(
    r"\b(?:\w*verneombud|professor|førsteamanuensis|førstelektor|\w*lektor|postdoktor|stipendiat"
    r"|\w*rådgiver|\w*ingeniør|konsulent|sekretær|\w*leder|\w*sjef|safety representative|adviser|advisor"
    r"|engineer|lecturer|researcher|candidate|officer|manager|head)\b",
    re.IGNORECASE,
)
# A line with one of these is never cut away as a signature: it may carry a reservation.
_RESERVATION = re.compile(
    r"\?|\b(?:ikke|nei|uenig|feil|men|endre\w*|endring\w*|rettes|mangler|kommentar\w*|merknad\w*"
    r"|bortsett|unntatt|unntak|derimot|imidlertid|dessverre|kanskje|usikker|delvis|ps|p\.s"
    r"|no|not|n't|disagree\w*|wrong|but|change\w*|missing|comment\w*|except\w*|however|unfortunately"
    r"|maybe|perhaps|unsure|partly)\b",
    re.IGNORECASE,
)
# Words of sentences, not of names and titles ("Vi hadde ett møte" is not a signature line).
_PROSE = re.compile(
    r"\b(?:jeg|vi|du|dere|det|dette|er|var|har|hadde|skal|bør|må|kan|vil|også|at|som|om|hvis|fordi"
    r"|når|I|we|you|it|this|that|is|are|was|were|have|has|had|should|must|can|will|would|also|if"
    r"|because|when)\b"
)
_NAME_TOKEN = re.compile(r"[A-ZÆØÅÄÖÜÉ][\w'’-]*\.?|[A-ZÆØÅ]\.")
_WORD = re.compile(r"[^\W\d_][\w'’.-]*")
_EMOTICON = re.compile(r"(?<!\w)(?:[:;=]-?[)(DPp]|<3)(?!\w)")
_THUMBS = re.compile(
    "[\U0001f44d\U0001f44c\u2705\u2714\u2611]\ufe0f?[\U0001f3fb-\U0001f3ff]?"
)  # 👍 👌 ✅ ✔ ☑
_FRIENDLY = re.compile(
    "[\U0001f642\U0001f60a\U0001f600\U0001f603\U0001f604\u263a\U0001f64f]\ufe0f?[\U0001f3fb-\U0001f3ff]?"
)
_SYMBOL = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf]")  # any other emoji is a word we do not know
_TOKEN = re.compile(r"[\w'’.-]+")
_CONNECTORS = frozenset({"og", "for", "i", "ved", "of", "and", "the", "at", "&", "/", "-", "–", "|"})
_SPLIT = re.compile(r"\n|[.!?;:,–—]+(?=\s|$)|\s+-\s+")  # "8.12.2020" and "e-post" stay whole


@dataclass(frozen=True)
class Piece:
    """One clause of a reply: as written, and normalised (lower case, words only)."""

    text: str
    norm: str


def segments(text: str) -> list[Piece]:
    """The clauses of ``text``: split at line breaks and sentence or clause punctuation; a
    thumbs-up reads "ok", a smile is dropped, and any other emoji is a word no list holds.
    Digits stay: "enig 3" is not "enig"."""
    text = _SYMBOL.sub(" symbol ", _FRIENDLY.sub(" ", _EMOTICON.sub(" ", _THUMBS.sub("\nok\n", text))))
    out = []
    for chunk in _SPLIT.split(text):
        tokens = (w.strip(".-").lower().replace("’", "'") for w in _TOKEN.findall(chunk))
        norm = " ".join(t for t in tokens if t)
        if norm:
            out.append(Piece(chunk.strip(), norm))
    return out


def is_agreement(norm: str) -> bool:
    return _AGREEMENT.fullmatch(norm) is not None


def is_filler(piece: Piece, known: frozenset[str]) -> bool:
    """A greeting ("Hei Kari"), thanks, a sign-off ("Mvh Siri") or the person's name: politeness
    that neither agrees nor disputes."""
    if _THANKS.fullmatch(piece.norm) or is_name(piece.text, known, strict=True):
        return True
    for pattern in (_GREETING, _SIGN_OFF):
        m = pattern.fullmatch(piece.norm)
        if m and _names_only(_rest(piece.text, m.group(1)), known, extra=_GREETING_WORDS):
            return True
    return False


def is_sign_off(line: str) -> bool:
    """A whole line that closes a letter: "Mvh", "Vennlig hilsen Siri", "Best regards,"."""
    norm = " ".join(w.strip(".-").lower() for w in _WORD.findall(line))
    m = _SIGN_OFF.fullmatch(norm)
    return m is not None and not reservation(line) and _names_only(_rest(line, m.group(1)), frozenset())


def is_footer(line: str) -> bool:
    """A mail app's line: "Sent from my iPhone", «Sendt fra min iPhone», "Get Outlook for iOS"."""
    return _FOOTER.fullmatch(line.strip()) is not None and len(line.split()) <= 10


def is_contact(line: str) -> bool:
    return bool(
        _ADDRESS.search(line)
        or _PHONE.search(line)
        or _CONTACT_WORD.match(line)
        or _PLACEHOLDER.fullmatch(line)
    )


def is_org(line: str) -> bool:
    return _ORG.search(line) is not None


def is_title(line: str) -> bool:
    """A short line that names a role ("Verneombud", "Senior engineer", "Head of Section"): a
    title word, or capitalised words only; never a sentence, a number or a word of the reply."""
    words = line.split()
    capitalised = all(w[:1].isupper() or w.lower() in _CONNECTORS or not w[:1].isalpha() for w in words)
    return (
        0 < len(words) <= 6
        and not any(ch.isdigit() for ch in line)
        and (_TITLE_WORDS.search(line) is not None or capitalised)
        and not line.rstrip().endswith((".", "!", "?"))
        and _PROSE.search(_ADDRESS.sub("", line)) is None
        and not _is_lexicon(line)
    )


def is_name(line: str, known: frozenset[str], *, strict: bool = False) -> bool:
    """A line that is a person's name. ``strict``: only the names we know (the roster's, the
    sender's); else any one to four capitalised words."""
    tokens = [t.strip(",.") for t in line.replace(",", " ").split() if t.strip(",.")]
    if not 0 < len(tokens) <= 4 or reservation(line) or _PROSE.search(line):
        return False
    if all(t.lower() in known or (len(t) == 1 and t.isupper()) for t in tokens):
        return any(t.lower() in known for t in tokens)
    return not strict and all(_NAME_TOKEN.fullmatch(t) for t in tokens) and not _is_lexicon(line)


def is_prose(line: str) -> bool:
    """The line reads as a sentence ("Vi hadde ett møte"): a word of one, addresses left out; a
    faculty's name may start with "Det" ("Det humanistiske fakultet")."""
    plain = _ADDRESS.sub(" ", line)
    if is_org(plain):
        plain = re.sub(r"^\s*Det\b", "", plain)
    return _PROSE.search(plain) is not None


def reservation(line: str) -> bool:
    """The line holds a word (or a "?") that may carry a reservation; addresses are left out."""
    return _RESERVATION.search(_ADDRESS.sub(" ", line)) is not None


def name_tokens(names: Iterable[str]) -> frozenset[str]:
    """The lower-case words of the names given, e.g. {"siri", "løvås"}."""
    return frozenset(w.lower() for name in names for w in re.split(r"[\s,]+", name) if len(w) > 1)


def _is_lexicon(line: str) -> bool:
    """ "Ja", "Takk", "Enig": words of the reply itself, never a name."""
    norm = " ".join(w.lower() for w in _WORD.findall(line))
    return bool(
        is_agreement(norm)
        or _THANKS.fullmatch(norm)
        or _GREETING.fullmatch(norm)
        or _SIGN_OFF.fullmatch(norm)
    )


def _rest(text: str, lead: str) -> str:
    """What follows the leading words ``lead`` (normalised) in ``text`` as written."""
    words = _WORD.findall(text)
    return " ".join(words[len(lead.split()) :])


def _names_only(rest: str, known: frozenset[str], extra: frozenset[str] = frozenset()) -> bool:
    """Nothing, or only capitalised names (and ``extra`` words) after a greeting or sign-off."""
    tokens = rest.split()
    return len(tokens) <= 4 and all(
        t.lower() in known or t.lower() in extra or (_NAME_TOKEN.fullmatch(t) and not _is_lexicon(t))
        for t in tokens
    )
