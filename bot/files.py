"""Reading feedback files (JSONL, CSV): every good row is used, every bad one is reported."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEXT_KEYS = ("text", "comment", "message", "body", "feedback")


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


def _rating(value: Any) -> float | None:
    if value in (None, ""):
        return None
    return float(value)


def _row(line: int, record: Any) -> Row | BadRow:
    if not isinstance(record, dict):
        return BadRow(line, f"expected a JSON object, got {type(record).__name__}")
    key = next((k for k in TEXT_KEYS if k in record), None)
    if key is None:
        return BadRow(line, f"no text field (one of: {', '.join(TEXT_KEYS)})")
    if not isinstance(record[key], str):
        return BadRow(line, f"{key} must be a string, got {type(record[key]).__name__}")
    try:
        rating = _rating(record.get("rating"))
    except (TypeError, ValueError):
        return BadRow(line, f"rating {record.get('rating')!r} is not a number")
    ident = record.get("id")
    return Row(
        line=line,
        text=record[key],
        id=str(ident) if ident not in (None, "") else None,
        form_type=record.get("form_type") or record.get("type") or None,
        page=record.get("page") or record.get("url") or None,
        rating=rating,
        extra={k: v for k, v in record.items() if k not in {key, "id", "rating"}},
    )


def read_rows(path: Path) -> Iterator[Row | BadRow]:
    """Rows of a .jsonl/.ndjson/.json-lines or .csv file, in order, with 1-based line numbers."""
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(content, newline=""))
        for record in reader:
            yield _row(reader.line_num, record)
        return
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield BadRow(number, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        yield _row(number, record)
