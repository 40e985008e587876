"""Duplicates: one card per problem, however many people report it.

When a page breaks, twenty visitors report it. Each new item is compared, when its card
is about to be posted, with the open cards of the last `[duplicates] window_days` that
were received before it: the sentence embedding finds the nearest few (one matrix
product), and their score mixes the embedding's cosine with the overlap of their hashed
n-grams (`core.features.lexical_counts`: words, word pairs, character grams), which tells
"the same error again" from "another error on the same page". At or above the threshold
the item is a duplicate: a `DuplicateLink` to its canonical is stored, and the outbox
posts it as a reply in the canonical card's thread instead of a card of its own; the
canonical card counts the group.

Reviewers correct the grouping from the card: "Duplicate of..." merges a card into one
of the most similar open cards, "Not a duplicate" splits a grouped item off to a card of
its own. Each decision is stored as a `DuplicateVote` with the pair's score, and the
threshold is the one that best separates the votes (`learned_threshold`), so the grouping
learns from the team as the category does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from core.features import lexical_counts
from core.models import DuplicateLink, DuplicateVote, FeedbackItem, stable_id, utcnow
from core.ports import Store
from core.runtime import DuplicateSettings

log = logging.getLogger("triage_bot.duplicates")

DETECTOR = "triage-bot"  # `DuplicateLink.by` of the links the detector sets
SYNC_SECONDS = 30.0  # how often the open cards are brought up to date (other processes')
NGRAM_CACHE = 4096  # n-gram vectors of recent candidates, kept for a burst of look-alikes
NGRAM_TEXT_CHARS = 2000  # the part of a text the n-gram overlap reads
WARM_CHUNK = 256  # open cards embedded per step at start
MAX_MOVE = 0.15  # how far reviewers' votes may move the threshold from the configured one


class DuplicateError(ValueError):
    """A merge or split that cannot be done (an item into itself, one never grouped)."""


@dataclass(frozen=True)
class Match:
    """An open card like a new item: the mixed score and its two parts."""

    item_id: str
    score: float
    embedding: float
    ngrams: float


def ngram_vector(text: str, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted hashed n-gram ids and their L2-normalised log-count weights."""
    ids, counts = lexical_counts(text[:NGRAM_TEXT_CHARS], buckets)
    weights = np.log1p(counts)
    norm = float(np.linalg.norm(weights))
    return ids, (weights / norm if norm else weights)


