"""Nearest validated items (shown on every card, used as few-shot examples), as one matrix.

Every card looks up the items most like its own among everything the team validated. Kept
as a list of examples, that look-up walked every label in Python for every card and held
the interpreter while a burst of votes waited for its acks; here the embeddings live in one
growing matrix, a look-up is one matrix product, and a new label costs one row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from core.models import FeedbackItem

Embed = Callable[[Sequence[FeedbackItem]], np.ndarray]


class SimilarIndex:
    """Embeddings of the current examples, by item id; thread-safe."""

    def __init__(self, embed: Embed, generation: Callable[[], int]) -> None:
        self._embed = embed
        self._generation = generation  # the encoder's: a new one makes every row stale
        self._lock = threading.Lock()
        self._built_for = generation()
        self._ids: list[str] = []  # row -> item id (rows are only ever appended)
        self._items: list[FeedbackItem] = []  # row -> item (to embed again for a new encoder)
        self._rows: dict[str, int] = {}  # item id -> its row
        self._matrix: np.ndarray | None = None
        self._alive = np.zeros(0, dtype=bool)
        self._pending: dict[str, FeedbackItem] = {}  # wanted, not embedded yet

    def put(self, item: FeedbackItem) -> None:
        """An item became (or stays) an example."""
        with self._lock:
            row = self._rows.get(item.id)
            if row is not None:
                self._alive[row] = True
            else:
                self._pending[item.id] = item

    def drop(self, item_id: str) -> None:
        """An item is no example any more (its label was retracted)."""
        with self._lock:
            self._pending.pop(item_id, None)
            row = self._rows.get(item_id)
            if row is not None:
                self._alive[row] = False

    def forget(self, item_ids: Iterable[str]) -> None:
        """Items deleted from the store: their rows (item and vector) go, not only their
        mark, so nothing of them stays in memory."""
        gone = set(item_ids)
        with self._lock:
            for item_id in gone:
                self._pending.pop(item_id, None)
            doomed = [self._rows[i] for i in gone if i in self._rows]
            if not doomed:
                return
            n = len(self._ids)
            keep = np.ones(n, dtype=bool)
            keep[doomed] = False
            assert self._matrix is not None  # rows exist, so the matrix does
            ids = [i for row, i in enumerate(self._ids) if keep[row]]
            items = [it for row, it in enumerate(self._items) if keep[row]]
            # New arrays, never rows rewritten in place: `nearest` scores a view of the old
            # matrix outside the lock, and its rows must still match the ids it read.
            matrix = np.zeros_like(self._matrix)
            matrix[: len(ids)] = self._matrix[:n][keep]
            alive = np.zeros(self._alive.shape[0], dtype=bool)
            alive[: len(ids)] = self._alive[:n][keep]
            self._matrix, self._alive = matrix, alive
            self._ids, self._items = ids, items
            self._rows = {item_id: row for row, item_id in enumerate(ids)}

    def reset(self, items: Iterable[FeedbackItem]) -> None:
        """Exactly these examples (a warm start, a new model)."""
        with self._lock:
            self._clear()
            self._pending = {item.id: item for item in items}

    def _clear(self) -> None:
        self._ids, self._items, self._rows, self._matrix = [], [], {}, None
        self._alive = np.zeros(0, dtype=bool)
        self._built_for = self._generation()

    def nearest(self, item: FeedbackItem, k: int) -> list[tuple[str, float]]:
        """The ids of the k examples closest to `item` (never itself), with cosine similarity."""
        self._catch_up()
        query = self._embed([item])[0]
        with self._lock:
            n = len(self._ids)
            if self._matrix is None or n == 0:
                return []
            matrix, alive, ids = self._matrix[:n], self._alive[:n].copy(), self._ids[:n]
            own = self._rows.get(item.id)
        if own is not None:
            alive[own] = False
        sims = matrix @ query  # outside the lock: numpy releases the interpreter here
        sims[~alive] = -np.inf
        k = min(k, int(alive.sum()))
        if k <= 0:
            return []
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top])]
        return [(ids[j], float(sims[j])) for j in top]

    def _catch_up(self) -> None:
        """Embed the examples added since the last look-up (all of them after a new encoder)."""
        with self._lock:
            if self._built_for != self._generation():
                alive = [it for row, it in enumerate(self._items) if self._alive[row]]
                pending = self._pending
                self._clear()
                self._pending = {**{it.id: it for it in alive}, **pending}
            todo = list(self._pending.values())
        if not todo:
            return
        vectors = self._embed(todo)
        with self._lock:
            for item, vector in zip(todo, vectors, strict=True):
                if self._pending.pop(item.id, None) is None or item.id in self._rows:
                    continue  # dropped (or added by another thread) meanwhile
                self._append(item, vector)

    def _append(self, item: FeedbackItem, vector: np.ndarray) -> None:
        n = len(self._ids)
        if self._matrix is None:
            self._matrix = np.empty((64, vector.shape[0]), dtype=np.float32)
        elif n == self._matrix.shape[0]:
            grown = np.empty((2 * n, self._matrix.shape[1]), dtype=np.float32)
            grown[:n] = self._matrix
            self._matrix = grown
        if n == self._alive.shape[0]:
            self._alive = np.concatenate([self._alive, np.zeros(max(64, n), dtype=bool)])
        self._matrix[n] = vector
        self._alive[n] = True
        self._rows[item.id] = n
        self._ids.append(item.id)
        self._items.append(item)
