"""Tag storage for the catalog (zero-shot, trained-head and user tags, and saved heads).

A mixin of `indexer.catalog.Catalog`. The tag filter of searches is in filters.py.

A tag row is (file, label, cat_id, score, set_name, source, model): a machine row is a tag
whatever its score (a cosine may be <= 0), a user row a decision. `source` is
`zero-shot`, `head` or `user`. Machine sets are replaced as a whole when rerun; user rows
(review decisions: score 1 accepted, score 0 rejected) are never touched by a rerun and win
over machine rows in filters (`filters.tagged_query`) and listings.
"""

from __future__ import annotations

import time
from typing import Iterable, Sequence

import sqlalchemy as sa

from .batching import rows_in
from .encoding import rel_from_db
from .rows import HeadRecord, TaggedFile, TagRow, TagSetInfo
from .schema import tables as T

MACHINE_SOURCES = ("zero-shot", "head")
USER_SET = "user"
# Tag rows per INSERT when a set is replaced.
TAG_INSERT_BATCH = 5000


class TagsMixin:
    """Tags and trained heads of a Catalog."""

    # ------------------------------------------------------------------ writing tags

    def replace_tag_set(
        self, set_name: str, rows: Iterable[TagRow], *, source: str, model: str | None, batch: int = TAG_INSERT_BATCH
    ) -> int:
        """Replace the machine tags of `set_name` by `rows` in one transaction; returns the count.

        User decisions recorded under the set survive: they are the user's, not the set's.
        """
        if source not in MACHINE_SOURCES:
            raise ValueError(f"source must be one of {MACHINE_SOURCES}")
        t = T["tags"]
        now = time.time()
        n = 0
        with self.transaction() as conn:
            conn.execute(t.delete().where(t.c.set_name == set_name, t.c.source.in_(MACHINE_SOURCES)))
            buf: list[dict] = []
            for r in rows:
                buf.append(
                    {"file_id": int(r.file_id), "label": r.label, "cat_id": r.cat_id, "score": float(r.score),
                     "set_name": set_name, "source": source, "model": model, "created_at": now}
                )
                if len(buf) >= batch:
                    conn.execute(t.insert(), buf)
                    n += len(buf)
                    buf = []
            if buf:
                conn.execute(t.insert(), buf)
                n += len(buf)
        return n

    def delete_tag_set(self, set_name: str) -> int:
        t = T["tags"]
        with self.transaction() as conn:
            return conn.execute(t.delete().where(t.c.set_name == set_name, t.c.source.in_(MACHINE_SOURCES))).rowcount

    def record_decision(
        self, file_id: int, label: str, *, accept: bool, cat_id: str | None = None, set_name: str = USER_SET
    ) -> None:
        """Store a user's accept (score 1) or reject (score 0) of `label` on a file; the latest wins."""
        t = T["tags"]
        with self.transaction() as conn:
            conn.execute(t.delete().where(t.c.file_id == file_id, t.c.label == label, t.c.source == "user"))
            conn.execute(
                t.insert().values(
                    file_id=file_id, label=label, cat_id=cat_id, score=1.0 if accept else 0.0,
                    set_name=set_name, source="user", model=None, created_at=time.time(),
                )
            )

    def copy_tags(self, conn, src_id: int, dst_id: int) -> None:
        """A moved or duplicated file (the same audio) takes its source's tags and the user's
        decisions on it; labels the destination already carries in the same set stay its own."""
        t = T["tags"]
        cols = ("label", "cat_id", "score", "set_name", "source", "model", "created_at")
        have = {(s, lab, src) for s, lab, src in conn.execute(
            sa.select(t.c.set_name, t.c.label, t.c.source).where(t.c.file_id == dst_id))}
        rows = [dict(zip(cols, r), file_id=dst_id)
                for r in conn.execute(sa.select(*(t.c[k] for k in cols)).where(t.c.file_id == src_id).order_by(t.c.id))]
        rows = [r for r in rows if (r["set_name"], r["label"], r["source"]) not in have]
        if rows:
            conn.execute(t.insert(), rows)

    # ------------------------------------------------------------------ reading tags

    def user_decisions(self, label: str) -> dict[int, bool]:
        """file id -> the user's latest accept (True) or reject (False) of a label or CatID."""
        t = T["tags"]
        low = label.lower()
        q = (
            sa.select(t.c.file_id, t.c.score)
            .where(t.c.source == "user", sa.or_(sa.func.lower(t.c.label) == low, sa.func.lower(t.c.cat_id) == low))
            .order_by(t.c.created_at, t.c.id)
        )
        with self.read_connection() as conn:
            return {int(fid): score > 0 for fid, score in conn.execute(q)}

    def tag_sets(self) -> list[TagSetInfo]:
        t = T["tags"]
        q = (
            sa.select(
                t.c.set_name, t.c.source, sa.func.max(t.c.model), sa.func.count(sa.distinct(t.c.label)),
                sa.func.count(sa.distinct(t.c.file_id)), sa.func.count(), sa.func.max(t.c.created_at),
            )
            .group_by(t.c.set_name, t.c.source)
            .order_by(t.c.set_name, t.c.source)
        )
        with self.read_connection() as conn:
            return [TagSetInfo(*r) for r in conn.execute(q)]

    def label_counts(self, set_name: str | None = None) -> list[tuple[str, str | None, int]]:
        """(label, cat_id, files) of machine tags, most frequent first."""
        t = T["tags"]
        q = sa.select(t.c.label, sa.func.max(t.c.cat_id), sa.func.count(sa.distinct(t.c.file_id))).where(
            t.c.source.in_(MACHINE_SOURCES)
        )
        if set_name:
            q = q.where(t.c.set_name == set_name)
        q = q.group_by(t.c.label).order_by(sa.func.count(sa.distinct(t.c.file_id)).desc(), t.c.label)
        with self.read_connection() as conn:
            return [(r[0], r[1], int(r[2])) for r in conn.execute(q)]

    def tagged_files(
        self, label: str | None = None, *, set_name: str | None = None, limit: int | None = None,
        include_rejected: bool = True, file_ids: Sequence[int] | None = None,
    ) -> list[TaggedFile]:
        """Machine tags (optionally of one label / set / some files) best score first, with the
        user's decision.

        Files a user accepted without a machine tag are listed too (score 1, source user).
        """
        t, f, r = T["tags"], T["files"], T["roots"]
        q = sa.select(
            t.c.file_id, r.c.path, f.c.rel, t.c.label, t.c.cat_id, t.c.score, t.c.set_name, t.c.source
        ).select_from(t.join(f, t.c.file_id == f.c.id).join(r, f.c.root_id == r.c.id))
        if label is not None:
            low = label.lower()
            q = q.where(sa.or_(sa.func.lower(t.c.label) == low, sa.func.lower(t.c.cat_id) == low))
        if set_name:
            q = q.where(sa.or_(t.c.set_name == set_name, t.c.source == "user"))
        if file_ids is not None:
            q = q.where(t.c.file_id.in_([int(i) for i in file_ids]))
        q = q.order_by(t.c.score.desc(), t.c.file_id)
        decisions: dict[tuple[int, str], bool] = {}
        machine: list[TaggedFile] = []
        user_rows: list[TaggedFile] = []
        with self.read_connection() as conn:
            for fid, root, rel, lab, cat, score, sname, source in conn.execute(q):
                row = TaggedFile(fid, f"{root.rstrip('/')}/{rel_from_db(rel)}", lab, cat, float(score), sname, source)
                if source == "user":
                    decisions[(fid, lab.lower())] = score > 0
                    user_rows.append(row)
                else:
                    machine.append(row)
        out: list[TaggedFile] = []
        seen: set[tuple[int, str]] = set()
        for row in machine:
            key = (row.file_id, row.label.lower())
            d = decisions.get(key)
            row.decision = None if d is None else ("accepted" if d else "rejected")
            if d is False and not include_rejected:
                continue
            seen.add(key)
            out.append(row)
        for row in user_rows:
            key = (row.file_id, row.label.lower())
            if key not in seen and row.score > 0:
                row.decision = "accepted"
                out.append(row)
        if limit is not None:
            out = out[:limit]
        return out

    def tags_for(self, file_ids: Iterable[int]) -> dict[int, list[str]]:
        """file id -> its labels, best score first, without those a user rejected."""
        ids = list(file_ids)
        t = T["tags"]
        out: dict[int, dict[str, float]] = {}
        rejected: set[tuple[int, str]] = set()
        with self.read_connection() as conn:
            q = sa.select(t.c.file_id, t.c.label, t.c.score, t.c.source)
            for fid, label, score, source in rows_in(conn, q, t.c.file_id, ids):
                if source == "user" and score <= 0:
                    rejected.add((fid, label))
                else:
                    out.setdefault(fid, {})
                    out[fid][label] = max(score, out[fid].get(label, score))
        return {
            fid: [lab for lab, _ in sorted(d.items(), key=lambda kv: -kv[1]) if (fid, lab) not in rejected]
            for fid, d in out.items()
        }

    # ------------------------------------------------------------------ heads

    def save_head(self, name: str, model_key: str, blob: bytes, info: str | None = None) -> None:
        h = T["heads"]
        with self.transaction() as conn:
            conn.execute(h.delete().where(h.c.name == name))
            conn.execute(h.insert().values(name=name, model_key=model_key, blob=blob, info=info, created_at=time.time()))

    def load_head(self, name: str) -> HeadRecord | None:
        h = T["heads"]
        with self.read_connection() as conn:
            row = conn.execute(
                sa.select(h.c.name, h.c.model_key, h.c.blob, h.c.info, h.c.created_at).where(h.c.name == name)
            ).first()
        return HeadRecord(*row) if row else None

    def heads(self) -> list[HeadRecord]:
        """Saved heads without their blobs (listing)."""
        h = T["heads"]
        with self.read_connection() as conn:
            rows = conn.execute(sa.select(h.c.name, h.c.model_key, h.c.info, h.c.created_at).order_by(h.c.name)).all()
        return [HeadRecord(r[0], r[1], b"", r[2], r[3]) for r in rows]

    # ------------------------------------------------------------------ files for labelling

    def indexed_files(self) -> list[tuple[int, str, str]]:
        """(file id, root path, rel) of every indexed file, by id (labels from names and folders)."""
        f, r = T["files"], T["roots"]
        q = (
            sa.select(f.c.id, r.c.path, f.c.rel)
            .select_from(f.join(r, f.c.root_id == r.c.id))
            .where(f.c.status == "ok")
            .order_by(f.c.id)
        )
        with self.read_connection() as conn:
            return [(int(a), b, rel_from_db(c)) for a, b, c in conn.execute(q)]

    def file_ids_for_paths(self, paths: Sequence[str]) -> dict[str, int]:
        """Absolute path -> file id for those of `paths` that are indexed."""
        out = {}
        for fid, root, rel in self.indexed_files():
            out[f"{root.rstrip('/')}/{rel}"] = fid
        return {p: out[p] for p in paths if p in out}
