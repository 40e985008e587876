"""The Slack app end to end: the real Bolt app served over real HTTP (uvicorn), signed
requests as Slack sends them, and a local fake of Slack's Web API (tests/fakes/slack.py)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from slack_sdk.signature import SignatureVerifier

from bot.app import build, default_encoder
from bot.github.settings import GitHubSettings
from bot.slack import cards
from bot.slack.edge import SlackEdge
from bot.slack.server import build_slack, create_asgi
from bot.slack.settings import SlackSettings
from bot.webhook import sign
from core.intake import Submission, to_item
from core.runtime import DuplicateSettings, RuntimeSettings
from core.service import TriageService
from core.settings import LLMSettings, Settings
from core.store.sqlite import SQLiteStore
from core.taxonomy import DEFAULT_CONFIG, load_taxonomy
from core.triage import TriageEngine
from core.votes import NOT_A_REVIEWER, REVIEWERS_ONLY
from tests.chat_limits import (
    mrkdwn_texts,
    slack_markup_problems,
    slack_message_problems,
    slack_modal_problems,
)
from tests.fakes.slack import FakeSlack
from tests.reports import report

SECRET = "signing-secret"
WEBHOOK_SECRET = "webhook-secret"
CHANNEL = "CTRIAGE"
INTAKE = "CINTAKE"
REVIEWERS = frozenset({"UANN", "UBOB"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    fake: FakeSlack
    store: SQLiteStore
    service: TriageService
    edge: SlackEdge
    url: str

    def request(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any] | str]:
        req = urllib.request.Request(self.url + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw) if raw else ""
        except json.JSONDecodeError:
            return status, raw.decode()

    def slack(
        self,
        body: str,
        content_type: str,
        *,
        age: int = 0,
        secret: str = SECRET,
        retry: int | None = None,
    ) -> tuple[int, Any]:
        ts = str(int(time.time()) - age)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(
                timestamp=ts, body=body
            ),
        }
        if retry is not None:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return self.request("/slack/events", body.encode(), headers)

    def event(self, event: dict[str, Any], event_id: str, **kw: Any) -> tuple[int, Any]:
        body = {
            "token": "x",
            "team_id": "T1",
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": event,
        }
        return self.slack(json.dumps(body), "application/json", **kw)

    def interact(self, payload: dict[str, Any]) -> tuple[int, Any]:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return self.slack(body, "application/x-www-form-urlencoded")

    def command(self, text: str, user: str = "UANN", name: str = "cmd") -> tuple[int, Any]:
        body = urllib.parse.urlencode(
            {
                "token": "x",
                "team_id": "T1",
                "channel_id": INTAKE,
                "user_id": user,
                "command": "/triage",
                "text": text,
                "trigger_id": f"trig-{name}",
                "response_url": self.fake.response_url(name),
                "api_app_id": "A1",
            }
        )
        return self.slack(body, "application/x-www-form-urlencoded")

    def feedback(self, payload: Any, secret: str = WEBHOOK_SECRET, **headers: str):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request(
            "/feedback",
            body,
            {
                "Content-Type": "application/json",
                "X-Triage-Signature": sign(body, secret),
                **headers,
            },
        )

    def posts(self) -> list[dict[str, Any]]:
        return self.fake.messages(CHANNEL)

    def wait_posts(self, n: int) -> list[dict[str, Any]]:
        assert self.fake.wait_for(lambda: len(self.posts()) >= n, timeout=20), self.posts()
        time.sleep(0.2)  # and no more than n
        return self.posts()


def settings_for(fake: FakeSlack) -> SlackSettings:
    return SlackSettings(
        bot_token="xoxb-test",
        signing_secret=SECRET,
        app_token=None,
        api_url=fake.base_url,
        channel=CHANNEL,
        intake_channels=frozenset({INTAKE}),
        webhook_secret=WEBHOOK_SECRET,
        post_interval=0.0,
    )


def make_service(store: SQLiteStore, *, duplicates: bool = True) -> TriageService:
    """The service as `serve` builds it; `duplicates=False` gives every item its own card
    (what a team with `[duplicates] enabled = false` sees)."""
    taxonomy = load_taxonomy()
    runtime = RuntimeSettings(duplicates=DuplicateSettings(enabled=duplicates))
    engine = TriageEngine(taxonomy, default_encoder(), runtime=runtime)
    return TriageService(store, engine, taxonomy, reviewers=REVIEWERS)


@contextlib.contextmanager
def running(
    store: SQLiteStore, service: TriageService, github: GitHubSettings | None = None
) -> Iterator[Stack]:
    """The Slack app on uvicorn over loopback, against a fresh fake Slack (and, with
    `github`, GitHub where those settings point)."""
    with FakeSlack() as fake:
        edge, bolt = build_slack(service, settings_for(fake), github)
        edge.start()
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_asgi(bolt, edge, settings_for(fake)),
                host="127.0.0.1",
                port=port,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.time() + 10
        while not server.started and time.time() < deadline:
            time.sleep(0.02)
        try:
            yield Stack(fake, store, service, edge, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            edge.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    store = SQLiteStore(tmp_path / "slack.db")
    try:
        with running(store, make_service(store)) as made:
            yield made
    finally:
        store.close()


@pytest.fixture
def ungrouped(tmp_path: Path) -> Iterator[Stack]:
    """A stack with duplicates turned off: look-alikes get cards of their own."""
    store = SQLiteStore(tmp_path / "slack.db")
    try:
        with running(store, make_service(store, duplicates=False)) as made:
            yield made
    finally:
        store.close()


def card_of(stack: Stack, item_id: str) -> dict[str, Any]:
    post = stack.store.get_post(item_id, f"slack:{CHANNEL}")
    assert post is not None and post.ref
    return next(m for m in stack.posts() if m["ts"] == post.ref)


def button(
    stack: Stack, action: str, item_id: str, user: str = "UANN", value: str | None = None
) -> tuple[int, Any]:
    """A click on the item's card; `value` is what the button carries (the id by default)."""
    card = card_of(stack, item_id)
    return stack.interact(
        {
            "type": "block_actions",
            "user": {"id": user},
            "trigger_id": f"trig-{action}",
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "container": {"type": "message", "channel_id": CHANNEL, "message_ts": card["ts"]},
            "channel": {"id": CHANNEL},
            "message": {"ts": card["ts"]},
            "response_url": stack.fake.response_url("button"),
            "actions": [
                {
                    "action_id": action,
                    "block_id": "triage_actions",
                    "value": item_id if value is None else value,
                    "type": "button",
                    "action_ts": str(time.time()),
                }
            ],
        }
    )


