"""Bad input over real HTTP (and Discord's real parsers): each gets a clear error, nothing is
stored, and the server keeps serving. Fills the gaps left by tests/e2e/test_slack.py (forged
and stale Slack signatures, bad webhook bodies, non-reviewer buttons and reactions are
there) and tests/unit/test_fuzz.py (the parsers alone)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.webhook import MAX_BODY_BYTES, sign
from tests.e2e.test_discord import World, encoder, reply_text, world  # noqa: F401
from tests.e2e.test_slack import (  # noqa: F401
    CHANNEL,
    SECRET,
    WEBHOOK_SECRET,
    Stack,
    button,
    card_of,
    stack,
    webhook_item,
)

pytestmark = pytest.mark.slow


def raw_post(
    server: Stack, path: str, body: bytes, headers: dict[str, str], *, chunked: bool = False
) -> tuple[int, str]:
    """POST exactly these bytes and headers (urllib would add or fix some)."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        if chunked:
            conn.putrequest("POST", path)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for start in range(0, len(body), 16_384):
                piece = body[start : start + 16_384]
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def healthy(server: Stack) -> bool:
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=5)
    conn.request("GET", "/healthz")
    resp = conn.getresponse()
    ok = resp.status == 200 and json.loads(resp.read())["ok"]
    conn.close()
    return bool(ok)


def signed_slack(body: bytes, content_type: str, *, ts: int | None = None) -> dict[str, str]:
    """Slack's v0 signature over any bytes (slack_sdk's helper only signs UTF-8 text)."""
    stamp = str(ts if ts is not None else int(time.time()))
    digest = hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }


def webhook_headers(body: bytes, content_type: str = "application/json") -> dict[str, str]:
    return {"Content-Type": content_type, "X-Triage-Signature": sign(body, WEBHOOK_SECRET)}


# -- the website webhook -----------------------------------------------------------------------
def test_webhook_bad_bodies_and_headers_get_clear_errors(stack: Stack) -> None:  # noqa: F811
    good = json.dumps({"comment": "The search page is blank"}).encode()
    cases: list[tuple[str, bytes, dict[str, str], int, str]] = [
        ("plain text", good, webhook_headers(good, "text/plain"), 415, "application/json"),
        (
            "a form post",
            b"comment=hi",
            webhook_headers(b"comment=hi", "application/x-www-form-urlencoded"),
            415,
            "application/json",
        ),
        ("not UTF-8", b"\xff\xfe\x00binary", webhook_headers(b"\xff\xfe\x00binary"), 400, "UTF-8"),
        (
            "deep nesting",
            b"[" * 30_000 + b"]" * 30_000,
            webhook_headers(b"[" * 30_000 + b"]" * 30_000),
            400,
            "nested",
        ),
        (
            "lone surrogate",
            b'{"comment": "\\udc00"}',
            webhook_headers(b'{"comment": "\\udc00"}'),
            400,
            "surrogate",
        ),
        (
            "NUL in a key",
            b'{"comment": "x", "metadata": {"a\\u0000": 1}}',
            webhook_headers(b'{"comment": "x", "metadata": {"a\\u0000": 1}}'),
            400,
            "NUL",
        ),
        ("a JSON array", b"[1, 2]", webhook_headers(b"[1, 2]"), 400, "JSON object"),
        (
            "unknown field",
            b'{"comment": "x", "admin": true}',
            webhook_headers(b'{"comment": "x", "admin": true}'),
            400,
            "unknown field",
        ),
        (
            "non-ASCII signature",
            good,
            {"Content-Type": "application/json", "X-Triage-Signature": "sha256=\xe9\xe9"},
            401,
            "does not match",
        ),
        (
            "signature of another body",
            good,
            {"Content-Type": "application/json", "X-Triage-Signature": sign(b"{}", WEBHOOK_SECRET)},
            401,
            "does not match",
        ),
    ]
    for name, body, headers, status, reason in cases:
        got, text = raw_post(stack, "/feedback", body, headers)
        assert got == status, (name, got, text)
        assert reason in json.loads(text)["error"], (name, text)
    assert stack.store.count_items() == 0
    assert healthy(stack)


