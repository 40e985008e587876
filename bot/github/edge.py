"""The GitHub edge: the outbox's `CardPoster` for issues, GitHub's webhook deliveries and a
poll, each translated into core (`core.issues.IssueDesk`).

- `GitHubPoster` opens the issue (`render` says what it holds) and finds it again by its
  marker after a crash, in the newest issues and then by search (GitHub's search index
  lags a new issue by seconds to minutes, so it is the second place to look, not the first).
- `receive` is POST /github: a delivery is verified (`X-Hub-Signature-256`), applied, and
  marked seen by `X-GitHub-Delivery` in one commit, so a redelivery changes nothing and a
  failure leaves it for GitHub's retry. A replayed body under a new delivery id is harmless:
  an update no newer than what is kept changes nothing.
- `IssuePoller` reads back the issues updated since its last look, where no webhook can reach
  the bot (no public URL, Socket Mode, Discord).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.github import render
from bot.github.client import GitHubClient
from bot.github.settings import GitHubSettings
from core.issues import IssueDesk, IssueUpdate, issue_target
from core.models import CardView
from core.outbox import Outbox, start_thread
from core.owners import Router
from core.ports import PostFailed, PostRefused
from core.service import TriageService
from core.store import STORE_UNAVAILABLE
from core.votes import VoteDesk

log = logging.getLogger("triage_bot.github")

MAX_DELIVERY_BYTES = 5 * 1024 * 1024  # GitHub caps payloads at 25 MB; issues events are small
FIND_PAGES = 3  # newest issues read when looking for one by its marker (100 a page)
SIGNATURE_HEADER = "X-Hub-Signature-256"
CLAIM_LEASE = 120.0


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def label_names(issue: Mapping[str, Any]) -> list[str]:
    labels = issue.get("labels")
    if not isinstance(labels, list):
        return []
    names = [x.get("name") if isinstance(x, dict) else x for x in labels]
    return [str(name) for name in names if isinstance(name, str) and name]


def issue_update(
    issue: Mapping[str, Any],
    actor: str | None = None,
    bot_login: str | None = None,
    action: object = None,
) -> IssueUpdate | None:
    """An issue object (a webhook's, a list's) as core's update; None if it is not one."""
    url, state, updated = issue.get("html_url"), issue.get("state"), _time(issue.get("updated_at"))
    if not isinstance(url, str) or state not in ("open", "closed") or updated is None:
        return None
    reason = issue.get("state_reason")
    return IssueUpdate(
        url=url,
        state=state,
        state_reason=reason if isinstance(reason, str) else None,
        labels=label_names(issue),
        updated_at=updated,
        actor=actor,
        actor_is_bot=actor is not None and actor == bot_login,
        action=action if isinstance(action, str) else None,
    )


class GitHubPoster:
    """Opens an item's issue (the outbox's `CardPoster` for target `github:owner/name`)."""

    def __init__(
        self,
        client: GitHubClient,
        service: TriageService,
        card_url: Callable[[str], str | None] = lambda item_id: None,
    ) -> None:
        self.client = client
        self.store = service.store
        self.target = issue_target(client.repo)
        self.card_url = card_url

    def post(self, card: CardView, *, minimal: bool = False) -> str:
        post = self.store.get_post(card.item.id, self.target)
        detail = post.detail if post is not None else {}
        title = render.title(str(detail.get("title") or card.item.redacted_text))
        labels = [str(label) for label in detail.get("labels", [])]
        assignees = [str(login) for login in detail.get("assignees", [])]
        body = render.body(card, self.card_url(card.item.id), minimal=minimal)
        issue = self.client.create_issue(title or card.item.id, body, labels, assignees)
        return self._keep(card.item.id, issue)

    def update(self, ref: str, card: CardView, *, minimal: bool = False) -> None:
        """An opened issue is the team's: votes after it show on the card, not in the issue."""

    def find(self, card: CardView) -> str | None:
        mark = render.marker(card.item.id)
        for issue in self.client.issues(sort="created", direction="desc", max_pages=FIND_PAGES):
            if mark in str(issue.get("body") or ""):
                return self._keep(card.item.id, issue)
        for issue in self.client.search_issues(f'"triage-bot:item={card.item.id}" in:body'):
            if mark in str(issue.get("body") or ""):
                return self._keep(card.item.id, issue)
        return None

    def _keep(self, item_id: str, issue: Mapping[str, Any]) -> str:
        url = issue.get("html_url")
        if not isinstance(url, str) or not url:
            raise PostFailed("GitHub answered without the issue's html_url")
        self.store.set_post_detail(
            item_id,
            self.target,
            {
                "state": issue.get("state", "open"),
                "state_reason": issue.get("state_reason"),
                "issue_labels": label_names(issue),
                "updated_at": (_time(issue.get("updated_at")) or datetime.now(UTC)).isoformat(),
            },
        )
        return url


def verify_signature(body: bytes, signature: str | None, secret: str) -> bool:
    """`X-Hub-Signature-256` against any of the comma-separated secrets (rotation)."""
    if not signature or not signature.startswith("sha256="):
        return False
    given = signature.strip().encode("utf-8", "surrogatepass")
    for key in (s.strip() for s in secret.split(",")):
        if key:
            digest = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
            if hmac.compare_digest(given, f"sha256={digest}".encode()):
                return True
    return False