def webhook_item(stack: Stack, comment: str = "The checkout page crashes with a 500 error") -> str:
    status, body = stack.feedback(
        {"type": "bug", "rating": 1, "comment": comment, "page": "/checkout"}
    )
    assert status == 202, body
    return body["id"]


def latest_update_text(stack: Stack) -> str:
    updates = stack.fake.calls("chat.update")
    return json.dumps(updates[-1].params["blocks"], ensure_ascii=False) if updates else ""


def test_webhook_stores_then_posts_one_card_with_metadata(stack: Stack) -> None:
    item_id = webhook_item(stack, "Checkout fails, card 4111 1111 1111 1111, mail jo@example.com")
    assert stack.store.get_item(item_id) is not None
    (card,) = stack.wait_posts(1)
    assert card["metadata"] == {"event_type": "triage_card", "event_payload": {"item_id": item_id}}
    text = json.dumps(card["blocks"])
    assert (
        "[card]" in text and "[email]" in text and "4111" not in text and "jo@example" not in text
    )
    assert "Confirm" in text and "Suggested action" in text
    # The same submission again (a replay) is the same item: 202, no second card.
    status, body = stack.feedback(
        {
            "type": "bug",
            "rating": 1,
            "comment": "Checkout fails, card 4111 1111 1111 1111, mail jo@example.com",
            "page": "/checkout",
        }
    )
    assert status == 202 and body == {"id": item_id, "status": "duplicate"}
    assert len(stack.wait_posts(1)) == 1


def test_webhook_rejects_bad_requests_and_stores_nothing(stack: Stack) -> None:
    good = json.dumps({"comment": "hello there"}).encode()
    cases = [
        (stack.feedback(good, secret="wrong"), 401),
        (stack.request("/feedback", good, {"Content-Type": "application/json"}), 401),
        (stack.feedback(b"{not json"), 400),
        (stack.feedback({"comment": ""}), 400),
        (stack.feedback({"comment": "x" * 70_000}), 413),
        (stack.feedback({"comment": "\x00\x01\x7f"}), 400),  # nothing left once cleaned
    ]
    for (status, body), expected in cases:
        assert status == expected, body
        assert body["error"]
    assert stack.store.count_items() == 0
    with urllib.request.urlopen(stack.url + "/healthz", timeout=5) as resp:
        health = json.loads(resp.read())
    assert health["ok"] and health["unposted"] == 0


def test_forged_and_old_signatures_are_refused(stack: Stack) -> None:
    event = {
        "type": "message",
        "channel": INTAKE,
        "user": "UANN",
        "text": "Docs are wrong",
        "ts": f"{time.time():.6f}",
    }
    assert stack.event(event, "Ev-forged", secret="not-the-secret")[0] == 401
    assert stack.event(event, "Ev-old", age=6 * 60)[0] == 401
    time.sleep(0.3)
    assert stack.store.count_items() == 0


def test_intake_message_is_posted_once_even_when_redelivered(stack: Stack) -> None:
    ts = f"{time.time():.6f}"
    event = {
        "type": "message",
        "channel": INTAKE,
        "user": "UCUS",
        "text": "There is no guide for deploying to Kubernetes",
        "ts": ts,
    }
    assert stack.event(event, "Ev1")[0] == 200
    assert stack.event(event, "Ev1", retry=1)[0] == 200  # Slack's redelivery
    assert stack.event({**event, "channel": "COTHER"}, "Ev2")[0] == 200
    assert stack.event({**event, "bot_id": "B1", "ts": "1.0"}, "Ev3")[0] == 200
    (card,) = stack.wait_posts(1)
    assert f"archives/{INTAKE}/p{ts.replace('.', '')}" in json.dumps(card["blocks"])
    assert stack.store.count_items() == 1


def test_buttons_vote_update_the_card_and_refuse_outsiders(stack: Stack) -> None:
    item_id = webhook_item(stack)
    stack.wait_posts(1)
    triage = stack.store.latest_triage(item_id)
    assert triage is not None

    assert button(stack, "triage_confirm", item_id)[0] == 200
    assert stack.fake.wait_for(lambda: "<@UANN> confirmed" in latest_update_text(stack))
    label = stack.store.get_label(item_id)
    assert label is not None and label.category == triage.category

    assert button(stack, "triage_noise", item_id, user="UMAL")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.calls("chat.postEphemeral")))
    refusal = stack.fake.calls("chat.postEphemeral")[-1].params
    assert refusal["user"] == "UMAL" and "not on" in refusal["text"]
    assert [v.reviewer for v in stack.store.current_votes(item_id)] == ["UANN"]

    assert button(stack, "triage_noise", item_id, user="UBOB")[0] == 200
    assert stack.fake.wait_for(lambda: "<@UBOB> marked noise" in latest_update_text(stack))
    text = latest_update_text(stack)
    assert "<@UANN> confirmed" in text and "Confirm" in text  # buttons stay for others


