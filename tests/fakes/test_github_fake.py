"""The GitHub fake answers like api.github.com over real HTTP, and signs webhooks like GitHub.

Plain urllib against it, so these tests pin the fake's wire behaviour independently of
whichever client the bot uses.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest

from .github import FakeGitHub, deliver_webhook, sign_webhook

REPO = "acme/app"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(
    gh: FakeGitHub,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = "ghp-test",
    scheme: str = "Bearer",
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """(status, lower-cased headers, parsed JSON body) of one request; never raises."""
    url = path if path.startswith("http") else gh.base_url + path
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Accept": "application/vnd.github+json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with _OPENER.open(req, timeout=10) as resp:
            status, hdrs, text = resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        status, hdrs, text = err.code, dict(err.headers.items()), err.read()
        err.close()
    return status, {k.lower(): v for k, v in hdrs.items()}, json.loads(text) if text else None


def links(header: str) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header)}


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def gh() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def create(gh: FakeGitHub, title: str, **fields: Any) -> dict[str, Any]:
    status, _, issue = call(gh, "POST", f"/repos/{REPO}/issues", {"title": title, **fields})
    assert status == 201, issue
    return issue


def test_user_repo_and_rate_limit_headers(gh: FakeGitHub) -> None:
    status, h1, user = call(gh, "GET", "/user")
    assert status == 200 and user["login"] == "triage-bot[bot]" and user["type"] == "Bot"
    status, h2, repo = call(gh, "GET", f"/repos/{REPO}")
    assert status == 200
    assert repo["full_name"] == REPO and repo["name"] == "app" and repo["owner"]["login"] == "acme"
    assert repo["html_url"] == "https://github.test/acme/app"
    assert repo["private"] is False and repo["has_issues"] is True
    assert repo["permissions"]["push"] and repo["permissions"]["triage"]
    assert h1["x-ratelimit-limit"] == "5000" and h1["x-ratelimit-resource"] == "core"
    assert int(h2["x-ratelimit-remaining"]) == int(h1["x-ratelimit-remaining"]) - 1
    assert int(h2["x-ratelimit-used"]) == int(h1["x-ratelimit-used"]) + 1
    assert int(h1["x-ratelimit-reset"]) > time.time()
    assert h1["x-github-request-id"] != h2["x-github-request-id"]
    _, hs, _ = call(gh, "GET", f"/search/issues?q=repo:{REPO}")
    assert hs["x-ratelimit-limit"] == "30" and hs["x-ratelimit-resource"] == "search"


def test_enterprise_prefix_and_token_scheme(gh: FakeGitHub) -> None:
    status, _, issue = call(gh, "POST", f"/api/v3/repos/{REPO}/issues", {"title": "t"})
    assert status == 201 and issue["number"] == 1
    status, _, got = call(gh, "GET", f"/api/v3/repos/{REPO}/issues/1", scheme="token")
    assert status == 200 and got["id"] == issue["id"]
    assert gh.calls[-1].path == f"/api/v3/repos/{REPO}/issues/1"


@pytest.mark.parametrize("token", [None, "wrong"])
def test_bad_credentials(gh: FakeGitHub, token: str | None) -> None:
    status, headers, body = call(gh, "GET", "/user", token=token)
    assert status == 401 and body["message"] == "Bad credentials" and "documentation_url" in body
    assert "x-ratelimit-remaining" in headers and "x-github-request-id" in headers
    assert gh.calls[-1].status == 401


def test_create_and_get_issue(gh: FakeGitHub) -> None:
    issue = create(
        gh, "Crash on save", body="steps...", labels=["bug", "from-chat"], assignees=["alice"]
    )
    assert issue["number"] == 1 and issue["state"] == "open" and issue["state_reason"] is None
    assert issue["html_url"] == "https://github.test/acme/app/issues/1"
    assert issue["url"] == f"{gh.base_url}/repos/{REPO}/issues/1"
    assert issue["repository_url"] == f"{gh.base_url}/repos/{REPO}"
    assert issue["user"]["login"] == "triage-bot[bot]" and issue["comments"] == 0
    assert [lb["name"] for lb in issue["labels"]] == ["bug", "from-chat"]
    assert issue["labels"][0]["default"] is True and issue["labels"][1]["default"] is False
    assert issue["assignee"]["login"] == "alice" and issue["closed_at"] is None
    assert issue["locked"] is False and re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", issue["created_at"]
    )
    status, _, repo_labels = call(gh, "GET", f"/repos/{REPO}/labels?per_page=100")
    assert "from-chat" in {lb["name"] for lb in repo_labels}  # created on first use
    status, _, got = call(gh, "GET", f"/repos/{REPO}/issues/1")
    assert status == 200 and got == gh.issue(REPO, 1)
    assert call(gh, "GET", f"/repos/{REPO}/issues/99")[0] == 404
    assert gh.calls_to("POST", "/issues")[0].json["title"] == "Crash on save"


def test_validation_and_errors(gh: FakeGitHub) -> None:
    path = f"/repos/{REPO}/issues"
    for body, field, code in [
        ({}, "title", "missing_field"),
        ({"title": "  "}, "title", "missing_field"),
        ({"title": 5}, "title", "invalid"),
        ({"title": "x" * 257}, "title", "custom"),
        ({"title": "t", "body": "b" * 65537}, "body", "custom"),
    ]:
        status, _, err = call(gh, "POST", path, body)
        assert status == 422 and err["message"] == "Validation Failed", body
        assert err["errors"][0]["field"] == field and err["errors"][0]["code"] == code
    _, _, err = call(gh, "POST", path, {"title": "t", "body": "b" * 65537})
    assert err["errors"][0]["message"] == "body is too long (maximum is 65536 characters)"
    assert call(gh, "POST", path, {"title": "x" * 256, "body": "b" * 65536})[0] == 201
    status, _, err = call(gh, "POST", path, raw=b"{not json")
    assert status == 400 and err["message"] == "Problems parsing JSON"
    assert call(gh, "GET", "/nope")[2] == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest",
    }
    assert call(gh, "DELETE", f"/repos/{REPO}/issues/1")[0] == 404  # no such method
    assert gh.issues(REPO)[0]["number"] == 1 and len(gh.issues(REPO)) == 1


def test_list_pagination_state_sort_and_since(gh: FakeGitHub) -> None:
    issues = [create(gh, f"issue {n}") for n in range(1, 6)]
    stamps = [ts(i["updated_at"]) for i in issues]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5  # strictly increasing

    status, headers, page1 = call(gh, "GET", f"/repos/{REPO}/issues?per_page=2")
    assert status == 200 and [i["number"] for i in page1] == [5, 4]  # created, desc
    rel = links(headers["link"])
    assert set(rel) == {"next", "last"} and rel["next"].startswith(gh.base_url)
    assert "page=3" in rel["last"]
    _, headers, page2 = call(gh, "GET", rel["next"])
    assert [i["number"] for i in page2] == [3, 2] and {"prev", "first", "next"} <= set(
        links(headers["link"])
    )
    _, headers, page3 = call(gh, "GET", links(headers["link"])["last"])
    assert [i["number"] for i in page3] == [1] and "next" not in links(headers["link"])
    _, headers, _ = call(gh, "GET", f"/repos/{REPO}/issues")
    assert "link" not in headers

    gh.close_issue(REPO, 2)
    numbers = [i["number"] for i in call(gh, "GET", f"/repos/{REPO}/issues")[2]]
    assert numbers == [5, 4, 3, 1]
    _, _, closed = call(gh, "GET", f"/repos/{REPO}/issues?state=closed")
    assert [i["number"] for i in closed] == [2]
    _, _, updated = call(gh, "GET", f"/repos/{REPO}/issues?state=all&sort=updated&direction=asc")
    assert [i["number"] for i in updated] == [1, 3, 4, 5, 2]

    since = gh.issue(REPO, 4)["updated_at"]
    _, _, recent = call(gh, "GET", f"/repos/{REPO}/issues?state=all&since={since}")
    assert sorted(i["number"] for i in recent) == [2, 4, 5]  # at or after
    assert call(gh, "GET", f"/repos/{REPO}/issues?since=yesterday")[0] == 422

    call(gh, "POST", f"/repos/{REPO}/issues/3/labels", {"labels": ["bug", "ui"]})
    _, _, labelled = call(gh, "GET", f"/repos/{REPO}/issues?labels=BUG,ui")
    assert [i["number"] for i in labelled] == [3]


def test_patch_issue(gh: FakeGitHub) -> None:
    issue = create(gh, "t", labels=["bug"])
    path = f"/repos/{REPO}/issues/1"
    status, _, closed = call(gh, "PATCH", path, {"state": "closed"})
    assert status == 200 and closed["state"] == "closed" and closed["state_reason"] == "completed"
    assert closed["closed_at"] == closed["updated_at"] and ts(closed["updated_at"]) > ts(
        issue["updated_at"]
    )
    assert closed["closed_by"]["login"] == "triage-bot[bot]"
    _, _, closed = call(gh, "PATCH", path, {"state_reason": "not_planned", "state": "closed"})
    assert closed["state_reason"] == "not_planned"
    _, _, reopened = call(gh, "PATCH", path, {"state": "open", "title": "t2", "labels": ["x"]})
    assert reopened["state"] == "open" and reopened["state_reason"] == "reopened"
    assert reopened["closed_at"] is None and reopened["title"] == "t2"
    assert [lb["name"] for lb in reopened["labels"]] == ["x"]
    assert call(gh, "PATCH", path, {"state": "shut"})[0] == 422
    assert call(gh, "PATCH", path, {"title": "y" * 300})[0] == 422
    assert gh.issue(REPO, 1)["title"] == "t2"


def test_search_phrases_and_qualifiers(gh: FakeGitHub) -> None:
    create(gh, "Crash on save", body="Reported from chat.\n\ntriage-item: it-1")
    create(gh, "Dark mode", body="triage-item: it-2 please")
    call(
        gh, "POST", "/repos/other/repo/issues", {"title": "elsewhere", "body": "triage-item: it-1"}
    )

    def search(q: str) -> list[int]:
        status, _, result = call(gh, "GET", "/search/issues?q=" + quote(q))
        assert status == 200 and result["incomplete_results"] is False
        assert result["total_count"] == len(result["items"])
        return sorted(i["number"] for i in result["items"])

    assert search(f'repo:{REPO} is:issue in:body "triage-item: it-1"') == [1]
    assert search(f'repo:{REPO} "TRIAGE-ITEM"') == [1, 2]
    assert search(f"repo:{REPO} in:title crash save") == [1]
    assert search(f"repo:{REPO} in:title triage-item") == []
    assert search(f'repo:{REPO} in:body "it-2" please') == [2]
    assert search('"triage-item: it-1"') == [1, 1]  # both repos
    assert search(f"repo:{REPO} is:pr crash") == []
    gh.close_issue(REPO, 2)
    assert search(f"repo:{REPO} is:open triage-item") == [1]
    assert call(gh, "GET", "/search/issues")[0] == 422


def test_search_lag_hides_new_issues() -> None:
    with FakeGitHub(search_lag=2) as gh:
        create(gh, "t", body="marker-abc")
        path = "/search/issues?q=" + quote(f'repo:{REPO} in:body "marker-abc"')
        assert call(gh, "GET", path)[2]["total_count"] == 0  # 0 requests in between
        assert call(gh, "GET", path)[2]["total_count"] == 0  # 1
        assert call(gh, "GET", path)[2]["total_count"] == 1  # 2: indexed now
        assert call(gh, "GET", f"/repos/{REPO}/issues/1")[0] == 200  # GET is never lagged


def test_comments(gh: FakeGitHub) -> None:
    issue = create(gh, "t")
    path = f"/repos/{REPO}/issues/1/comments"
    status, _, comment = call(gh, "POST", path, {"body": "Moved from chat"})
    assert status == 201 and comment["body"] == "Moved from chat"
    assert comment["user"]["login"] == "triage-bot[bot]"
    assert (
        comment["html_url"] == f"https://github.test/{REPO}/issues/1#issuecomment-{comment['id']}"
    )
    assert call(gh, "POST", path, {"body": ""})[0] == 422
    _, _, listed = call(gh, "GET", path)
    assert [c["id"] for c in listed] == [comment["id"]]
    after = gh.issue(REPO, 1)
    assert after["comments"] == 1 and ts(after["updated_at"]) > ts(issue["updated_at"])
    assert call(gh, "GET", f"/repos/{REPO}/issues/7/comments")[0] == 404


def test_labels_added_and_removed(gh: FakeGitHub) -> None:
    create(gh, "t", labels=["bug"])
    path = f"/repos/{REPO}/issues/1/labels"
    status, _, labels = call(gh, "POST", path, {"labels": ["needs triage", "bug"]})
    assert status == 200 and [lb["name"] for lb in labels] == ["bug", "needs triage"]
    new = labels[1]
    assert new["default"] is False and re.fullmatch(r"[0-9a-f]{6}", new["color"])
    status, _, labels = call(gh, "DELETE", path + "/" + quote("needs triage", safe=""))
    assert status == 200 and [lb["name"] for lb in labels] == ["bug"]
    status, _, err = call(gh, "DELETE", path + "/" + quote("needs triage", safe=""))
    assert status == 404 and err["message"] == "Label does not exist"
    assert call(gh, "PUT", path, {"labels": ["a", "b"]})[2][1]["name"] == "b"
    assert call(gh, "DELETE", path)[0] == 204 and gh.issue(REPO, 1)["labels"] == []


def test_only_listed_repos_exist() -> None:
    with FakeGitHub(repos=["acme/app"]) as gh:
        assert call(gh, "GET", "/repos/acme/app")[0] == 200
        status, _, err = call(gh, "POST", "/repos/acme/other/issues", {"title": "t"})
        assert status == 404 and err["message"] == "Not Found"
        assert call(gh, "GET", "/search/issues?q=repo:acme/other+x")[0] == 422
        gh.add_repo("acme/other")
        assert call(gh, "POST", "/repos/acme/other/issues", {"title": "t"})[0] == 201
    assert gh.issues("acme/other")[0]["title"] == "t"  # still inspectable after stop


def test_concurrent_creates_get_distinct_numbers(gh: FakeGitHub) -> None:
    threads = [threading.Thread(target=create, args=(gh, f"t{n}")) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    numbers = [i["number"] for i in gh.issues(REPO)]
    assert numbers == list(range(1, 17))
    stamps = [ts(i["created_at"]) for i in gh.issues(REPO)]
    assert len(set(stamps)) == 16


def test_fail_next_order_filters_and_calls(gh: FakeGitHub) -> None:
    gh.fail_next(502, message="Server Error", path_contains="/issues", method="POST")
    gh.fail_next(429, headers={"Retry-After": "3"}, count=2)
    status, headers, body = call(gh, "GET", "/user")  # not POST /issues: the 429 matches
    assert status == 429 and headers["retry-after"] == "3" and body["message"]
    status, _, body = call(gh, "POST", f"/repos/{REPO}/issues", {"title": "t"})
    assert status == 502 and body["message"] == "Server Error" and gh.issues(REPO) == []
    assert call(gh, "GET", "/user")[0] == 429
    assert call(gh, "GET", "/user")[0] == 200
    assert [c.status for c in gh.calls] == [429, 502, 429, 200]
    assert [c.failed for c in gh.calls_to("GET", "/user")] == [True, True, False]
    gh.fail_next(500)
    assert call(gh, "GET", "/user", token="bad")[0] == 401  # auth first: failure kept
    assert call(gh, "GET", "/user")[0] == 500


def test_secondary_rate_limit(gh: FakeGitHub) -> None:
    gh.secondary_rate_limit(retry_after=7, count=2)
    for _ in range(2):
        status, headers, body = call(gh, "POST", f"/repos/{REPO}/issues", {"title": "t"})
        assert status == 403 and headers["retry-after"] == "7"
        assert "secondary rate limit" in body["message"]
        assert int(headers["x-ratelimit-remaining"]) > 0  # quota is not what ran out
    assert call(gh, "POST", f"/repos/{REPO}/issues", {"title": "t"})[0] == 201
    assert len(gh.issues(REPO)) == 1


def test_primary_rate_limit(gh: FakeGitHub) -> None:
    gh.primary_rate_limit(reset_in=5)
    before = time.time()
    status, headers, body = call(gh, "GET", f"/repos/{REPO}/issues")
    assert status == 403 and body["message"].startswith("API rate limit exceeded for ")
    assert headers["x-ratelimit-remaining"] == "0" and "retry-after" not in headers
    assert before + 5 <= int(headers["x-ratelimit-reset"]) <= time.time() + 6
    assert call(gh, "GET", f"/repos/{REPO}/issues")[0] == 200


def test_latency_lands_after_the_change(gh: FakeGitHub) -> None:
    gh.set_latency(0.3, path_contains="/issues")
    start = time.monotonic()
    assert call(gh, "GET", "/user")[0] == 200
    assert time.monotonic() - start < 0.25
    req = urllib.request.Request(
        f"{gh.base_url}/repos/{REPO}/issues",
        data=json.dumps({"title": "slow"}).encode(),
        headers={"Authorization": "Bearer ghp-test", "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(OSError):  # the client times out...
        _OPENER.open(req, timeout=0.1)
    assert gh.wait_for(lambda: len(gh.issues(REPO)) == 1, timeout=2)  # ...the issue exists
    gh.set_latency(0, path_contains="/issues")
    start = time.monotonic()
    call(gh, "GET", f"/repos/{REPO}/issues")
    assert time.monotonic() - start < 0.25


def test_maintainer_actions_and_payloads(gh: FakeGitHub) -> None:
    create(gh, "t", labels=["bug"])
    closed = gh.close_issue(REPO, 1, reason="not_planned", by="carol")
    assert closed["action"] == "closed" and closed["sender"] == {
        **closed["sender"],
        "login": "carol",
        "type": "User",
    }
    assert closed["repository"]["full_name"] == REPO
    assert closed["repository"]["html_url"] == "https://github.test/acme/app"
    issue = closed["issue"]
    assert issue["state"] == "closed" and issue["state_reason"] == "not_planned"
    assert issue["closed_at"] == issue["updated_at"] and issue["closed_by"]["login"] == "carol"
    with pytest.raises(ValueError):
        gh.close_issue(REPO, 1)
    with pytest.raises(ValueError):
        gh.close_issue(REPO, 1, reason="wontfix")
    with pytest.raises(KeyError):
        gh.close_issue(REPO, 9)

    reopened = gh.reopen_issue(REPO, 1)
    assert reopened["action"] == "reopened"
    assert reopened["issue"]["state"] == "open" and reopened["issue"]["state_reason"] == "reopened"
    assert reopened["issue"]["closed_at"] is None

    events = gh.relabel(REPO, 1, add=["bug", "ui", "p1"], remove=["bug", "absent"], by="dan")
    assert [(e["action"], e["label"]["name"]) for e in events] == [
        ("labeled", "ui"),
        ("labeled", "p1"),
        ("unlabeled", "bug"),
    ]
    assert [lb["name"] for lb in events[-1]["issue"]["labels"]] == ["ui", "p1"]
    assert all(e["sender"]["login"] == "dan" for e in events)

    dup = gh.close_issue(REPO, 1, reason="duplicate")
    assert dup["issue"]["state_reason"] == "duplicate"
    edited = gh.edit_issue(REPO, 1, title="renamed")
    assert edited["action"] == "edited" and edited["changes"] == {"title": {"from": "t"}}

    payloads = [closed, reopened, *events, dup, edited]
    stamps = [ts(p["issue"]["updated_at"]) for p in payloads]
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))  # strictly increasing
    assert gh.issue(REPO, 1)["title"] == "renamed"

    copy_ = gh.issue(REPO, 1)
    copy_["labels"].clear()
    assert gh.issue(REPO, 1)["labels"]  # deep copies

    opened = gh.open_issue(REPO, "from a human", body="hi", labels=["question"])
    assert opened["action"] == "opened" and opened["issue"]["user"]["login"] == "maintainer"
    commented = gh.add_comment(REPO, 2, "thanks")
    assert commented["comment"]["body"] == "thanks" and commented["issue"]["comments"] == 1


class _Receiver(BaseHTTPRequestHandler):
    """Records raw webhook deliveries; answers 401 when the signature does not verify."""

    secret = "s3cret"
    seen: list[tuple[dict[str, str], bytes]] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((dict(self.headers.items()), raw))
        expected = "sha256=" + hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(expected, self.headers.get("X-Hub-Signature-256") or "")
        data = json.dumps({"ok": ok}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    seen: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/github", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_deliver_webhook_signs_raw_bytes(
    gh: FakeGitHub, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, seen = receiver
    create(gh, "t")
    payload = gh.close_issue(REPO, 1)
    status, body = deliver_webhook(url, payload, "s3cret", delivery="d-1")
    assert (status, body) == (200, {"ok": True})
    headers, raw = seen[-1]
    assert json.loads(raw) == payload
    assert headers["X-Hub-Signature-256"] == sign_webhook(raw, "s3cret")
    assert headers["X-GitHub-Event"] == "issues" and headers["X-GitHub-Delivery"] == "d-1"
    assert headers["User-Agent"] == "GitHub-Hookshot/fake" and headers["X-GitHub-Hook-ID"]
    assert headers["Content-Type"] == "application/json"

    status, body = deliver_webhook(url, payload, "wrong")  # 4xx comes back, not raised
    assert (status, body) == (401, {"ok": False})
    assert re.fullmatch(r"[0-9a-f-]{36}", seen[-1][0]["X-GitHub-Delivery"])  # uuid4
    assert deliver_webhook(url, payload, None)[0] == 401
    assert "X-Hub-Signature-256" not in seen[-1][0]
    tampered = json.dumps({**payload, "action": "reopened"}).encode()
    good_sig = sign_webhook(json.dumps(payload).encode(), "s3cret")
    assert deliver_webhook(url, payload, None, body=tampered, signature=good_sig)[0] == 401
    assert seen[-1][1] == tampered
    assert deliver_webhook(url, {}, "s3cret", event="ping", body=b"{}")[0] == 200
    assert seen[-1][0]["X-GitHub-Event"] == "ping"
