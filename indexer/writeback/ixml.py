"""Set children of the iXML `<USER>` element, leaving every other byte of the XML as it was.

Recorders and editors write iXML with their own declaration, indentation, padding and vendor
elements; a parse-and-serialise round trip would rewrite all of it. So the edit is done on
the text: the value of an existing `<USER>` child is replaced in place, a missing child is
added before `</USER>`, a missing `<USER>` before `</BWFXML>`. The result is parsed again and
refused if it does not read back as asked.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from .errors import CannotWrite

NEW_IXML = '<?xml version="1.0" encoding="UTF-8"?>\n<BWFXML>\n  <IXML_VERSION>2.10</IXML_VERSION>\n</BWFXML>\n'
_DECL_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_USER = re.compile(r"<USER(\s[^>]*)?>(.*?)</USER\s*>", re.DOTALL)
_USER_EMPTY = re.compile(r"<USER(\s[^>]*)?/>")
_ROOT_END = re.compile(r"</BWFXML\s*>")
_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def _codec(payload: bytes) -> str:
    m = _DECL_ENCODING.match(payload)
    return m.group(1).decode("ascii") if m else "utf-8"


def read_user(payload: bytes) -> dict[str, str]:
    """Children of `<USER>` as {NAME: text}; {} when there are none or the XML is unreadable."""
    root = _parse(payload)
    user = root.find("USER") if root is not None else None
    if user is None:
        return {}
    return {child.tag: (child.text or "").strip() for child in user if isinstance(child.tag, str)}


def _parse(payload: bytes):
    data = payload.rstrip(b"\x00 \t\r\n")
    end = data.rfind(b"</BWFXML>")
    if end >= 0:
        data = data[: end + len(b"</BWFXML>")]
    if re.search(rb"<!(DOCTYPE|ENTITY)", data, re.IGNORECASE):
        return None  # never expand entities from a file
    try:
        return ET.fromstring(data)
    except (ET.ParseError, ValueError, UnicodeError):
        return None


def _indent_before(text: str, pos: int) -> str:
    line_start = text.rfind("\n", 0, pos) + 1
    lead = text[line_start:pos]
    return lead if lead.strip() == "" else ""


def set_user(payload: bytes | None, values: dict[str, str]) -> bytes:
    """The iXML payload with `<USER>/<NAME>` set to each value (a new iXML when payload is None)."""
    for name in values:
        if not _NAME.fullmatch(name):
            raise ValueError(f"bad iXML element name {name!r}")
    if payload is None:
        payload = NEW_IXML.encode("utf-8")
    codec = _codec(payload)
    try:
        text = payload.decode(codec)
    except (LookupError, UnicodeDecodeError) as e:
        raise CannotWrite(f"iXML is not readable as {codec}: {e}") from None
    if _parse(payload) is None:
        raise CannotWrite("iXML chunk is not well-formed XML; left as it is")

    m = _USER.search(text)
    if m is None:
        empty = _USER_EMPTY.search(text)
        if empty is not None:
            text = text[: empty.start()] + f"<USER{empty.group(1) or ''}></USER>" + text[empty.end():]
        else:
            end = _ROOT_END.search(text)
            if end is None:
                raise CannotWrite("iXML has no </BWFXML> root to add <USER> to")
            indent = _indent_before(text, end.start())
            text = text[: end.start()] + f"{indent}  <USER>\n{indent}  </USER>\n{indent}" + text[end.start():].lstrip(" \t")
        m = _USER.search(text)
    body = m.group(2)
    for name, value in values.items():
        enc = escape(value)
        child = re.compile(rf"<{name}(\s[^>]*)?>(.*?)</{name}\s*>|<{name}(\s[^>]*)?/>", re.DOTALL)
        hit = child.search(body)
        if hit is not None:
            attrs = hit.group(1) if hit.group(1) is not None else (hit.group(3) or "")
            body = body[: hit.start()] + f"<{name}{attrs}>{enc}</{name}>" + body[hit.end():]
        else:
            close_indent = _indent_before(body, len(body)) if "\n" in body else ""
            child_indent = close_indent + "  " if "\n" in body else ""
            stripped = body.rstrip(" \t")
            sep = "" if stripped.endswith("\n") or not child_indent else "\n"
            body = f"{stripped}{sep}{child_indent}<{name}>{enc}</{name}>\n{close_indent}" if child_indent else f"{body}<{name}>{enc}</{name}>"
    text = text[: m.start(2)] + body + text[m.end(2):]
    out = text.encode(codec, errors="xmlcharrefreplace")
    got = read_user(out)
    if any(got.get(k, "") != v.strip() for k, v in values.items()):
        raise CannotWrite("iXML <USER> did not read back as written; left as it is")
    return out
