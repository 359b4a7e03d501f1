"""Files whose audio did not change: new metadata or a new name without touching chunks or vectors.

Used when a metadata edit (ours through `sfx-index write-meta`, or another tool's) changed a
file's bytes but not its coded audio (files.audio_hash, see indexer.audiohash), and when
`rename-ucs` renamed a file: the metadata, the keyword index and the stat follow at once,
the vectors stay, no model is called.
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa

from .encoding import rel_from_db, rel_to_db
from .schema import tables as T


class RefreshMixin:
    """Metadata-only updates of catalogued files."""

    def audio_hash_of(self, file_id: int) -> str | None:
        """The stored audio hash of an indexed file (None when unknown or the file failed)."""
        f = T["files"]
        with self.read_connection() as conn:
            row = conn.execute(
                sa.select(f.c.audio_hash).where(f.c.id == int(file_id), f.c.status == "ok")
            ).first()
        return row[0] if row else None

    def files_without_audio_hash(self) -> list[tuple[int, str, str]]:
        """(id, absolute path, content hash) of indexed files that have no audio hash yet (a
        catalog made before files.audio_hash existed)."""
        f, r = T["files"], T["roots"]
        q = (
            sa.select(f.c.id, r.c.path, f.c.rel, f.c.content_hash).select_from(f.join(r, f.c.root_id == r.c.id))
            .where(f.c.status == "ok", f.c.audio_hash.is_(None)).order_by(f.c.id)
        )
        with self.read_connection() as conn:
            return [(i, str(Path(root) / rel_from_db(rel)), h) for i, root, rel, h in conn.execute(q)]

    def store_audio_hash(self, file_id: int, audio_hash: str, content_hash: str) -> bool:
        """Record the audio hash of a file whose bytes are still those it was indexed from;
        False (nothing written) when the catalog's content hash is another by now."""
        f = T["files"]
        with self.transaction() as conn:
            done = conn.execute(
                f.update().where(f.c.id == int(file_id), f.c.content_hash == content_hash, f.c.audio_hash.is_(None))
                .values(audio_hash=audio_hash)
            )
        return done.rowcount == 1

    def refresh_metadata(self, file_id: int, *, size: int, mtime_ns: int, content_hash: str,
                         metadata: dict[str, str], audio_hash: str | None = None) -> None:
        """New bytes around the same audio: replace metadata and keywords, keep the chunks."""
        f, m = T["files"], T["file_meta"]
        with self.transaction() as conn:
            rel = conn.execute(sa.select(f.c.rel).where(f.c.id == int(file_id))).scalar_one()
            values = dict(size=size, mtime_ns=mtime_ns, content_hash=content_hash, indexed_at=time.time())
            if audio_hash is not None:
                values["audio_hash"] = audio_hash
            conn.execute(f.update().where(f.c.id == int(file_id)).values(**values))
            conn.execute(m.delete().where(m.c.file_id == int(file_id)))
            self.delete_keywords(conn, [int(file_id)])
            self.write_metadata(conn, int(file_id), rel_from_db(rel), metadata)

    def rename_file(self, file_id: int, new_rel: str, *, size: int, mtime_ns: int,
                    metadata: dict[str, str]) -> bool:
        """The same file under a new name in its root: name, metadata and keywords follow.

        False (nothing changed) when the catalog still holds a file row under the new name
        (a file deleted since the last build): the next build reconciles both."""
        f, m = T["files"], T["file_meta"]
        with self.read_connection() as conn:
            root_id = conn.execute(sa.select(f.c.root_id).where(f.c.id == int(file_id))).scalar_one()
            taken = conn.execute(sa.select(f.c.id).where(f.c.root_id == root_id, f.c.rel == rel_to_db(new_rel))).first()
        if taken is not None:
            return False
        with self.transaction() as conn:
            conn.execute(f.update().where(f.c.id == int(file_id)).values(
                rel=rel_to_db(new_rel), size=size, mtime_ns=mtime_ns))
            conn.execute(m.delete().where(m.c.file_id == int(file_id)))
            self.delete_keywords(conn, [int(file_id)])
            self.write_metadata(conn, int(file_id), new_rel, metadata)
        return True