def ngram_cosine(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    _, ia, ib = np.intersect1d(a[0], b[0], assume_unique=True, return_indices=True)
    return float(np.dot(a[1][ia], b[1][ib]))


def learned_threshold(
    votes: Sequence[tuple[float, bool]], default: float, learn_after: int
) -> float:
    """The threshold that best separates reviewers' merges (`same`) from their splits.

    Fewer than `learn_after` votes: the default. Otherwise the cut with the fewest votes
    on the wrong side, the default among the candidates, and of equally good cuts the one
    nearest the default (a merge of a pair scored far below it moves it no further than
    needed to take that pair in), never more than MAX_MOVE from the default."""
    if len(votes) < learn_after:
        return default
    scores = sorted({round(s, 6) for s, _ in votes})
    cuts = {default}
    cuts.update((a + b) / 2 for a, b in zip(scores, scores[1:], strict=False))
    cuts.update(s for s in scores)  # a cut at a merge's own score takes it in
    cuts.add(scores[-1] + 1e-6)

    def errors(cut: float) -> int:
        return sum(1 for s, same in votes if (s >= cut) != same)

    best = min(cuts, key=lambda cut: (errors(cut), abs(cut - default)))
    # Only mistakes are voted on, so a few odd votes could push the cut to the ends (a merge
    # of two unlike reports to 0.3: everything grouped): it moves at most MAX_MOVE.
    return float(min(max(best, default - MAX_MOVE, 0.05), default + MAX_MOVE, 0.999))


class OpenCards:
    """Embeddings of the open canonical items, by id, with when each was received."""

    def __init__(self, dim: int | None = None) -> None:
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._matrix = np.zeros((0, dim or 0), dtype=np.float32)
        self._received = np.zeros(0, dtype=np.float64)
        self._alive = np.zeros(0, dtype=bool)

    def __len__(self) -> int:
        with self._lock:
            return int(self._alive[: len(self._ids)].sum())

    def ids(self) -> set[str]:
        """The ids of the open cards held."""
        with self._lock:
            return {i for row, i in enumerate(self._ids) if self._alive[row]}

    def __contains__(self, item_id: str) -> bool:
        with self._lock:
            row = self._rows.get(item_id)
            return row is not None and bool(self._alive[row])

    def add(self, item_id: str, received: float, vector: np.ndarray) -> None:
        with self._lock:
            row = self._rows.get(item_id)
            if row is not None:
                self._matrix[row] = vector
                self._alive[row] = True
                return
            n = len(self._ids)
            if n == self._matrix.shape[0]:
                size = max(64, 2 * n)
                matrix = np.zeros((size, vector.shape[0]), dtype=np.float32)
                if n:
                    matrix[:n] = self._matrix[:n]
                received_at = np.zeros(size, dtype=np.float64)
                received_at[:n] = self._received[:n]
                alive = np.zeros(size, dtype=bool)
                alive[:n] = self._alive[:n]
                # New arrays, never grown in place: `nearest` reads the old ones unlocked.
                self._matrix, self._received, self._alive = matrix, received_at, alive
            self._matrix[n] = vector
            self._received[n] = received
            self._alive[n] = True
            self._rows[item_id] = n
            self._ids.append(item_id)

    def remove(self, item_ids: Iterable[str]) -> None:
        with self._lock:
            for item_id in item_ids:
                row = self._rows.get(item_id)
                if row is not None:
                    self._alive[row] = False

    def compact(self, keep_after: float) -> None:
        """Drop the rows of removed cards and of cards received before `keep_after`."""
        with self._lock:
            n = len(self._ids)
            keep = self._alive[:n] & (self._received[:n] >= keep_after)
            if keep.all():
                return
            ids = [i for row, i in enumerate(self._ids) if keep[row]]
            self._matrix = self._matrix[:n][keep].copy()
            self._received = self._received[:n][keep].copy()
            self._alive = np.ones(len(ids), dtype=bool)
            self._ids = ids
            self._rows = {item_id: row for row, item_id in enumerate(ids)}

    def nearest(
        self, vector: np.ndarray, k: int, *, after: float, before: float | None = None
    ) -> list[tuple[str, float]]:
        """The k open cards received in (after, before] closest to `vector`, by cosine."""
        with self._lock:
            n = len(self._ids)
            if n == 0:
                return []
            matrix, received, ids = self._matrix[:n], self._received[:n], self._ids[:n]
            wanted = self._alive[:n] & (received > after)
        if before is not None:
            wanted &= received <= before
        count = int(wanted.sum())
        if count == 0:
            return []
        sims = matrix @ vector  # outside the lock: numpy lets other threads run
        sims[~wanted] = -np.inf
        k = min(k, count)
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top])]
        return [(ids[j], float(sims[j])) for j in top]