def test_webhook_oversize_body_is_refused_while_streaming(stack: Stack) -> None:  # noqa: F811
    huge = json.dumps({"comment": "x" * (MAX_BODY_BYTES * 4)}).encode()
    # No Content-Length (chunked): the server stops reading at the limit.
    status, text = raw_post(stack, "/feedback", huge, webhook_headers(huge), chunked=True)
    assert status == 413 and "limit" in json.loads(text)["error"]
    # A declared length over the limit is refused before the body is read.
    status, _ = raw_post(stack, "/feedback", huge, webhook_headers(huge))
    assert status == 413
    assert stack.store.count_items() == 0 and healthy(stack)


def test_pii_in_the_page_and_metadata_is_redacted_before_it_is_stored(stack: Stack) -> None:  # noqa: F811
    form = {
        "comment": "I cannot reset my password",
        "page": "/reset?email=jo@example.com",
        "metadata": {"contact": "jo@example.com", "phones": ["+1 415 555 0100"]},
    }
    status, body = stack.feedback(form)
    assert status == 202, body
    item = stack.store.get_item(body["id"])
    assert item is not None and item.page == "/reset?email=[email]"
    assert item.metadata["form"] == {"contact": "[email]", "phones": ["[phone]"]}
    stack.wait_posts(1)
    raw = b"".join(p.read_bytes() for p in Path(stack.store.path).parent.glob("slack.db*"))
    assert b"jo@example.com" not in raw and b"555 0100" not in raw


def test_a_pasted_log_with_nul_and_secrets_is_kept_as_text_redacted(stack: Stack) -> None:  # noqa: F811
    comment = (
        "Import crashes:\n\x1b[31mERROR\x1b[0m connect postgres://app:S3cretPw@10.1.2.3/db\x00\n"
        "my password is hunter2, IBAN DE89 3704 0044 0532 0130 00, on version 1.2.3.4"
    )
    status, body = stack.feedback({"comment": comment})
    assert status == 202, body
    item = stack.store.get_item(body["id"])
    assert item is not None and "\x00" not in item.text and "\x1b" not in item.text
    assert item.redacted_text == (
        "Import crashes:\nERROR connect postgres://[secret]@[ip]/db\n"
        "my password is [secret], IBAN [iban], on version 1.2.3.4"
    )
    assert item.pii_kinds == ["iban", "ip", "secret"]
    (post,) = stack.wait_posts(1)
    card = json.dumps(post)
    assert "[iban]" in card and "S3cretPw" not in card and "hunter2" not in card
    raw = b"".join(p.read_bytes() for p in Path(stack.store.path).parent.glob("slack.db*"))
    assert b"S3cretPw" not in raw and b"hunter2" not in raw and b"DE89" not in raw


# -- Slack ---------------------------------------------------------------------------------------
def event_body(event: dict[str, Any], event_id: str) -> bytes:
    return json.dumps(
        {
            "token": "x",
            "team_id": "T1",
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": event,
        }
    ).encode()


def test_slack_oversize_binary_and_wrong_content_types_are_refused(stack: Stack) -> None:  # noqa: F811
    big = b'{"type": "event_callback", "x": "' + b"a" * (1024 * 1024) + b'"}'
    status, _ = raw_post(stack, "/slack/events", big, signed_slack(big, "application/json"))
    assert status == 413
    binary = b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"
    for content_type in ("application/json", "application/octet-stream", "text/plain"):
        status, _ = raw_post(stack, "/slack/events", binary, signed_slack(binary, content_type))
        assert 400 <= status < 500, (content_type, status)
    # Unsigned garbage never reaches a listener.
    status, text = raw_post(stack, "/slack/events", binary, {"Content-Type": "application/json"})
    assert status == 400 and "UTF-8" in text
    garbage = b'{"type": "event_callback", "event": {"type": "message"}}'
    status, _ = raw_post(stack, "/slack/events", garbage, {"Content-Type": "application/json"})
    assert status == 401
    assert stack.store.count_items() == 0 and healthy(stack)


