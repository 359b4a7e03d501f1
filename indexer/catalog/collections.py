"""Collections for the catalog: named, ordered lists of files or moments (search/collection.py).

A mixin of `indexer.catalog.Catalog`. An item stores the content hash of its file and the
path where it was last seen, never a file id: a rebuild gives a moved or renamed file a new
row (pipeline: same bytes, stored chunks reused), and the hash finds it there.
"""

from __future__ import annotations

import time
from typing import Iterable, Sequence

import sqlalchemy as sa

from .batching import rows_in
from .files import file_select
from .rows import CollectionInfo, CollectionItem, FileRow, file_row
from .schema import tables as T


class CollectionsMixin:
    """Collections of a Catalog."""

    def collection_id(self, name: str, *, create: bool = False) -> int | None:
        c = T["collections"]
        with self.transaction() as conn:
            row = conn.execute(sa.select(c.c.id).where(c.c.name == name)).first()
            if row:
                return int(row[0])
            if not create:
                return None
            return int(conn.execute(c.insert().values(name=name, created_at=time.time())).inserted_primary_key[0])

    def collections(self) -> list[CollectionInfo]:
        c, i = T["collections"], T["collection_items"]
        q = (
            sa.select(c.c.id, c.c.name, sa.func.count(i.c.id), c.c.created_at)
            .select_from(c.outerjoin(i, i.c.collection_id == c.c.id))
            .group_by(c.c.id, c.c.name, c.c.created_at)
            .order_by(c.c.name)
        )
        with self.read_connection() as conn:
            return [CollectionInfo(int(a), b, int(n), t) for a, b, n, t in conn.execute(q)]

    def collection_items(self, collection_id: int) -> list[CollectionItem]:
        i = T["collection_items"]
        q = (
            sa.select(i.c.id, i.c.collection_id, i.c.position, i.c.content_hash, i.c.path, i.c.start_s, i.c.end_s)
            .where(i.c.collection_id == collection_id)
            .order_by(i.c.position, i.c.id)
        )
        with self.read_connection() as conn:
            return [CollectionItem(*r) for r in conn.execute(q)]

    def add_collection_items(
        self, collection_id: int, items: Iterable[tuple[str | None, str, float | None, float | None]]
    ) -> int:
        """Append (content_hash, path, start_s, end_s) items after the last; returns how many."""
        i = T["collection_items"]
        now = time.time()
        with self.transaction() as conn:
            last = conn.execute(sa.select(sa.func.max(i.c.position)).where(i.c.collection_id == collection_id)).scalar()
            pos = 0 if last is None else int(last) + 1
            rows = [
                {"collection_id": collection_id, "position": pos + k, "content_hash": h, "path": p,
                 "start_s": s, "end_s": e, "added_at": now}
                for k, (h, p, s, e) in enumerate(items)
            ]
            if rows:
                conn.execute(i.insert(), rows)
        return len(rows)

    def set_collection_order(self, collection_id: int, item_ids: Sequence[int]) -> None:
        """Positions 0..n-1 in the order of `item_ids` (all of the collection's items)."""
        i = T["collection_items"]
        with self.transaction() as conn:
            for pos, item_id in enumerate(item_ids):
                conn.execute(i.update().where(i.c.id == item_id, i.c.collection_id == collection_id)
                             .values(position=pos))

    def update_collection_item(self, item_id: int, *, content_hash: str | None, path: str) -> None:
        """Remember where an item's file is now (and its bytes' hash, when they changed)."""
        i = T["collection_items"]
        with self.transaction() as conn:
            conn.execute(i.update().where(i.c.id == item_id).values(content_hash=content_hash, path=path))

    def remove_collection_items(self, collection_id: int, item_ids: Sequence[int]) -> int:
        i = T["collection_items"]
        with self.transaction() as conn:
            return conn.execute(
                i.delete().where(i.c.collection_id == collection_id, i.c.id.in_(list(item_ids)))
            ).rowcount

    def rename_collection(self, collection_id: int, name: str) -> None:
        c = T["collections"]
        with self.transaction() as conn:
            conn.execute(c.update().where(c.c.id == collection_id).values(name=name))

    def delete_collection(self, collection_id: int) -> None:
        c, i = T["collections"], T["collection_items"]
        with self.transaction() as conn:
            conn.execute(i.delete().where(i.c.collection_id == collection_id))
            conn.execute(c.delete().where(c.c.id == collection_id))

    def indexed_files_with_hashes(self, hashes: Iterable[str]) -> dict[str, FileRow]:
        """content hash -> an indexed file with those bytes (the lowest id when several)."""
        f = T["files"]
        out: dict[str, FileRow] = {}
        with self.read_connection() as conn:
            rows = rows_in(conn, file_select().where(f.c.status == "ok"), f.c.content_hash, list(set(hashes)))
            for row in sorted(rows, key=lambda r: r.id):
                out.setdefault(row.content_hash, file_row(row))
        return out
