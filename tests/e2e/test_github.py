"""Cards to GitHub issues and back, end to end: the Slack app over real HTTP (signed
requests, the fake Slack Web API), the bot's GitHub client against a local fake of GitHub's
REST API (tests/fakes/github.py), and signed webhook deliveries into POST /github."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import default_encoder
from bot.github.settings import GitHubSettings
from core.escalation import Escalator
from core.issues import OUTCOME_SOURCE
from core.models import utcnow
from core.owners import Router
from core.rewards import OUTCOME_REVIEWER
from core.runtime import EscalationSettings, OwnerSpec, RouteSpec, RoutingSettings, RuntimeSettings
from core.service import TriageService, make_item
from core.store.sqlite import SQLiteStore
from core.taxonomy import load_taxonomy
from core.triage import TriageEngine
from tests.e2e.test_slack import CHANNEL, Stack, button, make_service, running, webhook_item
from tests.fakes.github import FakeGitHub, deliver_webhook

pytestmark = pytest.mark.slow

REPO = "acme/web"
HOOK_SECRET = "hook-secret"


@dataclass
class Both:
    slack: Stack
    gh: FakeGitHub

    def issues(self) -> list[dict[str, Any]]:
        return self.gh.issues(REPO)

    def deliver(self, payload: dict[str, Any], **kw: Any) -> tuple[int, Any]:
        return deliver_webhook(self.slack.url + "/github", payload, HOOK_SECRET, **kw)

    def card_text(self, item_id: str) -> str:
        post = self.slack.store.get_post(item_id, f"slack:{CHANNEL}")
        assert post is not None and post.ref
        message = next(m for m in self.slack.posts() if m["ts"] == post.ref)
        return json.dumps(message.get("blocks"), ensure_ascii=False)


def github_settings(gh: FakeGitHub, **kw: Any) -> GitHubSettings:
    return GitHubSettings(
        repo=REPO, token="ghp-test", api_url=gh.base_url, webhook_secret=HOOK_SECRET, **kw
    )


@contextlib.contextmanager
def both(tmp_path: Path, **kw: Any) -> Iterator[Both]:
    store = SQLiteStore(tmp_path / "gh.db")
    try:
        lag = kw.pop("search_lag", 0)
        service = make_service(store, duplicates=kw.pop("duplicates", True))
        with (
            FakeGitHub(search_lag=lag) as gh,
            running(store, service, github_settings(gh, **kw)) as slack,
        ):
            yield Both(slack, gh)
    finally:
        store.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Both]:
    with both(tmp_path) as made:
        yield made


def open_modal(s: Both, item_id: str, user: str = "UANN") -> dict[str, Any]:
    before = len(s.slack.fake.calls("views.open"))
    assert button(s.slack, "triage_issue", item_id, user=user)[0] == 200
    assert s.slack.fake.wait_for(lambda: len(s.slack.fake.calls("views.open")) > before)
    return s.slack.fake.calls("views.open")[-1].params["view"]


def submit_modal(
    s: Both,
    view: dict[str, Any],
    *,
    title: str,
    labels: str,
    user: str = "UANN",
    action: str | None = None,
) -> int:
    values = {
        "title": {"value": {"type": "plain_text_input", "value": title}},
        "labels": {"value": {"type": "plain_text_input", "value": labels}},
    }
    if action is not None:
        values["action"] = {"value": {"type": "plain_text_input", "value": action}}
    submitted = {**view, "id": "VISSUE", "state": {"values": values}}
    status, _ = s.slack.interact(
        {
            "type": "view_submission",
            "user": {"id": user},
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "view": submitted,
        }
    )
    return status


def ephemerals(s: Both, user: str) -> list[str]:
    return [
        c.params["text"]
        for c in s.slack.fake.calls("chat.postEphemeral")
        if c.params.get("user") == user
    ]


def create_issue(s: Both, comment: str, title: str = "", labels: str | None = None) -> str:
    item_id = webhook_item(s.slack, comment)
    s.slack.wait_posts(1)
    view = open_modal(s, item_id)
    preset = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"][1:]}
    assert (
        submit_modal(
            s,
            view,
            title=title or preset["title"],
            labels=preset["labels"] if labels is None else labels,
        )
        == 200
    )
    assert s.gh.wait_for(lambda: len(s.issues()) >= 1)
    assert s.slack.fake.wait_for(lambda: "github.test" in s.card_text(item_id))
    return item_id


def test_create_issue_from_a_card_once_with_its_labels_link_and_a_confirmation(
    stack: Both,
) -> None:
    s = stack
    comment = (
        "Checkout crashes with a 500 for @octocat, see #12 and https://evil.example "
        "- mail jo@example.com"
    )
    item_id = webhook_item(s.slack, comment)
    s.slack.wait_posts(1)
    card = s.slack.posts()[0]
    buttons = [
        e["action_id"] for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert "triage_issue" in buttons

    # An outsider gets a private refusal, not the modal.
    assert button(s.slack, "triage_issue", item_id, user="UMAL")[0] == 200
    assert s.slack.fake.wait_for(lambda: bool(ephemerals(s, "UMAL")))
    assert not s.slack.fake.calls("views.open")

    view = open_modal(s, item_id)
    assert view["callback_id"] == "triage_issue_view"
    preset = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"][1:]}
    assert preset["title"].startswith("Checkout crashes")
    triage = s.slack.store.latest_triage(item_id)
    assert triage is not None
    assert "triage-bot" in preset["labels"]

    assert submit_modal(s, view, title="Checkout returns 500", labels="triage-bot, bug, p1") == 200
    assert s.gh.wait_for(lambda: len(s.issues()) == 1)
    (issue,) = s.issues()
    assert issue["title"] == "Checkout returns 500"
    assert {label["name"] for label in issue["labels"]} == {"triage-bot", "bug", "p1"}
    body = issue["body"]
    assert "jo@example.com" not in body and "[email]" in body  # redacted before it left
    assert f"triage-bot:item={item_id}" in body
    # Untrusted text only inside a code fence: no mention, no cross-reference, no link.
    fenced = body.split("```text\n", 1)[1].split("\n```", 1)[0]
    assert "@octocat" in fenced and "#12" in fenced
    outside = re.sub(r"(`{3,})text\n.*?\n\1", "", body, flags=re.S)
    outside = re.sub(r"(`+) .*? \1", "", outside)
    assert "@octocat" not in outside and "#12" not in outside and "evil" not in outside
    assert "slack.com/archives/" in body  # the link back to the card

    # The card shows the link and its state; the click confirmed the prediction.
    assert s.slack.fake.wait_for(lambda: issue["html_url"] in s.card_text(item_id))
    assert "open" in s.card_text(item_id)
    votes = s.slack.store.current_votes(item_id)
    assert [(v.reviewer, v.kind.value) for v in votes] == [("UANN", "confirm")]
    assert s.slack.fake.wait_for(lambda: any(issue["html_url"] in t for t in ephemerals(s, "UANN")))

    # A second click, and the same submission redelivered: still one issue.
    assert s.slack.fake.wait_for(lambda: 'triage_issue"' not in s.card_text(item_id)), s.card_text(
        item_id
    )
    assert submit_modal(s, view, title="Again", labels="bug") == 200
    assert button(s.slack, "triage_issue", item_id, user="UBOB")[0] == 200
    assert s.slack.fake.wait_for(lambda: any("already has" in t for t in ephemerals(s, "UBOB")))
    time.sleep(0.5)
    assert len(s.issues()) == 1
    assert len(s.gh.calls_to("POST", "/issues")) == 1


def test_a_corrected_card_opens_its_issue_without_a_confirmation(stack: Both) -> None:
    s = stack
    item_id = webhook_item(s.slack, "Please add a dark mode to the dashboard")
    s.slack.wait_posts(1)
    s.slack.service.vote(item_id, "UBOB", "correct", category="content-gap", severity="low")
    view = open_modal(s, item_id)
    preset = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"][1:]}
    assert preset["labels"] == "triage-bot, documentation"  # the corrected category's label
    assert submit_modal(s, view, title=preset["title"], labels=preset["labels"]) == 200
    assert s.gh.wait_for(lambda: len(s.issues()) == 1)
    assert [v.reviewer for v in s.slack.store.current_votes(item_id)] == ["UBOB"]


def test_rate_limits_are_waited_out_and_the_clicker_told_privately(stack: Both) -> None:
    s = stack
    s.gh.secondary_rate_limit(retry_after=1, path_contains="/issues", method="POST")
    item_id = webhook_item(s.slack, "The search page times out on every query")
    s.slack.wait_posts(1)
    view = open_modal(s, item_id)
    started = time.monotonic()
    assert submit_modal(s, view, title="Search times out", labels="bug") == 200
    assert s.slack.fake.wait_for(
        lambda: any("did not take the issue yet" in t for t in ephemerals(s, "UANN"))
    )
    assert any("rate limit" in t for t in ephemerals(s, "UANN"))
    assert s.gh.wait_for(lambda: len(s.issues()) == 1, timeout=15)
    assert time.monotonic() - started >= 1.0  # GitHub's retry-after, honoured
    assert s.slack.fake.wait_for(lambda: "github.test" in s.card_text(item_id))
    statuses = [c.status for c in s.gh.calls_to("POST", "/issues")]
    assert statuses == [403, 201]
    # GitHub's rate limit said nothing was created: no search for it before the retry.
    assert not s.gh.calls_to("GET", "/search") and not s.gh.calls_to("GET", f"/repos/{REPO}/issues")


def test_a_create_that_timed_out_is_found_by_its_marker_not_opened_twice(
    tmp_path: Path,
) -> None:
    # The first create reaches GitHub but its answer comes after the client gave up, and
    # GitHub's search does not have the issue yet: the newest issues are read first.
    with both(tmp_path, timeout_s=0.5, search_lag=1000) as s:
        s.gh.set_latency(1.5, path_contains="/issues")
        item_id = webhook_item(s.slack, "Login loops back to the sign-in page")
        s.slack.wait_posts(1)
        view = open_modal(s, item_id)
        assert submit_modal(s, view, title="Login loop", labels="bug") == 200
        assert s.gh.wait_for(lambda: len(s.issues()) == 1)
        s.gh.set_latency(0.0, path_contains="/issues")
        assert s.slack.fake.wait_for(lambda: "github.test" in s.card_text(item_id), timeout=20)
        time.sleep(0.5)
        assert len(s.issues()) == 1
        post = s.slack.store.get_post(item_id, f"github:{REPO}")
        assert post is not None and post.ref == s.issues()[0]["html_url"]


def test_state_and_labels_come_back_by_webhook_and_become_votes_and_rewards(
    stack: Both,
) -> None:
    s = stack
    item_id = create_issue(s, "The checkout page crashes with a 500 error")
    (issue,) = s.issues()
    number, store = issue["number"], s.slack.store
    triage = store.latest_triage(item_id)
    assert triage is not None

    # Forged, unsigned and malformed deliveries change nothing.
    closed = s.gh.close_issue(REPO, number, reason="completed")
    assert deliver_webhook(s.slack.url + "/github", closed, "wrong-secret")[0] == 401
    assert deliver_webhook(s.slack.url + "/github", closed, None)[0] == 401
    assert s.deliver(closed, body=b"{not json")[0] == 400  # signed, but not JSON
    assert s.deliver(closed, signature="sha256=" + "0" * 64)[0] == 401
    assert store.get_post(item_id, f"github:{REPO}").detail["state"] == "open"

    status, answer = s.deliver(closed, delivery="d-close")
    assert status == 200, answer
    assert s.slack.fake.wait_for(lambda: "closed as completed" in s.card_text(item_id))
    votes = {v.reviewer: v for v in store.current_votes(item_id)}
    assert votes[OUTCOME_REVIEWER].category == triage.category
    outcome = [r for r in store.rewards(item_id) if r.source == OUTCOME_SOURCE]
    assert len(outcome) == 1 and outcome[0].value == 1.0
    exported = next(r for r in s.slack.service.export_labels() if r["id"] == item_id)
    assert exported["outcomes"][0]["source"] == OUTCOME_SOURCE
    # The same delivery again: a duplicate, nothing new.
    assert s.deliver(closed, delivery="d-close") == (200, {"duplicate": "d-close"})

    # A maintainer relabels bug as enhancement: their correction.
    reopened = s.gh.reopen_issue(REPO, number)
    assert s.deliver(reopened)[0] == 200
    assert OUTCOME_REVIEWER not in {v.reviewer for v in store.current_votes(item_id)}
    withdrawn = [r for r in store.rewards(item_id) if r.source == OUTCOME_SOURCE]
    assert withdrawn[0].value == 0.0 and "reopened" in withdrawn[0].reason
    for payload in s.gh.relabel(REPO, number, add=["enhancement"], remove=["bug"], by="mona"):
        assert s.deliver(payload)[0] == 200
    votes = {v.reviewer: v for v in store.current_votes(item_id)}
    assert votes["github:mona"].category == "feature-request"
    assert votes["github:mona"].platform == "github"

    # Closed as not planned: a small negative reward with its reason.
    not_planned = s.gh.close_issue(REPO, number, reason="not_planned")
    assert s.deliver(not_planned)[0] == 200
    (reward,) = [r for r in store.rewards(item_id) if r.source == OUTCOME_SOURCE]
    assert reward.value == -0.3 and "not planned" in reward.reason
    assert s.slack.fake.wait_for(lambda: "closed as not planned" in s.card_text(item_id))

    # An older delivery arriving late (the reopen) does not undo the close.
    assert s.deliver(reopened, delivery="late")[0] == 200
    assert store.get_post(item_id, f"github:{REPO}").detail["state"] == "closed"
    # Another repository's issue, another event: ignored, not errors.
    other = {**closed, "issue": {**closed["issue"], "html_url": "https://github.test/x/y/issues/1"}}
    assert s.deliver(other)[0] == 202
    assert s.deliver({"zen": "hi"}, event="ping")[0] == 200
    assert s.deliver({"action": "created"}, event="star")[0] == 202


def test_a_poll_reads_back_what_no_webhook_said(stack: Both) -> None:
    s = stack
    item_id = create_issue(s, "The pricing page shows the wrong currency")
    (issue,) = s.issues()
    s.gh.close_issue(REPO, issue["number"], reason="duplicate")  # no delivery
    github = s.slack.edge.github
    assert github is not None
    assert github.poller.poll_once() >= 1
    post = s.slack.store.get_post(item_id, f"github:{REPO}")
    assert post is not None and post.detail["state_reason"] == "duplicate"
    assert s.slack.fake.wait_for(lambda: "closed as duplicate" in s.card_text(item_id))
    (reward,) = [r for r in s.slack.store.rewards(item_id) if r.source == OUTCOME_SOURCE]
    assert reward.value < 0
    github.poller.poll_once()  # nothing new: the outcome below is not counted twice
    assert len([r for r in s.slack.store.rewards(item_id) if r.source == OUTCOME_SOURCE]) == 1


def test_a_card_nobody_took_is_escalated_once_in_its_thread(stack: Both) -> None:
    s = stack
    edge = s.slack.edge
    every = s.slack.service.taxonomy.severity_names
    edge.escalator = Escalator(s.slack.service, edge.target, EscalationSettings(severities=every))
    edge.settings = replace(edge.settings, escalate_to="S0ONCALL")  # TRIAGE_SLACK_ESCALATE_TO
    waiting = webhook_item(s.slack, "The checkout page crashes with a 500 error")
    voted = webhook_item(s.slack, "The search box ignores accents")
    taken = webhook_item(s.slack, "Images on the blog do not load")
    s.slack.wait_posts(3)
    s.slack.service.vote(voted, "UANN", "confirm")
    s.slack.store.enqueue_post(taken, f"github:{REPO}")  # an issue is on its way
    later = utcnow() + timedelta(minutes=31)
    assert edge.escalator.due(utcnow()) == []  # not yet
    assert edge.escalator.queue_due(later) == 1
    assert edge.escalations.drain() == 1
    card = s.slack.store.get_post(waiting, f"slack:{CHANNEL}")
    assert card is not None
    replies = [m for m in s.slack.posts() if m.get("thread_ts") == card.ref]
    assert len(replies) == 1 and "<!subteam^S0ONCALL>" in replies[0]["text"]
    assert "30 minutes" in replies[0]["text"]
    # Never again: not on the next round, nor after a restart (the reply is stored).
    assert edge.escalator.queue_due(later + timedelta(hours=1)) == 0
    assert edge.escalations.drain() == 0
    assert len([m for m in s.slack.posts() if m.get("thread_ts") == card.ref]) == 1


def test_an_issue_github_refuses_shows_on_the_card_and_a_new_click_tries_again(
    stack: Both,
) -> None:
    s = stack
    s.gh.fail_next(
        422, count=2, message="Validation Failed", path_contains="/issues", method="POST"
    )
    item_id = webhook_item(s.slack, "The newsletter signup rejects every address")
    s.slack.wait_posts(1)
    view = open_modal(s, item_id)
    assert submit_modal(s, view, title="Newsletter signup", labels="bug") == 200
    assert s.slack.fake.wait_for(lambda: "could not be created" in s.card_text(item_id))
    assert s.slack.fake.wait_for(lambda: any("refused" in t for t in ephemerals(s, "UANN")))
    assert '"triage_issue"' in s.card_text(item_id)  # the button is back
    assert s.issues() == []
    view = open_modal(s, item_id)
    assert submit_modal(s, view, title="Newsletter signup", labels="bug") == 200
    assert s.gh.wait_for(lambda: len(s.issues()) == 1)
    assert s.slack.fake.wait_for(lambda: "github.test" in s.card_text(item_id))


OWNERS = RuntimeSettings(
    owners=[
        OwnerSpec(name="payments", slack="S0PAYMENTS", github="paycat"),
        OwnerSpec(name="docs", slack="UDOCS"),
    ],
    routes=[RouteSpec(owner="payments", pages=["/checkout*"])],
    routing=RoutingSettings(min_assignments=2, learned_above=0.6),
)


def test_owners_by_rule_then_by_reassignment_named_pinged_once_and_assigned_on_github(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "owners.db")
    taxonomy = load_taxonomy()
    engine = TriageEngine(taxonomy, default_encoder(), runtime=OWNERS)
    service = TriageService(store, engine, taxonomy, reviewers=frozenset({"UANN", "UDOCS"}))
    try:
        with FakeGitHub() as gh, running(store, service, github_settings(gh)) as slack:
            s = Both(slack, gh)
            # By rule: the checkout page is the payments team's; the card pings the group.
            paid = webhook_item(slack, "The checkout page crashes with a 500 error")
            slack.wait_posts(1)
            first = s.slack.fake.calls("chat.postMessage")[0].params
            assert "<!subteam^S0PAYMENTS>" in json.dumps(first["blocks"])
            assert "by rule" in s.card_text(paid)
            # The issue is assigned to the owner's GitHub login.
            view = open_modal(s, paid)
            assert submit_modal(s, view, title="Checkout 500", labels="bug") == 200
            assert gh.wait_for(lambda: len(gh.issues(REPO)) == 1)
            assert [a["login"] for a in gh.issues(REPO)[0]["assignees"]] == ["paycat"]
            # Reassigned from the card's menu: stored, shown, and no second ping.
            pings = len(
                [
                    c
                    for c in slack.fake.calls("chat.postMessage")
                    if "S0PAYMENTS" in json.dumps(c.params)
                ]
            )
            assert assign(s, paid, "docs", user="UANN") == 200
            assert slack.fake.wait_for(lambda: "assigned by" in s.card_text(paid))
            got = store.get_assignment(paid)
            assert got is not None and (got.owner, got.by) == ("docs", "UANN")
            assert pings == len(
                [
                    c
                    for c in slack.fake.calls("chat.postMessage")
                    if "S0PAYMENTS" in json.dumps(c.params)
                ]
            )
            # An outsider's pick is refused and changes nothing.
            assert assign(s, paid, "payments", user="UMAL") == 200
            assert slack.fake.wait_for(lambda: bool(ephemerals(s, "UMAL")))
            assert store.get_assignment(paid).owner == "docs"
            # `/triage queue mine`: the waiting items of the owners the user is.
            theirs = webhook_item(slack, "The checkout page shows the docs link twice")
            others = webhook_item(slack, "The checkout button is misaligned on mobile")
            slack.wait_posts(3)
            assert assign(s, theirs, "docs", user="UANN") == 200
            slack.command("queue mine", user="UDOCS", name="mine")
            assert slack.fake.wait_for(lambda: bool(slack.fake.responses("mine")))
            shown = json.dumps(slack.fake.responses("mine")[-1])
            assert "shows the docs link twice" in shown and "misaligned" not in shown
            # A card nobody took pings its owner, not the on-call.
            edge = slack.edge
            every = taxonomy.severity_names
            edge.escalator = Escalator(service, edge.target, EscalationSettings(severities=every))
            edge.settings = replace(edge.settings, escalate_to="S0ONCALL")
            edge.escalator.queue_due(utcnow() + timedelta(minutes=31))
            edge.escalations.drain()
            card = store.get_post(others, f"slack:{CHANNEL}")
            assert card is not None
            (reply,) = [m for m in slack.posts() if m.get("thread_ts") == card.ref]
            assert "<!subteam^S0PAYMENTS>" in reply["text"] and "S0ONCALL" not in reply["text"]
    finally:
        store.close()


def test_the_owner_model_takes_over_from_the_rules_after_reassignments(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "learned.db")
    taxonomy = load_taxonomy()
    engine = TriageEngine(taxonomy, default_encoder(), runtime=OWNERS)
    service = TriageService(store, engine, taxonomy)
    router = Router(service)
    texts = {
        "docs": ["The docs page on caching is outdated", "The API reference lacks examples"],
        "payments": ["Refunds take weeks to arrive", "I was charged twice for one order"],
    }
    for owner, lines in texts.items():
        for n, text in enumerate(lines):
            item = make_item(text, item_id=f"{owner}-{n}")
            store.add_item(item)
            router.assign(item.id, owner, "UANN", "cli")
    fresh = make_item("The docs page about caching has outdated examples", page="/checkout")
    store.add_item(fresh)
    choice = router.choose(fresh, "content-gap")
    assert choice is not None and choice.source == "learned" and choice.owner.name == "docs"
    other = make_item("Something unrelated happened", page="/checkout/step2")
    strict = Router(service)
    strict.settings = RoutingSettings(learned_above=0.999)
    rule = strict.choose(other, "website-bug")
    assert rule is not None and (rule.source, rule.owner.name) == ("rule", "payments")
    store.close()


def group_pings(s: Both) -> list[Any]:
    """Posted messages (not edits: Slack notifies of a mention only when it is posted)
    that mention the payments group."""
    return [
        c for c in s.slack.fake.calls("chat.postMessage") if "S0PAYMENTS" in json.dumps(c.params)
    ]


def assign(s: Both, item_id: str, owner: str, user: str) -> int:
    post = s.slack.store.get_post(item_id, f"slack:{CHANNEL}")
    assert post is not None and post.ref
    status, _ = s.slack.interact(
        {
            "type": "block_actions",
            "user": {"id": user},
            "trigger_id": "trig-assign",
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "container": {"type": "message", "channel_id": CHANNEL, "message_ts": post.ref},
            "channel": {"id": CHANNEL},
            "message": {"ts": post.ref},
            "actions": [
                {
                    "action_id": "triage_assign",
                    "block_id": "triage_actions",
                    "type": "static_select",
                    "selected_option": {
                        "value": owner,
                        "text": {"type": "plain_text", "text": owner},
                    },
                    "action_ts": str(time.time()),
                }
            ],
        }
    )
    return status


def test_an_action_rewritten_in_the_issue_modal_is_a_label_the_next_look_alike_takes(
    tmp_path: Path,
) -> None:
    with both(tmp_path, duplicates=False) as s:  # the look-alike gets a card of its own
        action_rewritten_in_the_modal_reaches_the_look_alike(s)


def action_rewritten_in_the_modal_reaches_the_look_alike(s: Both) -> None:
    first = webhook_item(s.slack, "The checkout page crashes with a 500 error on submit")
    s.slack.wait_posts(1)
    view = open_modal(s, first)
    preset = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"][1:]}
    triage = s.slack.store.latest_triage(first)
    assert triage is not None and preset["action"] == triage.action
    edited = "Roll back the payments deploy, then page the payments on-call"
    assert submit_modal(s, view, title="Checkout 500", labels="bug", action=edited) == 200
    assert s.gh.wait_for(lambda: len(s.issues()) == 1)
    assert edited in s.issues()[0]["body"]
    (vote,) = s.slack.store.current_votes(first)
    assert (vote.kind.value, vote.action, vote.category) == ("correct", edited, triage.category)
    second = webhook_item(s.slack, "The checkout page crashes with a 500 error when I pay")
    s.slack.wait_posts(2)
    assert s.slack.fake.wait_for(lambda: edited in s.card_text(second))
