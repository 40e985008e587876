"""The website form's webhook over real HTTP (the Slack app's server on uvicorn): numbers
and keys no store keeps are a 400 with the reason, signed timestamps expire, and no body
whatever gives a 5xx."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.webhook import TIMESTAMP_HEADER, TIMESTAMP_TOLERANCE_S, sign
from tests.e2e.test_bad_input import healthy, raw_post, webhook_headers
from tests.e2e.test_slack import WEBHOOK_SECRET, Stack, stack  # noqa: F401

pytestmark = pytest.mark.slow


def error_of(text: str) -> str:
    return str(json.loads(text)["error"])


def test_numbers_beyond_bounds_and_operator_keys_are_400_with_the_reason(stack: Stack) -> None:  # noqa: F811
    cases = [
        (b'{"comment": "x", "rating": ' + b"7" * 5000 + b"}", "5000 digits"),
        (b'{"comment": "x", "metadata": {"id": 123456789012345678901234}}', "64 bits"),
        (b'{"comment": "x", "rating": 1e999}', "out of range"),
        (b'{"comment": "x", "rating": NaN}', "NaN is not a JSON number"),
        (b'{"comment": "x", "metadata": {"t": Infinity}}', "Infinity is not"),
        (b'{"comment": "x", "rating": 11}', "between 0 and 10"),
        (b'{"comment": "x", "metadata": {"$where": "sleep(1000)"}}', "must not start with $"),
        (b'{"comment": "x", "metadata": {"a.b": 1}}', "must not contain '.'"),
        (b'{"comment": "x", "metadata": {"l": [{"q": {"$ne": 1}}]}}', "'$ne'"),
    ]
    for body, reason in cases:
        status, text = raw_post(stack, "/feedback", body, webhook_headers(body))
        assert status == 400, (body[:60], status, text)
        assert reason in error_of(text), (body[:60], text)
    assert stack.store.count_items() == 0 and healthy(stack)


def test_signed_timestamps_expire_and_plain_signatures_still_work(stack: Stack) -> None:  # noqa: F811
    def post(body: bytes, stamp: int) -> tuple[int, str]:
        headers = {
            "Content-Type": "application/json",
            "X-Triage-Signature": sign(body, WEBHOOK_SECRET, stamp),
            TIMESTAMP_HEADER: str(stamp),
        }
        return raw_post(stack, "/feedback", body, headers)

    fresh = b'{"comment": "The invoice page times out"}'
    status, text = post(fresh, int(time.time()))
    assert status == 202, text
    stale = b'{"comment": "The export button does nothing"}'
    status, text = post(stale, int(time.time()) - TIMESTAMP_TOLERANCE_S - 60)
    assert status == 401 and "stale X-Triage-Timestamp" in error_of(text)
    # A captured timestamped request cannot be refreshed: the timestamp is signed.
    headers = {
        "Content-Type": "application/json",
        "X-Triage-Signature": sign(stale, WEBHOOK_SECRET, int(time.time()) - 900),
        TIMESTAMP_HEADER: str(int(time.time())),
    }
    status, text = raw_post(stack, "/feedback", stale, headers)
    assert status == 401 and "does not match" in error_of(text)
    plain = b'{"comment": "Dark mode please"}'
    status, text = raw_post(stack, "/feedback", plain, webhook_headers(plain))
    assert status == 202, text
    assert stack.store.count_items() == 2


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["@NUMBER@"])
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=10) | st.sampled_from(["$where", "a.b", "k\x00", ""]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)
NUMBER_LITERALS = st.sampled_from(
    ["9" * 5000, "-" + "1" * 400, "1e999", "NaN", "-Infinity", "1" * 19, "0.1", "-0"]
) | st.from_regex(r"\A-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,10})?([eE][+-]?[0-9]{1,4})?\Z")
FORMS = st.fixed_dictionaries(
    {"comment": st.text(max_size=200) | JSON_VALUES},
    optional={
        "type": st.text(max_size=30) | JSON_VALUES,
        "rating": JSON_VALUES,
        "page": st.text(max_size=60) | JSON_VALUES,
        "metadata": JSON_VALUES,
        "extra": JSON_VALUES,
    },
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Raw bytes, any JSON, or a form-shaped object, with any number literal spliced in."""
    kind = draw(st.sampled_from(["bytes", "json", "form"]))
    if kind == "bytes":
        return draw(st.binary(max_size=600))
    value = draw(JSON_VALUES if kind == "json" else FORMS)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    return text.replace('"@NUMBER@"', draw(NUMBER_LITERALS)).encode("utf-8", "surrogatepass")


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=bodies(),
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8"])
    | st.text(max_size=20).filter(lambda t: t.isascii() and t.isprintable()),
    signing=st.sampled_from(["plain", "timestamp", "stale", "none", "garbage"]),
)
def test_no_body_gives_a_server_error(
    stack: Stack,  # noqa: F811
    body: bytes,
    content_type: str,
    signing: str,
) -> None:
    headers = {"Content-Type": content_type}
    stamp = int(time.time()) - (TIMESTAMP_TOLERANCE_S + 5 if signing == "stale" else 0)
    if signing == "plain":
        headers["X-Triage-Signature"] = sign(body, WEBHOOK_SECRET)
    elif signing in ("timestamp", "stale"):
        headers["X-Triage-Signature"] = sign(body, WEBHOOK_SECRET, stamp)
        headers[TIMESTAMP_HEADER] = str(stamp)
    elif signing == "garbage":
        headers["X-Triage-Signature"] = "sha256=zz"
        headers[TIMESTAMP_HEADER] = "yesterday"
    status, text = raw_post(stack, "/feedback", body, headers)
    assert status < 500, (status, text, body[:200])
    answer = json.loads(text)
    if status >= 400:
        assert isinstance(answer["error"], str) and answer["error"]
    else:
        assert status == 202 and answer["status"] in ("accepted", "duplicate")
        assert signing in ("plain", "timestamp")
