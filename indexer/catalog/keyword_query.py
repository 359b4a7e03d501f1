"""Keyword queries, Soundminer style, as FTS5 MATCH and PostgreSQL tsquery expressions.

    door wood          both words (space = AND)
    door, gate         either (comma = OR; each side is its own AND group)
    door -metal        door, and not metal (-word = NOT, for the whole query)
    "car door"         the words next to each other, in this order (a phrase)
    expl*              any word starting with expl (an explicit prefix, even a short one)

A query that uses none of these is plain text ("rain on a tin roof"): its stop words are
dropped and it is ranked by how well its words match (any word may match; files matching
more of them, in their names first, rank higher). Keyword mode puts the files that match
every word first. Words of MIN_PREFIX letters or more also match as prefixes ("foot" finds
"footsteps"); every word is stemmed as the index is (indexer.catalog.words).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .words import MIN_PREFIX, is_stop_word, query_terms

MAX_TERMS = 32
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass
class Term:
    tokens: list[str]  # stemmed; more than one = a phrase
    prefix: bool  # the last token may be the start of a word

    def fts5(self) -> str:
        return '"' + " ".join(self.tokens) + '"' + ("*" if self.prefix else "")

    def tsquery(self) -> str:
        parts = [*self.tokens[:-1], self.tokens[-1] + (":*" if self.prefix else "")]
        return parts[0] if len(parts) == 1 else "(" + " <-> ".join(parts) + ")"


@dataclass
class Group:
    must: list[Term] = field(default_factory=list)
    must_not: list[Term] = field(default_factory=list)


@dataclass
class KeywordQuery:
    groups: list[Group]
    operators: bool  # the text used the syntax above (then it is a boolean query)

    @property
    def terms(self) -> list[Term]:
        return [t for g in self.groups for t in g.must]

    @property
    def negated(self) -> list[Term]:
        return [t for g in self.groups for t in g.must_not]

    def empty(self) -> bool:
        return not self.terms

    # ---------------------------------------------------------------- FTS5 (SQLite)

    def fts5_boolean(self) -> str:
        """The query as written: OR of groups (each the AND of its words), minus every -word."""
        pos = [g.must for g in self.groups if g.must]
        if not pos:
            return ""  # "-music" alone: the caller leaves those files out of everything
        expr = " OR ".join("(" + " AND ".join(t.fts5() for t in m) + ")" for m in pos)
        return f"({expr}) NOT ({self.fts5_negated()})" if self.negated else expr

    def fts5_all(self) -> str:
        return " AND ".join(t.fts5() for t in self.terms)

    def fts5_any(self) -> str:
        return " OR ".join(t.fts5() for t in self.terms)

    def fts5_negated(self) -> str:
        return " OR ".join(t.fts5() for t in self.negated)

    # ---------------------------------------------------------------- tsquery (PostgreSQL)

    def tsquery_boolean(self) -> str:
        pos = [g.must for g in self.groups if g.must]
        if not pos:
            return ""
        expr = " | ".join("(" + " & ".join(t.tsquery() for t in m) + ")" for m in pos)
        return f"({expr}) & !({self.tsquery_negated()})" if self.negated else expr

    def tsquery_all(self) -> str:
        return " & ".join(t.tsquery() for t in self.terms)

    def tsquery_any(self) -> str:
        return " | ".join(t.tsquery() for t in self.terms)

    def tsquery_negated(self) -> str:
        return " | ".join(t.tsquery() for t in self.negated)


def uses_operators(text: str) -> bool:
    """Whether the text is written in the query syntax rather than as plain words."""
    return bool(re.search(r'[",]|(^|\s)-\w|\w\*', text))


def parse(text: str) -> KeywordQuery:
    operators = uses_operators(text)
    groups: list[Group] = []
    count = 0
    for part in _split_commas(text) if operators else [text]:
        g = Group()
        for neg, phrase, bare in _TOKEN.findall(part):
            if count >= MAX_TERMS:
                break
            if phrase or (neg and not bare):
                tokens = [t for w in phrase.split() for t in query_terms(w)]
                if tokens:
                    (g.must_not if neg else g.must).append(Term(tokens, prefix=False))
                    count += 1
                continue
            word, negated, prefix = bare, False, False
            if operators and word.startswith("-") and len(word) > 1:
                word, negated = word[1:], True
            if operators and word.endswith("*"):
                word, prefix = word.rstrip("*"), True
            tokens = query_terms(word)
            if not tokens:
                continue
            if not prefix and len(tokens) == 1 and is_stop_word(word):
                continue
            implicit = len(tokens) == 1 and len(word) >= MIN_PREFIX and word.isalpha()
            (g.must_not if negated else g.must).append(Term(tokens, prefix=prefix or implicit))
            count += 1
        if g.must or g.must_not:
            groups.append(g)
    q = KeywordQuery(groups, operators)
    if q.empty() and not operators:
        # Only stop words ("the a"): search them after all rather than nothing.
        words = [w for w in text.split() if query_terms(w)][:MAX_TERMS]
        q = KeywordQuery([Group(must=[Term(query_terms(w), prefix=False) for w in words])], False)
        if q.empty():
            q = KeywordQuery([], False)
    return q


def _split_commas(text: str) -> list[str]:
    """Split at commas outside quotes."""
    out, cur, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [p for p in out if p.strip()]
