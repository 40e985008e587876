"""Ports: what the domain needs from the outside world, as Protocols.

Concrete adapters live in `core.store` (SQLite, MongoDB) and `core.backends`; only a
composition root (`bot.app`) picks them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.models import (
    Assignment,
    AuditEvent,
    CardView,
    DuplicateLink,
    DuplicateVote,
    FeedbackItem,
    Label,
    ModelRecord,
    PostRecord,
    Reward,
    ThemeName,
    Triage,
    Validation,
)


class Store(Protocol):
    """Durable home of items, predictions, votes, labels and rewards.

    Contract (tests/contract runs it against every adapter):
    - `add_item` is idempotent on `item.id`; it returns False when the id already exists
      and leaves the stored item untouched. Only `redacted_text` is persisted; a loaded
      item has `text == redacted_text`. With `post_to`, the item's outbox entries are
      queued with it (idempotent too, also for a known item), so nothing accepted lacks
      its card. `add_submitter` records one more submitter of a known item (in
      `metadata["submitters"]`, once each); False when already recorded or no such item.
    - `add_validation` appends to the audit trail (idempotent on `validation.id`) and keeps
      one current vote per (item, reviewer): the latest `created_at` wins, an older
      redelivered vote never overwrites a newer one, and a retract removes the current vote.
      It returns False for a duplicate event id.
    - `save_triage` keeps every prediction; `latest_triage` returns the newest.
    - Outbox: `enqueue_post` is idempotent on (item_id, target) (a second call keeps the
      first one's `detail`); `set_post_detail` merges keys into a post's `detail` (False
      when there is no such post); `requeue_post` gives a dead post another life (pending,
      no attempts, its detail kept; False unless it was dead). `claim_post` atomically
      hands the oldest due post of a target to one worker: a pending post whose
      `next_attempt_at` has passed, a posted card marked stale, or a claim whose lease
      expired; two workers never hold the same post at once. Each claim adds one to
      `attempts` and clears `stale`. `mark_posted` records the platform ref (with
      `worker`, only while that worker still holds the claim: False when its lease ran
      out and another worker took the post over); `release_post` gives a claimed post
      back after a failed attempt, not to be claimed again for `delay_seconds` (a rewrite
      stays posted and stale; `attempted=False`: it was never tried, so its claim does
      not count as an attempt); `dead_post` ends a post the platform refuses for good;
      `request_update` marks a posted card stale (False when it has no card yet);
      `find_post` looks a post up by its ref; `posts` lists them (of a target, a status,
      an item), `outbox_counts` counts them per target and status (plus "stale").
    - `mark_event_seen` is True the first time a key is seen, False after: a durable
      dedupe of redelivered platform events, shared by every process on the store.
    - Model registry: `put_model` is idempotent on `record.version` (False if it exists)
      and takes weights of any size (a fine-tuned encoder makes them ~45 MB: Mongo chunks
      them below its 16 MiB document limit);
      `list_models` is newest first; `promote_model` makes a stored version the promoted
      one (setting its `promoted_at`; KeyError for an unknown version) and
      `promoted_model` returns the latest promoted record, or None.
    - Intake cursors: `set_intake_cursor` records how far a watcher got in an outside source
      (an opaque string it alone parses), replacing the previous position;
      `get_intake_cursor` returns it, or None for a source never recorded. Kept in the
      store so a restarted (or another) process resumes where the last one stopped.
    - `put_assignment` replaces the item's owner assignment (`get_assignment`,
      `iter_assignments` oldest first); forgetting an item deletes it too.
    - Duplicates: `put_duplicate` replaces the item's link to its canonical
      (`get_duplicate`; `delete_duplicate` is False when there was none); `duplicates_of`
      lists a canonical's members oldest first, `iter_duplicates` every link oldest first.
      `add_duplicate_vote` appends a merge or split vote (idempotent on `vote.id`: False
      for a known one), `duplicate_votes` lists them oldest first. Forgetting an item
      deletes its link, the links to it (its members stand alone again) and the votes
      that name it (counts "duplicates" and "duplicate_votes").
    - Theme names: `put_theme_name` replaces a name by its id, `theme_names` lists them
      oldest first, `delete_theme_name` is False when there was none. They hold no item
      id (a centre is a mean embedding), so forgetting items leaves them.
    - `put_label` replaces the item's label (`delete_label` drops it when no vote is
      left); `put_reward` replaces the reward for (item, model_version, source): a vote's
      reward and a GitHub outcome's are kept side by side.
    - `transaction()` groups writes. SQLite: they commit together or not at all, with one
      fsync (nested ones are savepoints). MongoDB: each write is durable on its own and
      idempotent, so a retried request completes what a failed one began.
    - Forgetting: `forget_items(event)` deletes each of `event.item_ids` and everything
      derived from it (its triages, vote events and current votes, label, rewards and
      outbox posts, assignment; an id the store lacks is no error), and records `event` in the audit
      trail with `counts` (what it already held, plus items, triages, votes, labels,
      rewards, posts deleted) and `cards` (`"target ref"` of each posted card) filled in
      and the next `seq`; it returns the stored event. The event has no content, only ids
      and counts. SQLite: one transaction, deleted content overwritten on disk and the
      write-ahead log emptied after. MongoDB: the event first (a running bot that sees it
      early only drops caches), then the derived records, the item, and the derived
      records again (a vote that raced the delete). `audit_events(after)` lists the events
      with a greater `seq`, oldest first; `last_audit_seq` is the newest one's (0: none).
      `items_received_before` lists item ids received before a time, oldest first.
    - Retention: `prune_seen_events` deletes seen-event keys marked before a time;
      `prune_posts` deletes finished posts (posted or dead) last updated before a time
      whose item is gone or was itself received before it, and takes the target out of
      that item's `metadata["post_to"]` (so recovery never queues it again); a vote on
      such a card finds no post. Both return how many went (with `dry_run`, how many
      would).
    """

    def transaction(self) -> AbstractContextManager[None]: ...

    def add_item(self, item: FeedbackItem, post_to: Sequence[str] = ()) -> bool: ...
    def add_submitter(self, item_id: str, submitter: str) -> bool: ...
    def get_item(self, item_id: str) -> FeedbackItem | None: ...
    def iter_items(self) -> Iterator[FeedbackItem]: ...
    def count_items(self) -> int: ...

    def save_triage(self, triage: Triage) -> None: ...
    def latest_triage(self, item_id: str) -> Triage | None: ...

    def add_validation(self, validation: Validation) -> bool: ...
    def current_votes(self, item_id: str) -> list[Validation]: ...
    def events(self, item_id: str | None = None) -> list[Validation]: ...

    def put_label(self, label: Label) -> None: ...
    def get_label(self, item_id: str) -> Label | None: ...
    def delete_label(self, item_id: str) -> None: ...
    def iter_labels(self) -> Iterator[Label]: ...

    def put_assignment(self, assignment: Assignment) -> None: ...
    def get_assignment(self, item_id: str) -> Assignment | None: ...
    def iter_assignments(self) -> Iterator[Assignment]: ...

    def put_duplicate(self, link: DuplicateLink) -> None: ...
    def get_duplicate(self, item_id: str) -> DuplicateLink | None: ...
    def delete_duplicate(self, item_id: str) -> bool: ...
    def duplicates_of(self, canonical_id: str) -> list[DuplicateLink]: ...
    def iter_duplicates(self) -> Iterator[DuplicateLink]: ...
    def add_duplicate_vote(self, vote: DuplicateVote) -> bool: ...
    def duplicate_votes(self) -> list[DuplicateVote]: ...

    def put_theme_name(self, theme: ThemeName) -> None: ...
    def theme_names(self) -> list[ThemeName]: ...
    def delete_theme_name(self, theme_id: str) -> bool: ...

    def put_reward(self, reward: Reward) -> None: ...
    def rewards(self, item_id: str | None = None) -> list[Reward]: ...

    def enqueue_post(
        self, item_id: str, target: str, detail: Mapping[str, Any] | None = None
    ) -> bool: ...
    def set_post_detail(self, item_id: str, target: str, detail: Mapping[str, Any]) -> bool: ...
    def requeue_post(self, item_id: str, target: str) -> bool: ...
    def claim_post(self, target: str, worker: str, lease_seconds: float) -> PostRecord | None: ...
    def mark_posted(
        self, item_id: str, target: str, ref: str, worker: str | None = None
    ) -> bool: ...
    def release_post(
        self,
        item_id: str,
        target: str,
        worker: str,
        *,
        delay_seconds: float = 0.0,
        error: str | None = None,
        attempted: bool = True,
    ) -> None: ...
    def dead_post(self, item_id: str, target: str, worker: str, error: str) -> None: ...
    def request_update(self, item_id: str, target: str) -> bool: ...
    def get_post(self, item_id: str, target: str) -> PostRecord | None: ...
    def find_post(self, target: str, ref: str) -> PostRecord | None: ...
    def posts(
        self, target: str | None = None, status: str | None = None, item_id: str | None = None
    ) -> list[PostRecord]: ...
    def outbox_counts(self) -> dict[str, dict[str, int]]: ...
    def count_unposted(self, target: str) -> int: ...

    def mark_event_seen(self, key: str) -> bool: ...

    def forget_items(self, event: AuditEvent) -> AuditEvent: ...
    def audit_events(self, after: int = 0) -> list[AuditEvent]: ...
    def last_audit_seq(self) -> int: ...
    def items_received_before(self, cutoff: datetime) -> list[str]: ...
    def prune_seen_events(self, before: datetime, *, dry_run: bool = False) -> int: ...
    def prune_posts(self, before: datetime, *, dry_run: bool = False) -> int: ...

    def get_intake_cursor(self, source: str) -> str | None: ...
    def set_intake_cursor(self, source: str, position: str) -> None: ...

    def put_model(self, record: ModelRecord, weights: bytes) -> bool: ...
    def get_model(self, version: str) -> tuple[ModelRecord, bytes] | None: ...
    def list_models(self) -> list[ModelRecord]: ...
    def promote_model(self, version: str) -> ModelRecord: ...
    def promoted_model(self) -> ModelRecord | None: ...

    def close(self) -> None: ...


class Encoder(Protocol):
    """Turns texts into L2-normalised sentence embeddings."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class TunableEncoder(Encoder, Protocol):
    """An encoder whose weights a registry model can replace (a fine-tuned encoder).

    `load_weights(None)` restores the stock weights; either way cached embeddings are
    dropped. `tuned_weights` is the replacement in use (None when stock), which a saved
    model carries; `fork` is an independent copy, so a trainer can change weights without
    touching the encoder a process serves with.
    """

    @property
    def tuned_weights(self) -> Mapping[str, Any] | None: ...
    def load_weights(self, state: Mapping[str, Any] | None) -> None: ...
    def fork(self, device: str | None = None) -> TunableEncoder: ...


@runtime_checkable
class CachingEncoder(Encoder, Protocol):
    """An encoder that caches embeddings by text; `forget` drops those of deleted items."""

    def forget(self, texts: Sequence[str]) -> None: ...


class PostRefused(Exception):
    """The platform refused this card for good (invalid payload, message too long, a
    Discord 400): sending it again cannot succeed."""


class PostFailed(Exception):
    """A post or rewrite that may succeed later (rate limit, outage, a dropped connection);
    `retry_after` is the platform's own wait, in seconds, when it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class CardPoster(Protocol):
    """What each platform implements for the outbox: post, rewrite and find one card.

    The platform renders the `CardView` with its pure renderer.
    Failures are `PostRefused` (permanent) or `PostFailed` (worth retrying); anything else
    counts as the latter.
    """

    target: str  # the outbox target this poster serves, e.g. "slack:C0123"

    def post(self, card: CardView, *, minimal: bool = False) -> str: ...
    def update(self, ref: str, card: CardView, *, minimal: bool = False) -> None: ...
    def find(self, card: CardView) -> str | None: ...
