"""Bulk tagging over an index: label sets and prompt ensembling, zero-shot scoring of stored
vectors, trained heads, evaluation and review. `search.tag_cli` is its command line.

    from search import Library
    from search.tagging import label_set, tag_library
    with Library.open() as lib:
        report = tag_library(lib, label_set("rain,wind,thunder"), set_name="weather")
"""

from .evaluate import Vectors, esc50_items, evaluate, folder_items, format_report
from .heads import (
    file_vectors, labels_from_csv, labels_from_folders, labels_from_ucs_names, load_head, train_head,
)
from .labels import Label, label_set, label_vectors, load_labels, load_templates, ucs_labels
from .review import decide, review_list
from .scoring import score_block, score_blocks, select
from .tagger import TagReport, tag_library, tag_with_head, zero_shot_rows

__all__ = [
    "Label", "TagReport", "Vectors", "decide", "esc50_items", "evaluate", "file_vectors", "folder_items",
    "format_report", "label_set", "label_vectors", "labels_from_csv", "labels_from_folders",
    "labels_from_ucs_names", "load_head", "load_labels", "load_templates", "review_list", "score_block",
    "score_blocks", "select", "tag_library", "tag_with_head", "train_head", "ucs_labels", "zero_shot_rows",
]
