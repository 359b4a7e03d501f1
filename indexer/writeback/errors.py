"""Why a file is left untouched: one exception carrying a one-line reason for the report."""

from __future__ import annotations


class CannotWrite(Exception):
    """This file cannot be written safely; str() is the reason shown to the user."""
