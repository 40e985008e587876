"""The Slack edge: Bolt listeners, the outbox poster, and card updates.

Every listener acks first and works after (Slack's 3-second limit). Every new item is
stored (with where it must be posted) before the outbox posts it; a post that may have
reached Slack before a crash is reconciled against the channel's history, found by the
item id in the card's metadata, instead of being posted twice.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.slack import cards
from bot.slack.settings import SlackSettings
from bot.webhook import FormFeedback
from core.governance import InputError, redact
from core.models import FeedbackItem, Triage, ValidationKind, stable_id
from core.ports import Store
from core.service import TriageService, UnknownItemError, VoteOutcome
from core.store import STORE_UNAVAILABLE

log = logging.getLogger("triage_bot.slack")
RECONCILE_PAGES = 10
MODEL_REFRESH_SECONDS = 30.0  # how soon a model promoted elsewhere is served
STORE_DOWN_TEXT = "The triage store is unreachable right now, so nothing was recorded; try again."
# A card rewrite that fails for these is retried by the outbox thread.
CARD_RETRY_ERRORS: tuple[type[Exception], ...] = (*STORE_UNAVAILABLE, SlackApiError)
FollowUp = Callable[[], None]  # the slow part of an event, run after Slack has its ack


def store_down(exc: Exception) -> BoltResponse:
    """503 for Slack: it redelivers the event later, and by then the store may be back."""
    log.warning("store unavailable, answering 503: %s", exc)
    return BoltResponse(
        status=503,
        body=json.dumps({"error": f"store unavailable ({type(exc).__name__}); retry later"}),
        headers={"content-type": "application/json", "retry-after": "5"},
    )


def make_client(settings: SlackSettings) -> WebClient:
    """A WebClient that waits out 429s (Retry-After) and retries dropped connections."""
    return WebClient(
        token=settings.bot_token,
        base_url=settings.api_url,
        timeout=15,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


def _redacted(value: Any) -> Any:
    """Every string in a JSON value, keys included, with its PII redacted."""
    if isinstance(value, str):
        return redact(value).text
    if isinstance(value, dict):
        return {_redacted(str(k)): _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _slack_time(ts: str | float | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), UTC) if ts is not None else None
    except (TypeError, ValueError):
        return None


class SlackEdge:
    def __init__(
        self,
        service: TriageService,
        store: Store,
        settings: SlackSettings,
        client: WebClient,
        worker_id: str | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.taxonomy = service.taxonomy
        self.settings = settings
        self.client = client
        self.target = f"slack:{settings.channel}"
        self.worker_id = worker_id or f"slack-{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_post = 0.0
        self._thread: threading.Thread | None = None
        self._stale: set[str] = set()  # cards whose rewrite failed (store down, Slack 429s)
        self._stale_lock = threading.Lock()

    # -- intake ----------------------------------------------------------------------------
    def accept(self, item: FeedbackItem) -> tuple[Triage, bool]:
        """Store the item (marked for the triage channel), triage it, queue its card."""
        item.metadata.setdefault("post_to", [self.target])
        triage, is_new = self.service.submit(item)
        self.store.enqueue_post(item.id, self.target)
        self._wake.set()
        return triage, is_new

    def accept_form(self, form: FormFeedback) -> tuple[Triage, bool]:
        item = self.service.make_item(
            form.comment,
            source="webhook",
            item_id=stable_id("fb", "webhook", form.body_sha256),
            form_type=form.form_type,
            # A page URL and free-form metadata can carry PII too (?email=, a token): they
            # are stored and shown, so they are redacted like the text.
            page=redact(form.page).text if form.page else None,
            rating=form.rating,
            metadata={"form": _redacted(form.metadata)},
        )
        return self.accept(item)

    def recover(self) -> int:
        """Queue items stored for this channel whose outbox entry a crash prevented."""
        queued = 0
        for item in self.store.iter_items():
            wanted = self.target in item.metadata.get("post_to", [])
            if wanted and self.store.get_post(item.id, self.target) is None:
                queued += int(self.store.enqueue_post(item.id, self.target))
        if queued:
            self._wake.set()
        return queued

    # -- the outbox poster -------------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._run, name="slack-outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        next_refresh = time.monotonic() + MODEL_REFRESH_SECONDS
        while not self._stop.is_set():
            if time.monotonic() >= next_refresh:
                next_refresh = time.monotonic() + MODEL_REFRESH_SECONDS
                try:
                    if self.service.refresh_model():
                        log.info("now serving %s", self.service.engine.model_version)
                except Exception:
                    log.exception("could not refresh the promoted model")
            try:
                worked = self.post_next()
            except STORE_UNAVAILABLE as exc:  # an outage: wait it out, no traceback per try
                log.warning("outbox: store unavailable (%s); retrying", type(exc).__name__)
                worked = False
                self._stop.wait(2.0)
            except Exception:  # keep the poster alive whatever one post does
                log.exception("outbox: posting failed")
                worked = False
                self._stop.wait(2.0)
            if not worked:
                self.refresh_stale()
                self._wake.wait(timeout=1.0)
                self._wake.clear()

    def post_next(self) -> bool:
        """Post one pending card; False when there is nothing to post."""
        post = self.store.claim_post(self.target, self.worker_id, self.settings.claim_lease)
        if post is None:
            return False
        item = self.store.get_item(post.item_id)
        if item is None:
            log.error("outbox: item %s vanished; dropping its post", post.item_id)
            self.store.mark_posted(post.item_id, self.target, "missing-item")
            return True
        triage = self.store.latest_triage(item.id) or self.service.submit(item)[0]
        if post.attempts > 1:
            found = self.find_card(item)
            if found is not None:
                log.info("outbox: %s was already posted as %s; not reposting", item.id, found)
                self.store.mark_posted(item.id, self.target, found, self.worker_id)
                return True
        self._pace()
        try:
            response = self.client.chat_postMessage(
                channel=self.settings.channel,
                text=cards.card_text(item, triage),
                blocks=self._blocks(item, triage),
                metadata=cards.card_metadata(item.id),
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            retry_after = float(exc.response.headers.get("Retry-After", 0) or 0)
            log.warning("outbox: Slack refused %s: %s", item.id, exc.response.get("error"))
            self.store.release_post(item.id, self.target, self.worker_id)
            self._stop.wait(max(retry_after, 1.0))
            return True
        if not self.store.mark_posted(item.id, self.target, str(response["ts"]), self.worker_id):
            # Our lease ran out mid-post and another worker holds the post now: it searches
            # the channel before posting, so it finds this card unless it searched first.
            log.warning(
                "outbox: lost the claim on %s while posting (lease %.0f s too short?)",
                item.id,
                self.settings.claim_lease,
            )
        return True

    def _pace(self) -> None:
        wait = self._last_post + self.settings.post_interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_post = time.monotonic()

    def find_card(self, item: FeedbackItem) -> str | None:
        """The ts of a card for this item already in the channel, found by its metadata."""
        oldest = (item.received_at - timedelta(minutes=5)).timestamp()
        cursor = None
        for _ in range(RECONCILE_PAGES):
            page = self.client.conversations_history(
                channel=self.settings.channel,
                oldest=f"{oldest:.6f}",
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
            for message in page.get("messages", []):
                if cards.card_item_id(message) == item.id:
                    return str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    def _blocks(self, item: FeedbackItem, triage: Triage) -> list[dict[str, Any]]:
        source = item.metadata.get("slack")
        link = (
            cards.archive_link(source["channel"], source["ts"])
            if isinstance(source, dict) and "channel" in source and "ts" in source
            else item.page
            if item.page and item.page.startswith("http")
            else None
        )
        return cards.card_blocks(
            item,
            triage,
            self.taxonomy,
            votes=self.store.current_votes(item.id),
            label=self.store.get_label(item.id),
            similar=self.service.similar_validated(item),
            source_link=link,
        )

    def refresh_card(self, item_id: str) -> None:
        """Rewrite a posted card in place with who validated what."""
        post = self.store.get_post(item_id, self.target)
        item = self.store.get_item(item_id)
        triage = self.store.latest_triage(item_id)
        if post is None or post.status != "posted" or not post.ref or not item or not triage:
            return  # not posted yet: the card will show the votes when it is
        self.client.chat_update(
            channel=self.settings.channel,
            ts=post.ref,
            text=cards.card_text(item, triage),
            blocks=self._blocks(item, triage),
        )

    # -- votes -----------------------------------------------------------------------------
    def vote(
        self,
        item_id: str,
        user: str,
        kind: ValidationKind,
        *,
        category: str | None = None,
        severity: str | None = None,
        action: str | None = None,
        validation_id: str | None = None,
        when: datetime | None = None,
    ) -> VoteOutcome:
        """Record a vote, then learn from it and rewrite the card."""
        outcome = self.record_vote(
            item_id,
            user,
            kind,
            category=category,
            severity=severity,
            action=action,
            validation_id=validation_id,
            when=when,
        )
        if outcome.stored:
            self.after_vote(item_id)
        return outcome

    def record_vote(
        self,
        item_id: str,
        user: str,
        kind: ValidationKind,
        *,
        category: str | None = None,
        severity: str | None = None,
        action: str | None = None,
        validation_id: str | None = None,
        when: datetime | None = None,
    ) -> VoteOutcome:
        """Store the vote, its label and reward, without learning: quick enough to finish
        before Slack gets its ack, so an acknowledged vote survives a crash."""
        return self.service.vote(
            item_id,
            user,
            kind,
            category=category,
            severity=severity,
            action=action,
            platform="slack",
            validation_id=validation_id,
            created_at=when,
            learn=False,
        )

    def after_vote(self, item_id: str) -> None:
        """The slow part of a vote, after the ack: rewrite the card (the voter sees the vote
        at once), then learn (one update covers every vote of a burst). A crash here loses
        nothing stored: a restart relearns every label; the card catches up at its next
        update."""
        try:
            self.refresh_card(item_id)
        except CARD_RETRY_ERRORS as exc:
            # Not here: a listener thread must not sleep (button acks wait for one). The
            # outbox thread rewrites it once the store or Slack answers again.
            log.warning("card of %s not rewritten (%s); retrying later", item_id, exc)
            with self._stale_lock:
                self._stale.add(item_id)
        self.service.learn_pending()

    def refresh_stale(self) -> None:
        """Rewrite the cards whose update failed; stop at the first failure, retry later."""
        while True:
            with self._stale_lock:
                if not self._stale:
                    return
                item_id = self._stale.pop()
            try:
                self.refresh_card(item_id)
            except CARD_RETRY_ERRORS:
                with self._stale_lock:
                    self._stale.add(item_id)
                return

    def refuse(self, channel: str | None, user: str, text: str) -> None:
        if channel:
            self.client.chat_postEphemeral(channel=channel, user=user, text=text)

    def allowed(self, user: str) -> bool:
        reviewers = self.service.reviewers
        return reviewers is None or user in reviewers

    # -- Bolt wiring ---------------------------------------------------------------------------
    def register(self, app: App) -> None:
        app.middleware(self._dedupe)
        for event_type in ("message", "reaction_added", "reaction_removed"):
            app.event(event_type)(self._follow_up)
        app.action(cards.CONFIRM_ACTION)(self._on_confirm)
        app.action(cards.NOISE_ACTION)(self._on_noise)
        app.action(cards.CORRECT_ACTION)(self._on_correct)
        app.view(cards.CORRECT_VIEW)(self._on_correct_submitted)
        app.view(cards.SUBMIT_VIEW)(self._on_submit_view)
        app.command("/triage")(self._on_command)

    def _dedupe(self, body: dict[str, Any], context: Any, next: Any) -> BoltResponse | None:
        """Store what an event says before Slack gets its ack, then dedupe on event_id.

        Storing comes first and is idempotent (an item's id is its channel and ts, a vote's
        id is the event id), so an event is marked seen only once it is safely stored: a
        503 (store unreachable) leaves it unseen, and Slack's redelivery is handled then.
        """
        event_id = body.get("event_id")
        if not event_id:
            next()
            return None
        try:
            follow_up = self._record(body.get("event") or {}, body)
            first = self.store.mark_event_seen(f"slack:{event_id}")
        except STORE_UNAVAILABLE as exc:
            return store_down(exc)
        if not first:
            log.info("duplicate event %s ignored", event_id)
            return BoltResponse(status=200, body="")
        context["follow_up"] = follow_up
        next()
        return None

    def _record(self, event: dict[str, Any], body: dict[str, Any]) -> FollowUp | None:
        """The durable part of an event; returns its slow part, if any."""
        kind = event.get("type")
        try:
            if kind == "message":
                self._on_message(event, body)
            elif kind in ("reaction_added", "reaction_removed"):
                return self._record_reaction(event, body, removed=kind == "reaction_removed")
        except (UnknownItemError, ValueError) as exc:  # a vote the service refuses
            log.info("event %s not recorded: %s", body.get("event_id"), exc)
        return None

    def _follow_up(self, context: Any) -> None:
        """After the ack: whatever slow work the recorded event left (learning, the card)."""
        follow_up = context.get("follow_up")
        if follow_up is not None:
            follow_up()

    def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if not cards.is_feedback_message(event, self.settings.intake_channels):
            return
        channel, ts = event["channel"], event["ts"]
        try:
            item = self.service.make_item(
                event["text"],
                source="slack",
                external_ref=f"{channel}:{ts}",
                received_at=_slack_time(ts),
                metadata={"slack": {"channel": channel, "ts": ts, "user": event["user"]}},
            )
        except InputError as exc:
            log.info("intake message %s:%s skipped: %s", channel, ts, exc)
            return
        self.accept(item)

    def _reaction_target(self, event: dict[str, Any]) -> str | None:
        target = event.get("item")
        if not isinstance(target, dict) or target.get("type") != "message":
            return None
        if target.get("channel") != self.settings.channel:
            return None
        post = self.store.find_post(self.target, str(target.get("ts")))
        return post.item_id if post else None

    def _record_reaction(
        self, event: dict[str, Any], body: dict[str, Any], *, removed: bool
    ) -> FollowUp | None:
        """A reaction on a card is a vote (removing the one a vote rests on retracts it)."""
        reaction = event.get("reaction")
        meaning = (
            cards.reaction_vote(reaction, self.taxonomy) if isinstance(reaction, str) else None
        )
        item_id = self._reaction_target(event)
        user = event.get("user")
        if meaning is None or item_id is None or not user or not isinstance(user, str):
            return None
        if not self.allowed(user):
            if removed:
                return None
            channel, refusal = self.settings.channel, "You are not on this channel's reviewer list."
            return lambda: self.refuse(channel, user, refusal)
        kind, category, severity = meaning.kind, meaning.category, meaning.severity
        if removed:
            mine = next((v for v in self.store.current_votes(item_id) if v.reviewer == user), None)
            if not meaning.supports(mine):
                return None
            kind, category, severity = ValidationKind.RETRACT, None, None
        outcome = self.record_vote(
            item_id,
            user,
            kind,
            category=category,
            severity=severity,
            validation_id=f"slack:{body.get('event_id') or uuid.uuid4().hex}",
            when=_slack_time(event.get("event_ts")),
        )
        return (lambda: self.after_vote(item_id)) if outcome.stored else None

    def _button(self, ack: Any, body: dict[str, Any], kind: ValidationKind) -> None:
        """Store the vote, then ack (an acknowledged click is never lost), then the rest."""
        user = body["user"]["id"]
        channel = (body.get("container") or {}).get("channel_id") or self.settings.channel
        item_id = str(body["actions"][0].get("value", ""))
        if not self.allowed(user):
            ack()
            self.refuse(channel, user, "You are not on this channel's reviewer list.")
            return
        try:
            outcome = self.record_vote(item_id, user, kind)
        except (UnknownItemError, ValueError) as exc:
            ack()
            self.refuse(channel, user, f"Could not record that: {exc}")
            return
        except STORE_UNAVAILABLE:
            ack()
            self.refuse(channel, user, STORE_DOWN_TEXT)
            return
        ack()
        if outcome.stored:
            self.after_vote(item_id)

    def _on_confirm(self, ack: Any, body: dict[str, Any]) -> None:
        self._button(ack, body, ValidationKind.CONFIRM)

    def _on_noise(self, ack: Any, body: dict[str, Any]) -> None:
        self._button(ack, body, ValidationKind.NOISE)

    def _on_correct(self, ack: Any, body: dict[str, Any]) -> None:
        ack()
        user = body["user"]["id"]
        container = body.get("container") or {}
        channel = container.get("channel_id") or self.settings.channel
        item_id = body["actions"][0].get("value", "")
        if not self.allowed(user):
            self.refuse(channel, user, "You are not on this channel's reviewer list.")
            return
        triage = self.store.latest_triage(item_id)
        if triage is None:
            self.refuse(channel, user, f"Unknown item {item_id}.")
            return
        self.client.views_open(
            trigger_id=body["trigger_id"],
            view=cards.correct_modal(
                item_id, triage, self.taxonomy, channel, container.get("message_ts", "")
            ),
        )

    def _on_correct_submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        meta = json.loads(view.get("private_metadata") or "{}")
        if not self.allowed(user):
            ack()
            return
        item_id = str(meta.get("item_id", ""))
        try:
            outcome = self.record_vote(
                item_id,
                user,
                ValidationKind.CORRECT,
                category=cards.view_value(view, "category"),
                severity=cards.view_value(view, "severity"),
                action=cards.view_value(view, "action"),
            )
        except (UnknownItemError, ValueError) as exc:
            ack()
            self.refuse(meta.get("channel"), user, f"Could not record that: {exc}")
            return
        except STORE_UNAVAILABLE:
            ack(response_action="errors", errors={"action": STORE_DOWN_TEXT})
            return
        ack()
        if outcome.stored:
            self.after_vote(item_id)

    def _on_submit_view(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        text = cards.view_value(view, "text")
        if not text:
            ack(response_action="errors", errors={"text": "Please write the feedback."})
            return
        try:
            item = self.service.make_item(
                text,
                source="slack",
                form_type=cards.view_value(view, "form_type"),
                page=cards.view_value(view, "page"),
                metadata={"submitted_by": body["user"]["id"]},
            )
        except InputError as exc:
            ack(response_action="errors", errors={"text": str(exc)})
            return
        try:
            self.accept(item)  # stored before the ack: an acknowledged submission is kept
        except STORE_UNAVAILABLE:
            ack(response_action="errors", errors={"text": STORE_DOWN_TEXT})
            return
        ack()

    def _on_command(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        text = (command.get("text") or "").strip()
        word = text.lower()
        if text and word not in ("help", "queue", "stats"):
            self._command_submit(ack, command, respond, text)
            return
        ack()
        if not text:
            self.client.views_open(
                trigger_id=command["trigger_id"], view=cards.submit_modal(self.taxonomy)
            )
        elif word == "help":
            respond(
                text=cards.HELP_TEXT.format(reactions=cards.reactions_help(self.taxonomy)),
                response_type="ephemeral",
            )
        elif word == "queue":
            respond(blocks=self._queue_blocks(), text="Review queue", response_type="ephemeral")
        elif word == "stats":
            respond(text=self._stats_text(), response_type="ephemeral")

    def _command_submit(self, ack: Any, command: dict[str, Any], respond: Any, text: str) -> None:
        """`/triage <text>`: stored before the ack, so an acknowledged submission is kept."""
        try:
            item = self.service.make_item(
                text, source="slack", metadata={"submitted_by": command.get("user_id")}
            )
        except InputError as exc:
            ack(text=f"Not triaged: {exc}")
            return
        try:
            triage, _ = self.accept(item)
        except STORE_UNAVAILABLE:
            ack(text=f"Not triaged: {STORE_DOWN_TEXT}")
            return
        ack()
        respond(
            text=(
                f"Triaged `{item.id}` as *{triage.category} / {triage.severity}* "
                f"({triage.confidence.category:.0%}); "
                f"its card goes to <#{self.settings.channel}>."
            ),
            response_type="ephemeral",
        )

    def _queue_blocks(self) -> list[dict[str, Any]]:
        rows = []
        for item, triage, reason in self.service.review_queue(limit=10):
            post = self.store.get_post(item.id, self.target)
            link = (
                cards.archive_link(self.settings.channel, post.ref)
                if post and post.status == "posted" and post.ref
                else None
            )
            rows.append((item, triage, reason, link))
        return cards.queue_blocks(rows)

    def _stats_text(self) -> str:
        now = datetime.now(UTC)
        lines = []
        overall = self.service.stats()
        lines.append(
            f"*{overall.validated}* validated of {overall.items} items · {overall.votes} votes · "
            f"{overall.disagreements} disputed · model `{overall.model_version}`"
        )
        for days in (7, 30):
            window = self.service.stats(since=now - timedelta(days=days))
            if window.validated == 0:
                lines.append(f"Last {days} days: no validations.")
                continue
            per = ", ".join(
                f"{name} {row['accuracy']:.0%} (n={row['n']})"
                for name, row in window.per_category.items()
            )
            lines.append(
                f"Last {days} days: category accuracy {window.category_accuracy:.0%}, "
                f"severity {window.severity_accuracy:.0%} over {window.validated}: {per}"
            )
        return "\n".join(lines)
