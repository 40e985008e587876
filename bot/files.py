"""Reading feedback files (JSONL, CSV): every good row is used, every bad one is reported.

Text is what people pasted, so it is taken as it is: JSON lines end at `\\n` only (U+2028,
U+0085 and the other Unicode line breaks are valid inside a JSON string, and common in text
copied from web pages), and a NUL or a stray undecodable byte makes one row suspect, not the
file. A file is refused as a whole only when its bytes are not text.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.governance import jsonl_lines, read_text_file

TEXT_KEYS = ("text", "comment", "message", "body", "feedback")
# Optional string fields and the keys they are read from, first present wins.
STRING_FIELDS = {"form_type": ("form_type", "type"), "page": ("page", "url")}
_UNDECODED_RE = re.compile(r"[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


@dataclass
class Row:
    line: int
    text: str
    id: str | None = None
    form_type: str | None = None
    page: str | None = None
    rating: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class BadRow:
    line: int
    reason: str


_TYPE_NAMES = {
    dict: "an object",
    list: "a list",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    type(None): "null",
}


def _type_name(value: Any) -> str:
    """A JSON value's type as a reason names it ("got a number")."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    """A value quoted in a reason: escaped (repr) and short, so a report stays one line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _rating(value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(value)
    return float(value)


def _undecodable(values: Any) -> str | None:
    """The reason a row holds bytes that were not UTF-8, if it does."""
    for value in values:
        if isinstance(value, str) and (hit := _UNDECODED_RE.search(value)):
            byte = ord(hit.group()) - 0xDC00
            return f"not UTF-8 text (byte 0x{byte:02X} at character {hit.start() + 1})"
    return None


def _row(line: int, record: Any) -> Row | BadRow:
    if not isinstance(record, dict):
        return BadRow(line, f"expected a JSON object, got {_type_name(record)}")
    key = next((k for k in TEXT_KEYS if k in record), None)
    if key is None:
        return BadRow(line, f"no text field (one of: {', '.join(TEXT_KEYS)})")
    if not isinstance(record[key], str):
        return BadRow(line, f"{key} must be a string, got {_type_name(record[key])}")
    strings: dict[str, str | None] = {}
    for name, keys in STRING_FIELDS.items():
        found = next((k for k in keys if record.get(k) not in (None, "")), None)
        value = record[found] if found else None
        if value is not None and not isinstance(value, str):
            return BadRow(line, f"{found} must be a string, got {_type_name(value)}")
        strings[name] = value
    ident = record.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, str | int)):
        return BadRow(line, f"id must be a string or an integer, got {_type_name(ident)}")
    try:
        rating = _rating(record.get("rating"))
    except (TypeError, ValueError):
        return BadRow(line, f"rating {_shown(record.get('rating'))} is not a number")
    return Row(
        line=line,
        text=record[key],
        id=str(ident) if ident not in (None, "") else None,
        form_type=strings["form_type"],
        page=strings["page"],
        rating=rating,
        extra={k: v for k, v in record.items() if k not in {key, "id", "rating"}},
    )


def _csv_rows(content: str) -> Iterator[Row | BadRow]:
    reader = csv.DictReader(io.StringIO(content, newline=""))
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader goes on with the next record
            yield BadRow(reader.line_num + 1, f"invalid CSV: {exc}")
            continue
        values = [v for v in record.values() if isinstance(v, str)]
        values += [k for k in record if isinstance(k, str)]
        reason = _undecodable(values)
        yield BadRow(reader.line_num, reason) if reason else _row(reader.line_num, record)


def _jsonl_rows(content: str) -> Iterator[Row | BadRow]:
    for number, line in jsonl_lines(content):
        reason = _undecodable([line])
        if reason:
            yield BadRow(number, reason)
            continue
        try:
            record = json.loads(line, strict=False)  # raw controls in strings: text
        except json.JSONDecodeError as exc:
            yield BadRow(number, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            yield BadRow(number, "invalid JSON: nested too deeply")
            continue
        except ValueError as exc:  # e.g. an integer past Python's digit limit
            yield BadRow(number, f"invalid JSON: {str(exc).partition(';')[0]}")
            continue
        yield _row(number, record)


def read_rows(path: Path) -> Iterator[Row | BadRow]:
    """Rows of a .jsonl/.ndjson/.json-lines or .csv file, in order, with 1-based line numbers
    (for a CSV record over several lines, the line it ends on)."""
    content = read_text_file(path)
    if path.suffix.lower() == ".csv":
        yield from _csv_rows(content)
    else:
        yield from _jsonl_rows(content)
