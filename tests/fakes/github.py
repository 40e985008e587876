"""A local fake of GitHub's REST API (issues) over real HTTP, and GitHub-style webhook deliveries.

Tests and benchmarks of the bot's GitHub integration point a real HTTP client at it, the way
they point ``slack_sdk`` at :class:`tests.fakes.slack_api.FakeSlack`::

    with FakeGitHub() as gh:
        # the bot under test: base_url=gh.base_url, token="ghp-test"
        ...
        (issue,) = gh.issues("acme/app")
        payload = gh.close_issue("acme/app", issue["number"], reason="not_planned")
        status, _ = deliver_webhook(bot_webhook_url, payload, secret="s3cret")

What it models, because clients get these wrong against the real thing: auth (401), rate-limit
headers and both kinds of 403 rate limit, 422 validation (title/body length), pagination by
``Link`` header, ``since`` polling with strictly increasing ``updated_at``, search-index lag,
and latency that lands after the change is stored (a client that times out on a create has
still created the issue). Stdlib only.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import http.client
import itertools
import json
import math
import re
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

__all__ = ["Call", "FakeGitHub", "deliver_webhook", "sign_webhook"]

DOCS_URL = "https://docs.github.com/rest"
HOOK_ID = "424242"
TITLE_MAX = 256
BODY_MAX = 65536
CORE_LIMIT, CORE_WINDOW_S = 5000, 3600
SEARCH_LIMIT, SEARCH_WINDOW_S = 30, 60
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit and have been temporarily blocked from content"
    " creation. Please retry your request again later."
)
SECONDARY_DOCS = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
# A new GitHub repository's labels (name, color, description); `default: true` on these.
DEFAULT_LABELS = (
    ("bug", "d73a4a", "Something isn't working"),
    ("documentation", "0075ca", "Improvements or additions to documentation"),
    ("duplicate", "cfd3d7", "This issue or pull request already exists"),
    ("enhancement", "a2eeef", "New feature or request"),
    ("good first issue", "7057ff", "Good for newcomers"),
    ("help wanted", "008672", "Extra attention is needed"),
    ("invalid", "e4e669", "This doesn't seem right"),
    ("question", "d876e3", "Further information is requested"),
    ("wontfix", "ffffff", "This will not be worked on"),
)
CLOSE_REASONS = ("completed", "not_planned", "duplicate")
STATE_REASONS = (*CLOSE_REASONS, "reopened")
# Search qualifiers the fake understands; any other `word:value` token is a search term.
_QUALIFIERS = frozenset({"repo", "is", "in", "state", "label", "type", "author", "org", "user"})
_TOKEN = re.compile(r'(?:[^\s"]+:)?"[^"]*"|\S+')
_REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_ISSUE = _REPO + r"/issues/(?P<number>\d+)"
_ROUTES: tuple[tuple[re.Pattern[str], dict[str, str]], ...] = (
    (re.compile(r"/user"), {"GET": "_r_user"}),
    (re.compile(r"/rate_limit"), {"GET": "_r_rate_limit"}),
    (re.compile(r"/search/issues"), {"GET": "_r_search"}),
    (re.compile(_REPO), {"GET": "_r_repo"}),
    (re.compile(_REPO + r"/labels"), {"GET": "_r_repo_labels"}),
    (re.compile(_REPO + r"/issues"), {"GET": "_r_list_issues", "POST": "_r_create_issue"}),
    (re.compile(_ISSUE), {"GET": "_r_get_issue", "PATCH": "_r_update_issue"}),
    (re.compile(_ISSUE + r"/comments"), {"GET": "_r_list_comments", "POST": "_r_comment"}),
    (
        re.compile(_ISSUE + r"/labels"),
        {
            "GET": "_r_issue_labels",
            "POST": "_r_add_labels",
            "PUT": "_r_set_labels",
            "DELETE": "_r_clear_labels",
        },
    ),
    (re.compile(_ISSUE + r"/labels/(?P<label>[^/]+)"), {"DELETE": "_r_remove_label"}),
)

Response = tuple[int, dict[str, str], Any]


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(value: str) -> float:
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _stable_id(text: str) -> int:
    """A deterministic positive id for a login, so payloads are reproducible."""
    return 10_000 + zlib.crc32(text.encode("utf-8")) % 90_000_000


def _color(name: str) -> str:
    return f"{zlib.crc32(name.lower().encode('utf-8')) & 0xFFFFFF:06x}"


@dataclass
class Call:
    """One request received by :class:`FakeGitHub` (failed ones too, with their status)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int
    at: float = field(default_factory=time.monotonic)

    @property
    def failed(self) -> bool:
        return self.status >= 400


@dataclass
class _Failure:
    status: int
    remaining: int
    headers: dict[str, str]
    message: str
    path_contains: str | None
    method: str | None
    documentation_url: str = DOCS_URL
    reset_in: int | None = None  # primary rate limit: x-ratelimit-reset computed when answered

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path_contains is None or self.path_contains in path