class IssuePoller:
    """Reads back the repository's issues updated since the last look (`since` is kept in
    the store, so a restarted or another process goes on from there)."""

    def __init__(self, client: GitHubClient, desk: IssueDesk, interval: float) -> None:
        self.client = client
        self.desk = desk
        self.store = desk.store
        self.interval = interval
        self.cursor_key = f"github-poll:{client.repo}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> int:
        """Apply what changed since the last poll; returns how many issues were read."""
        posts = [p for p in self.store.posts(target=self.desk.target) if p.ref is not None]
        if not posts:
            return 0
        since = self.store.get_intake_cursor(self.cursor_key)
        if since is None:  # first look: since the oldest issue the bot opened
            since = min(p.created_at for p in posts).isoformat()
        newest, read = _time(since), 0
        for issue in self.client.issues(since=since, sort="updated", direction="asc"):
            update = issue_update(issue)
            if update is None:
                continue
            read += 1
            self.desk.apply(update)
            if newest is None or update.updated_at > newest:
                newest = update.updated_at
        if newest is not None:
            stamp = newest.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.store.set_intake_cursor(self.cursor_key, stamp)
        return read

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except (PostFailed, PostRefused) as exc:
                log.warning("github poll: %s", exc)
            except STORE_UNAVAILABLE as exc:
                log.warning("github poll: store unavailable (%s)", type(exc).__name__)
            except Exception:
                log.exception("github poll failed")

    def start(self) -> None:
        if self.interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="github-poll", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class GitHubEdge:
    """GitHub beside a chat edge: the issue outbox worker, the desk, the webhook, the poll."""

    def __init__(
        self,
        service: TriageService,
        votes: VoteDesk,
        settings: GitHubSettings,
        *,
        card_url: Callable[[str], str | None] = lambda item_id: None,
        worker_id: str | None = None,
        client: GitHubClient | None = None,
        router: Router | None = None,
    ) -> None:
        self.settings = settings
        self.store = service.store
        self.client = client or GitHubClient(
            settings.repo, settings.token, settings.api_url, timeout=settings.timeout_s
        )
        self.poster = GitHubPoster(self.client, service, card_url)
        self.outbox = Outbox(
            service,
            self.poster,
            worker_id=worker_id or f"github-{uuid.uuid4().hex[:8]}",
            lease_seconds=CLAIM_LEASE,
            on_result=lambda item_id: self.desk.rewrite_cards(item_id),
        )
        self.desk = IssueDesk(service, votes, settings.repo, wake=self.outbox.wake, router=router)
        self.poller = IssuePoller(self.client, self.desk, service.runtime.github.poll_seconds)
        self._thread: tuple[threading.Thread, threading.Event] | None = None

    @property
    def repo(self) -> str:
        return self.settings.repo

    def start(self) -> None:
        self._thread = start_thread(self.outbox, "github-outbox")
        self.poller.start()

    def stop(self) -> None:
        self.poller.stop()
        if self._thread is not None:
            thread, stop = self._thread
            stop.set()
            self.outbox.wake()
            thread.join(timeout=10)
        self.client.close()

    def receive(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """POST /github: (HTTP status, JSON answer). 401 unsigned or forged, 400 malformed,
        202 ignored (another event, an issue the bot did not open), 200 applied."""
        secret = self.settings.webhook_secret
        if not secret:
            return 503, {
                "error": "GitHub webhook disabled: TRIAGE_GITHUB_WEBHOOK_SECRET is not set"
            }
        if len(body) > MAX_DELIVERY_BYTES:
            return 413, {"error": f"delivery over {MAX_DELIVERY_BYTES} bytes"}
        if not verify_signature(body, headers.get(SIGNATURE_HEADER.lower()), secret):
            return 401, {"error": f"missing or wrong {SIGNATURE_HEADER}"}
        event = headers.get("x-github-event", "")
        delivery = headers.get("x-github-delivery", "")
        if not delivery or len(delivery) > 100:
            return 400, {"error": "missing X-GitHub-Delivery"}
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return 400, {"error": "body is not JSON"}
        if not isinstance(payload, dict):
            return 400, {"error": "body is not a JSON object"}
        if event == "ping":
            return 200, {"ok": True, "zen": "pong"}
        if event != "issues":
            return 202, {"ignored": f"event {event or '(none)'}"}
        issue, sender = payload.get("issue"), payload.get("sender") or {}
        actor = sender.get("login") if isinstance(sender, dict) else None
        update = (
            issue_update(
                issue,
                actor if isinstance(actor, str) else None,
                self.client.login(),
                payload.get("action"),
            )
            if isinstance(issue, dict)
            else None
        )
        if update is None:
            return 400, {"error": "an issues event without a well-formed issue"}
        with self.store.transaction():  # applied and marked seen together
            if not self.store.mark_event_seen(f"github:{delivery}"):
                return 200, {"duplicate": delivery}
            applied = self.desk.apply(update)
        if applied.item_id is None:
            return 202, {"ignored": applied.summary()}
        log.info("github %s: %s", payload.get("action"), applied.summary())
        return 200, {"applied": applied.summary()}


def recently(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
