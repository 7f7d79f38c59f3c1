"""The id rule for user ids and event ids: what can be stored can be read and erased.

An id is a string of 1 to ``MAX_ID_LENGTH`` characters, normalised to Unicode NFC (so the
composed and decomposed spellings of "é" are one user), with no ``/`` (a path segment must
round-trip through ``/v1/users/{user}``), no leading or trailing whitespace, and none of:
control characters (C0, C1, CR, LF, NUL), format characters (bidi overrides and isolates,
zero-width space/joiners, BOM, soft hyphen), line/paragraph separators or lone surrogates.
Every entry applies it: the stores (so the Python API), the HTTP routes and the CLI.
Item ids keep the catalogue's spelling and are only checked for NUL and valid UTF-8.
"""

from __future__ import annotations

import unicodedata

from prismrec.errors import DataError

MAX_ID_LENGTH = 1024  # ids are keys and log fields; anything longer is a client bug or abuse
_BANNED = {"Cc": "a control character", "Cf": "an invisible format character (bidi or "
           "zero-width)", "Cs": "a lone surrogate", "Zl": "a line separator",
           "Zp": "a paragraph separator"}
RULE = ("ids are 1-1024 characters, NFC-normalised, without '/', control, bidi or zero-width "
        "characters, and without leading or trailing whitespace")


def parse_id(value: object, what: str = "id", where: str = "") -> str:
    """``value`` as a stored id (NFC), or ``DataError`` naming what breaks the rule."""
    if type(value) is str and value.isascii() and value.isprintable() and "/" not in value \
            and 0 < len(value) <= MAX_ID_LENGTH and value[0] != " " and value[-1] != " ":
        return value  # the common case, checked cheaply (ASCII is already NFC)
    prefix = f"{where}: " if where else ""
    if not isinstance(value, str):
        raise DataError(f"{prefix}{what} must be a string, got {type(value).__name__}; "
                        "convert ids with str()")
    shown = repr(value[:40])
    for ch in value:  # before normalising: NFC keeps these characters anyway
        banned = _BANNED.get(unicodedata.category(ch))
        if banned:
            raise DataError(f"{prefix}{what} {shown} contains {banned} (U+{ord(ch):04X}); "
                            f"{RULE}")
    out = unicodedata.normalize("NFC", str(value))
    if not out:
        raise DataError(f"{prefix}{what} is empty; {RULE}")
    if len(out) > MAX_ID_LENGTH:
        raise DataError(f"{prefix}{what} is {len(out)} characters long; the limit is "
                        f"{MAX_ID_LENGTH}")
    if "/" in out:
        raise DataError(f"{prefix}{what} {shown} contains '/'; {RULE}")
    if out != out.strip():
        raise DataError(f"{prefix}{what} {shown} starts or ends with whitespace; {RULE}")
    return out


def lookup_id(value: object, what: str = "id") -> str:
    """``value`` normalised (NFC) for reading or erasing, without refusing what the rule bans.

    New ids go through ``parse_id`` when they are stored; reads and ``forget`` take any
    string, so an id stored before the rule existed can still be read and erased.
    """
    if type(value) is str and value.isascii() and 0 < len(value) <= MAX_ID_LENGTH \
            and "\x00" not in value:
        return value
    if not isinstance(value, str):
        raise DataError(f"{what} must be a string, got {type(value).__name__}")
    if not value or len(value) > MAX_ID_LENGTH or "\x00" in value:
        raise DataError(f"{what} must be 1-{MAX_ID_LENGTH} characters without NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(f"{what} {value[:40]!r} is not valid UTF-8 text") from exc
    return unicodedata.normalize("NFC", value)
