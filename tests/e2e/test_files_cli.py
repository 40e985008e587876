"""Files of real text through the command line (`import`, `triage --file`, `eval`,
`simulate`): Unicode line breaks inside strings, a NUL in a pasted log, and rows of the wrong
shape. Every good row is used and every bad one is one stderr line naming its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from core.store.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [
    json.loads(line)
    for line in (REPO / "examples" / "feedback.jsonl").read_text().split("\n")
    if line.strip()
]

# Line by line: what a row holds, and whether it is good.
ROWS = [
    ('{"id": "u1", "text": "The pricing page\u2028shows the wrong currency"}', True),
    ('{"id": "u2", "text": "Export fails\u0085with a timeout\u2029every single time"}', True),
    ('{"id": "nul", "text": "The app crashes on start, log:\\u0000 segfault at 0x0"}', True),
    ('{"id": "raw", "text": "Upload hangs; terminal said \x00\x1b[31mERR\x1b[0m"}', True),
    ('{"id": "p", "text": "Search is slow", "page": {"href": "/search"}}', False),
    ('{"id": "n", "text": 42}', False),
    ("{broken", False),
    ('{"id": "g", "comment": "Docs for caching are missing", "page": "/docs/cache"}', True),
    ('{"id": "t", "text": "Dark mode please", "type": 7}', False),
]
BAD_LINES = {
    5: "page must be a string",
    6: "text must be a string",
    7: "invalid JSON",
    9: "type must be a string",
}


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRIAGE_STORE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("TRIAGE_REVIEWERS", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def write_rows(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8", newline="")
    return path


def skipped_lines(path: Path, stderr: str) -> dict[int, str]:
    """`FILE:LINE: skipped: REASON` lines by line number; nothing else mentions a line."""
    found = {}
    for line in stderr.splitlines():
        if line.startswith(f"{path}:") and ": skipped: " in line:
            number, _, reason = line.removeprefix(f"{path}:").partition(": skipped: ")
            found[int(number)] = reason
    return found


def assert_bad_rows_named(path: Path, stderr: str, expected: dict[int, str]) -> None:
    found = skipped_lines(path, stderr)
    assert sorted(found) == sorted(expected), stderr
    for number, reason in expected.items():
        assert reason in found[number], (number, found[number])
    # One line per bad row: no wrapping, no line break and no escape from the row itself.
    mentions = [line for line in stderr.splitlines() if line.startswith(f"{path}:")]
    assert len([m for m in mentions if ": skipped: " in m]) == len(expected), stderr
    assert "\x1b" not in stderr and "\x00" not in stderr


@pytest.mark.slow
def test_import_and_triage_file_use_every_good_row_and_name_each_bad_one(
    run, tmp_path: Path
) -> None:
    path = write_rows(tmp_path / "issues.jsonl", [row for row, _ in ROWS])
    result = run("import", str(path))
    assert result.exit_code == 1, result.stderr  # some rows were skipped
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert (figures["rows"], figures["imported"], figures["bad"]) == (9, 5, 4)
    assert_bad_rows_named(path, result.stderr, BAD_LINES)

    store = SQLiteStore(tmp_path / "cli.db")
    try:
        texts = sorted(item.text for item in store.iter_items())
    finally:
        store.close()
    assert len(texts) == 5
    # One row each, kept whole (intake may write the Unicode line breaks as "\n").
    assert any(t.startswith("The pricing page") and t.endswith("wrong currency") for t in texts)
    assert any(t.startswith("Export fails") and t.endswith("every single time") for t in texts)
    assert any("segfault at 0x0" in t and "\x00" not in t for t in texts)  # NUL removed
    assert any(t.startswith("Upload hangs") and "\x1b" not in t for t in texts)

    triaged = run("triage", "--file", str(path))
    assert triaged.exit_code == 1
    results = [json.loads(x) for x in triaged.stdout.splitlines() if x.startswith("{")]
    assert len(results) == 5  # the same items: nothing stored twice
    assert_bad_rows_named(path, triaged.stderr, BAD_LINES)
    assert "4 item(s) skipped; 5 triaged" in triaged.stderr


def labelled(rows: list[dict], extra: list[tuple[int, str]]) -> list[str]:
    """Good labelled rows as JSON lines, with raw `extra` lines put at their positions."""
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    for index, raw in sorted(extra):
        lines.insert(index, raw)
    return lines


EVAL_BAD = [
    (2, '{"text": "Checkout button does nothing", "category": {"name": "website-bug"}}'),
    (5, '{"text": ["not", "a", "string"], "category": "website-bug"}'),
    (8, '{"text": "Checkout is slow", "category": "websit-bug"}'),
    (11, "{not json"),
]


@pytest.mark.slow
def test_eval_uses_every_good_row_and_names_each_bad_one(tmp_path: Path) -> None:
    good = [{"text": r["text"], "category": r["category"]} for r in EXAMPLES]
    good[0]["text"] = "The pricing page\u2028shows the wrong\u2029currency\u0085today"
    good[1]["text"] = "Crash on start, pasted log:\x00 segfault at 0x0"
    path = write_rows(tmp_path / "labelled.jsonl", labelled(good, EVAL_BAD))
    result = CliRunner().invoke(
        app, ["eval", "--train", str(path), "--cv", "3", "--steps", "40", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["n"] == len(good)  # every good row, the NUL and U+2028 ones included
    assert sum(map(sum, out["confusion"])) == len(good)
    assert_bad_rows_named(
        path,
        result.stderr,
        {
            3: "'category' must be a non-empty string",
            6: "text field",
            9: "unknown category 'websit-bug'",
            12: "invalid JSON",
        },
    )
    assert f"{path}: 4 row(s) skipped, {len(good)} used" in result.stderr


@pytest.mark.slow
def test_simulate_uses_every_good_row_and_names_each_bad_one(tmp_path: Path) -> None:
    good = [{"text": r["text"], "label": r["category"]} for r in EXAMPLES]
    good[0]["text"] = "Search box\u2028returns nothing for quoted terms"
    stream = write_rows(
        tmp_path / "stream.jsonl",
        labelled(good[:36], [(3, '{"text": "x", "label": null}'), (7, "[1, 2]")]),
    )
    test = write_rows(tmp_path / "test.jsonl", labelled(good[36:], [(0, '{"label": "a"}')]))
    result = CliRunner().invoke(
        app,
        ["simulate", "--stream", str(stream), "--test", str(test)]
        + ["--label-field", "label", "--budget", "10", "--json"],
    )
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["validations"] == 10
    assert_bad_rows_named(
        stream, result.stderr, {4: "'label' must be a non-empty string", 8: "JSON object"}
    )
    assert_bad_rows_named(test, result.stderr, {1: "text field"})


def test_a_file_that_is_not_text_is_one_line(run, tmp_path: Path) -> None:
    path = tmp_path / "image.jsonl"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    result = run("import", str(path))
    assert result.exit_code == 2 and "not a text file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