def test_correct_opens_a_modal_and_the_submission_relabels(stack: Stack) -> None:
    item_id = webhook_item(stack)
    stack.wait_posts(1)
    # An outsider's Correct opens nothing: a private refusal instead of the modal.
    assert button(stack, "triage_correct", item_id, user="UMAL")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.calls("chat.postEphemeral")))
    refusal = stack.fake.calls("chat.postEphemeral")[-1].params
    assert refusal["user"] == "UMAL" and refusal["text"] == NOT_A_REVIEWER
    assert not stack.fake.calls("views.open")

    assert button(stack, "triage_correct", item_id)[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.calls("views.open")))
    view = stack.fake.calls("views.open")[-1].params["view"]
    assert view["callback_id"] == "triage_correct_view"
    submitted = {
        **view,
        "id": "V1",
        "state": {
            "values": {
                "category": {
                    "value": {"type": "static_select", "selected_option": {"value": "content-gap"}}
                },
                "severity": {
                    "value": {"type": "static_select", "selected_option": {"value": "low"}}
                },
                "action": {
                    "value": {"type": "plain_text_input", "value": "Document the checkout limits"}
                },
            }
        },
    }
    status, _ = stack.interact(
        {
            "type": "view_submission",
            "user": {"id": "UBOB"},
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "view": submitted,
        }
    )
    assert status == 200
    assert stack.fake.wait_for(lambda: stack.store.get_label(item_id) is not None)
    label = stack.store.get_label(item_id)
    assert (label.category, label.severity, label.action) == (
        "content-gap",
        "low",
        "Document the checkout limits",
    )
    assert stack.fake.wait_for(lambda: "<@UBOB> → content-gap / low" in latest_update_text(stack))

    # The same modal submitted by an outsider (a forged or forwarded view): not stored.
    refusals = len(stack.fake.calls("chat.postEphemeral"))
    forged = {**submitted, "id": "V3"}
    status, _ = stack.interact(
        {
            "type": "view_submission",
            "user": {"id": "UMAL"},
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "view": forged,
        }
    )
    assert status == 200
    assert stack.fake.wait_for(lambda: len(stack.fake.calls("chat.postEphemeral")) > refusals)
    refusal = stack.fake.calls("chat.postEphemeral")[-1].params
    assert refusal["user"] == "UMAL" and refusal["text"] == NOT_A_REVIEWER
    assert [v.reviewer for v in stack.store.current_votes(item_id)] == ["UBOB"]


def test_reactions_vote_merge_and_retract(stack: Stack) -> None:
    item_id = webhook_item(stack)
    (card,) = stack.wait_posts(1)

    def react(kind: str, name: str, event_id: str, user: str = "UANN") -> None:
        event = {
            "type": kind,
            "user": user,
            "reaction": name,
            "event_ts": f"{time.time():.6f}",
            "item": {"type": "message", "channel": CHANNEL, "ts": card["ts"]},
        }
        assert stack.event(event, event_id)[0] == 200

    react("reaction_added", "memo", "EvR1")
    assert stack.fake.wait_for(lambda: stack.store.get_label(item_id) is not None)
    react("reaction_added", "fire", "EvR2")
    assert stack.fake.wait_for(
        lambda: (lab := stack.store.get_label(item_id)) is not None and lab.severity == "critical"
    )
    label = stack.store.get_label(item_id)
    assert label.category == "content-gap"  # the severity reaction kept the category vote
    react("reaction_removed", "white_check_mark", "EvR3")  # not what the current vote rests on
    time.sleep(0.3)
    assert stack.store.get_label(item_id) is not None
    react("reaction_removed", "fire", "EvR4")
    assert stack.fake.wait_for(lambda: stack.store.get_label(item_id) is None)
    assert len(stack.store.events(item_id)) == 3
    react("reaction_added", "white_check_mark", "EvR5", user="UMAL")
    assert stack.fake.wait_for(lambda: bool(stack.fake.calls("chat.postEphemeral")))
    assert len(stack.store.events(item_id)) == 3


def test_a_reviewer_taken_off_the_list_can_neither_vote_nor_retract(tmp_path: Path) -> None:
    """Removing a reaction is a vote too (a retraction): the rule applies to it."""

    def react(stack: Stack, kind: str, name: str, event_id: str, ts: str) -> None:
        event = {
            "type": kind,
            "user": "UANN",
            "reaction": name,
            "event_ts": f"{time.time():.6f}",
            "item": {"type": "message", "channel": CHANNEL, "ts": ts},
        }
        assert stack.event(event, event_id)[0] == 200  # stored (or refused) before the ack

    store = SQLiteStore(tmp_path / "slack.db")
    try:
        with running(store, make_service(store)) as before:
            item_id = webhook_item(before)
            (card,) = before.wait_posts(1)
            react(before, "reaction_added", "memo", "EvA1", card["ts"])
            assert before.fake.wait_for(lambda: store.get_label(item_id) is not None)
        taxonomy = load_taxonomy()
        engine = TriageEngine(taxonomy, default_encoder())
        narrower = TriageService(store, engine, taxonomy, reviewers=frozenset({"UBOB"}))
        with running(store, narrower) as after:  # restarted with TRIAGE_REVIEWERS=UBOB
            react(after, "reaction_removed", "memo", "EvA2", card["ts"])
            react(after, "reaction_added", "fire", "EvA3", card["ts"])
            assert after.fake.wait_for(lambda: bool(after.fake.calls("chat.postEphemeral")))
            time.sleep(0.3)  # and no second one: a removal by an outsider is ignored quietly
            (refusal,) = after.fake.calls("chat.postEphemeral")
            assert refusal.params["text"] == NOT_A_REVIEWER
            label = store.get_label(item_id)
            assert label is not None and label.category == "content-gap"
            assert len(store.events(item_id)) == 1
    finally:
        store.close()


