"""Plain keyword queries ranked in memory, with the very scores FTS5's `bm25()` gives them.

FTS5 ranks a query by calling `bm25()` once for every matching row, which costs a few
microseconds a row: a plain query of common words matches tens of thousands of files in a
large library, and all of them were scored for the best fifty (docs/benchmarks.md, "hybrid
search side"). A long-running reader (`sfx-search serve`, set by `Catalog.keep_keywords_in_memory`)
keeps instead, per token, the files that hold it and their column-weighted term frequencies
(a compressed sparse column layout in numpy), and computes the same BM25 for the matches of a
query with a few array operations.

It is exact, not an approximation: the per-row arithmetic is `bm25()`'s (fts5_aux.c: the
column-weighted frequency of each phrase, the row's token count against the average, the
IDF from the rows that hold the phrase, summed phrase by phrase in query order), in the
same double precision, and ties go to the lower rowid as `ORDER BY r, rowid` has them.
It only serves what it can answer exactly, the default query: plain words (no operators),
each a single token, optionally a prefix. Anything else goes to FTS5 as before.

It is built from the FTS5 table's own stored columns and trusted only when its token
counts per word and column equal FTS5's (the `fts5vocab` table): a tokeniser difference
leaves the catalog on FTS5 instead. It is current while the FTS5 structure record (which
every write to the index rewrites, with a write counter) is the one it was built from;
a stale one is not used, and is rebuilt in the background.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
import unicodedata
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

# bm25()'s constants (fts5_aux.c).
K1 = 1.2
B = 0.75
STRUCTURE_ROWID = 10  # the FTS5 structure record's id in files_fts_data
LAST_CHAR = "\U0010ffff"
_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    """The tokens the table's tokeniser ('unicode61 remove_diacritics 2') makes of a column
    value as keyword_columns writes them: runs of letters and digits, lower case, accents
    dropped. Whether that holds for a whole catalog is checked before it is trusted (build)."""
    if not text:
        return []
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return _TOKEN.findall(text.lower())


def structure_stamp(conn) -> bytes | None:
    """The FTS5 structure record: it changes with every transaction that writes the index."""
    row = conn.exec_driver_sql("SELECT block FROM files_fts_data WHERE id = ?", (STRUCTURE_ROWID,)).first()
    return None if row is None else bytes(row[0])


class KeywordRanker:
    """The keyword index of one FTS5 state, in memory: token -> (files, weighted frequencies)."""

    def __init__(self, stamp, vocab, indptr, docs, freq, rowids, length, n_rows):
        self.stamp = stamp
        self.vocab: list[str] = vocab        # sorted: a prefix is a contiguous range of it
        self.indptr = indptr                 # term t's postings: docs[indptr[t]:indptr[t + 1]]
        self.docs = docs                     # row positions, ascending within a term
        self.freq = freq                     # sum of the column weights of the term's instances
        self.rowids = rowids                 # row position -> file id (FTS5 rowid)
        self.length = length                 # row position -> tokens in the row, all columns
        self.n_rows = n_rows
        self.avgdl = float(length.sum()) / float(n_rows) if n_rows else 0.0

    @classmethod
    def build(cls, conn, fields: Sequence[str], weights: Sequence[float]) -> "KeywordRanker | None":
        """Read the FTS5 table through `conn` (one read transaction); None when its tokens
        cannot be matched to FTS5's own counts (then FTS5 keeps ranking)."""
        stamp = structure_stamp(conn)
        rows = conn.exec_driver_sql(f"SELECT rowid, {', '.join(fields)} FROM files_fts ORDER BY rowid").all()
        vocab: dict[str, int] = {}
        get = vocab.setdefault
        term_ids: list[int] = []
        doc_of: list[int] = []
        col_of: list[int] = []
        for d, row in enumerate(rows):
            for c in range(len(fields)):
                toks = tokens(row[c + 1])
                if toks:
                    term_ids.extend([get(t, len(vocab)) for t in toks])
                    doc_of.extend([d] * len(toks))
                    col_of.extend([c] * len(toks))
        n_rows = len(rows)
        rowids = np.fromiter((r[0] for r in rows), np.int64, n_rows)
        del rows
        terms = np.asarray(term_ids, np.int64)
        docs = np.asarray(doc_of, np.int64)
        cols = np.asarray(col_of, np.int64)
        del term_ids, doc_of, col_of
        # Term ids in sorted-vocabulary order, so that a prefix is one range of them.
        names = sorted(vocab)
        rank = np.empty(len(names), np.int64)
        rank[np.fromiter((vocab[w] for w in names), np.int64, len(names))] = np.arange(len(names))
        terms = rank[terms] if len(terms) else terms
        if not _same_counts(conn, names, terms, docs, cols, list(fields), n_rows):
            return None
        length = np.bincount(docs, minlength=n_rows).astype(np.float64)
        w = np.asarray(weights, np.float64)[cols]
        # One posting per (term, row): its instances' column weights summed (multiples of
        # 0.5: exact in any order, as bm25() adds them instance by instance).
        key = terms * max(n_rows, 1) + docs
        order = np.argsort(key, kind="stable")
        key = key[order]
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
        freq = np.add.reduceat(w[order], first) if len(key) else np.zeros(0)
        post_term = key[first] // max(n_rows, 1)
        post_doc = (key[first] % max(n_rows, 1)).astype(np.int32)
        indptr = np.zeros(len(names) + 1, np.int64)
        np.cumsum(np.bincount(post_term, minlength=len(names)), out=indptr[1:])
        return cls(stamp, names, indptr, post_doc, freq, rowids, length, n_rows)

    @staticmethod
    def serves(terms) -> bool:
        """Whether these query terms (keyword_query.Term) are single tokens this ranker matches
        as FTS5 does: a phrase of several tokens needs positions, which it does not keep."""
        return bool(terms) and all(len(t.tokens) == 1 and len(tokens(t.tokens[0])) == 1 for t in terms)

    def _phrase(self, token: str, prefix: bool) -> tuple[np.ndarray, np.ndarray]:
        """(row positions ascending, weighted frequency) of the rows holding the token (or a
        token starting with it)."""
        lo = bisect.bisect_left(self.vocab, token)
        hi = bisect.bisect_left(self.vocab, token + LAST_CHAR) if prefix else \
            lo + int(lo < len(self.vocab) and self.vocab[lo] == token)
        a, b = int(self.indptr[lo]), int(self.indptr[hi])
        docs, freq = self.docs[a:b], self.freq[a:b]
        if hi - lo > 1:  # several tokens share the prefix: a row's frequency is their sum
            docs, freq = _sum_by_row(docs, freq)
        return docs, freq

    def rank(self, terms, limit: int | None, *, all_terms: bool = False) -> list[tuple[int, float]]:
        """(file id, score) best first, as `bm25()` scores the OR (or with `all_terms` the AND)
        of the terms; ties to the lower file id."""
        parts = [self._phrase(tokens(t.tokens[0])[0], t.prefix) for t in terms]  # as FTS5 reads the query
        if not parts:
            return []
        every = np.concatenate([d for d, _ in parts])
        order = np.argsort(every, kind="stable")
        new = np.empty(len(every), bool)
        new[:1] = True
        np.not_equal(every[order][1:], every[order][:-1], out=new[1:])
        matched = every[order][new]
        at = np.empty(len(every), np.int64)
        at[order] = np.cumsum(new) - 1  # each posting's place in `matched`
        score = np.zeros(len(matched))
        hits = np.zeros(len(matched), np.int64)
        start = 0
        for docs, freq in parts:  # phrase by phrase, in query order, as bm25() sums them
            n_hit = len(docs)
            idf = math.log((self.n_rows - n_hit + 0.5) / (n_hit + 0.5))
            if idf <= 0.0:
                idf = 1e-6
            d = self.length[docs]
            where = at[start:start + n_hit]
            start += n_hit
            score[where] += idf * ((freq * (K1 + 1.0)) / (freq + K1 * (1 - B + B * d / self.avgdl)))
            hits[where] += 1
        if all_terms:
            keep = hits == len(parts)
            matched, score = matched[keep], score[keep]
        if limit is not None and len(score) > limit:
            # Only the rows that can be among the first `limit`: those scoring at least the
            # limit-th best (ties at the edge included, for the rowid order below).
            edge = -np.partition(-score, limit - 1)[limit - 1]
            keep = score >= edge
            matched, score = matched[keep], score[keep]
        ids = self.rowids[matched]
        best = np.lexsort((ids, -score))
        if limit is not None:
            best = best[:limit]
        return list(zip(ids[best].tolist(), score[best].tolist()))


