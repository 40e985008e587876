"""The Slack fakes work with the real slack_sdk / slack_bolt over real HTTP and websockets."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from .slack import FakeSlack, FakeSocketMode

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*bug*: crash on save"}}]
METADATA = {"event_type": "triage_item", "event_payload": {"item_id": "it-1", "label": "bug"}}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.base_url)


def test_auth_test(slack: FakeSlack, client: WebClient) -> None:
    resp = client.auth_test()
    assert resp["user_id"] == "UBOT" and resp["bot_id"] == "BBOT" and resp["team_id"] == "T1"
    (call,) = slack.calls("auth.test")
    assert call.token == "xoxb-test"


def test_post_message_with_blocks_and_metadata(slack: FakeSlack, client: WebClient) -> None:
    r1 = client.chat_postMessage(channel="C1", text="crash", blocks=BLOCKS, metadata=METADATA)
    r2 = client.chat_postMessage(channel="C1", text="second")
    assert r1["channel"] == "C1" and r1["message"]["text"] == "crash"
    assert float(r2["ts"]) > float(r1["ts"])
    assert len(r1["ts"].split(".")[1]) == 6

    (call, _) = slack.calls("chat.postMessage")
    assert call.params["blocks"] == BLOCKS  # decoded from the JSON string in the form field
    assert call.params["metadata"] == METADATA
    assert call.params["text"] == "crash"

    msgs = slack.messages("C1")
    assert [m["text"] for m in msgs] == ["crash", "second"]
    assert msgs[0]["metadata"] == METADATA and msgs[0]["user"] == "UBOT"

    with pytest.raises(SlackApiError) as err, pytest.warns(UserWarning):
        client.chat_postMessage(channel="C1")
    assert err.value.response["error"] == "no_text"


def test_json_body_and_text_that_looks_like_json(slack: FakeSlack) -> None:
    req = urllib.request.Request(
        slack.base_url + "chat.postMessage",
        data=json.dumps({"channel": "C2", "text": "[1, 2]", "blocks": BLOCKS}).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    with urllib.request.urlopen(req) as resp:
        body = json.loads(resp.read())
    assert body["ok"] is True
    assert slack.messages("C2")[0]["text"] == "[1, 2]"
    assert slack.messages("C2")[0]["blocks"] == BLOCKS


def test_history_metadata_only_when_requested(slack: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel="C1", text="tagged", metadata=METADATA)
    with_meta = client.conversations_history(channel="C1", include_all_metadata=True)
    without = client.conversations_history(channel="C1")
    assert with_meta["messages"][0]["metadata"] == METADATA
    assert "metadata" not in without["messages"][0]


def test_history_pagination_and_bounds(slack: FakeSlack, client: WebClient) -> None:
    ts = [client.chat_postMessage(channel="C1", text=f"m{i}")["ts"] for i in range(5)]
    client.chat_postMessage(channel="C1", text="reply", thread_ts=ts[0])  # not in history
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = client.conversations_history(channel="C1", limit=2, cursor=cursor)
        pages += 1
        seen += [m["text"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not page["has_more"]:
            assert cursor == ""
            break
    assert pages == 3
    assert seen == ["m4", "m3", "m2", "m1", "m0"]  # newest first

    bounded = client.conversations_history(channel="C1", oldest=ts[1], latest=ts[4])
    assert [m["text"] for m in bounded["messages"]] == ["m3", "m2"]
    replies = client.conversations_replies(channel="C1", ts=ts[0])
    assert [m["text"] for m in replies["messages"]] == ["m0", "reply"]


def test_update_permalink_views_and_unknown_methods(slack: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C1", text="old", blocks=BLOCKS)["ts"]
    resp = client.chat_update(channel="C1", ts=ts, text="new", metadata=METADATA)
    assert resp["text"] == "new" and resp["ts"] == ts
    msg = slack.messages("C1")[0]
    assert msg["text"] == "new" and msg["metadata"] == METADATA
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C1", ts="1.000000", text="x")
    assert err.value.response["error"] == "message_not_found"

    link = client.chat_getPermalink(channel="C1", message_ts=ts)["permalink"]
    assert link == f"https://fake.slack.com/archives/C1/p{ts.replace('.', '')}"

    eph = client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert float(eph["message_ts"]) > float(ts)

    view = {"type": "modal", "title": {"type": "plain_text", "text": "Relabel"}, "blocks": []}
    opened = client.views_open(trigger_id="T-1", view=view)["view"]
    assert opened["id"].startswith("V") and opened["title"]["text"] == "Relabel"
    updated = client.views_update(view_id=opened["id"], view=view)["view"]
    assert updated["id"] == opened["id"]

    client.reactions_add(channel="C1", timestamp=ts, name="eyes")
    assert slack.calls("reactions.add")[0].params["name"] == "eyes"
    assert client.api_call("team.info")["ok"] is True
    client.chat_delete(channel="C1", ts=ts)
    assert slack.messages("C1") == []


def test_rate_limit_retried_by_sdk_handler(slack: FakeSlack) -> None:
    client = WebClient(
        token="xoxb-test",
        base_url=slack.base_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    slack.fail_next("chat.postMessage", times=1, status=429, retry_after=1)
    start = time.monotonic()
    resp = client.chat_postMessage(channel="C1", text="hello")
    assert resp["ok"] is True
    assert time.monotonic() - start >= 1
    calls = slack.calls("chat.postMessage")
    assert [c.failed for c in calls] == [True, False]
    assert len(slack.messages("C1")) == 1


def test_rate_limit_without_handler_raises(slack: FakeSlack, client: WebClient) -> None:
    slack.fail_next("chat.update", status=500, error="fatal_error")
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C1", ts="1.0", text="x")
    assert err.value.response.status_code == 500
    assert err.value.response["error"] == "fatal_error"


def test_latency_response_url_and_reset(slack: FakeSlack) -> None:
    slack.set_latency("auth.test", 0.2)
    client = WebClient(token="xoxb-test", base_url=slack.base_url)
    start = time.monotonic()
    client.auth_test()
    assert time.monotonic() - start >= 0.2

    req = urllib.request.Request(
        slack.response_url("r1"),
        data=json.dumps({"text": "done", "replace_original": True}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req).close()
    assert slack.responses("r1") == [{"text": "done", "replace_original": True}]

    slack.reset()
    assert slack.calls() == [] and slack.responses() == []
    assert slack.wait_for(lambda: True, timeout=0.1)
    assert not slack.wait_for(lambda: False, timeout=0.1)


def test_bolt_app_over_socket_mode() -> None:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    with FakeSocketMode() as sock, FakeSlack(socket_mode=sock) as slack:
        app = App(
            token="xoxb-test",
            signing_secret="s",
            client=WebClient(token="xoxb-test", base_url=slack.base_url),
        )
        seen = threading.Event()

        @app.event("app_mention")
        def on_mention(event, say, respond) -> None:  # type: ignore[no-untyped-def]
            say(text=f"got: {event['text']}", thread_ts=event["ts"])
            seen.set()

        @app.command("/triage")
        def on_command(ack, respond) -> None:  # type: ignore[no-untyped-def]
            ack()
            respond(text="triaged")

        handler = SocketModeHandler(
            app,
            app_token="xapp-test",
            web_client=WebClient(base_url=slack.base_url),
        )
        handler.connect()
        try:
            assert sock.wait_connected()
            event = {
                "type": "app_mention",
                "user": "U1",
                "text": "<@UBOT> the app crashes",
                "ts": "1699999999.000100",
                "channel": "C1",
            }
            envelope_id = sock.send(
                "events_api",
                {
                    "type": "event_callback",
                    "team_id": "T1",
                    "api_app_id": "A1",
                    "event_id": "Ev1",
                    "event_time": 1699999999,
                    "event": event,
                },
            )
            ack = sock.wait_ack(envelope_id)
            assert ack["envelope_id"] == envelope_id
            assert seen.wait(10)
            assert slack.wait_for(lambda: len(slack.messages("C1")) == 1)
            assert slack.messages("C1")[0]["text"] == "got: <@UBOT> the app crashes"

            cmd_id = sock.send(
                "slash_commands",
                {
                    "command": "/triage",
                    "text": "",
                    "user_id": "U1",
                    "channel_id": "C1",
                    "team_id": "T1",
                    "trigger_id": "tr1",
                    "response_url": slack.response_url("cmd1"),
                },
                accepts_response_payload=True,
            )
            assert sock.wait_ack(cmd_id)["envelope_id"] == cmd_id
            assert slack.wait_for(lambda: slack.responses("cmd1") != [])
            assert slack.responses("cmd1")[0]["text"] == "triaged"
            assert slack.calls("apps.connections.open")[0].token == "xapp-test"
        finally:
            sock.close_client(handler)
