"""Ports: what the domain needs from the outside world, as Protocols.

Concrete adapters live in `core.store` (SQLite, MongoDB) and `core.backends`; only a
composition root (`bot.app`) picks them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.models import FeedbackItem, Label, ModelRecord, PostRecord, Reward, Triage, Validation


class Store(Protocol):
    """Durable home of items, predictions, votes, labels and rewards.

    Contract (tests/contract runs it against every adapter):
    - `add_item` is idempotent on `item.id`; it returns False when the id already exists
      and leaves the stored item untouched. Only `redacted_text` is persisted; a loaded
      item has `text == redacted_text`.
    - `add_validation` appends to the audit trail (idempotent on `validation.id`) and keeps
      one current vote per (item, reviewer): the latest `created_at` wins, an older
      redelivered vote never overwrites a newer one, and a retract removes the current vote.
      It returns False for a duplicate event id.
    - `save_triage` keeps every prediction; `latest_triage` returns the newest.
    - Outbox: `enqueue_post` is idempotent on (item_id, target). `claim_post` atomically
      hands the oldest pending post of a target (or one whose claim lease expired) to one
      worker: two workers never hold the same post at once. `mark_posted` records the
      platform ref (with `worker`, only while that worker still holds the claim: False
      when its lease ran out and another worker took the post over);
      `release_post` gives a claimed post back (a failed attempt);
      `find_post` looks a post up by its ref.
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
    - `put_label` replaces the item's label (`delete_label` drops it when no vote is
      left); `put_reward` replaces the reward for (item, model_version).
    """

    def add_item(self, item: FeedbackItem) -> bool: ...
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

    def put_reward(self, reward: Reward) -> None: ...
    def rewards(self, item_id: str | None = None) -> list[Reward]: ...

    def enqueue_post(self, item_id: str, target: str) -> bool: ...
    def claim_post(self, target: str, worker: str, lease_seconds: float) -> PostRecord | None: ...
    def mark_posted(
        self, item_id: str, target: str, ref: str, worker: str | None = None
    ) -> bool: ...
    def release_post(self, item_id: str, target: str, worker: str) -> None: ...
    def get_post(self, item_id: str, target: str) -> PostRecord | None: ...
    def find_post(self, target: str, ref: str) -> PostRecord | None: ...
    def count_unposted(self, target: str) -> int: ...

    def mark_event_seen(self, key: str) -> bool: ...

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