def test_slash_commands(stack: Stack) -> None:
    assert stack.command("The docs search returns nothing for 'router'", name="submit")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("submit")))
    reply = stack.fake.responses("submit")[-1]
    assert reply["response_type"] == "ephemeral" and "Triaged `fb_" in reply["text"]
    stack.wait_posts(1)

    assert stack.command("", name="empty")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.calls("views.open")))
    assert stack.fake.calls("views.open")[-1].params["view"]["callback_id"] == "triage_submit_view"

    for word in ("help", "queue", "stats"):
        assert stack.command(word, name=word)[0] == 200
        assert stack.fake.wait_for(lambda w=word: bool(stack.fake.responses(w)))
    assert "/triage queue" in stack.fake.responses("help")[-1]["text"]
    assert "Review queue" in json.dumps(stack.fake.responses("queue")[-1])
    assert "validated of 1 items" in stack.fake.responses("stats")[-1]["text"]

    # Someone outside TRIAGE_REVIEWERS may submit and read the help, not the queue or stats.
    for word in ("help", "queue", "stats", "Export to CSV does nothing"):
        name = f"mal-{word.split()[0].lower()}"
        assert stack.command(word, user="UMAL", name=name)[0] == 200
        assert stack.fake.wait_for(lambda n=name: bool(stack.fake.responses(n)))
    assert "/triage queue" in stack.fake.responses("mal-help")[-1]["text"]
    assert "Triaged `fb_" in stack.fake.responses("mal-export")[-1]["text"]
    for name in ("mal-queue", "mal-stats"):
        (reply,) = stack.fake.responses(name)
        assert reply["response_type"] == "ephemeral" and reply["text"] == REVIEWERS_ONLY
        assert "blocks" not in reply and "validated" not in json.dumps(reply)


def test_submit_modal_creates_an_item(stack: Stack) -> None:
    view = {
        "id": "V2",
        "callback_id": "triage_submit_view",
        "type": "modal",
        "state": {
            "values": {
                "text": {
                    "value": {"type": "plain_text_input", "value": "Please add SSO with Okta"}
                },
                "form_type": {
                    "value": {"type": "static_select", "selected_option": {"value": "feature"}}
                },
                "page": {"value": {"type": "plain_text_input", "value": None}},
            }
        },
    }
    status, _ = stack.interact(
        {
            "type": "view_submission",
            "user": {"id": "UANN"},
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "view": view,
        }
    )
    assert status == 200
    (card,) = stack.wait_posts(1)
    assert "feature-request" in json.dumps(card["blocks"])


def test_ack_comes_before_the_slow_work(stack: Stack) -> None:
    item_id = webhook_item(stack)
    stack.wait_posts(1)
    stack.fake.set_latency("chat.update", 2.5)
    started = time.monotonic()
    assert button(stack, "triage_confirm", item_id)[0] == 200
    acked = time.monotonic() - started
    assert "edited" not in card_of(stack, item_id)  # the card update is still on its way
    assert acked < 2.5
    assert stack.fake.wait_for(lambda: "edited" in card_of(stack, item_id), timeout=10)


def test_a_429_storm_slows_posting_but_every_card_arrives_once(stack: Stack) -> None:
    stack.fake.fail_next("chat.postMessage", times=3, status=429, retry_after=1)
    ids = [webhook_item(stack, f"Broken link number {i} on the blog") for i in range(3)]
    posts = stack.wait_posts(3)
    assert sorted(p["metadata"]["event_payload"]["item_id"] for p in posts) == sorted(ids)
    assert len([c for c in stack.fake.calls("chat.postMessage") if c.failed]) == 3


def test_restart_posts_what_was_left_and_reconciles_a_post_slack_already_has(
    tmp_path: Path,
) -> None:
    with FakeSlack() as fake:
        store = SQLiteStore(tmp_path / "restart.db")
        service = make_service(store)
        settings = settings_for(fake)
        edge, _ = build_slack(service, settings)
        # Process 1 accepted two items but died before posting them (no poster running);
        # for the second, it died after Slack accepted the post but before recording it.
        first = edge.accept(Submission(text="Login page is blank", source="t"))
        second = edge.accept(Submission(text="Pricing page typo", source="t"))
        target = edge.target
        assert store.claim_post(target, "dead-worker", lease_seconds=0.0) is not None
        crashed = store.get_post(second.item_id, target) or store.get_post(first.item_id, target)
        claimed = (
            first.item_id
            if store.get_post(first.item_id, target).status == "claimed"
            else second.item_id
        )
        fake.add_message(
            CHANNEL,
            text="card",
            metadata={"event_type": "triage_card", "event_payload": {"item_id": claimed}},
        )
        assert crashed is not None

        # Process 2 starts on the same store.
        restarted = SQLiteStore(tmp_path / "restart.db")
        edge2, _ = build_slack(make_service(restarted), settings)
        edge2.start()
        try:
            assert fake.wait_for(lambda: restarted.count_unposted(target) == 0, timeout=20)
            time.sleep(0.3)
            cards = [m for m in fake.messages(CHANNEL) if m.get("metadata")]
            ids = [m["metadata"]["event_payload"]["item_id"] for m in cards]
            assert sorted(ids) == sorted([first.item_id, second.item_id])  # each exactly once
            assert fake.calls("conversations.history")  # looked before reposting
        finally:
            edge2.stop()
            restarted.close()
            store.close()


def test_socket_mode_against_a_local_fake_connection(tmp_path: Path) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from tests.fakes.slack import FakeSocketMode

    with FakeSocketMode() as sock, FakeSlack(socket_mode=sock) as fake:
        store = SQLiteStore(tmp_path / "socket.db")
        settings = SlackSettings(
            bot_token="xoxb-test",
            signing_secret=None,
            app_token="xapp-test",
            api_url=fake.base_url,
            channel=CHANNEL,
            intake_channels=frozenset({INTAKE}),
            webhook_secret=None,
            post_interval=0.0,
        )
        edge, bolt = build_slack(make_service(store), settings)
        edge.start()
        handler = SocketModeHandler(bolt, app_token="xapp-test", web_client=edge.client)
        handler.connect()
        try:
            assert sock.wait_connected()
            ts = f"{time.time():.6f}"
            envelope = sock.send(
                "events_api",
                {
                    "type": "event_callback",
                    "event_id": "EvS1",
                    "team_id": "T1",
                    "event": {
                        "type": "message",
                        "channel": INTAKE,
                        "user": "UCUS",
                        "text": "The pricing page says 10 seats but checkout allows 5",
                        "ts": ts,
                    },
                },
            )
            assert sock.wait_ack(envelope)["envelope_id"] == envelope
            assert fake.wait_for(lambda: len(fake.messages(CHANNEL)) == 1, timeout=20)
            card = fake.messages(CHANNEL)[0]
            item_id = card["metadata"]["event_payload"]["item_id"]
            assert fake.wait_for(
                lambda: (
                    (store.get_post(item_id, edge.target) or None) is not None
                    and store.get_post(item_id, edge.target).status == "posted"
                )
            )
            click = sock.send(
                "interactive",
                {
                    "type": "block_actions",
                    "user": {"id": "UANN"},
                    "trigger_id": "t1",
                    "team": {"id": "T1"},
                    "api_app_id": "A1",
                    "container": {
                        "type": "message",
                        "channel_id": CHANNEL,
                        "message_ts": card["ts"],
                    },
                    "actions": [
                        {
                            "action_id": "triage_confirm",
                            "block_id": "triage_actions",
                            "value": item_id,
                            "type": "button",
                            "action_ts": "1",
                        }
                    ],
                },
            )
            sock.wait_ack(click)
            assert fake.wait_for(lambda: store.get_label(item_id) is not None)
            assert fake.wait_for(lambda: bool(fake.calls("chat.update")))
        finally:
            sock.close_client(handler)
            edge.stop()
            store.close()


