import hashlib
import hmac
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.webhook import (
    MAX_BODY_BYTES,
    TIMESTAMP_TOLERANCE_S,
    WebhookError,
    parse,
    sign,
    verify,
)

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
        # Numbers no store keeps: Python's int-digit limit would raise a bare ValueError.
        (b'{"comment": "x", "rating": ' + b"9" * 5000 + b"}", None, 400, "(5000 digits)"),
        (b'{"comment": "x", "metadata": {"n": ' + b"1" * 5000 + b"}}", None, 400, "64 bits"),
        (b'{"comment": "x", "metadata": {"n": 9223372036854775808}}', None, 400, "64 bits"),
        (b'{"comment": "x", "metadata": {"n": -9223372036854775809}}', None, 400, "64 bits"),
        (b'{"comment": "x", "rating": 1e999}', None, 400, "number 1e999 is out of range"),
        (b'{"comment": "x", "metadata": {"f": -1e400}}', None, 400, "out of range"),
        (b'{"comment": "x", "rating": NaN}', None, 400, "NaN is not a JSON number"),
        (b'{"comment": "x", "rating": Infinity}', None, 400, "Infinity is not"),
        (b'{"comment": "x", "metadata": [-Infinity]}', None, 400, "-Infinity is not"),
        (b'{"comment": "x", "rating": -0.5}', None, 400, "between 0 and 10"),
        (b'{"comment": "x", "rating": 1e300}', None, 400, "between 0 and 10"),
        # Keys MongoDB would read as operators or paths, at any depth, in lists too.
        (b'{"comment": "x", "metadata": {"$where": "1"}}', None, 400, "'$where' must not start"),
        (b'{"comment": "x", "metadata": {"a.b": 1}}', None, 400, "'a.b' must not contain '.'"),
        (b'{"comment": "x", "metadata": {"a": {"b": [{"$gt": 1}]}}}', None, 400, "'$gt'"),
        (b'{"comment": "x", "metadata": {"a": [[{"x.y": 1}]]}}', None, 400, "'x.y'"),
        (b'{"comment": "x", "metadata": {"a": {"k\\u0000": 1}}}', None, 400, "NUL"),
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


def test_numbers_and_keys_within_bounds_are_kept() -> None:
    body = json.dumps(
        {
            "comment": "x",
            "rating": 10,
            "metadata": {
                "big": 2**63 - 1,
                "small": -(2**63),
                "f": 1.5e308,
                "money$": 1,
                "deep": {"list": [{"ok_key": -0.0}]},
            },
        }
    ).encode()
    form = parse(body, None)
    assert form.rating == 10.0 and form.metadata["big"] == 2**63 - 1
    assert form.metadata["small"] == -(2**63) and form.metadata["f"] == 1.5e308


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_the_parser(body: bytes) -> None:
    try:
        parse(body, "application/json")
    except WebhookError as exc:
        assert exc.status in (400, 413)


NUMBER_LITERALS = st.sampled_from(
    ["1" * 5000, "-" + "9" * 30, "1e999", "-1e999", "NaN", "Infinity", "-Infinity", "1E+400"]
) | st.from_regex(r"\A-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?\Z")


@given(
    st.recursive(
        st.none() | st.booleans() | st.text(max_size=20) | st.just("@N@"),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.text(max_size=8) | st.sampled_from(["$x", "a.b"]), inner, max_size=4
            )
        ),
        max_leaves=20,
    ),
    NUMBER_LITERALS,
)
def test_arbitrary_json_with_any_number_literal_is_parsed_or_refused_with_400(
    metadata: object, number: str
) -> None:
    body = json.dumps({"comment": "x", "metadata": metadata}).replace('"@N@"', number)
    try:
        form = parse(body.encode(), "application/json")
    except WebhookError as exc:
        assert exc.status == 400 and exc.reason
    else:  # what is accepted is what every store can keep
        json.dumps(form.metadata, allow_nan=False)


def test_a_timestamped_signature_covers_the_timestamp_and_expires() -> None:
    body = b'{"comment": "hi"}'
    now = 1_800_000_000
    stamp = str(now - 30)
    verify(body, sign(body, SECRET, stamp), SECRET, timestamp=stamp, now=now)
    # The scheme, written out: HMAC-SHA256 over "<timestamp>.<body>".
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    assert sign(body, SECRET, stamp) == "sha256=" + expected.hexdigest()
    # Moving the timestamp (to refresh a captured request) breaks the signature.
    with pytest.raises(WebhookError, match="does not match") as caught:
        verify(body, sign(body, SECRET, stamp), SECRET, timestamp=str(now), now=now)
    assert caught.value.status == 401
    # A plain body signature sent with a timestamp header is not a timestamped one.
    with pytest.raises(WebhookError, match="does not match"):
        verify(body, sign(body, SECRET), SECRET, timestamp=stamp, now=now)
    old = str(now - TIMESTAMP_TOLERANCE_S - 1)
    with pytest.raises(WebhookError, match="stale X-Triage-Timestamp") as caught:
        verify(body, sign(body, SECRET, old), SECRET, timestamp=old, now=now)
    assert caught.value.status == 401
    future = str(now + TIMESTAMP_TOLERANCE_S + 1)
    with pytest.raises(WebhookError, match="stale"):
        verify(body, sign(body, SECRET, future), SECRET, timestamp=future, now=now)
    edge = str(now - TIMESTAMP_TOLERANCE_S)
    verify(body, sign(body, SECRET, edge), SECRET, timestamp=edge, now=now)
    for bad in ("", "12.5", "-1", "1e9", "\u0661\u0662", "9" * 40):
        with pytest.raises(WebhookError, match="expected Unix seconds"):
            verify(body, sign(body, SECRET), SECRET, timestamp=bad, now=now)
    # Rotation works for timestamped senders too; the plain scheme is still accepted.
    verify(body, sign(body, "old", stamp), "new,old", timestamp=stamp, now=now)
    verify(body, sign(body, SECRET), SECRET)
    fresh = str(int(time.time()))
    verify(body, sign(body, SECRET, fresh), SECRET, timestamp=fresh)


def test_a_secret_is_rotated_by_listing_the_new_one_first() -> None:
    body = b'{"comment": "hi"}'
    verify(body, sign(body, "old"), "new,old")  # senders still on the old secret
    verify(body, sign(body, "new"), "new,old")  # senders already switched
    with pytest.raises(WebhookError, match="does not match"):
        verify(body, sign(body, "old"), "new")  # old secret dropped: refused
