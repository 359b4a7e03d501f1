"""The fields we write into files and where each one goes, per format: the one mapping table.

docs/writeback.md shows the same table; `tests/test_writeback_fields.py` checks they agree.
The iXML names follow the UCS / Soundminer convention (iXML `<USER>` children CATID,
CATEGORY, SUBCATEGORY, CATEGORYFULL, FXNAME, DESCRIPTION, KEYWORDS, NOTES).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import UserError
from ..metadata import ucs_table


@dataclass(frozen=True)
class Places:
    """Where one field goes in each family of formats ("" = not written there)."""

    bext: str = ""  # BWF bext field (only Description has room for free text)
    ixml: str = ""  # child of iXML <USER>
    info: str = ""  # RIFF LIST/INFO FourCC
    vorbis: str = ""  # Vorbis comment name (FLAC, OGG Vorbis, Opus)
    id3: str = ""  # ID3v2 frame: "TIT2", "COMM", or "TXXX:<desc>" (MP3, AIFF)


MAPPING: dict[str, Places] = {
    "cat_id": Places(ixml="CATID", vorbis="CATID", id3="TXXX:CATID"),
    "category": Places(ixml="CATEGORY", info="IGNR", vorbis="CATEGORY", id3="TXXX:CATEGORY"),
    "subcategory": Places(ixml="SUBCATEGORY", vorbis="SUBCATEGORY", id3="TXXX:SUBCATEGORY"),
    "category_full": Places(ixml="CATEGORYFULL", vorbis="CATEGORYFULL", id3="TXXX:CATEGORYFULL"),
    "fx_name": Places(ixml="FXNAME", info="INAM", vorbis="TITLE", id3="TIT2"),
    "description": Places(bext="Description", ixml="DESCRIPTION", info="ICMT", vorbis="DESCRIPTION", id3="COMM"),
    "keywords": Places(ixml="KEYWORDS", info="IKEY", vorbis="KEYWORDS", id3="TXXX:KEYWORDS"),
    "notes": Places(ixml="NOTES", vorbis="COMMENT", id3="TXXX:NOTES"),
}
FIELDS = tuple(MAPPING)

# --fields takes these group names (and plain field names).
GROUPS: dict[str, tuple[str, ...]] = {
    "ucs": ("cat_id", "category", "subcategory", "category_full"),
    "fxname": ("fx_name",),
    "description": ("description",),
    "keywords": ("keywords",),
    "notes": ("notes",),
}

BEXT_DESCRIPTION_BYTES = 256
MAX_VALUE_CHARS = 8192  # one value; longer text is refused rather than cut silently


def expand_fields(spec: str | None) -> tuple[str, ...]:
    """"ucs,description" -> the field names it stands for (all fields when spec is empty)."""
    if not spec:
        return FIELDS
    out: list[str] = []
    for part in (p.strip().lower() for p in spec.split(",")):
        if not part:
            continue
        names = GROUPS.get(part) or ((part,) if part in MAPPING else None)
        if names is None:
            raise UserError(
                f"unknown field {part!r}: use {', '.join(GROUPS)} or one of {', '.join(FIELDS)}"
            )
        out.extend(n for n in names if n not in out)
    return tuple(out)


def category_full(category: str, subcategory: str) -> str:
    """UCS CategoryFull as the UCS spreadsheet and Soundminer spell it: "DOORS-WOOD"."""
    return f"{category}-{subcategory}" if category and subcategory else category


def normalise(values: dict[str, str]) -> dict[str, str]:
    """Checked values: known fields, clean text, and a CatID completed into its UCS fields.

    A CatID must be one of data/taxonomies/ucs.csv; its category, subcategory and CategoryFull
    follow from the list unless given explicitly. Raises UserError on anything else.
    """
    out: dict[str, str] = {}
    for key, value in values.items():
        field = key.strip().lower().replace("-", "_")
        field = {"catid": "cat_id", "fxname": "fx_name", "categoryfull": "category_full"}.get(field, field)
        if field not in MAPPING:
            raise UserError(f"unknown field {key!r}: fields are {', '.join(FIELDS)}")
        text = "" if value is None else str(value)
        text = "".join(ch for ch in text if ch in "\n\t" or ord(ch) >= 32).strip()
        if len(text) > MAX_VALUE_CHARS:
            raise UserError(f"{field}: value longer than {MAX_VALUE_CHARS} characters")
        out[field] = text
    cat_id = out.get("cat_id")
    if cat_id:
        table = ucs_table()
        match = cat_id if cat_id in table else next((c for c in table if c.lower() == cat_id.lower()), None)
        if match is None:
            raise UserError(f"{cat_id!r} is not a UCS CatID (see data/taxonomies/ucs.csv)")
        out["cat_id"] = match
        category, subcategory = table[match]
        out.setdefault("category", category)
        out.setdefault("subcategory", subcategory)
        out.setdefault("category_full", category_full(out["category"], out["subcategory"]))
    return out


def fit_bext_description(text: str) -> bytes:
    """The 256-byte bext Description: ASCII where possible, else UTF-8 cut on a character."""
    raw = text.encode("utf-8")
    if len(raw) > BEXT_DESCRIPTION_BYTES:
        raw = raw[:BEXT_DESCRIPTION_BYTES].decode("utf-8", errors="ignore").encode("utf-8")
    return raw.ljust(BEXT_DESCRIPTION_BYTES, b"\x00")
