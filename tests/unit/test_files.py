from pathlib import Path

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