def test_serve_slack_as_a_user_runs_it(tmp_path: Path) -> None:
    """`triage-bot serve slack --port P` in a real process, configured from the environment."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    missing = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "slack"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
        timeout=60,
    )
    assert missing.returncode == 2 and "SLACK_BOT_TOKEN is not set" in missing.stderr

    with FakeSlack() as fake:
        port = free_port()
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.base_url,
            "TRIAGE_SLACK_CHANNEL": CHANNEL,
            "TRIAGE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "TRIAGE_SLACK_POST_INTERVAL": "0",
            "TRIAGE_STORE_URL": f"sqlite:///{tmp_path / 'served.db'}",
            "TRIAGE_REVIEWERS": "*",  # said explicitly: anyone in the channel may vote
        }
        env.pop("SLACK_APP_TOKEN", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "slack", "--port", str(port)],
            cwd=repo,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"

            def healthy() -> bool:
                try:
                    with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                        return resp.status == 200
                except OSError:
                    return False

            assert fake.wait_for(healthy, timeout=60), "server did not come up"
            body = json.dumps({"type": "bug", "comment": "The search box does nothing"}).encode()
            req = urllib.request.Request(
                url + "/feedback",
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "X-Triage-Signature": sign(body, WEBHOOK_SECRET),
                },
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 202
                item_id = json.loads(resp.read())["id"]
            assert fake.wait_for(lambda: len(fake.messages(CHANNEL)) == 1, timeout=20)
            card = fake.messages(CHANNEL)[0]
            assert card["metadata"]["event_payload"]["item_id"] == item_id
        finally:
            proc.terminate()
            log = proc.communicate(timeout=20)[1]
    # Without --host it listens on loopback only, and says that anyone may vote.
    assert f"Slack HTTP mode on http://127.0.0.1:{port} " in log
    assert "TRIAGE_REVIEWERS=*: anyone who can see the triage channel may vote" in log


def test_with_an_llm_that_never_answers_acks_stay_fast_and_cards_follow_the_fallback(
    tmp_path: Path,
) -> None:
    """TRIAGE_BACKEND=llm with the default 10 s timeout and an endpoint that accepts the
    connection and never replies: Slack's 3-second limit is still met on every path."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # connections are queued, never read or answered
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
    settings = Settings(
        store_url=f"sqlite:///{tmp_path / 'llm.db'}",
        config_path=DEFAULT_CONFIG,
        reviewers=REVIEWERS,
        backend="llm",
        llm=LLMSettings(model="any", base_url=url, api_key="k"),
    )
    c = build(settings, encoder=default_encoder())
    assert isinstance(c.store, SQLiteStore) and c.settings.llm.timeout_s == 10.0
    try:
        with running(c.store, c.service) as stack:
            acks = []
            started = time.monotonic()
            status, _ = stack.event(
                {
                    "type": "message",
                    "channel": INTAKE,
                    "user": "UCUS",
                    "text": "The contact form gives a 500 error",
                    "ts": f"{time.time():.6f}",
                },
                "Ev-llm-1",
            )
            acks.append((status, time.monotonic() - started))
            started = time.monotonic()
            status, _ = stack.command("Search finds nothing for 'router'", name="llm")
            acks.append((status, time.monotonic() - started))
            started = time.monotonic()
            status, _ = stack.feedback({"comment": "Checkout is down for everyone"})
            acks.append((status, time.monotonic() - started))
            assert [s for s, _ in acks] == [200, 200, 202]
            assert max(t for _, t in acks) < 1.0, acks
            cards = stack.wait_posts(3)  # after the fallback (the LLM timed out)
            assert all("LLM fallback" in json.dumps(card["blocks"]) for card in cards)
            assert stack.fake.wait_for(lambda: bool(stack.fake.responses("llm")), timeout=30)
            assert "Triaged `fb_" in stack.fake.responses("llm")[-1]["text"]
    finally:
        c.close()
        silent.close()


HOSTILE_COMMENT = (
    "<!channel> <!here> <@U0ADMIN> <!subteam^S123> "
    "<https://evil.example/login|your SSO session expired>"
)
HOSTILE_PAGE = "https://shop.example/x|ok> <!everyone> <https://evil.example"


