"""The Slack edge: Bolt listeners that translate Slack payloads into core calls, and
`SlackPoster`, the Slack side of the outbox.

Each listener reads top to bottom: translate the payload, do the durable part through core
(store the item or the vote: quick, no model), ack, then hand anything slow to `after_ack`
(replies to the user: ephemeral messages, `respond`, a triage result). Cards are posted and
rewritten by the outbox worker thread (`core.outbox`), learning happens in the learner
thread (`core.votes`). Bolt runs with `process_before_response`, so an event is stored
before Slack gets its 200, and a store outage answers 503 (Slack redelivers later).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.charts import digest_png
from bot.github.edge import GitHubEdge
from bot.github.settings import GitHubSettings
from bot.slack import cards
from bot.slack.settings import SlackSettings
from bot.webhook import FormFeedback
from core.digest import Digest, DigestSchedule, build_digest, claim_due, parse_period
from core.duplicates import DuplicateDesk
from core.escalation import Escalator, escalation_target
from core.governance import InputError
from core.intake import Accepted, Intake, Submission
from core.issues import GITHUB_OFF, ISSUE_WAIT_SECONDS
from core.models import CardView, ValidationKind
from core.outbox import Outbox, start_thread
from core.owners import Router
from core.ports import PostFailed, PostRefused
from core.replies import DisputeNotices, dispute_target
from core.service import NotAllowedError, TriageService, UnknownItemError
from core.store import STORE_UNAVAILABLE
from core.taxonomy import Taxonomy
from core.themes import build_themes, merge_by_keys, rename_by_key
from core.votes import NOT_A_REVIEWER, REVIEWERS_ONLY, Ballot, Learner, ReviewerRule, VoteDesk

log = logging.getLogger("triage_bot.slack")
RECONCILE_PAGES = 10
STORE_DOWN_TEXT = "The triage store is unreachable right now, so nothing was recorded; try again."
VOTE_ERRORS = (UnknownItemError, NotAllowedError, ValueError)
# Slack's answers that no retry can change: the card itself is at fault.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "no_text",
        "invalid_attachments",
        "too_many_attachments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "invalid_arguments",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
    }
)


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


def slack_time(ts: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), UTC) if ts is not None else None
    except (TypeError, ValueError):
        return None


class SlackPoster:
    """Posts, rewrites and finds cards in the triage channel (the outbox's `CardPoster`)."""

    def __init__(self, client: WebClient, settings: SlackSettings, taxonomy: Taxonomy) -> None:
        self.client = client
        self.settings = settings
        self.taxonomy = taxonomy
        self.target = f"slack:{settings.channel}"
        self._last_post = 0.0

    def post(self, card: CardView, *, minimal: bool = False) -> str:
        """A card in the channel, or a grouped duplicate's reply in its group card's thread."""
        self._pace()
        thread = {"thread_ts": card.thread_ref} if card.thread_ref else {}
        response = self._call(
            self.client.chat_postMessage,
            channel=self.settings.channel,
            **thread,
            metadata=cards.card_metadata(card.item.id),
            unfurl_links=False,
            unfurl_media=False,
            **cards.card_payload(card, self.taxonomy, minimal=minimal),
        )
        return str(response["ts"])

    def update(self, ref: str, card: CardView, *, minimal: bool = False) -> None:
        self._call(
            self.client.chat_update,
            channel=self.settings.channel,
            ts=ref,
            **cards.card_payload(card, self.taxonomy, minimal=minimal),
        )

    def find(self, card: CardView) -> str | None:
        """The ts of a card (or a duplicate's reply) for this item already in the channel
        (or the thread), found by its metadata."""
        if card.thread_ref:
            replies = self._call(
                self.client.conversations_replies,
                channel=self.settings.channel,
                ts=card.thread_ref,
                include_all_metadata=True,
                limit=1000,
            )
            for message in replies.get("messages", []):
                if cards.card_item_id(message) == card.item.id:
                    return str(message["ts"])
            return None
        oldest = (card.item.received_at - timedelta(minutes=5)).timestamp()
        cursor = None
        for _ in range(RECONCILE_PAGES):
            page = self._call(
                self.client.conversations_history,
                channel=self.settings.channel,
                oldest=f"{oldest:.6f}",
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
            for message in page.get("messages", []):
                if cards.card_item_id(message) == card.item.id:
                    return str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    @staticmethod
    def _call(method: Callable[..., Any], **kwargs: Any) -> Any:
        """One Web API call, its failure said in the outbox's terms."""
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            if error in PERMANENT_ERRORS:
                raise PostRefused(error) from exc
            retry_after = float(exc.response.headers.get("Retry-After", 0) or 0)
            raise PostFailed(error, retry_after or None) from exc

    def _pace(self) -> None:
        wait = self._last_post + self.settings.post_interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_post = time.monotonic()


def post_digest(client: WebClient, channel: str, made: Digest, since: str) -> str:
    """A digest in a channel, its chart as a PNG file (the v2 upload flow); an empty period
    is one line, without a chart. Returns the message ts or the file id. The running bot's
    `/triage digest` and schedule, and `triage-bot digest --post`, all post through here."""
    text = cards.digest_text(made)
    if made.empty:
        response = client.chat_postMessage(channel=channel, text=text)
        return str(response["ts"])
    response = client.files_upload_v2(
        channel=channel,
        file=digest_png(made),
        filename="triage-digest.png",
        title=f"Triage digest, last {since}",
        initial_comment=text,
    )
    return str((response.get("file") or {}).get("id", ""))


class SlackReplyPoster:
    """Replies once in a card's thread (an escalation, a dispute): the poster of an outbox
    whose target is the card's plus a suffix. `text` says what the reply says; the reply's
    metadata (`event_type`, the item id) finds it again after a crash."""

    def __init__(
        self,
        cards_poster: SlackPoster,
        store: Any,
        target: str,
        event_type: str,
        text: Callable[[CardView], str],
    ) -> None:
        self.cards = cards_poster
        self.client = cards_poster.client
        self.channel = cards_poster.settings.channel
        self.store = store
        self.target = target
        self.event_type = event_type
        self.text = text

    def _card_ts(self, item_id: str) -> str:
        card = self.store.get_post(item_id, self.cards.target)
        if card is None or not card.ref:
            raise PostFailed("the card is not posted yet")
        return str(card.ref)

    def post(self, card: CardView, *, minimal: bool = False) -> str:
        response = self.cards._call(
            self.client.chat_postMessage,
            channel=self.channel,
            thread_ts=self._card_ts(card.item.id),
            text=self.text(card),
            metadata=cards.reply_metadata(self.event_type, card.item.id),
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    def update(self, ref: str, card: CardView, *, minimal: bool = False) -> None:
        """A reply is said once; it is never rewritten."""

    def find(self, card: CardView) -> str | None:
        replies = self.cards._call(
            self.client.conversations_replies,
            channel=self.channel,
            ts=self._card_ts(card.item.id),
            include_all_metadata=True,
            limit=200,
        )
        for message in replies.get("messages", []):
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == self.event_type and payload.get("item_id") == card.item.id:
                return str(message["ts"])
        return None


class SlackEdge:
    """Slack's translation layer over core's intake, outbox and votes."""

    def __init__(
        self,
        service: TriageService,
        settings: SlackSettings,
        client: WebClient,
        worker_id: str | None = None,
        github: GitHubSettings | None = None,
    ) -> None:
        self.service = service
        self.store = service.store
        self.taxonomy = service.taxonomy
        self.settings = settings
        self.client = client
        self.poster = SlackPoster(client, settings, self.taxonomy)
        self.target = self.poster.target
        self.router = Router(service)
        self.outbox = Outbox(
            service,
            self.poster,
            worker_id=worker_id or f"slack-{uuid.uuid4().hex[:8]}",
            lease_seconds=settings.claim_lease,
            issue_repo=github.repo if github else None,
            router=self.router,
            groups=True,
        )
        self.intake = Intake(self.store, service.runtime.triage.max_text_bytes)
        self.intake.on_accept(self.outbox.wake)
        self.learner = Learner(service)
        self.votes = VoteDesk(
            service, ReviewerRule(ids=service.reviewers), self.learner, self.outbox.request_update
        )
        self.after_ack = ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack-after-ack")
        self._outbox_thread: tuple[threading.Thread, threading.Event] | None = None
        self._reply_thread: tuple[threading.Thread, threading.Event] | None = None
        self.github = (
            GitHubEdge(service, self.votes, github, card_url=self.card_url, router=self.router)
            if github is not None
            else None
        )
        self.escalator = Escalator(service, self.target)
        self.escalations = Outbox(
            service,
            SlackReplyPoster(
                self.poster,
                self.store,
                escalation_target(self.target),
                cards.ESCALATION_EVENT_TYPE,
                self._escalation_text,
            ),
            worker_id=f"{self.outbox.worker_id}-escalation",
            lease_seconds=settings.claim_lease,
            router=self.router,
        )
        self.dispute_replies = Outbox(
            service,
            SlackReplyPoster(
                self.poster,
                self.store,
                dispute_target(self.target),
                cards.DISPUTE_EVENT_TYPE,
                cards.dispute_reply,
            ),
            worker_id=f"{self.outbox.worker_id}-dispute",
            lease_seconds=settings.claim_lease,
        )
        self.disputes = DisputeNotices(self.store, self.target, self.dispute_replies.wake)
        self.votes.on_stored.append(self.disputes.note)
        self.outbox.upkeep_tasks.append(self.escalate)
        self.digests = DigestSchedule(service.runtime.digest)
        self.outbox.upkeep_tasks.append(self.scheduled_digest)

    def scheduled_digest(self, now: datetime | None = None) -> None:
        """Post the digest `[digest]` schedules, once, from whichever worker claims it."""
        period = claim_due(self.store, self.digests, self.target, now)
        if period is not None:
            # Its themes embed the period's reports: off the outbox worker, so cards go on.
            self.after_ack.submit(self._post_scheduled, period)

    def _post_scheduled(self, period: str) -> None:
        try:
            self.post_digest(period)
        except Exception:  # the slot is claimed; the next one is posted as usual
            log.exception("could not post the scheduled digest")

    def _escalation_text(self, card: CardView) -> str:
        """Pings the item's owner when it has one; else the on-call named for escalations."""
        owner = card.owner.owner if card.owner is not None else None
        ping = owner.slack if owner is not None and owner.slack else self.settings.escalate_to
        return cards.escalation_text(card, self.escalator.minutes, ping)

    def escalate(self) -> int:
        """Queue the replies of cards nobody took, and send what is due (the outbox
        worker's upkeep runs it)."""
        self.escalator.queue_due()
        return self.escalations.drain()

    def card_url(self, item_id: str) -> str | None:
        """A link to the item's card (what an issue links back to)."""
        post = self.store.get_post(item_id, self.target)
        return cards.archive_link(self.settings.channel, post.ref) if post and post.ref else None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.outbox.recover()
        self._outbox_thread = start_thread(self.outbox, "slack-outbox")
        self._reply_thread = start_thread(self.dispute_replies, "slack-disputes")
        if self.github is not None:
            self.github.start()

    def stop(self) -> None:
        if self.github is not None:
            self.github.stop()
        if self._reply_thread is not None:
            thread, stop = self._reply_thread
            stop.set()
            self.dispute_replies.wake()
            thread.join(timeout=10)
        if self._outbox_thread is not None:
            thread, stop = self._outbox_thread
            stop.set()
            self.outbox.wake()
            thread.join(timeout=10)
        self.learner.stop()
        self.after_ack.shutdown(wait=True, cancel_futures=True)

    # -- intake ----------------------------------------------------------------------------
    def accept(self, submission: Submission) -> Accepted:
        """Store the item with its card queued for the triage channel; no model runs here."""
        return self.intake.accept(submission, [self.target])

    def accept_form(self, form: FormFeedback) -> Accepted:
        return self.accept(
            Submission(
                text=form.comment,
                source="webhook",
                ref=form.body_sha256,
                form_type=form.form_type,
                page=form.page,
                rating=form.rating,
                metadata={"form": form.metadata},
            )
        )

    # -- Bolt wiring ---------------------------------------------------------------------------
    def register(self, app: App) -> None:
        for event_type in ("message", "reaction_added", "reaction_removed"):
            app.event(event_type)(self.on_event)
        app.action(cards.CONFIRM_ACTION)(self.on_confirm)
        app.action(cards.NOISE_ACTION)(self.on_noise)
        app.action(cards.CORRECT_ACTION)(self.on_correct)
        app.view(cards.CORRECT_VIEW)(self.on_correct_submitted)
        app.view(cards.SUBMIT_VIEW)(self.on_submit_view)
        app.action(cards.ISSUE_ACTION)(self.on_issue)
        app.action(cards.ASSIGN_ACTION)(self.on_assign)
        app.action(cards.DUPLICATE_ACTION)(self.on_duplicate_of)
        app.action(cards.SPLIT_ACTION)(self.on_not_duplicate)
        app.view(cards.ISSUE_VIEW)(self.on_issue_submitted)
        app.command("/triage")(self.on_command)

    def refuse(self, channel: str | None, user: str, text: str) -> None:
        """An ephemeral line to one user, after the ack."""
        if channel:
            self.after_ack.submit(
                self.client.chat_postEphemeral, channel=channel, user=user, text=text
            )

    # -- events: intake messages and reactions -----------------------------------------------
    def on_event(self, body: dict[str, Any], ack: Any) -> BoltResponse | None:
        """Store what the event says, mark it seen (Slack redelivers), then ack.

        Storing comes first and is idempotent (an item's id is its channel and ts, a vote's
        id is the event id), so an event is marked seen only once it is safely stored: a
        503 (store unreachable) leaves it unseen, and Slack's redelivery is handled then.
        """
        event = body.get("event") or {}
        event_id = body.get("event_id")
        try:
            with self.store.transaction():  # the event's writes and its seen mark: one commit
                reply = self._record_event(event, str(event_id or uuid.uuid4().hex))
                first = self.store.mark_event_seen(f"slack:{event_id}") if event_id else True
        except STORE_UNAVAILABLE as exc:
            return store_down(exc)
        ack()
        if not first:
            log.info("duplicate event %s ignored", event_id)
        elif reply is not None:
            self.after_ack.submit(reply)
        return None

    def _record_event(self, event: dict[str, Any], event_id: str) -> Callable[[], object] | None:
        """The durable part of an event; returns a reply to send after the ack, if any."""
        kind = event.get("type")
        if kind == "message":
            self._on_message(event)
        elif kind in ("reaction_added", "reaction_removed"):
            return self._on_reaction(event, event_id, removed=kind == "reaction_removed")
        return None

    def _on_message(self, event: dict[str, Any]) -> None:
        if not cards.is_feedback_message(event, self.settings.intake_channels):
            return
        channel, ts, user = event["channel"], event["ts"], event["user"]
        try:
            self.accept(
                Submission(
                    text=event["text"],
                    source="slack",
                    ref=f"{channel}:{ts}",
                    submitter=f"slack:{user}",
                    received_at=slack_time(ts),
                    origin={"slack": {"channel": channel, "ts": ts, "user": user}},
                )
            )
        except InputError as exc:
            log.info("intake message %s:%s skipped: %s", channel, ts, exc)

    def _on_reaction(
        self, event: dict[str, Any], event_id: str, *, removed: bool
    ) -> Callable[[], object] | None:
        """A reaction on a card is a vote; removing the one a vote rests on retracts it."""
        target, user, reaction = event.get("item"), event.get("user"), event.get("reaction")
        if not isinstance(target, dict) or target.get("type") != "message":
            return None
        if target.get("channel") != self.settings.channel or not isinstance(reaction, str):
            return None
        if not isinstance(user, str) or not user:
            return None
        post = self.store.find_post(self.target, str(target.get("ts")))
        if post is None:
            return None
        try:
            self.votes.react(
                post.item_id,
                user,
                reaction.split("::", 1)[0],  # "+1::skin-tone-2": the emoji alone counts
                removed=removed,
                platform="slack",
                validation_id=f"slack:{event_id}",
                created_at=slack_time(event.get("event_ts")),
            )
        except NotAllowedError:
            channel = self.settings.channel
            return lambda: self.client.chat_postEphemeral(
                channel=channel, user=user, text=NOT_A_REVIEWER
            )
        except (UnknownItemError, ValueError) as exc:
            log.info("reaction on %s not recorded: %s", post.item_id, exc)
        return None

    # -- buttons and modals --------------------------------------------------------------------
    def _item_of(self, value: str, ts: object) -> str:
        """The item a button or modal names: the value itself, or for the digest of an id
        that could not ride as it is, the item of the card (by its ts) it came from."""
        if not value.startswith(cards.DIGEST_MARK) or not isinstance(ts, str) or not ts:
            return value
        post = self.store.find_post(self.target, ts)
        return cards.item_id_for(value, post.item_id if post is not None else None)

    @staticmethod
    def _card_ts(body: dict[str, Any]) -> object:
        """The ts of the message a button was clicked on."""
        container, message = body.get("container") or {}, body.get("message") or {}
        return container.get("message_ts") or message.get("ts")

    def _stored_then_ack(
        self, ack: Any, body: dict[str, Any], store: Callable[[], object], failed: str
    ) -> bool:
        """Run the durable part of a click, then ack (an acknowledged click is never lost);
        a refusal or an error goes to the clicker alone. True when it was stored."""
        user = body["user"]["id"]
        channel = (body.get("container") or {}).get("channel_id") or self.settings.channel
        try:
            store()
        except NotAllowedError:
            text = NOT_A_REVIEWER
        except (UnknownItemError, ValueError) as exc:
            text = f"{failed}: {exc}"
        except STORE_UNAVAILABLE:
            text = STORE_DOWN_TEXT
        else:
            ack()
            return True
        ack()
        self.refuse(channel, user, text)
        return False

    def _button_vote(self, ack: Any, body: dict[str, Any], kind: ValidationKind) -> None:
        value = str(body["actions"][0].get("value", ""))

        def vote() -> None:
            item_id = self._item_of(value, self._card_ts(body))
            self.votes.cast(Ballot(item_id, body["user"]["id"], kind, platform="slack"))

        self._stored_then_ack(ack, body, vote, "Could not record that")

    def on_confirm(self, ack: Any, body: dict[str, Any]) -> None:
        self._button_vote(ack, body, ValidationKind.CONFIRM)

    def on_noise(self, ack: Any, body: dict[str, Any]) -> None:
        self._button_vote(ack, body, ValidationKind.NOISE)

    def on_correct(self, ack: Any, body: dict[str, Any]) -> None:
        """Open the correction modal (after the ack: it is a Web API call)."""
        ack()
        user = body["user"]["id"]
        container = body.get("container") or {}
        channel = container.get("channel_id") or self.settings.channel
        value = str(body["actions"][0].get("value", ""))
        if not self.votes.may_vote(user):
            self.refuse(channel, user, NOT_A_REVIEWER)
            return
        item_id = self._item_of(value, self._card_ts(body))
        triage = self.store.latest_triage(item_id)
        if triage is None:
            self.refuse(channel, user, f"Unknown item {item_id}.")
            return
        modal = cards.correct_modal(
            item_id, triage, self.taxonomy, channel, container.get("message_ts", "")
        )
        self.after_ack.submit(self.client.views_open, trigger_id=body["trigger_id"], view=modal)

    def on_correct_submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        meta = json.loads(view.get("private_metadata") or "{}")
        try:
            ballot = Ballot(
                item_id=self._item_of(str(meta.get("item_id", "")), meta.get("ts")),
                reviewer=user,
                kind=ValidationKind.CORRECT,
                platform="slack",
                category=cards.view_value(view, "category"),
                severity=cards.view_value(view, "severity"),
                action=cards.view_value(view, "action"),
            )
            self.votes.cast(ballot)
        except NotAllowedError:
            ack()
            self.refuse(meta.get("channel"), user, NOT_A_REVIEWER)
            return
        except (UnknownItemError, ValueError) as exc:
            ack()
            self.refuse(meta.get("channel"), user, f"Could not record that: {exc}")
            return
        except STORE_UNAVAILABLE:
            ack(response_action="errors", errors={"action": STORE_DOWN_TEXT})
            return
        ack()

    def on_assign(self, ack: Any, body: dict[str, Any]) -> None:
        """The Assign menu: stored before the ack, the card rewritten, the model relearned."""
        user = body["user"]["id"]
        action = body["actions"][0]
        owner = str((action.get("selected_option") or {}).get("value") or "")
        assigned: list[str] = []

        def assign() -> None:
            if not self.votes.may_vote(user):
                raise NotAllowedError(NOT_A_REVIEWER)
            post = self.store.find_post(self.target, str(self._card_ts(body) or ""))
            if post is None:
                raise UnknownItemError("that card is not one of this bot's")
            self.router.assign(post.item_id, owner, user, "slack")
            assigned.append(post.item_id)

        if self._stored_then_ack(ack, body, assign, "Could not assign that"):
            self.outbox.request_update(assigned[0])

    def on_duplicate_of(self, ack: Any, body: dict[str, Any]) -> None:
        """ "Duplicate of...": the card joins the picked card's group (a stored merge vote),
        and both cards are rewritten."""
        picked = str((body["actions"][0].get("selected_option") or {}).get("value") or "")
        self._regroup(
            ack,
            body,
            lambda desk, item_id, user: desk.merge(
                item_id, self._item_of(picked, None), user, "slack"
            ),
        )

    def on_not_duplicate(self, ack: Any, body: dict[str, Any]) -> None:
        """ "Not a duplicate": the item leaves its group for a card of its own (a stored
        split vote)."""
        self._regroup(ack, body, lambda desk, item_id, user: desk.split(item_id, user, "slack"))

    def _regroup(
        self,
        ack: Any,
        body: dict[str, Any],
        decide: Callable[[DuplicateDesk, str, str], list[str]],
    ) -> None:
        user = body["user"]["id"]
        changed: list[str] = []

        def store() -> None:
            desk = self.service.duplicates
            if desk is None:
                raise ValueError("duplicates are turned off ([duplicates] enabled)")
            if not self.votes.may_vote(user):
                raise NotAllowedError(NOT_A_REVIEWER)
            post = self.store.find_post(self.target, str(self._card_ts(body) or ""))
            if post is None:
                raise UnknownItemError("that card is not one of this bot's")
            changed.extend(decide(desk, post.item_id, user))

        if self._stored_then_ack(ack, body, store, "Could not regroup that"):
            for item_id in dict.fromkeys(changed):
                self.outbox.request_update(item_id)

    def on_issue(self, ack: Any, body: dict[str, Any]) -> None:
        """Create issue: the modal with the default title and labels (after the ack)."""
        ack()
        user = body["user"]["id"]
        container = body.get("container") or {}
        channel = container.get("channel_id") or self.settings.channel
        if self.github is None:
            self.refuse(channel, user, GITHUB_OFF)
            return
        if not self.votes.may_vote(user):
            self.refuse(channel, user, NOT_A_REVIEWER)
            return
        value = str(body["actions"][0].get("value", ""))
        item_id = self._item_of(value, self._card_ts(body))
        link = self.github.desk.link(item_id)
        if link is not None and link.status != "failed":
            self.refuse(channel, user, cards.issue_reply(link, created=False))
            return
        try:
            draft = self.github.desk.draft(item_id)
        except UnknownItemError as exc:
            self.refuse(channel, user, f"Could not open an issue: {exc}")
            return
        modal = cards.issue_modal(
            item_id, draft, self.github.repo, channel, container.get("message_ts", "")
        )
        self.after_ack.submit(self.client.views_open, trigger_id=body["trigger_id"], view=modal)

    def on_issue_submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Queue the issue (stored before the ack), then tell the clicker how it went."""
        user = body["user"]["id"]
        meta = json.loads(view.get("private_metadata") or "{}")
        channel = meta.get("channel") or self.settings.channel
        if self.github is None:
            ack(response_action="errors", errors={"title": GITHUB_OFF})
            return
        desk = self.github.desk
        try:
            item_id = self._item_of(str(meta.get("item_id", "")), meta.get("ts"))
            _, queued = desk.request(
                item_id,
                user,
                "slack",
                title=cards.view_value(view, "title"),
                labels=cards.labels_from(cards.view_value(view, "labels")),
                notify={"channel": channel},
                action=cards.view_value(view, "action"),
            )
        except NotAllowedError:
            ack()
            self.refuse(channel, user, NOT_A_REVIEWER)
            return
        except (UnknownItemError, ValueError) as exc:
            ack(response_action="errors", errors={"title": f"Could not open an issue: {exc}"})
            return
        except STORE_UNAVAILABLE:
            ack(response_action="errors", errors={"title": STORE_DOWN_TEXT})
            return
        ack()

        def answer() -> None:
            link = desk.wait(item_id, ISSUE_WAIT_SECONDS)
            if link is not None:
                text = cards.issue_reply(link, created=queued)
                self.client.chat_postEphemeral(channel=channel, user=user, text=text)

        self.after_ack.submit(answer)

    def on_submit_view(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The submit modal: stored before the ack, so an acknowledged submission is kept."""
        text = cards.view_value(view, "text")
        if not text:
            ack(response_action="errors", errors={"text": "Please write the feedback."})
            return
        user = body["user"]["id"]
        submission = Submission(
            text=text,
            source="slack-modal",
            submitter=f"slack:{user}",
            form_type=cards.view_value(view, "form_type"),
            page=cards.view_value(view, "page"),
            origin={"submitted_by": user},
        )
        try:
            self.accept(submission)
        except InputError as exc:
            ack(response_action="errors", errors={"text": str(exc)})
            return
        except STORE_UNAVAILABLE:
            ack(response_action="errors", errors={"text": STORE_DOWN_TEXT})
            return
        ack()

    # -- /triage ---------------------------------------------------------------------------------
    def on_command(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        text = (command.get("text") or "").strip()
        word = text.lower()
        if (
            text
            and word not in ("help", "queue", "stats", "queue mine")
            and not word.startswith("digest")
            and not word.startswith("themes")
        ):
            self._command_submit(ack, command, respond, text)
            return
        ack()
        if not text:
            modal = cards.submit_modal(self.taxonomy)
            self.after_ack.submit(
                self.client.views_open, trigger_id=command["trigger_id"], view=modal
            )
        elif word == "help":
            help_text = cards.HELP_TEXT.format(reactions=cards.reactions_help(self.taxonomy))
            self.after_ack.submit(respond, text=help_text, response_type="ephemeral")
        elif not self.votes.may_vote(str(command.get("user_id") or "")):
            # The queue and the figures are the reviewers' (item texts, who voted what).
            self.after_ack.submit(respond, text=REVIEWERS_ONLY, response_type="ephemeral")
        elif word in ("queue", "queue mine"):
            mine = (
                self.router.owned_by(str(command.get("user_id") or "")) if "mine" in word else None
            )
            self.after_ack.submit(
                lambda: respond(
                    blocks=self._queue_blocks(mine),
                    text="Review queue",
                    response_type="ephemeral",
                )
            )
        elif word.startswith("digest"):
            period = word.removeprefix("digest").strip() or "7d"

            def digest() -> None:
                try:
                    self.post_digest(period)
                except ValueError as exc:
                    respond(text=f"Not posted: {exc}", response_type="ephemeral")
                    return
                respond(
                    text=f"Posted the digest of the last {period} to <#{self.settings.channel}>.",
                    response_type="ephemeral",
                )

            self.after_ack.submit(digest)
        elif word.startswith(("themes rename ", "themes merge ")):
            user = str(command.get("user_id") or "")
            self.after_ack.submit(
                lambda: respond(text=self._regroup_themes(text, user), response_type="ephemeral")
            )
        elif word.startswith("themes"):
            period = word.removeprefix("themes").strip() or "7d"

            def themes() -> None:
                try:
                    made = build_themes(self.store, self.service.engine.embed, parse_period(period))
                except ValueError as exc:
                    respond(text=f"No themes: {exc}", response_type="ephemeral")
                    return
                respond(text=cards.themes_text(made), response_type="ephemeral")

            self.after_ack.submit(themes)
        elif word == "stats":
            self.after_ack.submit(
                lambda: respond(text=self._stats_text(), response_type="ephemeral")
            )

    def _regroup_themes(self, text: str, user: str) -> str:
        """`/triage themes rename KEY NAME` and `/triage themes merge KEY KEY [NAME]`, over
        the last 7 days' themes or, ending in `since:30d`, the period the key was listed
        for (a key names a theme of one period): the answer line, private to the reviewer."""
        _, verb, rest = text.split(None, 2) + [""] * (3 - len(text.split(None, 2)))
        embed, since = self.service.engine.embed, "7d"
        head, _, last = rest.rstrip().rpartition(" ")
        if last.lower().startswith("since:"):
            rest, since = head, last[len("since:") :]
        try:
            period = parse_period(since)
            if verb.lower() == "rename":
                key, _, name = rest.partition(" ")
                theme, kept = rename_by_key(self.store, embed, period, key, name, f"slack:{user}")
                return f"Theme `{theme.key}` is now “{cards.escape(kept.name)}”."
            first, _, more = rest.partition(" ")
            second, _, name = more.strip().partition(" ")
            merged = merge_by_keys(
                self.store, embed, period, [first, second], f"slack:{user}", name.strip() or None
            )
            return f"Merged into one theme: “{cards.escape(merged)}”."
        except (KeyError, ValueError) as exc:
            return f"Not changed: {cards.escape(str(exc).strip(chr(39) + chr(34)))}"

    def _command_submit(self, ack: Any, command: dict[str, Any], respond: Any, text: str) -> None:
        """`/triage <text>`: stored before the ack; triaged after it, then answered."""
        user = command.get("user_id")
        submission = Submission(
            text=text,
            source="slack-command",
            submitter=f"slack:{user}" if user else None,
            origin={"submitted_by": user},
        )
        try:
            accepted = self.accept(submission)
        except InputError as exc:
            ack(text=f"Not triaged: {exc}")
            return
        except STORE_UNAVAILABLE:
            ack(text=f"Not triaged: {STORE_DOWN_TEXT}")
            return
        ack()

        def answer() -> None:
            (triage,) = self.service.triage_items([accepted.item])
            respond(
                text=(
                    f"Triaged `{accepted.item_id}` as *{triage.category} / {triage.severity}* "
                    f"({triage.confidence.category:.0%}); "
                    f"its card goes to <#{self.settings.channel}>."
                ),
                response_type="ephemeral",
            )

        self.after_ack.submit(answer)

    def _queue_blocks(self, owners: set[str] | None = None) -> list[dict[str, Any]]:
        """The review queue; with `owners`, only the items they own (`/triage queue mine`)."""
        rows = []
        queue = self.service.review_queue(limit=10 if owners is None else 200)
        if owners is not None:
            queue = self.router.only_owned(queue, owners)
        for item, triage, reason in queue:
            post = self.store.get_post(item.id, self.target)
            link = (
                cards.archive_link(self.settings.channel, post.ref) if post and post.ref else None
            )
            rows.append((item, triage, reason, link))
        return cards.queue_blocks(rows)

    def post_digest(self, since: str = "7d") -> str:
        """Post the period's digest to the triage channel, its chart as a PNG file (the
        v2 upload flow); an empty period is one line, without a chart. Returns the ts."""
        made = build_digest(
            self.store, self.taxonomy, parse_period(since), embed=self.service.engine.embed
        )
        return post_digest(self.client, self.settings.channel, made, since)

    def _stats_text(self) -> str:
        now = datetime.now(UTC)
        windows = [(d, self.service.stats(since=now - timedelta(days=d))) for d in (7, 30)]
        return cards.stats_text(self.service.stats(), windows, self.target)