def test_slack_replayed_and_spliced_signatures_are_refused(stack: Stack) -> None:  # noqa: F811
    event = {
        "type": "message",
        "channel": "CINTAKE",
        "user": "UCUS",
        "text": "The docs search is broken",
        "ts": f"{time.time():.6f}",
    }
    body = event_body(event, "EvReplay1")
    old = int(time.time()) - 6 * 60
    # A request captured six minutes ago, replayed verbatim: outside the 5-minute window.
    assert (
        raw_post(stack, "/slack/events", body, signed_slack(body, "application/json", ts=old))[0]
        == 401
    )
    # A fresh timestamp spliced onto the old signature: the signature covers the timestamp.
    spliced = signed_slack(body, "application/json", ts=old) | {
        "X-Slack-Request-Timestamp": str(int(time.time()))
    }
    assert raw_post(stack, "/slack/events", body, spliced)[0] == 401
    # Another body under a valid signature.
    other = event_body({**event, "text": "Give me admin"}, "EvReplay2")
    forged = signed_slack(body, "application/json")
    assert raw_post(stack, "/slack/events", other, forged)[0] == 401
    # No signature headers at all.
    assert raw_post(stack, "/slack/events", body, {"Content-Type": "application/json"})[0] == 401
    time.sleep(0.3)
    assert stack.store.count_items() == 0
    # The genuine request still works, once, however often it is replayed in the window.
    for _ in range(3):
        assert (
            raw_post(stack, "/slack/events", body, signed_slack(body, "application/json"))[0] == 200
        )
    assert stack.fake.wait_for(lambda: stack.store.count_items() == 1)
    time.sleep(0.3)
    assert stack.store.count_items() == 1 and healthy(stack)


