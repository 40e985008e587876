"""Ports: what the domain needs from the outside world, as Protocols.

Concrete adapters live in `core.store` (SQLite, MongoDB) and `core.backends`; only a
composition root (`bot.app`) picks them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from core.models import FeedbackItem, Label, Reward, Triage, Validation


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

    def close(self) -> None: ...


class Encoder(Protocol):
    """Turns texts into L2-normalised sentence embeddings."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...
