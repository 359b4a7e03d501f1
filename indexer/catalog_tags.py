"""Tag storage for the catalog (zero-shot, trained-head and user tags, and saved heads).

A mixin of `indexer.catalog.Catalog`: the SQL of tags lives here so that catalog.py stays a
readable size; it uses the same tables (indexer.migrations) and transaction helpers.
"""

from __future__ import annotations


class TagsMixin:
    pass
