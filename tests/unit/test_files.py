import json
from pathlib import Path

import pytest

from bot.files import BadRow, Row, read_rows


def test_jsonl_bad_lines_are_reported_with_numbers_and_good_lines_kept(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(
        '{"id": "a", "text": "login broken", "type": "bug", "rating": "2"}\n'
        "{not json\n"
        "\n"
        '["a list"]\n'
        '{"comment": "docs are great", "page": "/docs"}\n'
        '{"title": "no text"}\n'
        '{"text": 42}\n'
        '{"text": "bad rating", "rating": "five"}\n'
    )
    rows = list(read_rows(path))
    good = [r for r in rows if isinstance(r, Row)]
    bad = {r.line: r.reason for r in rows if isinstance(r, BadRow)}
    assert [(r.line, r.text, r.id, r.form_type, r.rating) for r in good] == [
        (1, "login broken", "a", "bug", 2.0),
        (5, "docs are great", None, None, None),
    ]
    assert good[1].page == "/docs"
    assert sorted(bad) == [2, 4, 6, 7, 8]
    assert "invalid JSON" in bad[2] and "JSON object" in bad[4] and "no text field" in bad[6]
    assert "must be a string" in bad[7] and "not a number" in bad[8]


def test_csv_with_quotes_and_commas(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text('text,form_type,page,rating\n"a, b ""quoted""",bug,/x,3\n"multi\nline",,,\n')
    rows = list(read_rows(path))
    assert [(r.text, r.form_type, r.page, r.rating) for r in rows if isinstance(r, Row)] == [
        ('a, b "quoted"', "bug", "/x", 3.0),
        ("multi\nline", None, None, None),
    ]


def test_jsonl_lines_end_at_newline_only(tmp_path: Path) -> None:
    """U+2028, U+2029, U+0085, \\x1c-\\x1e, \\v and \\f, written as they are inside a JSON
    string, are text: str.splitlines() would cut the row at each of them."""
    breaks = "\u2028\u2029\u0085\x1c\x1d\x1e\x0b\x0c"
    path = tmp_path / "items.jsonl"
    path.write_text(
        "".join(f'{{"id": "{i}", "text": "line{c}break"}}\n' for i, c in enumerate(breaks))
        + '{"id": "crlf", "text": "windows"}\r\n',
        encoding="utf-8",
        newline="",
    )
    rows = list(read_rows(path))
    assert all(isinstance(r, Row) for r in rows), rows
    assert [(r.line, r.text) for r in rows] == [
        *((i + 1, f"line{c}break") for i, c in enumerate(breaks)),
        (len(breaks) + 1, "windows"),
    ]


def test_a_nul_in_one_row_is_text_and_the_file_is_read(tmp_path: Path) -> None:
    """Escaped (\\u0000) or raw, a NUL is one row's text, not a reason to refuse the file."""
    path = tmp_path / "issues.jsonl"
    path.write_text(
        json.dumps({"text": "crash log:\x00\x00 segfault at 0x0"})
        + '\n{"text": "raw \x00 byte"}\n'
        + "\n".join(json.dumps({"text": f"issue {i}"}) for i in range(20))
        + "\n"
    )
    rows = list(read_rows(path))
    assert len(rows) == 22 and all(isinstance(r, Row) for r in rows)
    texts = [r.text for r in rows if isinstance(r, Row)]
    assert texts[:2] == ["crash log:\x00\x00 segfault at 0x0", "raw \x00 byte"]


def test_wrong_types_are_bad_rows_that_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(
        '{"text": "ok one"}\n'
        '{"text": "x", "page": {"url": "/a"}}\n'
        '{"text": "x", "page": 5}\n'
        '{"text": "x", "type": ["bug"]}\n'
        '{"text": "x", "form_type": 3}\n'
        '{"text": "x", "id": {"$oid": "1"}}\n'
        '{"text": "x", "id": true}\n'
        '{"text": "x", "rating": {"stars": 4}}\n'
        '{"text": null}\n'
        '{"text": "x", "rating": ' + "9" * 5000 + "}\n"
        '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
        '{"text": "ok two", "id": 7, "url": "/b", "type": "bug"}\n'
    )
    rows = list(read_rows(path))
    good = [r for r in rows if isinstance(r, Row)]
    bad = {r.line: r.reason for r in rows if isinstance(r, BadRow)}
    assert [(r.line, r.text, r.id, r.page, r.form_type) for r in good] == [
        (1, "ok one", None, None, None),
        (12, "ok two", "7", "/b", "bug"),
    ]
    assert bad == {
        2: "page must be a string, got an object",
        3: "page must be a string, got a number",
        4: "type must be a string, got a list",
        5: "form_type must be a string, got a number",
        6: "id must be a string or an integer, got an object",
        7: "id must be a string or an integer, got a boolean",
        8: "rating {'stars': 4} is not a number",
        9: "text must be a string, got null",
        10: bad[10],
        11: bad[11],
    }
    assert bad[10].startswith("invalid JSON: Exceeds the limit") and "nested" in bad[11]


def test_undecodable_bytes_make_one_bad_row_and_binary_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9 is closed"}\n{"text": "also fine"}\n')
    rows = list(read_rows(path))
    assert [r.text for r in rows if isinstance(r, Row)] == ["fine", "also fine"]
    assert [(r.line, r.reason) for r in rows if isinstance(r, BadRow)] == [
        (2, "not UTF-8 text (byte 0xE9 at character 14)")
    ]
    csv_path = tmp_path / "latin1.csv"
    csv_path.write_bytes(b"text\nfine\ncaf\xe9\n")
    rows = list(read_rows(csv_path))
    assert isinstance(rows[0], Row) and isinstance(rows[1], BadRow) and rows[1].line == 3
    png = tmp_path / "image.jsonl"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="not a text file"):
        list(read_rows(png))
    utf16 = tmp_path / "excel.csv"
    utf16.write_bytes("text\nhello\n".encode("utf-16"))
    with pytest.raises(ValueError, match="UTF-16"):
        list(read_rows(utf16))
    no_bom = tmp_path / "utf16.jsonl"
    no_bom.write_bytes('{"text": "hello"}\n'.encode("utf-16-le"))
    with pytest.raises(ValueError, match="not a text file"):
        list(read_rows(no_bom))


def test_a_csv_record_too_large_is_one_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text('text,page\nfirst,/a\n"' + "x" * 200_000 + '",/b\nlast,/c\n')
    rows = list(read_rows(path))
    assert [(r.line, r.text) for r in rows if isinstance(r, Row)] == [(2, "first"), (4, "last")]
    (bad,) = [r for r in rows if isinstance(r, BadRow)]
    assert bad.line == 3 and "field larger than field limit" in bad.reason
