"""The GitHub edge's pure parts and its client's reading of GitHub's answers (against the
local fake of GitHub's REST API over real HTTP)."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.github import render
from bot.github.client import SECONDARY_RATE_LIMIT_WAIT, GitHubClient, retry_after
from bot.github.edge import issue_update, verify_signature
from bot.github.settings import GitHubSettings
from core.env import SettingsError
from core.governance import InputError
from core.issues import IssueLink, issue_number
from core.models import CardView, FieldConfidence, Triage
from core.ports import PostFailed, PostRefused
from core.service import make_item
from tests.fakes.github import FakeGitHub, sign_webhook


def card(text: str, page: str | None = None) -> CardView:
    item = make_item(text, source="webhook", item_id="itm_1", page=page, max_text_bytes=400_000)
    triage = Triage(
        item_id="itm_1",
        category="website-bug",
        severity="high",
        action=f"Reproduce “{text[:80]}” and fix it.",
        confidence=FieldConfidence(category=0.9, severity=0.7),
        model_version="v1",
    )
    return CardView(item=item, triage=triage)


def outside_code(body: str) -> str:
    """The body with its fenced blocks and inline code spans taken out."""
    body = re.sub(r"(`{3,})text\n.*?\n\1(?=\n|$)", "", body, flags=re.S)
    return re.sub(r"(`+) .*? \1", "", body)


def test_settings_are_off_without_a_repository_and_name_what_is_wrong() -> None:
    assert GitHubSettings.from_env({}) is None
    assert GitHubSettings.from_env({"GITHUB_TOKEN": "t"}) is None  # another tool's token
    with pytest.raises(SettingsError, match="GITHUB_TOKEN"):
        GitHubSettings.from_env({"TRIAGE_GITHUB_REPO": "acme/web"})
    with pytest.raises(SettingsError, match="owner/name"):
        GitHubSettings.from_env({"TRIAGE_GITHUB_REPO": "acme", "GITHUB_TOKEN": "t"})
    with pytest.raises(SettingsError, match="GITHUB_API_URL"):
        GitHubSettings.from_env(
            {"TRIAGE_GITHUB_REPO": "acme/web", "GITHUB_TOKEN": "t", "GITHUB_API_URL": "ftp://x"}
        )
    made = GitHubSettings.from_env(
        {
            "TRIAGE_GITHUB_REPO": "acme/web",
            "GITHUB_TOKEN": "ghp-secret",
            "GITHUB_API_URL": "https://ghe.example/api/v3/",
            "TRIAGE_GITHUB_WEBHOOK_SECRET": "hook-secret",
        }
    )
    assert made is not None and made.api_url == "https://ghe.example/api/v3"
    assert "ghp-secret" not in repr(made) and "hook-secret" not in repr(made)


def test_rate_limit_answers_say_how_long_to_wait() -> None:
    def answer(status: int, headers: dict[str, str], message: str = "") -> httpx.Response:
        return httpx.Response(status, headers=headers, json={"message": message})

    assert retry_after(answer(403, {"retry-after": "7"})) == 7.0
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000"}
    assert retry_after(answer(403, reset), now=990.0) == 11.0
    secondary = answer(403, {}, "You have exceeded a secondary rate limit")
    assert retry_after(secondary) == SECONDARY_RATE_LIMIT_WAIT
    assert retry_after(answer(403, {}, "Resource not accessible by integration")) is None


def test_the_client_says_failures_in_the_outboxs_terms() -> None:
    with FakeGitHub(repos=["acme/web"]) as gh:
        client = GitHubClient("acme/web", "ghp-test", gh.base_url)
        issue = client.create_issue("Title", "Body", ["bug"])
        assert issue_number(issue["html_url"]) == issue["number"] == 1
        gh.secondary_rate_limit(retry_after=3)
        with pytest.raises(PostFailed) as limited:
            client.create_issue("Title", "Body", [])
        assert limited.value.retry_after == 3.0
        gh.primary_rate_limit(reset_in=30)
        with pytest.raises(PostFailed) as primary:
            client.get_issue(1)
        assert primary.value.retry_after is not None and 25 <= primary.value.retry_after <= 35
        gh.fail_next(429, headers={"retry-after": "2"})
        with pytest.raises(PostFailed, match="rate limit"):
            client.get_issue(1)
        with pytest.raises(PostRefused, match="422"):
            client.create_issue("", "Body", [])  # GitHub refuses an empty title for good
        gh.fail_next(502)
        with pytest.raises(PostFailed, match="502"):
            client.get_issue(1)
        with pytest.raises(PostFailed, match="check GITHUB_TOKEN"):
            GitHubClient("acme/web", "wrong", gh.base_url).get_issue(1)
        with pytest.raises(PostFailed, match="can GITHUB_TOKEN write issues"):
            GitHubClient("acme/other", "ghp-test", gh.base_url).create_issue("T", "B", [])
        for n in range(150):  # pages: the Link header is followed
            gh.open_issue("acme/web", f"other {n}")
        assert len(list(client.issues())) == 151
        assert client.login() == "triage-bot[bot]"
        client.close()
        port = gh.port
    # Stopped: nothing listens there now.
    with pytest.raises(PostFailed, match="unreachable"):
        GitHubClient("acme/web", "t", f"http://127.0.0.1:{port}", timeout=1).get_issue(1)


def test_an_issue_body_shows_what_people_wrote_literally_and_fits() -> None:
    hostile = "@octocat see #12 and https://evil.example <img src=x> ``` `` ` **bold** \x00\x1b"
    body = render.body(card(hostile, page="https://evil.example/@admin"), None)
    rest = outside_code(body)
    for unsafe in ("@octocat", "#12", "evil.example", "<img", "@admin", "**bold**"):
        assert unsafe not in rest, unsafe
    assert "\x00" not in body and "\x1b" not in body
    assert render.marker("itm_1") in body
    huge = render.body(card("`" * 70_000 + " x " * 30_000), "https://slack.com/archives/C1/p1")
    assert len(huge) <= render.MAX_BODY and render.marker("itm_1") in huge
    assert "(clipped)" in huge
    assert len(render.body(card("x" * 70_000), None, minimal=True)) < 2_000
    assert len(render.title("a\nb " * 500)) <= render.MAX_TITLE
    assert "\n" not in render.title("line one\nline two")


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=3000))
def test_any_text_stays_inside_its_fence(text: str) -> None:
    try:
        shown = card(text)
    except InputError:  # intake refuses it (empty, binary): it never reaches an issue
        assume(False)
    body = render.body(shown, None)
    assert len(body) <= render.MAX_BODY
    assert "@" not in outside_code(body).replace(render.marker("itm_1"), "")


def test_webhook_signatures_and_issue_payloads() -> None:
    body = b'{"action": "closed"}'
    good = sign_webhook(body, "new")
    assert verify_signature(body, good, "new") and verify_signature(body, good, "old,new")
    assert not verify_signature(body, good, "other")
    assert not verify_signature(body, None, "new") and not verify_signature(body, "sha1=x", "new")
    assert not verify_signature(body + b" ", good, "new")
    assert not verify_signature(body, "sha256=ü", "new")  # non-ASCII: refused, no TypeError
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    update = issue_update(
        {
            "html_url": "https://github.test/acme/web/issues/3",
            "state": "closed",
            "state_reason": "not_planned",
            "labels": [{"name": "bug"}, {"name": "p1"}, "plain"],
            "updated_at": stamp,
        },
        actor="mona",
        bot_login="triage-bot[bot]",
    )
    assert update is not None and update.labels == ["bug", "p1", "plain"]
    assert update.state_reason == "not_planned" and not update.actor_is_bot
    assert issue_update({"html_url": 3, "state": "closed", "updated_at": stamp}) is None
    assert issue_update({"html_url": "u", "state": "merged", "updated_at": stamp}) is None


def test_an_issue_link_says_where_it_stands() -> None:
    url = "https://github.test/acme/web/issues/12"
    assert IssueLink("acme/web", "open", url).name == "acme/web#12"
    assert IssueLink("acme/web", "closed", url, "not_planned").state_text == "closed as not planned"
    assert IssueLink("acme/web", "closed", url).state_text == "closed as completed"
    retrying = IssueLink("acme/web", "retrying", error="GitHub 502")
    assert retrying.name == "acme/web" and "GitHub 502" in retrying.state_text
