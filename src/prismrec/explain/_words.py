"""Tokens for interest labels: lower-case words, English stop words and bare numbers removed."""

from __future__ import annotations

import re

# Small on purpose: distinctiveness against the whole catalogue already pushes down words every
# item uses; this list only removes function words that would otherwise fill short labels.
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each either else even
ever every few for from further get gets got had has have having he her here hers herself him
himself his how i if in into is it its itself just least less let like made make makes many may
me might more most much must my myself neither no nor not now of off on once one only onto or
other our ours ourselves out over own per quite rather same shall she should since so some such
than that the their theirs them themselves then there these they this those though through thus
to too under until up upon us very via was we well were what when where whether which while who
whom whose why will with within without would yet you your yours yourself yourselves
""".split())

_TOKEN = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
_POSSESSIVE = re.compile(r"['’]s$")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; hyphenated words ("sci-fi") stay whole, possessive 's goes."""
    out = []
    for tok in _TOKEN.findall(text.lower()):
        tok = _POSSESSIVE.sub("", tok)
        if len(tok) < 2 or tok.isdigit() or tok in STOP_WORDS:
            continue
        out.append(tok)
    return out


def same_word(a: str, b: str) -> bool:
    """Singular and plural of one word ("shoe"/"shoes", "box"/"boxes") count as one label word."""
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return long_ in (short + "s", short + "es")
