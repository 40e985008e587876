import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.webhook import MAX_BODY_BYTES, WebhookError, parse, sign, verify

SECRET = "s3cret"


def test_valid_form_parses() -> None:
    body = json.dumps(
        {
            "type": "bug",
            "rating": 2,
            "comment": "Search is broken",
            "page": "/search",
            "metadata": {"ua": "Firefox"},
        }
    ).encode()
    verify(body, sign(body, SECRET), SECRET)
    form = parse(body, "application/json; charset=utf-8")
    assert (form.comment, form.form_type, form.rating, form.page) == (
        "Search is broken",
        "bug",
        2.0,
        "/search",
    )
    assert form.metadata == {"ua": "Firefox"} and len(form.body_sha256) == 64


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (b"{", "application/json", 400, "malformed JSON"),
        (b"\xff\xfe", "application/json", 400, "not UTF-8"),
        (b"[1]", "application/json", 400, "must be a JSON object"),
        (b'{"comment": ""}', "application/json", 400, "comment must be a non-empty string"),
        (b'{"comment": "x", "rating": "5"}', "application/json", 400, "rating must be a number"),
        (b'{"comment": "x", "rating": 99}', "application/json", 400, "between 0 and 10"),
        (b'{"comment": "x", "evil": 1}', "application/json", 400, "unknown field(s): evil"),
        (b'{"comment": "x"}', "text/plain", 415, "application/json"),
        (b"x" * (MAX_BODY_BYTES + 1), "application/json", 413, "over the"),
    ],
)
def test_bad_bodies_get_a_status_and_a_reason(body, content_type, status, reason) -> None:
    with pytest.raises(WebhookError) as caught:
        parse(body, content_type)
    assert caught.value.status == status and reason in caught.value.reason


def test_signatures() -> None:
    body = b'{"comment": "hi"}'
    with pytest.raises(WebhookError, match="missing"):
        verify(body, None, SECRET)
    with pytest.raises(WebhookError, match="does not match"):
        verify(body, sign(body, "other"), SECRET)
    with pytest.raises(WebhookError, match="does not match"):
        verify(body + b" ", sign(body, SECRET), SECRET)


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_the_parser(body: bytes) -> None:
    try:
        parse(body, "application/json")
    except WebhookError as exc:
        assert exc.status in (400, 413)


def test_a_secret_is_rotated_by_listing_the_new_one_first() -> None:
    body = b'{"comment": "hi"}'
    verify(body, sign(body, "old"), "new,old")  # senders still on the old secret
    verify(body, sign(body, "new"), "new,old")  # senders already switched
    with pytest.raises(WebhookError, match="does not match"):
        verify(body, sign(body, "old"), "new")  # old secret dropped: refused
