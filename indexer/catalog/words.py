"""Words of sound-effects names, as keyword search indexes and queries them.

SFX names are not prose: `SabianHatSemiOpen-Med.wav`, `Explosion01`, `DOORWood_Creak_JD`,
`Hi-Hat`, `RAIN_Roof_Tin`. `name_tokens()` splits them the way people read them:

- at separators (`_ - . /` spaces and any other non-alphanumeric),
- at camelCase (`SemiOpen` -> semi open) and at an upper-case run followed by a word
  (`DOORWood` -> door wood, the UCS CatID form),
- between letters and digits (`Explosion01` -> explosion 01);

and keeps, after the pieces, the joined forms people also type: each split word whole
(`doorwood`, `explosion01`) and each pair of neighbouring pieces (`hi` `hat` -> `hihat`).
The pieces come first and in order, so a quoted phrase still matches them.

Every token is lower-cased and stemmed with the Snowball English stemmer (`explosions`,
`exploding` -> `explod`), at index time and at query time alike. Stop words ("a", "on",
"the") are dropped from queries, since a one-letter prefix matched half a library.
UCS synonyms (data/taxonomies/ucs_synonyms.csv, from UCS 8.2.1, CC0) are indexed with the
files whose name or metadata carries a CatID, so "kerboom" finds AIRBrst files.
"""

from __future__ import annotations

import csv
import functools
import re
from pathlib import Path

from ..resources import data_file

UCS_SYNONYMS = ("taxonomies", "ucs_synonyms.csv")  # in the installed data package (indexer.resources)

# Query words shorter than this match whole tokens only; longer ones also match as prefixes.
MIN_PREFIX = 4

STOP_WORDS = frozenset(
    "a an and are as at be by for from in into is it its of off on onto or out over the this "
    "to under up with without very some".split()
)

_SPLIT = re.compile(r"[^\W_]+")  # runs of letters and digits; everything else separates
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_]+")


@functools.lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball English stem of a lower-case word (numbers and short words as they are)."""
    if len(word) < 3 or not word.isalpha():
        return word
    return _stemmer().stemWord(word)


def pieces(word: str) -> list[str]:
    """A run of letters/digits split at camelCase, CatID case and letter/digit boundaries."""
    return [p.lower() for p in _CAMEL.findall(word)] or [word.lower()]


def name_tokens(text: str, pairs: bool = True) -> list[str]:
    """Index tokens of a name or path part: pieces in order, then whole words and joined pairs."""
    out: list[str] = []
    extra: dict[str, None] = {}
    prev: str | None = None
    for run in _SPLIT.findall(text):
        ps = pieces(run)
        for p in ps:
            out.append(p)
            if pairs and prev is not None and prev.isalpha() and p.isalpha():
                extra[prev + p] = None  # hi + hat -> hihat, semi + open -> semiopen
            prev = p
        if len(ps) > 1:
            extra[run.lower()] = None  # doorwood, explosion01
    return [stem(t) for t in out] + [stem(t) for t in extra if t not in out]


def text_tokens(text: str) -> list[str]:
    """Index tokens of prose (descriptions, notes): words stemmed, camelCase split, no joined pairs."""
    return name_tokens(text, pairs=False)


def query_terms(word: str) -> list[str]:
    """The stemmed token(s) one query word must match: one, or the pieces of 'hi-hat' as a phrase."""
    runs = _SPLIT.findall(word)
    if not runs:
        return []
    if len(runs) == 1:
        return [stem(runs[0].lower())]
    return [stem(r.lower()) for r in runs]


def is_stop_word(word: str) -> bool:
    return word.lower() in STOP_WORDS


@functools.lru_cache(maxsize=1)
def ucs_synonyms() -> dict[str, tuple[str, ...]]:
    """CatID (lower case) -> its synonyms, from the data file (empty when it is missing)."""
    out: dict[str, tuple[str, ...]] = {}
    node = data_file(*UCS_SYNONYMS)
    if not node.is_file():
        # A checkout run beside another checkout's editable install: that install's data
        # package may predate this file; the checkout's own copy is the one that matches.
        node = Path(__file__).resolve().parents[2] / "data" / Path(*UCS_SYNONYMS)
    try:
        with node.open("r", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                out[row["cat_id"].lower()] = tuple(s for s in row["synonyms"].split(";") if s)
    except OSError:
        return {}
    return out


def synonym_tokens(texts: list[str]) -> list[str]:
    """Tokens of the UCS synonyms of every CatID written in `texts` (a file's name, its UCS field)."""
    table = ucs_synonyms()
    if not table:
        return []
    out: list[str] = []
    seen: set[str] = set()
    for text in texts:
        for run in _SPLIT.findall(text or ""):
            w = run.lower()
            syn = table.get(w)
            if syn and w not in seen:
                seen.add(w)
                for s in syn:
                    out.extend(name_tokens(s))
    return out

