"""Migrations are append-only and complete: a catalog made at any schema version and upgraded
has exactly the tables, columns and indexes of a new one, and those are the tables schema.py
declares (on SQLite, and on PostgreSQL in the postgres-marked runs)."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from indexer.catalog import Catalog, FileInfo, ModelRecord, migrations, schema

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture
def new_url(request, tmp_path):
    """A function giving the URL of a new, empty database on the backend under test."""
    backend = request.param
    count = iter(range(1000))
    if backend == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'cat{next(count)}.db'}"
    server = request.getfixturevalue("_pg_server")
    return server.new_database


def _keyword_index_table(name: str) -> bool:
    # SQLite's FTS5 table and its shadow tables are made by DDL, not declared in schema.py.
    return name.startswith("files_fts")


def shape(url: str) -> dict:
    """Tables -> columns (type, nullable, default), primary key, foreign keys, uniques, indexes."""
    engine = sa.create_engine(url)
    try:
        insp = sa.inspect(engine)
        out = {}
        for t in sorted(insp.get_table_names()):
            out[t] = {
                "columns": {c["name"]: (str(c["type"]), c["nullable"], str(c.get("default")))
                            for c in insp.get_columns(t)},
                "pk": sorted(insp.get_pk_constraint(t)["constrained_columns"]),
                "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                              for f in insp.get_foreign_keys(t)),
                "unique": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(t)),
                "indexes": sorted((i["name"], tuple(str(c) for c in i["column_names"]), bool(i["unique"]),
                                   str(i.get("expressions"))) for i in insp.get_indexes(t)),
            }
        return out
    finally:
        engine.dispose()


def test_migrations_are_numbered_from_one_without_gaps():
    assert [m.version for m in migrations.MIGRATIONS] == list(range(1, migrations.SCHEMA_VERSION + 1))
    assert len({m.name for m in migrations.MIGRATIONS}) == len(migrations.MIGRATIONS)


@pytest.mark.parametrize("new_url", BACKENDS, indirect=True)
@pytest.mark.parametrize("version", range(1, migrations.SCHEMA_VERSION + 1))
def test_a_catalog_from_every_version_upgrades_to_the_shape_of_a_new_one(new_url, version):
    old_url, fresh_url = new_url(), new_url()
    engine = sa.create_engine(old_url)
    with engine.begin() as conn:
        migrations.upgrade(conn, engine.dialect.name, 0, version)
        # Rows as that version stored them survive the upgrade.
        roots = sa.table("roots", sa.column("id"), sa.column("path"), sa.column("added_at"))
        conn.execute(roots.insert().values(id=1, path="/srv/old", added_at=1.0))
        got = conn.execute(sa.text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()
    engine.dispose()
    assert got == str(version)

    cat = Catalog.open(old_url)
    assert cat.get_meta("schema_version") == str(migrations.SCHEMA_VERSION)
    assert [r.path for r in cat.roots()] == ["/srv/old"]
    cat.close()
    Catalog.open(fresh_url).close()
    assert shape(old_url) == shape(fresh_url)


@pytest.mark.parametrize("new_url", BACKENDS, indirect=True)
def test_the_migrations_build_what_schema_py_declares(new_url):
    migrated_url, declared_url = new_url(), new_url()
    Catalog.open(migrated_url).close()
    engine = sa.create_engine(declared_url)
    schema.metadata.create_all(engine)
    if engine.dialect.name != "sqlite":
        schema.file_text.create(engine)
    engine.dispose()
    migrated, declared = shape(migrated_url), shape(declared_url)
    migrated.pop("file_text", None) and declared.pop("file_text")  # its GIN index is DDL only
    assert {t: s for t, s in migrated.items() if not _keyword_index_table(t)} == declared


@pytest.mark.parametrize("new_url", BACKENDS, indirect=True)
def test_an_added_column_migration_applies_once_to_new_and_old_catalogs(new_url, monkeypatch):
    """What the next schema change does: a step after the last that adds a column. A new
    catalog runs every step (the frozen first one does not already hold the column) and an
    old one runs only the new step; both end with the column once, and keep working."""
    old_url, fresh_url = new_url(), new_url()
    Catalog.open(old_url).close()  # made before the step existed
    nxt = migrations.SCHEMA_VERSION + 1

    def add_rating(conn, dialect):
        migrations.add_column(conn, "files", sa.Column("rating", sa.Integer, server_default="0"))
        migrations.create_index(conn, "ix_files_rating", "files", "rating")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, migrations.Migration(nxt, "rating", add_rating)])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", nxt)
    for url in (old_url, fresh_url):
        cat = Catalog.open(url)
        assert cat.get_meta("schema_version") == str(nxt)
        cat.ensure_model(ModelRecord("m", "abc", {"x": 1}, 4))
        root = cat.add_root("/srv/lib")
        fid, _new, _old = cat.write_file(
            root.id, "a.wav", size=1, mtime_ns=1, content_hash="h", info=FileInfo(1.0, 48000, 1, "PCM_16", "WAV"),
            chunks=[(0, 0.0, 1.0)], vectors=np.eye(4, dtype=np.float32)[:1], metadata={},
        )
        assert cat.files_by_ids([fid])[fid].rel == "a.wav"
        cat.close()
    old, fresh = shape(old_url), shape(fresh_url)
    assert list(fresh["files"]["columns"]).count("rating") == 1
    assert old == fresh


def test_a_catalog_newer_than_the_code_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'cat.db'}"
    Catalog.open(url).set_meta("schema_version", str(migrations.SCHEMA_VERSION + 1))
    from indexer.catalog import CatalogError

    with pytest.raises(CatalogError, match="newer than this sfx-index understands"):
        Catalog.open(url)
