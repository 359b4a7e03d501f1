"""Write what the index learns back into the user's files: metadata, UCS names, and undo.

A standalone library (no catalog needed):

- `plan_file(path, {"description": ..., "cat_id": ...})` -> FilePlan (preview rows; writes nothing)
- `write_files(plans, Journal(folder))` -> (change id, result rows): atomic, journaled writes
- `Journal(folder).undo(Journal(folder).get(change_id))` restores files byte for byte

Where each field goes per format is the table in `fields.MAPPING` (and docs/writeback.md).
"""

from .errors import CannotWrite
from .fields import FIELDS, GROUPS, MAPPING, expand_fields, normalise
from .journal import Change, Journal
from .writer import FieldChange, FilePlan, plan_file, write_files

__all__ = ["CannotWrite", "Change", "FIELDS", "FieldChange", "FilePlan", "GROUPS", "Journal", "MAPPING",
           "expand_fields", "normalise", "plan_file", "write_files"]