class DuplicateDesk:
    """Detects duplicates at posting, and applies reviewers' merges and splits.

    One per process (the service holds it); every card outbox of the process asks it.
    `embed` is the engine's (cached) sentence embedding, `generation` its encoder's
    generation: a new encoder makes every stored vector stale."""

    def __init__(
        self,
        store: Store,
        settings: DuplicateSettings,
        embed: Callable[[Sequence[FeedbackItem]], np.ndarray],
        generation: Callable[[], int],
        buckets: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self._embed = embed
        self._generation = generation
        self._buckets = buckets
        self._clock = clock
        self._open = OpenCards()
        self._built_for = generation()
        # One check, merge or split at a time: a burst's look-alikes in order, and no new
        # report joins a card while that card moves to another group.
        self._lock = threading.RLock()
        self._ngrams: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._ngrams_lock = threading.Lock()
        # The card targets whose cards are open cards (each grouping outbox adds its own).
        self.card_targets: set[str] = set()
        self._votes: list[tuple[float, bool]] = []
        self._threshold = settings.threshold
        self._next_sync = 0.0
        self._syncing = False
        self.reload_votes()

    # -- the threshold ---------------------------------------------------------------
    @property
    def threshold(self) -> float:
        return self._threshold

    def reload_votes(self) -> None:
        """Read every merge and split vote again (other processes' votes count too)."""
        votes = [(v.similarity, v.same) for v in self.store.duplicate_votes()]
        self._set_votes(votes)

    def _set_votes(self, votes: list[tuple[float, bool]]) -> None:
        self._votes = votes
        self._threshold = learned_threshold(
            votes, self.settings.threshold, self.settings.learn_after
        )

    # -- the open cards ----------------------------------------------------------------
    def _window_start(self, now: datetime | None = None) -> datetime:
        return (now or utcnow()) - timedelta(days=self.settings.window_days)

    def warm_up(self) -> int:
        """Bring the open cards up to date with the store: embed the cards posted since
        (by any process; all of them at a start or after a new encoder), drop those now
        in a group (merged, or grouped by another process). `check` compares with what is
        loaded so far meanwhile. Returns how many cards were added."""
        start = self._window_start()
        # Open cards are cards: items posted as a card of their own (not as a reply) on a
        # target that groups, and in no group. An item not posted yet is checked first.
        posted = {
            post.item_id
            for target in sorted(self.card_targets)
            for post in self.store.posts(target=target, status="posted")
            if post.ref is not None and not post.detail.get("thread")
        }
        linked = {link.item_id for link in self.store.iter_duplicates()}
        known = self._open.ids()
        self._open.remove(known & linked)
        items = []
        for item_id in posted - linked - known:
            item = self.store.get_item(item_id)
            if item is not None and item.received_at >= start:
                items.append(item)
        # Newest first: a report's duplicates are most likely recent, so they count soonest.
        items.sort(key=lambda item: item.received_at, reverse=True)
        items = items[: self.settings.max_open]
        self._built_for = self._generation()
        for at in range(0, len(items), WARM_CHUNK):
            chunk = items[at : at + WARM_CHUNK]
            vectors = self._embed(chunk)
            for item, vector in zip(chunk, vectors, strict=True):
                self._open.add(item.id, item.received_at.timestamp(), vector)
        self._open.compact(start.timestamp())
        self._next_sync = self._clock() + SYNC_SECONDS
        return len(items)

    def sync_if_due(self) -> None:
        """Upkeep: every SYNC_SECONDS (or after a new encoder), read the open cards again,
        so items other processes posted are compared with too; the votes as well. The
        read runs in a thread of its own (embedding 10,000 open cards takes minutes on a
        CPU): the outbox goes on posting meanwhile, against what is loaded so far."""
        self.reload_votes()
        stale = self._generation() != self._built_for
        if not stale and self._clock() < self._next_sync:
            return
        with self._lock:
            if self._syncing:
                return
            self._syncing = True
            if stale:
                self._open = OpenCards()
                with self._ngrams_lock:
                    self._ngrams.clear()
        threading.Thread(target=self._sync, name="duplicates-sync", daemon=True).start()

    def _sync(self) -> None:
        try:
            self.warm_up()
        except Exception:  # the store was down: the next upkeep tries again
            log.exception("could not read the open cards for duplicate detection")
            self._next_sync = self._clock() + 30.0
        finally:
            self._syncing = False

    def forget(self, item_ids: Iterable[str]) -> None:
        ids = list(item_ids)
        self._open.remove(ids)
        with self._ngrams_lock:
            for item_id in ids:
                self._ngrams.pop(item_id, None)

    @property
    def open_count(self) -> int:
        return len(self._open)

    # -- scoring -------------------------------------------------------------------------
    def _ngram(self, item: FeedbackItem) -> tuple[np.ndarray, np.ndarray]:
        with self._ngrams_lock:
            found = self._ngrams.get(item.id)
            if found is not None:
                self._ngrams.move_to_end(item.id)
                return found
        found = ngram_vector(item.redacted_text, self._buckets)
        with self._ngrams_lock:
            self._ngrams[item.id] = found
            while len(self._ngrams) > NGRAM_CACHE:
                self._ngrams.popitem(last=False)
        return found

    def _mix(self, embedding: float, ngrams: float) -> float:
        w = self.settings.embedding_weight
        return w * embedding + (1 - w) * ngrams

    def score(self, a: FeedbackItem, b: FeedbackItem) -> Match:
        """How alike two items are, on the detector's scale."""
        va, vb = self._embed([a, b])
        embedding = float(np.dot(va, vb))
        ngrams = ngram_cosine(self._ngram(a), self._ngram(b))
        return Match(b.id, self._mix(embedding, ngrams), embedding, ngrams)

    def matches(
        self,
        item: FeedbackItem,
        k: int,
        *,
        earlier_only: bool,
        floor: float | None = None,
        vector: np.ndarray | None = None,
    ) -> list[Match]:
        """The open cards most like `item` (never itself), best first. `floor`: skip the
        n-gram overlap of cards whose embedding alone cannot reach it."""
        if vector is None:
            (vector,) = self._embed([item])
        w = self.settings.embedding_weight
        # The window is the item's own: what came in the `window_days` before it.
        found = self._open.nearest(
            vector,
            k + 1,
            after=self._window_start(item.received_at).timestamp(),
            before=item.received_at.timestamp() if earlier_only else None,
        )
        out = []
        for other_id, embedding in found:
            if other_id == item.id:
                continue
            if floor is not None and w * embedding + (1 - w) < floor:
                continue
            other = self.store.get_item(other_id)
            if other is None:
                self._open.remove([other_id])
                continue
            ngrams = ngram_cosine(self._ngram(item), self._ngram(other))
            out.append(Match(other_id, self._mix(embedding, ngrams), embedding, ngrams))
        out.sort(key=lambda m: -m.score)
        return out[:k]

    # -- detection -----------------------------------------------------------------------
    def canonical_of(self, item_id: str) -> str:
        """The item a vote on `item_id` counts for: its group's canonical, or itself (a
        chain left by two workers' races is followed to its end)."""
        seen = {item_id}
        link = self.store.get_duplicate(item_id)
        while link is not None and link.canonical_id not in seen:
            item_id = link.canonical_id
            seen.add(item_id)
            link = self.store.get_duplicate(item_id)
        return item_id

    def check(
        self, item: FeedbackItem, has_card: Callable[[str], bool] = lambda _: True
    ) -> DuplicateLink | None:
        """The item's group at posting: its stored link if it has one, else the best
        earlier open card at or above the threshold that `has_card` (a card of it is
        posted or on its way), stored as a link; else None, and the item becomes an open
        card others are compared with."""
        link = self.store.get_duplicate(item.id)
        if link is not None:
            return link
        with self._lock:
            (vector,) = self._embed([item])
            best = self.matches(item, 3, earlier_only=True, floor=self._threshold, vector=vector)
            for match in best:
                if match.score < self._threshold:
                    break
                canonical = self.canonical_of(match.item_id)
                if canonical == item.id or not has_card(canonical):
                    continue
                link = DuplicateLink(
                    item_id=item.id,
                    canonical_id=canonical,
                    similarity=_clip(match.score),
                    by=DETECTOR,
                )
                with self.store.transaction():
                    self.store.put_duplicate(link)
                    # Loaded as an open card before it was checked, it may have drawn
                    # reports of its own: they join its group's canonical too.
                    for member in self.store.duplicates_of(item.id):
                        self.store.put_duplicate(
                            member.model_copy(update={"canonical_id": canonical})
                        )
                self._open.remove([item.id])
                return link
            self._open.add(item.id, item.received_at.timestamp(), vector)
            return None

    def unlink(self, item_id: str) -> None:
        """The item's group has no card where it is posted (refused for good): the item
        stands alone, and is an open card from now on."""
        with self._lock:
            self.store.delete_duplicate(item_id)
            item = self.store.get_item(item_id)
            if item is not None:
                (vector,) = self._embed([item])
                self._open.add(item.id, item.received_at.timestamp(), vector)

    def candidates(self, item: FeedbackItem) -> list[tuple[FeedbackItem, float]]:
        """What "Duplicate of..." offers on a card: the most similar other open cards."""
        out = []
        for match in self.matches(item, self.settings.candidates, earlier_only=False):
            other = self.store.get_item(match.item_id)
            if other is not None and self.store.get_duplicate(other.id) is None:
                out.append((other, match.score))
        return out

    # -- reviewers' decisions --------------------------------------------------------------
    def merge(self, item_id: str, into_id: str, reviewer: str, platform: str) -> list[str]:
        """A reviewer's "Duplicate of...": the item (and its own group) joins `into_id`'s
        group. Returns the items whose cards change."""
        item, target = self.store.get_item(item_id), self.store.get_item(into_id)
        if item is None or target is None:
            raise DuplicateError("that card is gone")
        with self._lock:
            canonical_id = self.canonical_of(into_id)
            canonical = self.store.get_item(canonical_id) or target
            if canonical_id == item_id:
                raise DuplicateError("a card cannot be a duplicate of itself or of its own group")
            before = self.store.get_duplicate(item_id)
            self._open.remove([item_id])  # first: no new report joins it meanwhile
            score = _clip(self.score(item, canonical).score)
            with self.store.transaction():
                # The links first, the vote last, its id fixed by the decision: a retried
                # merge (MongoDB has no transaction) completes it and counts it once.
                self.store.put_duplicate(
                    DuplicateLink(
                        item_id=item_id,
                        canonical_id=canonical_id,
                        similarity=score,
                        by=reviewer,
                        platform=platform,
                    )
                )
                members = self.store.duplicates_of(item_id)
                for member in members:
                    self.store.put_duplicate(
                        member.model_copy(update={"canonical_id": canonical_id})
                    )
                fresh = self.store.add_duplicate_vote(
                    DuplicateVote(
                        id=stable_id("dup", item_id, canonical_id, reviewer, "same"),
                        item_id=item_id,
                        other_id=canonical_id,
                        same=True,
                        similarity=score,
                        reviewer=reviewer,
                        platform=platform,
                    )
                )
            if fresh:
                self._set_votes([*self._votes, (score, True)])
        old_group = [before.canonical_id] if before is not None else []
        return [item_id, canonical_id, *old_group, *(m.item_id for m in members)]

    def split(self, item_id: str, reviewer: str, platform: str) -> list[str]:
        """A reviewer's "Not a duplicate": the item leaves its group for a card of its own.
        Returns the items whose cards change."""
        with self._lock:
            link = self.store.get_duplicate(item_id)
            if link is None:
                raise DuplicateError("this item is not grouped with another")
            item = self.store.get_item(item_id)
            canonical = self.store.get_item(link.canonical_id)
            if item is None:
                raise DuplicateError("that card is gone")
            score = _clip(
                self.score(item, canonical).score if canonical is not None else link.similarity
            )
            with self.store.transaction():
                self.store.delete_duplicate(item_id)
                fresh = self.store.add_duplicate_vote(
                    DuplicateVote(
                        id=stable_id("dup", item_id, link.canonical_id, reviewer, "split"),
                        item_id=item_id,
                        other_id=link.canonical_id,
                        same=False,
                        similarity=score,
                        reviewer=reviewer,
                        platform=platform,
                    )
                )
            (vector,) = self._embed([item])
            self._open.add(item.id, item.received_at.timestamp(), vector)
            if fresh:
                self._set_votes([*self._votes, (score, False)])
        return [item_id, link.canonical_id]


def _clip(score: float) -> float:
    return round(min(max(score, -1.0), 1.0), 4)