def test_hostile_and_oversized_forms_post_literal_cards_within_block_kit(stack: Stack) -> None:
    """A visitor's markup reaches the channel as text, and a card too big for Block Kit as
    built before clipping is posted whole and in place: nothing behind it waits."""
    status, body = stack.feedback({"type": "bug", "comment": HOSTILE_COMMENT, "page": HOSTILE_PAGE})
    assert status == 202, body
    hostile = body["id"]
    oversized = {
        "type": "t" * 10_000,
        "comment": "\n".join(f"line {i}" for i in range(1450)),
        "page": "https://shop.example/" + "p" * 1500,
    }
    status, body = stack.feedback(oversized)
    assert status == 202, body
    big = body["id"]
    behind = [
        webhook_item(stack, text)
        for text in ("The search box finds nothing", "Exporting a report as CSV times out")
    ]
    stack.wait_posts(4)

    for item_id in [hostile, big, *behind]:
        post = stack.store.get_post(item_id, f"slack:{CHANNEL}")
        assert post is not None and post.status == "posted" and post.attempts == 1, post
    for call in stack.fake.calls("chat.postMessage"):
        payload = {"text": call.params["text"], "blocks": call.params["blocks"]}
        assert slack_message_problems(payload) == []
        assert all(slack_markup_problems(text) == [] for text in mrkdwn_texts(payload))
        assert call.params["unfurl_links"] is False and call.params["unfurl_media"] is False

    card = card_of(stack, hostile)
    shown = json.dumps(card, ensure_ascii=False)
    for raw in ("<!channel>", "<!here>", "<@U0ADMIN>", "<!subteam", "<https://evil", "<!everyone>"):
        assert raw not in shown, raw
    escaped = "&lt;!channel&gt; &lt;!here&gt; &lt;@U0ADMIN&gt; &lt;!subteam^S123&gt;"
    assert escaped in card["text"] and escaped in card["blocks"][1]["text"]["text"]
    facts = card["blocks"][2]["elements"][0]["text"]
    assert "source message" not in facts and "x|ok&gt; &lt;!everyone&gt;" in facts
    full = json.dumps(card_of(stack, big)["blocks"])
    assert "Suggested action" in full and "could not be posted" not in full


def submit_correction(stack: Stack, view: dict[str, Any], user: str, category: str) -> int:
    submitted = {
        **view,
        "id": "V9",
        "state": {
            "values": {
                "category": {
                    "value": {"type": "static_select", "selected_option": {"value": category}}
                },
                "severity": {
                    "value": {"type": "static_select", "selected_option": {"value": "low"}}
                },
            }
        },
    }
    status, _ = stack.interact(
        {
            "type": "view_submission",
            "user": {"id": user},
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "view": submitted,
        }
    )
    return status


def test_ids_that_ride_as_digests_vote_through_the_card_they_are_on(stack: Stack) -> None:
    """An id kept from a data set that cannot ride in a button (`#`-led, over 2,000
    characters) or in the modal's 3,000 of JSON (1,500 `é`, 9,000 once escaped) rides as a
    digest; the click and the modal map it back through the card, and vote on the item."""
    hashed = to_item(Submission(text="Export to CSV drops the last row", source="file"))
    hashed.id = "#row-17"
    accented = to_item(Submission(text="The café menu page is blank", source="file"))
    accented.id = "é" * 1500
    for item in (hashed, accented):
        assert stack.store.add_item(item, [f"slack:{CHANNEL}"])
    stack.edge.outbox.wake()
    stack.wait_posts(2)

    value = cards.item_value(hashed.id)
    assert value.startswith(cards.DIGEST_MARK) and value != hashed.id
    assert button(stack, "triage_confirm", hashed.id, value=value)[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.store.current_votes(hashed.id)))
    assert [v.reviewer for v in stack.store.current_votes(hashed.id)] == ["UANN"]
    assert not stack.fake.calls("chat.postEphemeral")  # no "unknown item"
    # A digest clicked on another item's card names nothing: refused, nothing stored.
    assert button(stack, "triage_noise", accented.id, value=value, user="UBOB")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.calls("chat.postEphemeral")))
    assert "Could not record" in stack.fake.calls("chat.postEphemeral")[-1].params["text"]
    assert stack.store.current_votes(accented.id) == []
    assert [v.reviewer for v in stack.store.current_votes(hashed.id)] == ["UANN"]

    for item in (hashed, accented):
        opened = len(stack.fake.calls("views.open"))
        carried = cards.item_value(item.id)
        assert button(stack, "triage_correct", item.id, user="UBOB", value=carried)[0] == 200
        assert stack.fake.wait_for(lambda n=opened: len(stack.fake.calls("views.open")) > n)
        view = stack.fake.calls("views.open")[-1].params["view"]
        assert slack_modal_problems(view) == []
        assert json.loads(view["private_metadata"])["item_id"].startswith(cards.DIGEST_MARK)
        assert submit_correction(stack, view, "UBOB", "content-gap") == 200
        assert stack.fake.wait_for(
            lambda item=item: any(v.reviewer == "UBOB" for v in stack.store.current_votes(item.id))
        )
        label = stack.store.get_label(item.id)
        assert label is not None and label.severity == "low"


def test_a_reviewers_edited_action_reaches_the_next_similar_card(ungrouped: Stack) -> None:
    stack = ungrouped
    first = webhook_item(stack, "The checkout page crashes with a 500 error on submit")
    stack.wait_posts(1)
    triage = stack.store.latest_triage(first)
    assert triage is not None
    assert button(stack, "triage_correct", first)[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.calls("views.open")))
    view = stack.fake.calls("views.open")[-1].params["view"]
    edited = "Roll back the payments deploy, then page the payments on-call"
    submitted = {
        **view,
        "id": "VACT",
        "state": {
            "values": {
                "category": {
                    "value": {
                        "type": "static_select",
                        "selected_option": {"value": triage.category},
                    }
                },
                "severity": {
                    "value": {"type": "static_select", "selected_option": {"value": "critical"}}
                },
                "action": {"value": {"type": "plain_text_input", "value": edited}},
            }
        },
    }
    status, _ = stack.interact(
        {
            "type": "view_submission",
            "user": {"id": "UANN"},
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "view": submitted,
        }
    )
    assert status == 200
    assert stack.fake.wait_for(lambda: (stack.store.get_label(first) or triage).action == edited)
    second = webhook_item(stack, "The checkout page crashes with a 500 error when I pay")
    posts = stack.wait_posts(2)
    card = next(m for m in posts if cards.card_item_id(m) == second)
    shown = json.dumps(card["blocks"], ensure_ascii=False)
    assert edited in shown
    assert f"action as reviewers wrote it for {first}" in shown
    unrelated = webhook_item(stack, "Please add a dark mode to the documentation site")
    posts = stack.wait_posts(3)
    other = next(m for m in posts if cards.card_item_id(m) == unrelated)
    assert edited not in json.dumps(other["blocks"], ensure_ascii=False)


