"""Names and employee ids as they may be stored, and the one form ids are compared in.

``normalise_id`` (NFKC, then case folded) is used wherever two ids are compared: the local
gallery, an import, a door joining a site, the site itself and its replicas. So "E001",
"e001" and the full-width "Ｅ００１" are one id everywhere, and a second enrolment under a
variant is refused instead of overwriting someone at another door.
"""

from __future__ import annotations

import re
import unicodedata

from faceguard.errors import GalleryError

__all__ = ["clean_id", "clean_text", "normalise_id", "same_id"]


# Characters no name or id may hold: controls (C0, DEL, C1 such as NEL), line and paragraph
# separators, and the bidi controls that make a log line read differently from what it holds.
_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _bad_char(c: str) -> bool:
    cat = unicodedata.category(c)
    return cat in ("Cc", "Zl", "Zp", "Cs") or c in _BIDI


def _invisible(c: str) -> bool:
    """Format characters (zero-width space/joiner, BOM, soft hyphen, bidi …) and other spaces
    than the plain one: an id holding them looks like another id."""
    return unicodedata.category(c) in ("Cf", "Zs", "Co", "Cn") and c != " "


def clean_text(value: str, what: str) -> str:
    """A one-line text (a name, a model id) of at most 200 characters, without control, line
    separator or bidi characters (they forge log lines or reverse how one reads)."""
    value = (value or "").strip() if isinstance(value, str) else ""
    if not value:
        raise GalleryError(f"The {what} is empty; enter one.")
    if len(value) > 200 or any(_bad_char(c) for c in value):
        raise GalleryError(f"The {what} must be one line of at most 200 characters, without "
                           "control or text-direction characters.")
    return value


def clean_id(value: str, what: str = "employee id") -> str:
    """An employee id as typed (kept for display), refused when it holds characters that would
    make it look like another id: invisible, bidi, control or odd spaces."""
    value = clean_text(value, what)
    if any(_invisible(c) for c in value) or normalise_id(value) != normalise_id(normalise_id(value)):
        raise GalleryError(f"The {what} '{ascii(value)[1:-1]}' holds invisible, combining or "
                           "text-direction characters; type it with plain letters, digits and signs.")
    return value


def normalise_id(employee_id: str) -> str:
    """The one form ids are compared in, everywhere (local, import, join, sync): Unicode NFKC,
    then case folded ("E001", "e001" and the full-width "Ｅ００１" are one id)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", employee_id).casefold())


def same_id(a: str, b: str) -> bool:
    """Employee ids are one id whatever their case or width; the typed form is kept."""
    return normalise_id(a) == normalise_id(b)


ERASED_NAME = "an erased person"


def erase_words(text: str, words) -> str:
    """``text`` with each whole-word occurrence of ``words`` (an erased person's name and id)
    replaced: erasing a person erases their name from the reasons of the log too."""
    needles = sorted({w.strip() for w in words if w and len(w.strip()) >= 2}, key=len, reverse=True)
    if not needles or not text:
        return text
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in needles) + r")(?!\w)")
    return pattern.sub(ERASED_NAME, text)


def printable(text: str | None) -> str:
    """``text`` for one line of a log listing: control, line-separator and bidi characters shown
    as escapes (\\n, \\t, \\u202e), so no text can forge another row or column or read backwards."""
    if not text:
        return text or ""
    return "".join(c if c.isprintable() and not _bad_char(c) else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)


_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_safe(text: str | None) -> str:
    """A text cell a spreadsheet will not run: one starting like a formula (=, +, -, @, or a
    tab/return before one) gets a leading apostrophe (the OWASP advice for CSV injection)."""
    text = printable(text)
    return "'" + text if text.startswith(_FORMULA) else text
