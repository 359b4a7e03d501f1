"""The mapping table in docs/writeback.md is the one in indexer.writeback.fields.MAPPING."""

from __future__ import annotations

from pathlib import Path

from indexer.writeback.fields import FIELDS, MAPPING, expand_fields

DOC = Path(__file__).resolve().parent.parent / "docs" / "writeback.md"


def test_docs_table_equals_code_mapping():
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0] in MAPPING:
            rows[cells[0]] = tuple(cells[1:])
    assert set(rows) == set(MAPPING)
    for name, p in MAPPING.items():
        assert rows[name] == (p.bext, p.ixml, p.info, p.vorbis, p.id3), name


def test_field_groups():
    assert expand_fields("ucs,description") == ("cat_id", "category", "subcategory", "category_full", "description")
    assert expand_fields(None) == FIELDS