@dataclass
class _Bucket:
    """A rate-limit window. It never throttles by itself (that would stall a benchmark for an
    hour); it restarts before reaching 0. Use :meth:`FakeGitHub.primary_rate_limit` instead."""

    resource: str
    limit: int
    window_s: int
    used: int = 0
    reset: int = 0

    def headers(self, take: bool) -> dict[str, str]:
        now = time.time()
        if now >= self.reset or (take and self.used + 1 >= self.limit):
            self.used, self.reset = 0, math.ceil(now) + self.window_s
        if take:
            self.used += 1
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.limit - self.used),
            "x-ratelimit-reset": str(self.reset),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-resource": self.resource,
        }

    def state(self) -> dict[str, int]:
        self.headers(take=False)
        return {
            "limit": self.limit,
            "remaining": self.limit - self.used,
            "reset": self.reset,
            "used": self.used,
        }


@dataclass
class _Repo:
    full_name: str
    owner: str
    name: str
    id: int
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower name -> label
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_number: int = 1


@dataclass
class _Req:
    method: str
    path: str  # as received (with any /api/v3 prefix), for Link headers
    query: dict[str, str]
    body: Any
    number: int  # this request's position among all requests (search-lag clock)


class _Error(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.payload = {"message": message, **extra, "documentation_url": DOCS_URL}


def _validation(resource: str, errors: list[dict[str, Any]]) -> _Error:
    return _Error(422, "Validation Failed", errors=[{"resource": resource, **e} for e in errors])


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        delay = 0.0
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = dict(self.headers.items())
            status, out_headers, payload, delay = self.server.fake._handle(
                self.command, self.path, headers, raw
            )
        except Exception as exc:  # pragma: no cover - surfaces fake bugs as a 500
            status, out_headers, payload = 500, {}, {"message": f"fake error: {exc!r}"}
        if delay > 0:
            time.sleep(delay)  # after the change is stored, like a slow GitHub
        data = b"" if status == 204 else json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            if status != 204:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            for k, v in out_headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (e.g. its timeout was shorter than the latency)
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeGitHub

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # never print tracebacks to stderr (e.g. client hung up mid-response)


class FakeGitHub:
    """An in-memory fake of GitHub's issues REST API, served over real HTTP on 127.0.0.1.

    ``repos``: when given, only those repositories exist (others answer 404); otherwise any
    repository exists on first use. ``search_lag``: an issue shows up in ``/search/issues``
    only once at least that many other requests came between its creation and the search.
    """

    def __init__(
        self,
        token: str = "ghp-test",
        bot_login: str = "triage-bot[bot]",
        web_url: str = "https://github.test",
        search_lag: int = 0,
        repos: list[str] | None = None,
    ) -> None:
        self.token = token
        self.bot_login = bot_login
        self.web_url = web_url.rstrip("/")
        self.search_lag = search_lag
        self._lock = threading.RLock()
        self._calls: list[Call] = []
        self._failures: list[_Failure] = []
        self._latency: dict[str | None, float] = {}
        self._repos: dict[str, _Repo] = {}
        self._allowed: set[str] | None = None
        self._ids = itertools.count(1_000_001)
        self._requests = 0
        self._clock = int(time.time()) - 1
        self._buckets = {
            "core": _Bucket("core", CORE_LIMIT, CORE_WINDOW_S),
            "search": _Bucket("search", SEARCH_LIMIT, SEARCH_WINDOW_S),
        }
        self._bot = {
            "login": bot_login,
            "id": _stable_id(bot_login),
            "node_id": f"BOT_{_stable_id(bot_login)}",
            "type": "Bot",
            "site_admin": False,
            "html_url": f"{self.web_url}/apps/{bot_login.removesuffix('[bot]')}",
        }
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        if repos is not None:
            self._allowed = set()
            for repo in repos:
                self.add_repo(repo)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeGitHub:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeGitHub is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The API root (``https://api.github.com`` for the real thing); no trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    def _root(self) -> str:
        # URLs inside objects; keeps working after stop() so tests can inspect state then.
        return f"http://127.0.0.1:{self._port or 0}"

    # ------------------------------------------------------------------ test controls
    def add_repo(self, repo: str) -> None:
        """Make ``repo`` ("owner/name") exist (needed when the constructor got ``repos``)."""
        owner, _, name = repo.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"repo must be 'owner/name', not {repo!r}")
        with self._lock:
            if self._allowed is not None:
                self._allowed.add(repo.lower())
            self._repo(owner, name)

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        headers: dict[str, str] | None = None,
        message: str = "",
        path_contains: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` and {"message": ...}.

        Failures queue up and are consumed in order by the requests they match; the request
        changes nothing. Authentication is checked first (a 401 consumes no failure).
        """
        with self._lock:
            self._failures.append(
                _Failure(
                    status=status,
                    remaining=count,
                    headers={k.lower(): v for k, v in (headers or {}).items()},
                    message=message or _phrase(status),
                    path_contains=path_contains,
                    method=method,
                )
            )

    def secondary_rate_limit(
        self,
        retry_after: int = 1,
        count: int = 1,
        *,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> None:
        """GitHub's abuse limit on content creation: 403, ``retry-after``, quota not exhausted."""
        with self._lock:
            self._failures.append(
                _Failure(
                    status=403,
                    remaining=count,
                    headers={"retry-after": str(retry_after)},
                    message=SECONDARY_MESSAGE,
                    path_contains=path_contains,
                    method=method,
                    documentation_url=SECONDARY_DOCS,
                )
            )

    def primary_rate_limit(
        self,
        reset_in: int = 1,
        count: int = 1,
        *,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> None:
        """An exhausted quota: 403, ``x-ratelimit-remaining: 0``, reset ``reset_in`` s after
        the failing answer (no ``retry-after``; clients must wait for the reset)."""
        with self._lock:
            self._failures.append(
                _Failure(
                    status=403,
                    remaining=count,
                    headers={},
                    message=(
                        f"API rate limit exceeded for user ID {self._bot['id']}. If you reach"
                        " out to GitHub Support for help, please include the request ID."
                    ),
                    path_contains=path_contains,
                    method=method,
                    documentation_url=(
                        "https://docs.github.com/rest/overview/resources-in-the-rest-api"
                        "#rate-limiting"
                    ),
                    reset_in=reset_in,
                )
            )

    def set_latency(self, seconds: float, path_contains: str | None = None) -> None:
        """Delay answers (all, or those whose path contains ``path_contains``) by ``seconds``;
        the longest matching delay applies, and ``seconds <= 0`` removes the entry."""
        with self._lock:
            if seconds > 0:
                self._latency[path_contains] = seconds
            else:
                self._latency.pop(path_contains, None)

    # ------------------------------------------------------------------ inspection
    @property
    def calls(self) -> list[Call]:
        """Every request so far, in arrival order (a snapshot)."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str | None = None, path_contains: str | None = None) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self._calls
                if (method is None or c.method == method.upper())
                and (path_contains is None or path_contains in c.path)
            ]

    def issues(self, repo: str) -> list[dict[str, Any]]:
        """Issues stored in ``repo``, in number order (deep copies)."""
        with self._lock:
            r = self._repos.get(repo.lower())
            if r is None:
                return []
            return [self._issue_json(r, r.issues[n]) for n in sorted(r.issues)]

    def issue(self, repo: str, number: int) -> dict[str, Any]:
        """One stored issue (a deep copy); KeyError when there is none."""
        with self._lock:
            r, iss = self._lookup(repo, number)
            return self._issue_json(r, iss)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    # ------------------------------------------------------------------ maintainer actions
    # Each changes the stored issue as a person on github.com would and returns the webhook
    # payload GitHub sends for it; hand it to deliver_webhook() to play it to the bot.
    def open_issue(
        self,
        repo: str,
        title: str,
        body: str | None = None,
        labels: Iterable[str] = (),
        by: str = "maintainer",
    ) -> dict[str, Any]:
        """A person opens an issue (not the bot): an ``opened`` payload."""
        owner, _, name = repo.partition("/")
        with self._lock:
            if self._allowed is not None and repo.lower() not in self._allowed:
                raise KeyError(repo)
            r = self._repo(owner, name)
            iss = self._new_issue(r, title, body, self._human(by), "COLLABORATOR")
            iss["labels"] = self._label_keys(r, list(labels))
            return self._event("opened", r, iss, by)

    def close_issue(
        self, repo: str, number: int, reason: str = "completed", by: str = "maintainer"
    ) -> dict[str, Any]:
        """``reason``: completed | not_planned | duplicate (GitHub's close menu)."""
        if reason not in CLOSE_REASONS:
            raise ValueError(f"reason must be one of {CLOSE_REASONS}, not {reason!r}")
        with self._lock:
            r, iss = self._lookup(repo, number)
            if iss["state"] == "closed":
                raise ValueError(f"{repo}#{number} is already closed")
            now = self._tick()
            iss.update(
                state="closed",
                state_reason=reason,
                closed=now,
                updated=now,
                closed_by=self._human(by),
            )
            return self._event("closed", r, iss, by)

    def reopen_issue(self, repo: str, number: int, by: str = "maintainer") -> dict[str, Any]:
        with self._lock:
            r, iss = self._lookup(repo, number)
            if iss["state"] != "closed":
                raise ValueError(f"{repo}#{number} is not closed")
            iss.update(
                state="open",
                state_reason="reopened",
                closed=None,
                closed_by=None,
                updated=self._tick(),
            )
            return self._event("reopened", r, iss, by)

    def relabel(
        self,
        repo: str,
        number: int,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        by: str = "maintainer",
    ) -> list[dict[str, Any]]:
        """One ``labeled``/``unlabeled`` payload per label actually changed: adds, then
        removes, in the order given. Labels that do not exist yet are created."""
        payloads: list[dict[str, Any]] = []
        with self._lock:
            r, iss = self._lookup(repo, number)
            for name in add:
                (key,) = self._label_keys(r, [name])
                if key in iss["labels"]:
                    continue
                iss["labels"].append(key)
                iss["updated"] = self._tick()
                label = self._label_json(r, r.labels[key])
                payloads.append(self._event("labeled", r, iss, by, label=label))
            for name in remove:
                key = name.lower()
                if key not in iss["labels"]:
                    continue
                iss["labels"].remove(key)
                iss["updated"] = self._tick()
                label = self._label_json(r, r.labels[key])
                payloads.append(self._event("unlabeled", r, iss, by, label=label))
        return payloads

    def edit_issue(
        self,
        repo: str,
        number: int,
        title: str | None = None,
        body: str | None = None,
        by: str = "maintainer",
    ) -> dict[str, Any]:
        """An ``edited`` payload, with ``changes`` ({"title": {"from": old}}, ...)."""
        if title is None and body is None:
            raise ValueError("edit_issue needs a title or a body")
        with self._lock:
            r, iss = self._lookup(repo, number)
            changes: dict[str, Any] = {}
            if title is not None and title != iss["title"]:
                changes["title"] = {"from": iss["title"]}
                iss["title"] = title
            if body is not None and body != iss["body"]:
                changes["body"] = {"from": iss["body"]}
                iss["body"] = body
            iss["updated"] = self._tick()
            return self._event("edited", r, iss, by, changes=changes)

    def add_comment(
        self, repo: str, number: int, body: str, by: str = "maintainer"
    ) -> dict[str, Any]:
        """A person comments: the ``issue_comment`` payload (deliver with that event name)."""
        with self._lock:
            r, iss = self._lookup(repo, number)
            comment = self._new_comment(iss, body, self._human(by), "COLLABORATOR")
            return self._event("created", r, iss, by, comment=self._comment_json(r, iss, comment))

    # ------------------------------------------------------------------ state helpers
    # (called with self._lock held)
    def _tick(self) -> int:
        """The time of a change: real time, but at least 1 s after the previous change, so
        ordering by updated_at is strict and `since` polling can be tested exactly."""
        self._clock = max(self._clock + 1, int(time.time()))
        return self._clock

    def _repo(self, owner: str, name: str) -> _Repo:
        full = f"{owner}/{name}"
        key = full.lower()
        if self._allowed is not None and key not in self._allowed:
            raise _Error(404, "Not Found")
        r = self._repos.get(key)
        if r is None:
            r = _Repo(full_name=full, owner=owner, name=name, id=next(self._ids))
            for label, color, description in DEFAULT_LABELS:
                r.labels[label] = self._new_label(label, color, description, default=True)
            self._repos[key] = r
        return r

    def _lookup(self, repo: str, number: int) -> tuple[_Repo, dict[str, Any]]:
        r = self._repos.get(repo.lower())
        if r is None or number not in r.issues:
            raise KeyError(f"{repo}#{number}")
        return r, r.issues[number]

    def _new_label(
        self,
        name: str,
        color: str | None = None,
        description: str | None = None,
        default: bool = False,
    ) -> dict[str, Any]:
        label_id = next(self._ids)
        return {
            "id": label_id,
            "node_id": f"LA_fake{label_id}",
            "name": name,
            "color": color or _color(name),
            "description": description,
            "default": default,
        }

    def _label_keys(self, r: _Repo, names: Any) -> list[str]:
        """Lower-case keys for ``names`` (str or {"name"}), creating missing labels."""
        if not isinstance(names, list):
            raise _validation("Label", [{"code": "invalid", "field": "labels"}])
        keys: list[str] = []
        for item in names:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name.strip():
                raise _validation("Label", [{"code": "invalid", "field": "name"}])
            name = name.strip()
            key = name.lower()
            if key not in r.labels:
                r.labels[key] = self._new_label(name)
            if key not in keys:
                keys.append(key)
        return keys

    def _new_issue(
        self,
        r: _Repo,
        title: str,
        body: str | None,
        user: dict[str, Any],
        association: str,
    ) -> dict[str, Any]:
        now = self._tick()
        issue_id = next(self._ids)
        iss: dict[str, Any] = {
            "number": r.next_number,
            "id": issue_id,
            "node_id": f"I_kwDOfake{issue_id}",
            "title": title,
            "body": body,
            "state": "open",
            "state_reason": None,
            "labels": [],
            "assignees": [],
            "user": user,
            "author_association": association,
            "comments": [],
            "created": now,
            "updated": now,
            "closed": None,
            "closed_by": None,
            "indexed_at": self._requests,  # the search-lag clock at creation
        }
        r.issues[r.next_number] = iss
        r.next_number += 1
        return iss

    def _new_comment(
        self, iss: dict[str, Any], body: str, user: dict[str, Any], association: str
    ) -> dict[str, Any]:
        now = self._tick()
        comment = {
            "id": next(self._ids),
            "body": body,
            "user": user,
            "author_association": association,
            "created": now,
            "updated": now,
        }
        iss["comments"].append(comment)
        iss["updated"] = now
        return comment

    def _human(self, login: str) -> dict[str, Any]:
        uid = _stable_id(login)
        return {
            "login": login,
            "id": uid,
            "node_id": f"U_fake{uid}",
            "type": "User",
            "site_admin": False,
            "html_url": f"{self.web_url}/{login}",
        }

    # ------------------------------------------------------------------ JSON shapes
    def _repo_json(self, r: _Repo) -> dict[str, Any]:
        owner_id = _stable_id(r.owner)
        return {
            "id": r.id,
            "node_id": f"R_fake{r.id}",
            "name": r.name,
            "full_name": r.full_name,
            "owner": {
                "login": r.owner,
                "id": owner_id,
                "node_id": f"O_fake{owner_id}",
                "type": "Organization",
                "html_url": f"{self.web_url}/{r.owner}",
            },
            "private": False,
            "visibility": "public",
            "html_url": f"{self.web_url}/{r.full_name}",
            "url": f"{self._root()}/repos/{r.full_name}",
            "description": None,
            "fork": False,
            "archived": False,
            "disabled": False,
            "has_issues": True,
            "default_branch": "main",
            "open_issues_count": sum(1 for i in r.issues.values() if i["state"] == "open"),
            "permissions": {
                "admin": False,
                "maintain": False,
                "push": True,
                "triage": True,
                "pull": True,
            },
        }

    def _label_json(self, r: _Repo, label: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._root()}/repos/{r.full_name}/labels/{quote(label['name'], safe='')}"
        return {**label, "url": url}

    def _issue_json(self, r: _Repo, iss: dict[str, Any]) -> dict[str, Any]:
        api = f"{self._root()}/repos/{r.full_name}"
        url = f"{api}/issues/{iss['number']}"
        assignees = [self._human(login) for login in iss["assignees"]]
        return copy.deepcopy(
            {
                "url": url,
                "repository_url": api,
                "labels_url": url + "/labels{/name}",
                "comments_url": url + "/comments",
                "events_url": url + "/events",
                "html_url": f"{self.web_url}/{r.full_name}/issues/{iss['number']}",
                "id": iss["id"],
                "node_id": iss["node_id"],
                "number": iss["number"],
                "title": iss["title"],
                "user": iss["user"],
                "labels": [self._label_json(r, r.labels[k]) for k in iss["labels"]],
                "state": iss["state"],
                "locked": False,
                "active_lock_reason": None,
                "assignee": assignees[0] if assignees else None,
                "assignees": assignees,
                "milestone": None,
                "comments": len(iss["comments"]),
                "created_at": _iso(iss["created"]),
                "updated_at": _iso(iss["updated"]),
                "closed_at": _iso(iss["closed"]),
                "closed_by": iss["closed_by"],
                "author_association": iss["author_association"],
                "body": iss["body"],
                "state_reason": iss["state_reason"],
            }
        )

    def _comment_json(
        self, r: _Repo, iss: dict[str, Any], comment: dict[str, Any]
    ) -> dict[str, Any]:
        api = f"{self._root()}/repos/{r.full_name}"
        html = f"{self.web_url}/{r.full_name}/issues/{iss['number']}"
        return copy.deepcopy(
            {
                "id": comment["id"],
                "node_id": f"IC_fake{comment['id']}",
                "url": f"{api}/issues/comments/{comment['id']}",
                "html_url": f"{html}#issuecomment-{comment['id']}",
                "issue_url": f"{api}/issues/{iss['number']}",
                "body": comment["body"],
                "user": comment["user"],
                "author_association": comment["author_association"],
                "created_at": _iso(comment["created"]),
                "updated_at": _iso(comment["updated"]),
            }
        )

    def _event(
        self, action: str, r: _Repo, iss: dict[str, Any], by: str, **extra: Any
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"action": action, "issue": self._issue_json(r, iss)}
        payload.update(extra)
        payload["repository"] = self._repo_json(r)
        payload["sender"] = self._human(by)
        payload["installation"] = {"id": 1, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
        return payload

    # ------------------------------------------------------------------ HTTP
    def _handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any, float]:
        split = urlsplit(raw_path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        route = path[len("/api/v3") :] if path.startswith("/api/v3/") else path
        route = route.rstrip("/") or "/"
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError:
                bad_json = True
        with self._lock:
            self._requests += 1
            req = _Req(method, path, query, body, self._requests)
            bucket = self._buckets["search" if route.startswith("/search/") else "core"]
            out = bucket.headers(take=route != "/rate_limit")
            out["x-github-request-id"] = f"{uuid.uuid4().hex[:8].upper()}:{self._requests:08X}"
            out["x-github-media-type"] = "github.v3; format=json"
            status, extra, payload = self._respond(req, route, headers, bad_json, bucket)
            out.update(extra)
            self._calls.append(Call(method, path, query, body, headers, status))
            delay = max(
                (s for p, s in self._latency.items() if p is None or p in path), default=0.0
            )
        return status, out, payload, delay

    def _respond(
        self,
        req: _Req,
        route: str,
        headers: dict[str, str],
        bad_json: bool,
        bucket: _Bucket,
    ) -> Response:
        if not self._authorized(headers):
            return 401, {}, {"message": "Bad credentials", "documentation_url": DOCS_URL}
        failure = next((f for f in self._failures if f.matches(req.method, req.path)), None)
        if failure is not None:
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.remove(failure)
            extra = dict(failure.headers)
            if failure.reset_in is not None:
                reset = math.ceil(time.time()) + failure.reset_in
                extra.update(
                    {
                        "x-ratelimit-remaining": "0",
                        "x-ratelimit-used": str(bucket.limit),
                        "x-ratelimit-reset": str(reset),
                    }
                )
            payload = {"message": failure.message, "documentation_url": failure.documentation_url}
            return failure.status, extra, payload
        if bad_json:
            return 400, {}, {"message": "Problems parsing JSON", "documentation_url": DOCS_URL}
        for pattern, methods in _ROUTES:
            match = pattern.fullmatch(route)
            if match is None:
                continue
            handler_name = methods.get(req.method)
            if handler_name is None:
                break
            try:
                params = {k: unquote(v) for k, v in match.groupdict().items()}
                result: Response = getattr(self, handler_name)(req, **params)
                return result
            except _Error as err:
                return err.status, {}, err.payload
        return 404, {}, {"message": "Not Found", "documentation_url": DOCS_URL}

    def _authorized(self, headers: dict[str, str]) -> bool:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, credential = auth.strip().partition(" ")
        return scheme.lower() in ("bearer", "token") and credential.strip() == self.token

    def _paginate(self, req: _Req, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        """One page of ``items`` and the RFC 5988 ``Link`` header GitHub sends with it."""
        per_page = min(100, max(1, _int(req.query.get("per_page"), 30)))
        page = max(1, _int(req.query.get("page"), 1))
        last = max(1, math.ceil(len(items) / per_page))

        def link(number: int, rel: str) -> str:
            query = {**req.query, "page": str(number)}
            return f'<{self._root()}{req.path}?{urlencode(query)}>; rel="{rel}"'

        links = []
        if page > 1:
            links += [link(min(page - 1, last), "prev"), link(1, "first")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        chunk = items[(page - 1) * per_page : page * per_page]
        return chunk, ({"link": ", ".join(links)} if links else {})

    def _issue_in(self, owner: str, name: str, number: str) -> tuple[_Repo, dict[str, Any]]:
        r = self._repo(owner, name)
        iss = r.issues.get(int(number))
        if iss is None:
            raise _Error(404, "Not Found")
        return r, iss

    def _body_obj(self, req: _Req) -> dict[str, Any]:
        if req.body is None:
            return {}
        if not isinstance(req.body, dict):
            raise _Error(422, "Invalid request.\n\nThe body must be a JSON object.")
        return req.body

    @staticmethod
    def _check_text(
        errors: list[dict[str, Any]],
        data: dict[str, Any],
        name: str,
        *,
        required: bool,
        max_len: int,
    ) -> None:
        value = data.get(name)
        if value is None:
            if required:
                errors.append({"code": "missing_field", "field": name})
        elif not isinstance(value, str):
            errors.append({"code": "invalid", "field": name})
        elif required and not value.strip():
            errors.append({"code": "missing_field", "field": name})
        elif len(value) > max_len:
            message = f"{name} is too long (maximum is {max_len} characters)"
            errors.append({"code": "custom", "field": name, "message": message})

    def _assignees(self, data: dict[str, Any]) -> list[str] | None:
        if "assignees" in data:
            value = data["assignees"]
        elif "assignee" in data:
            value = [] if data["assignee"] is None else [data["assignee"]]
        else:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _validation("Issue", [{"code": "invalid", "field": "assignees"}])
        return list(dict.fromkeys(value))

    # --- routes (called with self._lock held)
    def _r_user(self, req: _Req) -> Response:
        return 200, {}, dict(self._bot)

    def _r_rate_limit(self, req: _Req) -> Response:
        resources = {k: b.state() for k, b in self._buckets.items()}
        return 200, {}, {"resources": resources, "rate": resources["core"]}

    def _r_repo(self, req: _Req, owner: str, name: str) -> Response:
        return 200, {}, self._repo_json(self._repo(owner, name))

    def _r_repo_labels(self, req: _Req, owner: str, name: str) -> Response:
        r = self._repo(owner, name)
        page, headers = self._paginate(req, [self._label_json(r, x) for x in r.labels.values()])
        return 200, headers, page

    def _r_create_issue(self, req: _Req, owner: str, name: str) -> Response:
        r = self._repo(owner, name)
        data = self._body_obj(req)
        errors: list[dict[str, Any]] = []
        self._check_text(errors, data, "title", required=True, max_len=TITLE_MAX)
        self._check_text(errors, data, "body", required=False, max_len=BODY_MAX)
        if errors:
            raise _validation("Issue", errors)
        assignees = self._assignees(data) or []
        labels = self._label_keys(r, data.get("labels") or [])
        iss = self._new_issue(r, data["title"], data.get("body"), dict(self._bot), "NONE")
        iss["labels"], iss["assignees"] = labels, assignees
        return (
            201,
            {"location": f"{self._root()}/repos/{r.full_name}/issues/{iss['number']}"},
            (self._issue_json(r, iss)),
        )

    def _r_get_issue(self, req: _Req, owner: str, name: str, number: str) -> Response:
        r, iss = self._issue_in(owner, name, number)
        return 200, {}, self._issue_json(r, iss)

    def _r_update_issue(self, req: _Req, owner: str, name: str, number: str) -> Response:
        r, iss = self._issue_in(owner, name, number)
        data = self._body_obj(req)
        errors: list[dict[str, Any]] = []
        if "title" in data:
            self._check_text(errors, data, "title", required=True, max_len=TITLE_MAX)
        self._check_text(errors, data, "body", required=False, max_len=BODY_MAX)
        state = data.get("state", iss["state"])
        if state not in ("open", "closed"):
            errors.append({"code": "invalid", "field": "state"})
        reason = data.get("state_reason")
        if reason is not None and reason not in STATE_REASONS:
            errors.append({"code": "invalid", "field": "state_reason"})
        if errors:
            raise _validation("Issue", errors)
        assignees = self._assignees(data)
        labels = self._label_keys(r, data["labels"] or []) if "labels" in data else None
        before = copy.deepcopy(iss)
        if "title" in data:
            iss["title"] = data["title"]
        if "body" in data:
            iss["body"] = data["body"]
        if labels is not None:
            iss["labels"] = labels
        if assignees is not None:
            iss["assignees"] = assignees
        if state == "closed":
            if iss["state"] != "closed":
                closing_reason = reason if reason in CLOSE_REASONS else "completed"
                iss.update(
                    state="closed", state_reason=closing_reason, closed=-1, closed_by=self._bot
                )
            elif reason in CLOSE_REASONS:
                iss["state_reason"] = reason  # re-classify a closed issue
        elif iss["state"] == "closed":
            iss.update(state="open", state_reason="reopened", closed=None, closed_by=None)
        if iss != before:
            now = self._tick()
            iss["updated"] = now
            if iss["closed"] == -1:
                iss["closed"] = now
        return 200, {}, self._issue_json(r, iss)

    def _r_list_issues(self, req: _Req, owner: str, name: str) -> Response:
        r = self._repo(owner, name)
        q = req.query
        state = q.get("state") or "open"
        items = [i for i in r.issues.values() if state == "all" or i["state"] == state]
        if q.get("labels"):
            wanted = {x.strip().lower() for x in q["labels"].split(",") if x.strip()}
            items = [i for i in items if wanted <= set(i["labels"])]
        if q.get("since"):
            try:
                since = _parse_iso(q["since"])
            except ValueError:
                raise _validation("Issue", [{"code": "invalid", "field": "since"}]) from None
            items = [i for i in items if i["updated"] >= since]
        sort = q.get("sort") or "created"
        keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            "created": lambda i: (i["created"], i["number"]),
            "updated": lambda i: (i["updated"], i["number"]),
            "comments": lambda i: (len(i["comments"]), i["number"]),
        }
        if sort not in keys:
            raise _validation("Issue", [{"code": "invalid", "field": "sort"}])
        items.sort(key=keys[sort], reverse=(q.get("direction") or "desc") != "asc")
        page, headers = self._paginate(req, items)
        return 200, headers, [self._issue_json(r, i) for i in page]

    def _r_search(self, req: _Req) -> Response:
        q = (req.query.get("q") or "").strip()
        if not q:
            raise _validation("Search", [{"code": "missing", "field": "q"}])
        terms: list[str] = []
        quals: dict[str, list[str]] = {}
        for token in _TOKEN.findall(q):
            key, sep, value = token.partition(":")
            if sep and not token.startswith('"') and key.lower() in _QUALIFIERS:
                quals.setdefault(key.lower(), []).append(value.strip('"').lower())
            elif token.strip('"'):
                terms.append(token.strip('"').lower())
        repos = list(self._repos.values())
        if "repo" in quals:
            names = set(quals["repo"])
            if self._allowed is not None and not names <= self._allowed:
                message = (
                    "The listed users and repositories cannot be searched either because the"
                    " resources do not exist or you do not have permission to view them."
                )
                raise _validation("Search", [{"code": "invalid", "field": "q", "message": message}])
            repos = [r for r in repos if r.full_name.lower() in names]
        for owner_key in ("org", "user"):
            if owner_key in quals:
                repos = [r for r in repos if r.owner.lower() in quals[owner_key]]
        kinds = set(quals.get("is", [])) | set(quals.get("type", []))
        fields = {f for v in quals.get("in", []) for f in v.split(",")} or {"title", "body"}
        states = {s for s in kinds | set(quals.get("state", [])) if s in ("open", "closed")}
        found: list[tuple[_Repo, dict[str, Any]]] = []
        for r in repos:
            for iss in r.issues.values():
                if "pr" in kinds or "pull-request" in kinds:
                    continue
                if req.number - iss["indexed_at"] <= self.search_lag:
                    continue  # not in the search index yet
                if states and iss["state"] not in states:
                    continue
                if not set(quals.get("label", [])) <= set(iss["labels"]):
                    continue
                if "author" in quals and iss["user"]["login"].lower() not in quals["author"]:
                    continue
                text = []
                if "title" in fields:
                    text.append(iss["title"] or "")
                if "body" in fields:
                    text.append(iss["body"] or "")
                if "comments" in fields:
                    text += [c["body"] for c in iss["comments"]]
                haystack = "\n".join(text).lower()
                if all(term in haystack for term in terms):
                    found.append((r, iss))
        sort = req.query.get("sort")
        order_key: Callable[[tuple[_Repo, dict[str, Any]]], Any] = {
            "updated": lambda ri: (ri[1]["updated"], ri[1]["id"]),
            "comments": lambda ri: (len(ri[1]["comments"]), ri[1]["id"]),
        }.get(sort or "", lambda ri: (ri[1]["created"], ri[1]["id"]))
        found.sort(key=order_key, reverse=req.query.get("order", "desc") != "asc")
        page, headers = self._paginate(req, found)
        items = [{**self._issue_json(r, i), "score": 1.0} for r, i in page]
        return (
            200,
            headers,
            {"total_count": len(found), "incomplete_results": False, "items": items},
        )

    def _r_list_comments(self, req: _Req, owner: str, name: str, number: str) -> Response:
        r, iss = self._issue_in(owner, name, number)
        comments = iss["comments"]
        if req.query.get("since"):
            try:
                since = _parse_iso(req.query["since"])
            except ValueError:
                raise _validation("IssueComment", [{"code": "invalid", "field": "since"}]) from None
            comments = [c for c in comments if c["updated"] >= since]
        page, headers = self._paginate(req, comments)
        return 200, headers, [self._comment_json(r, iss, c) for c in page]

    def _r_comment(self, req: _Req, owner: str, name: str, number: str) -> Response:
        r, iss = self._issue_in(owner, name, number)
        data = self._body_obj(req)
        errors: list[dict[str, Any]] = []
        self._check_text(errors, data, "body", required=True, max_len=BODY_MAX)
        if errors:
            raise _validation("IssueComment", errors)
        comment = self._new_comment(iss, data["body"], dict(self._bot), "NONE")
        return 201, {}, self._comment_json(r, iss, comment)

    def _labels_in_body(self, req: _Req) -> Any:
        body = req.body
        return body.get("labels") if isinstance(body, dict) else body

    def _issue_labels(self, r: _Repo, iss: dict[str, Any]) -> list[dict[str, Any]]:
        return [self._label_json(r, r.labels[k]) for k in iss["labels"]]

    def _r_issue_labels(self, req: _Req, owner: str, name: str, number: str) -> Response:
        r, iss = self._issue_in(owner, name, number)
        return 200, {}, self._issue_labels(r, iss)

    def _r_add_labels(self, req: _Req, owner: str, name: str, number: str) -> Response:
        r, iss = self._issue_in(owner, name, number)
        new = [k for k in self._label_keys(r, self._labels_in_body(req)) if k not in iss["labels"]]
        if new:
            iss["labels"] += new
            iss["updated"] = self._tick()
        return 200, {}, self._issue_labels(r, iss)

    def _r_set_labels(self, req: _Req, owner: str, name: str, number: str) -> Response:
        r, iss = self._issue_in(owner, name, number)
        keys = self._label_keys(r, self._labels_in_body(req) or [])
        if keys != iss["labels"]:
            iss["labels"] = keys
            iss["updated"] = self._tick()
        return 200, {}, self._issue_labels(r, iss)

    def _r_clear_labels(self, req: _Req, owner: str, name: str, number: str) -> Response:
        _, iss = self._issue_in(owner, name, number)
        if iss["labels"]:
            iss["labels"] = []
            iss["updated"] = self._tick()
        return 204, {}, None

    def _r_remove_label(
        self, req: _Req, owner: str, name: str, number: str, label: str
    ) -> Response:
        r, iss = self._issue_in(owner, name, number)
        key = label.lower()
        if key not in iss["labels"]:
            raise _Error(404, "Label does not exist")
        iss["labels"].remove(key)
        iss["updated"] = self._tick()
        return 200, {}, self._issue_labels(r, iss)


# ---------------------------------------------------------------------- webhooks


def sign_webhook(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def deliver_webhook(
    url: str,
    payload: dict[str, Any],
    secret: str | None,
    *,
    event: str = "issues",
    delivery: str | None = None,
    signature: str | None = None,
    body: bytes | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, Any] | str]:
    """POST ``payload`` to ``url`` the way GitHub delivers a webhook; (status, JSON or text).

    ``body`` sends those exact bytes instead of ``payload`` (tamper tests); ``signature``
    overrides the computed one; with neither ``secret`` nor ``signature`` none is sent. 4xx/5xx
    answers are returned, not raised, so tests can assert on 401/400 answers.
    """
    raw = body if body is not None else json.dumps(payload).encode("utf-8")
    repository = payload.get("repository") if isinstance(payload, dict) else None
    target_id = repository.get("id") if isinstance(repository, dict) else None
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/fake",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery if delivery is not None else str(uuid.uuid4()),
        "X-GitHub-Hook-ID": HOOK_ID,
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-GitHub-Hook-Installation-Target-ID": str(target_id or 1),
    }
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = sign_webhook(raw, secret)
    # http.client, not urllib: urllib re-cases header names ("X-github-event"), and GitHub's
    # exact spelling is what receivers are written against. It never goes through a proxy.
    parts = urlsplit(url)
    conn_cls = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = conn_cls(parts.netloc, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", target, body=raw, headers=headers)
        resp = conn.getresponse()
        status, data = int(resp.status), resp.read()
    finally:
        conn.close()
    text = data.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return status, text
    return status, parsed if isinstance(parsed, dict) else text