def _sum_by_row(docs: np.ndarray, freq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Postings of several tokens merged: row positions ascending, frequencies summed (exact:
    multiples of the column weights)."""
    order = np.argsort(docs, kind="stable")
    docs, freq = docs[order], freq[order]
    first = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
    return docs[first], np.add.reduceat(freq, first)


def _same_counts(conn, names, terms, docs, cols, fields, n_rows) -> bool:
    """Whether the rows and instances per (token, column) read here are FTS5's own."""
    if conn.exec_driver_sql("SELECT count(*) FROM files_fts").scalar() != n_rows:
        return False
    conn.exec_driver_sql(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.files_fts_vocab_col USING fts5vocab('main', 'files_fts', 'col')")
    theirs = sorted(tuple(r) for r in conn.exec_driver_sql(
        "SELECT term, col, doc, cnt FROM temp.files_fts_vocab_col").all())
    n_cols, n = len(fields), max(n_rows, 1)
    tc = terms * n_cols + cols
    pair, instances = np.unique(tc, return_counts=True)
    _, with_rows = np.unique(np.unique(tc * n + docs) // n, return_counts=True)
    mine = sorted((names[p // n_cols], fields[p % n_cols], r, i)
                  for p, r, i in zip(pair.tolist(), with_rows.tolist(), instances.tolist()))
    if mine != theirs:
        diff = next((a, b) for a, b in zip(mine + [None], theirs + [None]) if a != b)
        log.info("keyword ranker: this reader counts %s where FTS5 counts %s; FTS5 keeps ranking", *diff)
        return False
    return True
