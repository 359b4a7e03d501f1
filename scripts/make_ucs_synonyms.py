"""Write data/taxonomies/ucs_synonyms.csv from the UCS 8.2.1 list (CC0): CatID -> synonyms.

Keyword search indexes a file whose name or UCS field carries a CatID with that CatID's
synonyms (indexer.catalog.words), so "kerboom" or "chuff" finds AIRBrst files. Only the
factual columns are taken: the CatID and its synonyms, lower-cased, de-duplicated, sorted,
without the words the CatID's own category and subcategory already give.

    python scripts/make_ucs_synonyms.py ../shared/reference/ucs/ucs-8.2.1-en.json
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "taxonomies" / "ucs_synonyms.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ucs_json", type=Path, help="ucs-8.2.1-en.json (the UCS list, CC0)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows = json.loads(args.ucs_json.read_text(encoding="utf-8"))
    out = []
    for r in rows:
        own = {r["Category"].lower(), r["SubCategory"].lower()}
        syn = sorted({s.strip().lower() for s in r.get("Synonyms") or [] if s.strip()} - own)
        out.append((r["CatID"], ";".join(s.replace(";", " ") for s in syn)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["cat_id", "synonyms"])
        w.writerows(out)
    print(f"wrote {len(out)} CatIDs to {args.out}")


if __name__ == "__main__":
    main()
