"""Scores `core.governance.redact` against the labelled corpus (`corpus.jsonl`).

An expected span counts as found when every letter and digit in it is inside a
placeholder of the same kind (`found_any`: of any kind, i.e. nothing leaked). A
placeholder is correct when it overlaps an expected span of its kind; any placeholder in
a clean row is a false positive. Used by `triage-bot bench redaction`.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from core.governance import PII_KINDS, PiiSpan, redact

DEFAULT_CORPUS = Path(__file__).with_name("corpus.jsonl")


class CorpusError(ValueError):
    """The corpus file is missing or a row is malformed; the message names the line."""


def load(path: Path) -> list[dict[str, Any]]:
    """The corpus rows; each checked for the fields and offsets scoring relies on."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc.strerror}") from None
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            text, spans = row.get("text"), row.get("pii")
            if not isinstance(text, str) or not isinstance(spans, list):
                raise ValueError('needs "text" (a string) and "pii" (a list)')
            for span in spans:
                if not isinstance(span, dict) or span.get("kind") not in PII_KINDS:
                    raise ValueError(f"a span's kind must be one of {', '.join(PII_KINDS)}")
                start, end = span.get("start"), span.get("end")
                if not (isinstance(start, int) and isinstance(end, int)):
                    raise ValueError('a span needs integer "start" and "end"')
                if not 0 <= start < end <= len(text):
                    raise ValueError(f"span {start}-{end} is outside the text")
        except ValueError as exc:  # json.JSONDecodeError is one
            raise CorpusError(f"{path.name} line {number}: {exc}") from None
        rows.append(row)
    if not rows:
        raise CorpusError(f"{path} has no rows")
    return rows


def _covered(text: str, start: int, end: int, spans: list[PiiSpan], kind: str | None) -> bool:
    inside = [False] * (end - start)
    for span in spans:
        if kind is not None and span.kind != kind:
            continue
        for i in range(max(span.start, start), min(span.end, end)):
            inside[i - start] = True
    return all(inside[i] for i in range(end - start) if text[start + i].isalnum())


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def score(path: Path = DEFAULT_CORPUS) -> dict[str, Any]:
    """Recall and precision per kind, recall per case, false positives on clean rows."""
    rows = load(path)
    expected: Counter[str] = Counter()
    found: Counter[str] = Counter()
    found_any: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    case_total: Counter[str] = Counter()
    case_found: Counter[str] = Counter()
    clean_rows = clean_touched = clean_fp = 0
    fp_by_negative: Counter[str] = Counter()
    clean_by_negative: Counter[str] = Counter()
    misses: dict[str, list[str]] = defaultdict(list)
    false_positives: list[str] = []

    for row in rows:
        text, labels = row["text"], row["pii"]
        spans = list(redact(text).spans)
        for label in labels:
            kind, case = label["kind"], f"{label['kind']}/{label['case']}"
            expected[kind] += 1
            case_total[case] += 1
            if _covered(text, label["start"], label["end"], spans, kind):
                found[kind] += 1
                case_found[case] += 1
            elif len(misses[case]) < 3:
                misses[case].append(f"{row['id']}: {text[label['start'] : label['end']]!r}")
            if _covered(text, label["start"], label["end"], spans, None):
                found_any[kind] += 1
        for span in spans:
            predicted[span.kind] += 1
            if any(
                label["kind"] == span.kind
                and span.start < label["end"]
                and label["start"] < span.end
                for label in labels
            ):
                correct[span.kind] += 1
        if not labels:
            negative = row.get("negative", "other")
            clean_rows += 1
            clean_by_negative[negative] += 1
            clean_fp += len(spans)
            fp_by_negative[negative] += len(spans)
            if spans:
                clean_touched += 1
                if len(false_positives) < 10:
                    shown = ", ".join(f"{s.kind} {text[s.start : s.end]!r}" for s in spans)
                    false_positives.append(f"{row['id']}: {shown}")

    kinds = {
        kind: {
            "expected": expected[kind],
            "recall": _ratio(found[kind], expected[kind]),
            "redacted_as_any_kind": _ratio(found_any[kind], expected[kind]),
            "predicted": predicted[kind],
            "precision": _ratio(correct[kind], predicted[kind]),
        }
        for kind in PII_KINDS
    }
    total_expected = sum(expected.values())
    return {
        "corpus": path.name,
        "rows": len(rows),
        "pii_rows": len(rows) - clean_rows,
        "clean_rows": clean_rows,
        "spans": total_expected,
        "recall": _ratio(sum(found.values()), total_expected),
        "redacted_as_any_kind": _ratio(sum(found_any.values()), total_expected),
        "precision": _ratio(sum(correct.values()), sum(predicted.values())),
        "kinds": kinds,
        "cases": {
            case: {"expected": case_total[case], "recall": _ratio(case_found[case], n)}
            for case, n in sorted(case_total.items())
        },
        "clean": {
            "false_positives": clean_fp,
            "false_positives_per_1000": round(1000 * clean_fp / clean_rows, 1)
            if clean_rows
            else None,
            "rows_changed": clean_touched,
            "by_negative": {
                negative: {"rows": n, "false_positives": fp_by_negative[negative]}
                for negative, n in sorted(clean_by_negative.items())
            },
        },
        "misses": dict(sorted(misses.items())),
        "false_positive_examples": false_positives,
    }