def test_triage_digest_posts_one_message_with_one_chart_for_reviewers_only(stack: Stack) -> None:
    webhook_item(stack, "The checkout page crashes with a 500 error")
    webhook_item(stack, "Please add a dark mode to the dashboard")
    stack.wait_posts(2)
    assert stack.command("digest", user="UMAL", name="outsider")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("outsider")))
    assert stack.fake.responses("outsider")[-1]["text"] == REVIEWERS_ONLY
    assert not stack.fake.calls("files.completeUploadExternal")

    assert stack.command("digest 7d", user="UANN", name="digest")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("digest")))
    assert "Posted the digest" in stack.fake.responses("digest")[-1]["text"]
    (done,) = stack.fake.calls("files.completeUploadExternal")
    posted = [m for m in stack.posts() if m.get("files")]
    assert len(posted) == 1 and len(posted[0]["files"]) == 1
    assert "*2* items" in posted[0]["text"]
    assert stack.fake.upload(posted[0]["files"][0]["id"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert done.params["channel_id"] == CHANNEL

    assert stack.command("digest soon", user="UANN", name="bad")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("bad")))
    assert "Not posted" in stack.fake.responses("bad")[-1]["text"]


def test_a_scheduled_digest_is_posted_once_by_the_running_bot(stack: Stack) -> None:
    from core.digest import DigestSchedule
    from core.runtime import DigestSettings

    webhook_item(stack, "The checkout page crashes with a 500 error")
    stack.wait_posts(1)
    stack.edge.digests = DigestSchedule(DigestSettings(every="daily", at="09:00"))
    slot = stack.edge.digests.latest_slot(datetime.now(UTC))
    assert slot is not None
    stack.edge.scheduled_digest(now=slot + timedelta(minutes=5))
    stack.edge.scheduled_digest(now=slot + timedelta(minutes=35))  # the same slot: not again
    assert stack.fake.wait_for(lambda: bool(stack.fake.calls("files.completeUploadExternal")))
    time.sleep(0.5)
    assert len(stack.fake.calls("files.completeUploadExternal")) == 1


def test_a_dispute_gets_one_reply_in_the_cards_thread_and_the_card_stays_one_message(
    stack: Stack,
) -> None:
    item_id = webhook_item(stack)
    stack.wait_posts(1)
    assert button(stack, "triage_confirm", item_id, user="UANN")[0] == 200
    assert button(stack, "triage_noise", item_id, user="UBOB")[0] == 200
    card = stack.store.get_post(item_id, f"slack:{CHANNEL}")
    assert card is not None
    assert stack.fake.wait_for(lambda: any(m.get("thread_ts") == card.ref for m in stack.posts()))
    (reply,) = [m for m in stack.posts() if m.get("thread_ts") == card.ref]
    assert "Reviewers disagree" in reply["text"]
    assert "<@UANN>" in reply["text"] and "<@UBOB>" in reply["text"]
    assert reply["metadata"]["event_type"] == "triage_dispute"
    # Another vote on the disputed card: no second reply, and still one top-level card.
    assert button(stack, "triage_confirm", item_id, user="UBOB")[0] == 200
    time.sleep(0.5)
    assert len([m for m in stack.posts() if m.get("thread_ts") == card.ref]) == 1
    assert len([m for m in stack.posts() if not m.get("thread_ts")]) == 1


def menu_pick(stack: Stack, item_id: str, action: str, picked: str, user: str = "UANN"):
    card = card_of(stack, item_id)
    return stack.interact(
        {
            "type": "block_actions",
            "user": {"id": user},
            "trigger_id": "trig-menu",
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "container": {"type": "message", "channel_id": CHANNEL, "message_ts": card["ts"]},
            "channel": {"id": CHANNEL},
            "message": {"ts": card["ts"]},
            "actions": [
                {
                    "action_id": action,
                    "block_id": "triage_actions",
                    "type": "static_select",
                    "selected_option": {
                        "text": {"type": "plain_text", "text": "x"},
                        "value": picked,
                    },
                    "action_ts": str(time.time()),
                }
            ],
        }
    )


def test_twenty_reports_of_one_problem_make_one_card_and_nineteen_thread_replies(
    stack: Stack,
) -> None:
    ids = []
    for i in range(20):
        ids.append(webhook_item(stack, report(i)))
        if i == 0:  # the first card is out before the others arrive
            stack.wait_posts(1)
    other = webhook_item(stack, "Please add a dark mode to the dashboard")
    canonical = stack.store.get_post(ids[0], f"slack:{CHANNEL}")
    assert canonical is not None and canonical.ref

    def settled() -> bool:
        replies = [m for m in stack.posts() if m.get("thread_ts") == canonical.ref]
        card = card_of(stack, ids[0])
        return len(replies) == 19 and "20 reports" in json.dumps(card["blocks"])

    assert stack.fake.wait_for(settled, timeout=30), [m.get("text") for m in stack.posts()]
    group = json.dumps(card_of(stack, ids[0])["blocks"], ensure_ascii=False)
    assert "20 reports* of this · latest from webhook on `/checkout`" in group
    top = [m for m in stack.posts() if not m.get("thread_ts")]
    assert sorted(cards.card_item_id(m) for m in top) == sorted([ids[0], other])
    # Every report stays an item of its own, grouped under the first.
    assert sorted(link.item_id for link in stack.store.duplicates_of(ids[0])) == sorted(ids[1:])
    assert stack.store.duplicates_of(other) == []
    reply = next(m for m in stack.posts() if cards.card_item_id(m) == ids[5])
    assert reply["thread_ts"] == canonical.ref and "Not a duplicate" in json.dumps(reply)
    # A vote on a reply counts for the group's card.
    status, _ = stack.interact(
        {
            "type": "block_actions",
            "user": {"id": "UANN"},
            "team": {"id": "T1"},
            "container": {"type": "message", "channel_id": CHANNEL, "message_ts": reply["ts"]},
            "actions": [{"action_id": "triage_confirm", "value": ids[5], "type": "button"}],
        }
    )
    assert status == 200
    label = stack.store.get_label(ids[0])
    assert label is not None and stack.store.get_label(ids[5]) is None
    assert {row["id"]: row["duplicate_of"] for row in stack.service.export_labels()} == {
        ids[0]: None,
        **{i: ids[0] for i in ids[1:]},
    }


