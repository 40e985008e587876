"""A chat platform for the shared workflow's tests: records every card it is given.

It implements `core.ports.CardPoster` as a platform would (its own message refs, a channel
history that `find` searches) and can be told to fail: transiently (`PostFailed`, with or
without a Retry-After) or for good (`PostRefused`), for the full card or the minimal one.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from core.models import CardView
from core.ports import PostFailed, PostRefused


@dataclass
class Message:
    ref: str
    item_id: str
    minimal: bool
    edits: list[CardView] = field(default_factory=list)
    card: CardView | None = None


class RecordingChannel:
    def __init__(self, target: str = "chat:C1") -> None:
        self.target = target
        self.messages: dict[str, Message] = {}
        self.refuse_full: set[str] = set()  # item ids whose full card is refused
        self.refuse_all: set[str] = set()  # item ids refused even as a minimal card
        self.fail: dict[str, tuple[int, float | None]] = {}  # item id -> (times, retry_after)
        self.attempts: list[tuple[str, bool]] = []  # (item id, minimal) of every post call
        self.finds = 0
        self._refs = itertools.count(1000)
        self._lock = threading.Lock()

    # -- CardPoster ------------------------------------------------------------------------
    def post(self, card: CardView, *, minimal: bool = False) -> str:
        item_id = card.item.id
        with self._lock:
            self.attempts.append((item_id, minimal))
            times, retry_after = self.fail.get(item_id, (0, None))
            if times:
                self.fail[item_id] = (times - 1, retry_after)
                raise PostFailed("service unavailable", retry_after)
            if item_id in self.refuse_all or (item_id in self.refuse_full and not minimal):
                raise PostRefused("invalid_blocks")
            ref = str(next(self._refs))
            self.messages[ref] = Message(ref, item_id, minimal, card=card)
            return ref

    def update(self, ref: str, card: CardView, *, minimal: bool = False) -> None:
        with self._lock:
            if ref not in self.messages:
                raise PostRefused("message_not_found")
            self.messages[ref].edits.append(card)

    def find(self, card: CardView) -> str | None:
        with self._lock:
            self.finds += 1
            return next((m.ref for m in self.messages.values() if m.item_id == card.item.id), None)

    # -- what a test reads -------------------------------------------------------------------
    def posted(self, item_id: str) -> list[Message]:
        return [m for m in self.messages.values() if m.item_id == item_id]

    def add_message(self, item_id: str) -> str:
        """A card that reached the platform while its poster crashed before recording it."""
        ref = str(next(self._refs))
        self.messages[ref] = Message(ref, item_id, minimal=False)
        return ref