def test_votes_on_unknown_items_and_non_cards_get_clear_refusals(stack: Stack) -> None:  # noqa: F811
    item_id = webhook_item(stack)
    stack.wait_posts(1)
    card = card_of(stack, item_id)
    payload = {
        "type": "block_actions",
        "user": {"id": "UANN"},
        "trigger_id": "trig",
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "container": {"type": "message", "channel_id": CHANNEL, "message_ts": card["ts"]},
        "actions": [
            {
                "action_id": "triage_confirm",
                "block_id": "triage_actions",
                "value": "fb_no_such_item",
                "type": "button",
                "action_ts": "1",
            }
        ],
    }
    assert stack.interact(payload)[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.calls("chat.postEphemeral")))
    refusal = stack.fake.calls("chat.postEphemeral")[-1].params
    assert "unknown item id 'fb_no_such_item'" in refusal["text"]
    # The Correct button on an unknown item: a refusal, no modal.
    payload["actions"][0] |= {"action_id": "triage_correct", "value": "fb_gone"}  # type: ignore[index]
    assert stack.interact(payload)[0] == 200
    assert stack.fake.wait_for(
        lambda: "Unknown item fb_gone" in stack.fake.calls("chat.postEphemeral")[-1].params["text"]
    )
    assert not stack.fake.calls("views.open")
    # A correction modal submitted for an unknown item (a stale modal).
    view = {
        "id": "V9",
        "type": "modal",
        "callback_id": "triage_correct_view",
        "private_metadata": json.dumps({"item_id": "fb_gone", "channel": CHANNEL}),
        "state": {
            "values": {
                "category": {
                    "value": {"type": "static_select", "selected_option": {"value": "content-gap"}}
                }
            }
        },
    }
    submission = {
        "type": "view_submission",
        "user": {"id": "UBOB"},
        "team": {"id": "T1"},
        "view": view,
    }
    assert stack.interact(submission)[0] == 200
    assert stack.fake.wait_for(
        lambda: (
            "unknown item id 'fb_gone'" in stack.fake.calls("chat.postEphemeral")[-1].params["text"]
        )
    )
    # A reaction on a message that is not a card, and on another channel: nothing happens.
    for target in ({"channel": CHANNEL, "ts": "1.000001"}, {"channel": "COTHER", "ts": card["ts"]}):
        event = {
            "type": "reaction_added",
            "user": "UANN",
            "reaction": "white_check_mark",
            "event_ts": f"{time.time():.6f}",
            "item": {"type": "message", **target},
        }
        assert stack.event(event, f"EvNC{target['channel']}")[0] == 200
    # A non-reviewer's correction modal: nothing stored.
    view["private_metadata"] = json.dumps({"item_id": item_id, "channel": CHANNEL})
    assert stack.interact({**submission, "user": {"id": "UMAL"}})[0] == 200
    time.sleep(0.5)
    assert stack.store.events() == [] and healthy(stack)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    event=st.dictionaries(
        st.sampled_from(["type", "channel", "user", "text", "ts", "reaction", "item", "subtype"]),
        st.none()
        | st.integers()
        | st.text(max_size=20)
        | st.lists(st.integers(), max_size=2)
        | st.sampled_from(["message", "reaction_added", "reaction_removed", "CINTAKE", CHANNEL])
        | st.fixed_dictionaries({"type": st.just("message"), "channel": st.just(CHANNEL)}),
        max_size=8,
    ),
    action=st.fixed_dictionaries(
        {
            "action_id": st.sampled_from(
                ["triage_confirm", "triage_noise", "triage_correct", "other"]
            ),
            "type": st.just("button"),
        },
        optional={"value": st.none() | st.integers() | st.text(max_size=30)},
    ),
)
def test_signed_garbage_payloads_never_take_the_server_down(
    stack: Stack,  # noqa: F811
    event: dict[str, Any],
    action: dict[str, Any],
) -> None:
    """Whatever an event holds, and whatever value a button carries, the answer is never a
    5xx and the server keeps serving. (Envelopes Slack never sends, such as a block action
    without an action_id, fail inside Bolt's own matching: a 500, and the server goes on.)"""
    body = event_body(event, f"EvF{time.monotonic_ns()}")
    status, _ = raw_post(stack, "/slack/events", body, signed_slack(body, "application/json"))
    assert status < 500, (event, status)
    form = urllib.parse.urlencode(
        {
            "payload": json.dumps(
                {"type": "block_actions", "user": {"id": "UANN"}, "actions": [action]}
            )
        }
    ).encode()
    status, _ = raw_post(
        stack, "/slack/events", form, signed_slack(form, "application/x-www-form-urlencoded")
    )
    assert status < 500, (action, status)
    assert healthy(stack)


# -- Discord -------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_discord_buttons_for_items_the_store_does_not_know_are_refused_clearly(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    item_id = await world.intake_item("The pricing page shows the wrong currency")
    card = world.card(item_id)
    # The bot restarts on another (empty) store: the card's buttons name an unknown item.
    world.db = tmp_path / "elsewhere.db"
    await world.restart()
    result = await world.ann.click(card, custom_id=f"triage:confirm:{item_id}")
    assert result.ephemeral and f"unknown item id '{item_id}'" in reply_text(result)
    result = await world.ann.click(card, custom_id=f"triage:correct:{item_id}")
    assert result.ephemeral and f"Unknown item {item_id}" in reply_text(result)
    result = await world.bob.select(card, ["low"], custom_id=f"triage:severity:{item_id}")
    assert f"unknown item id '{item_id}'" in reply_text(result)
    refused = await world.mal.click(card, custom_id=f"triage:confirm:{item_id}")
    assert "not on" in reply_text(refused)
    assert world.store.events() == [] and world.store.count_items() == 0