def test_not_a_duplicate_splits_and_duplicate_of_merges_both_stored_as_votes(
    stack: Stack,
) -> None:
    first = webhook_item(stack, report(0))
    stack.wait_posts(1)
    second = webhook_item(stack, report(1))
    other = webhook_item(stack, "Please add a dark mode to the dashboard")
    canonical = stack.store.get_post(first, f"slack:{CHANNEL}")
    assert canonical is not None
    assert stack.fake.wait_for(
        lambda: (
            stack.store.get_post(second, f"slack:{CHANNEL}").status == "posted"
            and stack.store.get_post(other, f"slack:{CHANNEL}").status == "posted"
        )
    )
    reply = card_of(stack, second)
    assert reply["thread_ts"] == canonical.ref
    # An outsider's split is refused and changes nothing.
    stack.interact(
        {
            "type": "block_actions",
            "user": {"id": "UEVE"},
            "team": {"id": "T1"},
            "container": {"type": "message", "channel_id": CHANNEL, "message_ts": reply["ts"]},
            "actions": [{"action_id": cards.SPLIT_ACTION, "value": second, "type": "button"}],
        }
    )
    assert stack.store.get_duplicate(second) is not None
    assert stack.fake.wait_for(lambda: stack.fake.calls("chat.postEphemeral"))
    # A reviewer's split: its own top-level card, the old reply says so, a vote is stored.
    status, _ = stack.interact(
        {
            "type": "block_actions",
            "user": {"id": "UANN"},
            "team": {"id": "T1"},
            "container": {"type": "message", "channel_id": CHANNEL, "message_ts": reply["ts"]},
            "actions": [{"action_id": cards.SPLIT_ACTION, "value": second, "type": "button"}],
        }
    )
    assert status == 200 and stack.store.get_duplicate(second) is None

    def split_off() -> bool:
        post = stack.store.get_post(second, f"slack:{CHANNEL}")
        return post is not None and post.ref != reply["ts"] and not post.stale

    assert stack.fake.wait_for(split_off)
    new_card = card_of(stack, second)
    assert "thread_ts" not in new_card and "Confirm" in json.dumps(new_card["blocks"])
    assert stack.fake.wait_for(
        lambda: (
            "Not a duplicate"
            in json.dumps(next(m for m in stack.posts() if m["ts"] == reply["ts"]))
        )
    )
    (split,) = stack.store.duplicate_votes()
    assert (split.item_id, split.other_id, split.same, split.reviewer) == (
        second,
        first,
        False,
        "UANN",
    )
    # "Duplicate of..." offers the most similar open cards; picking one merges.
    menu = next(
        e
        for b in card_of(stack, second)["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("action_id") == cards.DUPLICATE_ACTION
    )
    assert menu["options"][0]["value"] == first
    assert menu_pick(stack, second, cards.DUPLICATE_ACTION, first)[0] == 200
    link = stack.store.get_duplicate(second)
    assert link is not None and (link.canonical_id, link.by) == (first, "UANN")
    assert [v.same for v in stack.store.duplicate_votes()] == [False, True]
    assert stack.fake.wait_for(lambda: "Duplicate of" in json.dumps(card_of(stack, second)))
    assert stack.fake.wait_for(lambda: "2 reports" in json.dumps(card_of(stack, first)))


def test_triage_themes_lists_the_periods_themes_for_reviewers_only(stack: Stack) -> None:
    for text in (
        "Please add a dark mode to the dashboard <!channel>",
        "A dark theme for the dashboard would be great",
        "Dark mode please, the white dashboard hurts my eyes",
        "Exporting a report as CSV times out",
    ):
        webhook_item(stack, text)
    stack.wait_posts(4)
    assert stack.command("themes", user="UMAL", name="outsider")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("outsider")))
    assert stack.fake.responses("outsider")[-1]["text"] == REVIEWERS_ONLY
    assert stack.command("themes 7d", user="UANN", name="themes")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("themes")))
    text = stack.fake.responses("themes")[-1]["text"]
    assert "*Themes*" in text and "3 report(s), new" in text and "dark" in text
    assert "1 report(s) in no theme" in text
    assert "<!channel>" not in text  # an example is shown literally
    assert stack.command("themes soon", user="UANN", name="bad")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("bad")))
    assert "No themes: period 'soon'" in stack.fake.responses("bad")[-1]["text"]
    # A reviewer names the theme from chat; the name is kept, escaped when shown.
    key = text.split("`")[1]
    assert stack.command(f"themes rename {key} Dark mode <!here>", user="UANN", name="rn")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("rn")))
    assert "is now “Dark mode &lt;!here&gt;”" in stack.fake.responses("rn")[-1]["text"]
    assert stack.command("themes", user="UANN", name="again")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("again")))
    assert "Dark mode &lt;!here&gt;" in stack.fake.responses("again")[-1]["text"]
    # A key listed over another period names that period's theme: `since:` at the end.
    assert stack.command("themes 30d", user="UANN", name="month")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("month")))
    month_key = stack.fake.responses("month")[-1]["text"].split("`")[1]
    assert (
        stack.command(f"themes rename {month_key} Dark UI since:30d", user="UANN", name="m")[0]
        == 200
    )
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("m")))
    assert "is now “Dark UI”" in stack.fake.responses("m")[-1]["text"]
    assert stack.command(f"themes rename {key} x since:soon", user="UANN", name="badp")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("badp")))
    assert "Not changed: period" in stack.fake.responses("badp")[-1]["text"]
    assert stack.command("themes rename t000000 x", user="UANN", name="nokey")[0] == 200
    assert stack.fake.wait_for(lambda: bool(stack.fake.responses("nokey")))
    assert "Not changed: no theme" in stack.fake.responses("nokey")[-1]["text"]
