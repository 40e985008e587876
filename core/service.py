"""The triage service: the one entry point every edge (CLI, Slack, Discord, webhook) calls.

Order matters and is the same everywhere: check the input, redact it, store it, and only
then predict, post or learn. An accepted item is on disk before any side effect.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.actions import LEARNED_EVIDENCE, LEARNED_SIMILARITY, adapt_action
from core.duplicates import DuplicateDesk
from core.governance import clean_text, redact
from core.intake import MAX_TEXT_BYTES, Submission, to_item
from core.lifecycle import PruneReport, prune
from core.models import (
    FeedbackItem,
    Label,
    Reward,
    Triage,
    Validation,
    ValidationKind,
    utcnow,
)
from core.ports import Store
from core.rewards import OUTCOME_REVIEWER, OUTCOME_SOURCE, REWARD_SOURCE, consensus, score
from core.similar import SimilarIndex
from core.taxonomy import Taxonomy
from core.triage import LearnReport, TriageEngine

# Reviewers' track records are read from the store once, then kept up to date by this
# process's votes, and read again after this long, so other processes' votes count too.
WEIGHTS_TTL_SECONDS = 30.0
MAX_ACTION_BYTES = 4000  # a suggested action a reviewer types (the modals allow 3,000-4,000)
# A running bot applies the retention setting at start, then this often.
PRUNE_EVERY_SECONDS = 24 * 3600.0
PRUNE_RETRY_SECONDS = 600.0  # after a failed run (the store was down)


def make_item(
    raw: str | bytes,
    *,
    source: str = "cli",
    item_id: str | None = None,
    ref: str | None = None,
    form_type: str | None = None,
    page: str | None = None,
    rating: float | None = None,
    received_at: datetime | None = None,
    max_text_bytes: int = MAX_TEXT_BYTES,
) -> FeedbackItem:
    """An item checked and redacted exactly as intake does (`core.intake.to_item`), for
    the CLI and offline sets; `item_id` lets a labelled data set keep its own ids."""
    item = to_item(
        Submission(
            text=raw,
            source=source,
            ref=ref,
            form_type=form_type,
            page=page,
            rating=rating,
            received_at=received_at,
        ),
        max_text_bytes,
    )
    if item_id is not None:
        item.id = item_id
    return item


class UnknownItemError(LookupError):
    """A vote or lookup for an item id the store has never seen."""


class NotAllowedError(PermissionError):
    """A reviewer outside the configured allowlist."""


@dataclass
class VoteOutcome:
    stored: bool  # False for a duplicate event (a redelivery): nothing changed
    validation: Validation
    label: Label | None
    reward: Reward | None
    learned: LearnReport | None


@dataclass
class Stats:
    items: int
    triaged: int
    validated: int
    votes: int
    disagreements: int
    category_accuracy: float
    severity_accuracy: float
    per_category: dict[str, dict[str, float]] = field(default_factory=dict)
    model_version: str = ""
    outbox: dict[str, dict[str, int]] = field(default_factory=dict)  # target -> status -> n
    dead_letters: list[dict[str, Any]] = field(default_factory=list)  # what was refused, why

    def outbox_line(self, target: str | None = None) -> str | None:
        """Cards waiting and dead-lettered (refused by the platform), or None if all posted."""
        rows = [self.outbox[target]] if target in self.outbox else []
        if target is None:
            rows = list(self.outbox.values())
        waiting = sum(r.get("pending", 0) + r.get("claimed", 0) for r in rows)
        dead = sum(r.get("dead", 0) for r in rows)
        if not waiting and not dead:
            return None
        parts = [f"{waiting} card(s) waiting to be posted"] if waiting else []
        if dead:
            parts.append(f"{dead} dead-lettered (refused by the platform; `triage-bot stats`)")
        return "Outbox: " + " · ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 4)

        return {
            "items": self.items,
            "triaged": self.triaged,
            "validated": self.validated,
            "votes": self.votes,
            "disagreements": self.disagreements,
            "category_accuracy": clean(self.category_accuracy),
            "severity_accuracy": clean(self.severity_accuracy),
            "per_category": self.per_category,
            "model_version": self.model_version,
            "outbox": self.outbox,
            "dead_letters": self.dead_letters,
        }


def stats_lines(
    overall: Stats, windows: list[tuple[int, Stats]], target: str | None, bold: str
) -> list[str]:
    """`/triage stats` on any platform: counts, the outbox's state, accuracy per window.
    `bold` is the platform's bold marker ("*" on Slack, "**" on Discord)."""
    lines = [
        f"{bold}{overall.validated}{bold} validated of {overall.items} items · "
        f"{overall.votes} votes · {overall.disagreements} disputed · "
        f"model `{overall.model_version}`"
    ]
    outbox = overall.outbox_line(target)
    if outbox:
        lines.append(outbox)
    for days, window in windows:
        if window.validated == 0 or math.isnan(window.category_accuracy):
            lines.append(f"Last {days} days: no validations.")
            continue
        per = ", ".join(
            f"{name} {row['accuracy']:.0%} (n={row['n']:g})"
            for name, row in window.per_category.items()
        )
        lines.append(
            f"Last {days} days: category accuracy {window.category_accuracy:.0%}, "
            f"severity {window.severity_accuracy:.0%} over {window.validated}: {per}"
        )
    return lines


class TriageService:
    def __init__(
        self,
        store: Store,
        engine: TriageEngine,
        taxonomy: Taxonomy,
        reviewers: frozenset[str] | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.taxonomy = taxonomy
        self.runtime = engine.runtime  # the engine and the service run on one config
        self.reviewers = reviewers
        # Voters whose weight is set, not earned: an issue's outcome counts below a person.
        self.fixed_weights = {OUTCOME_REVIEWER: self.runtime.github.outcome_weight}
        self._examples: dict[str, tuple[FeedbackItem, Label]] = {}
        self._fresh: set[str] = set()  # labelled items not learned yet (votes with learn=False)
        self._learn_due = False
        self._examples_lock = threading.Lock()  # short: guards the three fields above
        self._learn_lock = threading.Lock()  # long: one learning update at a time
        # Reviewers' track records (see reviewer_weights): per item, and summed.
        self._records: dict[str, dict[str, tuple[int, int]]] | None = None
        self._records_until = 0.0
        self._agreed: Counter[str] = Counter()
        self._counted: Counter[str] = Counter()
        self._weights_lock = threading.Lock()
        self._similar = SimilarIndex(engine.embed, lambda: engine.encoder_generation)
        # Duplicates grouped at posting (`[duplicates]`); None when the team turned it off.
        self.duplicates = (
            DuplicateDesk(
                store,
                self.runtime.duplicates,
                engine.embed,
                lambda: engine.encoder_generation,
                self.runtime.learning.lexical_buckets,
            )
            if self.runtime.duplicates.enabled
            else None
        )
        # Forgetting: the newest audit event this process has applied (`sync_forgotten`),
        # and when its next retention run is due (`prune_if_due`).
        self._audit_seen = store.last_audit_seq()
        self._forget_lock = threading.Lock()
        self._next_prune = 0.0
        self._prune_lock = threading.Lock()

    # -- intake ----------------------------------------------------------------------------
    def make_item(self, raw: str | bytes, **facts: Any) -> FeedbackItem:
        """Check and redact inbound text; raises governance.InputError with a clear reason."""
        return make_item(raw, max_text_bytes=self.runtime.triage.max_text_bytes, **facts)

    def submit(self, item: FeedbackItem) -> tuple[Triage, bool]:
        """Store, then triage. Returns (triage, is_new); a known item keeps its first triage."""
        is_new = self.store.add_item(item)
        if not is_new:
            existing = self.store.latest_triage(item.id)
            if existing is not None:
                return existing, False
            stored = self.store.get_item(item.id)
            item = stored or item
        triage = self.engine.triage(item)
        self.store.save_triage(triage)
        return triage, is_new

    def submit_many(self, items: list[FeedbackItem]) -> list[tuple[Triage, bool]]:
        fresh = [(item, self.store.add_item(item)) for item in items]
        todo = [item for item, _ in fresh if self.store.latest_triage(item.id) is None]
        predicted = {t.item_id: t for t in self.engine.triage_many(todo)}
        for triage in predicted.values():
            self.store.save_triage(triage)
        out = []
        for item, is_new in fresh:
            found = predicted.get(item.id) or self.store.latest_triage(item.id)
            if found is None:  # only if another process deleted it in between
                raise LookupError(f"item {item.id} has no triage")
            out.append((found, is_new))
        return out

    def triage_items(self, items: list[FeedbackItem]) -> list[Triage]:
        """The latest triage of each stored item; those never triaged go through the
        engine together (one batch), which is how the outbox triages after the ack."""
        known = {item.id: self.store.latest_triage(item.id) for item in items}
        todo = [item for item in items if known[item.id] is None]
        triages = self.engine.triage_many(todo)
        for item, triage in zip(todo, triages, strict=True):
            self._learned_action(item, triage)
        with self.store.transaction():  # one commit for the batch
            for triage in triages:
                self.store.save_triage(triage)
                known[triage.item_id] = triage
        out = []
        for item in items:
            found = known[item.id]
            if found is None:
                raise LookupError(f"item {item.id} has no triage")
            out.append(found)
        return out

    def _learned_action(self, item: FeedbackItem, triage: Triage) -> None:
        """A reviewer's edited action for a close look-alike of the same category replaces
        the template's (adapted to this item, the look-alike named as evidence). An action
        the model wrote itself (the LLM backend) is kept."""
        if triage.backend != "embedded" or triage.category not in self.taxonomy.category_names:
            return
        spec = self.taxonomy.category(triage.category)
        for other, label, similarity in self.similar_validated(
            item, k=3, min_similarity=LEARNED_SIMILARITY
        ):
            if label.category != triage.category or not self.edited_action(other.id, label):
                continue
            assert label.action is not None
            triage.action = adapt_action(
                label.action, spec, other.redacted_text, other.page, item.redacted_text, item.page
            )
            triage.evidence.append(f"{LEARNED_EVIDENCE} {other.id} ({similarity:.0%} similar)")
            return

    def edited_action(self, item_id: str, label: Label) -> bool:
        """Whether the label's action is a reviewer's own (not the suggestion left as it was)."""
        if not label.action:
            return False
        triage = self.store.latest_triage(item_id)
        return triage is None or label.action.strip() != triage.action.strip()

    # -- validation --------------------------------------------------------------------------
    def vote(
        self,
        item_id: str,
        reviewer: str,
        kind: ValidationKind | str,
        *,
        category: str | None = None,
        severity: str | None = None,
        action: str | None = None,
        platform: str = "cli",
        validation_id: str | None = None,
        created_at: datetime | None = None,
        learn: bool = True,
        vetted: bool = False,
    ) -> VoteOutcome:
        """Record one reviewer's vote, update the label and reward, and learn from it.

        `vetted`: the caller has authenticated the voter another way than the reviewer
        allowlist (a maintainer's relabel in a signed GitHub delivery, an issue's outcome)."""
        kind = ValidationKind(kind)
        if action is not None:  # typed by a reviewer: cleaned and redacted like any input
            action = redact(clean_text(action, MAX_ACTION_BYTES)).text if action.strip() else None
        if not vetted and self.reviewers is not None and reviewer not in self.reviewers:
            raise NotAllowedError(f"{reviewer} is not on the reviewer allowlist")
        item = self.store.get_item(item_id)
        if item is None:
            raise UnknownItemError(f"unknown item id {item_id!r}")
        if category is not None:
            self.taxonomy.check_category(category)
        if severity is not None:
            self.taxonomy.check_severity(severity)
        predicted = self.store.latest_triage(item_id)
        if kind == ValidationKind.CORRECT and not (category or severity or action):
            raise ValueError("a correction needs a category, a severity or an action")
        if kind == ValidationKind.CONFIRM:
            if predicted is None:
                raise ValueError(f"item {item_id} has no prediction to confirm")
            category, severity = predicted.category, predicted.severity
        elif kind == ValidationKind.CORRECT:
            # A correction of one field keeps what this reviewer said of the other before
            # (a bug reaction, then a fire reaction), else the prediction.
            mine = next(
                (v for v in self.store.current_votes(item_id) if v.reviewer == reviewer), None
            )
            category = (
                category
                or (mine.category if mine else None)
                or (predicted.category if predicted else None)
            )
            severity = (
                severity
                or (mine.severity if mine else None)
                or (predicted.severity if predicted else None)
            )
            if category is None or severity is None:
                raise ValueError(f"item {item_id} has no prediction; give category and severity")
        elif kind == ValidationKind.NOISE:
            noise = self.taxonomy.noise_category
            if noise is None:
                raise ValueError("this taxonomy has no 'noise' category")
            category, severity = noise, self.taxonomy.lowest_severity
        else:
            category = severity = action = None
        validation = Validation(
            **({"id": validation_id} if validation_id else {}),
            item_id=item_id,
            reviewer=reviewer,
            platform=platform,
            kind=kind,
            category=category,
            severity=severity,
            action=action,
            predicted_category=predicted.category if predicted else None,
            predicted_severity=predicted.severity if predicted else None,
            model_version=predicted.model_version if predicted else None,
            created_at=created_at or utcnow(),
        )
        # A duplicate (a redelivery) changes nothing, but the label and reward are still
        # recomputed: if the first delivery died between its writes, this one heals them.
        weights = self.reviewer_weights()  # may reread the store: outside the transaction
        with self.store.transaction():  # the vote, its label and its reward commit together
            if self.store.get_item(item_id) is None:  # forgotten since it was read above
                raise UnknownItemError(f"unknown item id {item_id!r}")
            stored = self.store.add_validation(validation)
            votes = self.store.current_votes(item_id)
            label = consensus(votes, weights)
            reward = None
            if label is None:
                self.store.delete_label(item_id)
                if predicted is not None and kind == ValidationKind.REJECT:
                    reward = Reward(
                        item_id=item_id,
                        model_version=predicted.model_version,
                        value=-1.0,
                        source=REWARD_SOURCE,
                        reason=f"rejected by {reviewer} without a correction",
                    )
                    self.store.put_reward(reward)
            else:
                self.store.put_label(label)
                if predicted is not None:
                    reward = score(predicted, label, self.taxonomy)
                    self.store.put_reward(reward)
        self._retally(item_id, label, votes)
        if not stored:
            return VoteOutcome(False, validation, label, None, None)
        learned = self._update_examples(item, label, learn)
        return VoteOutcome(True, validation, label, reward, learned)

    def _update_examples(
        self, item: FeedbackItem, label: Label | None, learn: bool
    ) -> LearnReport | None:
        with self._examples_lock:
            known_before = self._examples.pop(item.id, None) is not None
            self._fresh.discard(item.id)
            if label is not None:
                self._examples[item.id] = (item, label)
                self._fresh.add(item.id)
                self._similar.put(item)
            else:
                self._similar.drop(item.id)
            if label is None and not known_before:
                return None
            self._learn_due = True
        return self._learn(force=True) if learn else None

    def learn_pending(self) -> LearnReport | None:
        """Learn from the votes stored with `learn=False` since the last update.

        An edge stores a vote before it acks (durable) and learns after: under a burst,
        one update covers every vote that arrived meanwhile instead of one update each.
        Never waits: if another thread is learning, it returns None at once, and that
        thread learns these votes too (it checks again once it is done).
        """
        report = None
        while True:
            with self._examples_lock:
                if not self._learn_due:
                    return report
            if not self._learn_lock.acquire(blocking=False):
                return report
            try:
                report = self._learn_unlocked(force=False) or report
            finally:
                self._learn_lock.release()

    def _learn(self, force: bool) -> LearnReport | None:
        with self._learn_lock:
            return self._learn_unlocked(force)

    def _learn_unlocked(self, force: bool) -> LearnReport | None:
        """One learning update over every example (hold `_learn_lock`). Votes keep being
        stored meanwhile: only the snapshot is taken under the short lock."""
        with self._examples_lock:
            if not (self._learn_due or force):
                return None
            # Fresh examples go last, so `previous` counts the ones learned before.
            for item_id in self._fresh:
                self._examples[item_id] = self._examples.pop(item_id)
            previous = len(self._examples) - len(self._fresh)
            examples = list(self._examples.values())
            self._fresh.clear()
            self._learn_due = False
        return self.engine.learn(examples, previous=previous)

    def warm_start(self, steps: int | None = None) -> LearnReport:
        """Rebuild the learned model (start-up, after a restart): the promoted model, if
        any, then every stored label on top of it."""
        self.refresh_model()
        with self._learn_lock:
            # Read before the labels: a forget after this point is applied by the next sync.
            audit_seen = self.store.last_audit_seq()
            examples: dict[str, tuple[FeedbackItem, Label]] = {}
            for label in self.store.iter_labels():
                item = self.store.get_item(label.item_id)
                if item is not None:
                    examples[item.id] = (item, label)
            with self._examples_lock:
                self._examples = examples
                self._fresh.clear()
                self._learn_due = False
            with self._forget_lock:
                self._audit_seen = max(self._audit_seen, audit_seen)
            self._similar.reset(item for item, _ in examples.values())
            return self.engine.learn(
                list(examples.values()),
                steps=steps or 4 * self.runtime.learning.online_steps,
                previous=0,
            )

    @staticmethod
    def _track_record(label: Label | None, votes: list[Validation]) -> dict[str, tuple[int, int]]:
        """What one item adds to each reviewer's record: (agreed, counted). Only labels with
        two or more reviewers count (a lone vote agrees with itself)."""
        if label is None or len(label.reviewers) < 2:
            return {}
        return {
            v.reviewer: (int(v.category == label.category), 1)
            for v in votes
            if v.category is not None
        }

    def _count(self, record: dict[str, tuple[int, int]], sign: int) -> None:
        for reviewer, (agreed, counted) in record.items():
            self._agreed[reviewer] += sign * agreed
            self._counted[reviewer] += sign * counted

    def _retally(self, item_id: str, label: Label | None, votes: list[Validation]) -> None:
        """Update the records with one item's new label: a vote costs the same however many
        labels the store holds."""
        with self._weights_lock:
            if self._records is None:
                return  # not read yet: the first read counts everything
            self._count(self._records.pop(item_id, {}), -1)
            record = self._track_record(label, votes)
            if record:
                self._records[item_id] = record
                self._count(record, +1)

    def reviewer_weights(self) -> dict[str, float]:
        """Each reviewer's weight from their track record: agreement with settled labels.

        Laplace-smoothed and scaled so a newcomer weighs 1.0, a reviewer who always agrees
        approaches 2.0 and one who never does approaches 0. The records are read from the
        store once, kept up to date by this process's votes, and read again by `upkeep`
        every WEIGHTS_TTL_SECONDS (off the request path: a vote never waits for a reread),
        so votes stored by other processes count within it.
        """
        with self._weights_lock:
            if self._records is None:
                self._install_records(*self._read_records())
            earned = {
                r: 2.0 * (self._agreed[r] + 1) / (n + 2) for r, n in self._counted.items() if n > 0
            }
            return earned | self.fixed_weights

    def _read_records(
        self,
    ) -> tuple[dict[str, dict[str, tuple[int, int]]], Counter[str], Counter[str]]:
        records: dict[str, dict[str, tuple[int, int]]] = {}
        agreed: Counter[str] = Counter()
        counted: Counter[str] = Counter()
        for label in self.store.iter_labels():
            record = self._track_record(label, self.store.current_votes(label.item_id))
            if record:
                records[label.item_id] = record
                for reviewer, (agree, count) in record.items():
                    agreed[reviewer] += agree
                    counted[reviewer] += count
        return records, agreed, counted

    def _install_records(
        self,
        records: dict[str, dict[str, tuple[int, int]]],
        agreed: Counter[str],
        counted: Counter[str],
    ) -> None:
        self._records, self._agreed, self._counted = records, agreed, counted
        self._records_until = time.monotonic() + WEIGHTS_TTL_SECONDS

    def refresh_reviewer_records(self) -> None:
        """Reread the reviewers' track records when they are older than the TTL. Read
        without the lock, swapped in under it: votes meanwhile use the old records."""
        if self._records is not None and time.monotonic() < self._records_until:
            return
        fresh = self._read_records()
        with self._weights_lock:
            self._install_records(*fresh)

    # -- forgetting and retention ------------------------------------------------------------
    def upkeep(self) -> None:
        """What a running bot does between cards (the outbox worker, the Discord sweep):
        the retention run when due, whatever any process forgot, and the reviewers'
        records read again when they are due."""
        self.prune_if_due()
        self.sync_forgotten()
        self.refresh_reviewer_records()
        if self.duplicates is not None:
            self.duplicates.sync_if_due()

    def sync_forgotten(self) -> LearnReport | None:
        """Apply here what any process on the store deleted (`triage-bot forget`, a
        prune): the audit events after the last one applied name the items, which leave
        this process's caches; then the model relearns without them. With no new event,
        one indexed query."""
        with self._forget_lock:
            events = self.store.audit_events(after=self._audit_seen)
            if not events:
                return None
            ids = {item_id for event in events for item_id in event.item_ids}
            report = self.forget_cached(ids) if ids else None
            self._audit_seen = events[-1].seq  # only once applied: a failure is retried
            return report

    def forget_cached(self, item_ids: Collection[str]) -> LearnReport:
        """Drop deleted items from everything this process keeps (the examples, the
        similar-items index the cards and the LLM's few-shot read, the reviewers' records,
        the engine's features and the encoder's embeddings), then go back to the base
        model's heads and replay the remaining examples, so what the items taught online
        is undone too."""
        gone = set(item_ids)
        with self._learn_lock:
            with self._examples_lock:
                for item_id in gone:
                    self._examples.pop(item_id, None)
                examples = list(self._examples.values())
                self._fresh.clear()
                self._learn_due = False
            self._similar.forget(gone)
            if self.duplicates is not None:
                self.duplicates.forget(gone)
            for item_id in gone:
                self._retally(item_id, None, [])
            self.engine.forget(gone)
            base = self.store.get_model(self.engine.base_version)
            self.engine.reset_heads(base[1] if base else None)
            return self.engine.learn(
                examples, steps=4 * self.runtime.learning.online_steps, previous=0
            )

    def prune_if_due(self) -> PruneReport | None:
        """The retention run of a running bot (`[retention]`): at the first call, then
        once a day; one at a time per process (another caller returns at once)."""
        now = time.monotonic()
        if now < self._next_prune or not self._prune_lock.acquire(blocking=False):
            return None
        try:
            if now < self._next_prune:
                return None
            self._next_prune = now + PRUNE_RETRY_SECONDS
            report = prune(self.store, self.runtime.retention, by="bot")
            self._next_prune = now + PRUNE_EVERY_SECONDS
            return report
        finally:
            self._prune_lock.release()

    # -- model registry ---------------------------------------------------------------------
    def refresh_model(self) -> bool:
        """Load the promoted model if it changed, then relearn the labels on top of it.

        The bot calls this periodically: a model promoted by `triage-bot train` (on any
        machine that shares the store) is picked up without a restart.
        """
        record = self.store.promoted_model()
        if record is None or record.version == self.engine.base_version:
            return False
        found = self.store.get_model(record.version)
        if found is None:
            return False
        if record.taxonomy_fingerprint != self.taxonomy.fingerprint():
            return False  # trained for another label space: never load it
        with self._learn_lock:
            self.engine.load(record.version, found[1])
            with self._examples_lock:
                examples = list(self._examples.values())
                self._fresh.clear()
                self._learn_due = False
            if examples:
                self.engine.learn(examples, previous=0)
        return True

    # -- review ------------------------------------------------------------------------------
    def review_queue(self, limit: int = 10) -> list[tuple[FeedbackItem, Triage, str]]:
        """Items a human should look at next, with the reason.

        Disputed labels first, then unvalidated items by (uncertainty + severity), so the
        items the model is most torn on (smallest top-two margin) and the most severe rise
        to the top.
        """
        severity_boost = {
            name: 0.5 * (1 - i / max(1, len(self.taxonomy.severities) - 1))
            for i, name in enumerate(self.taxonomy.severity_names)
        }
        scored: list[tuple[float, FeedbackItem, Triage, str]] = []
        for item in self.store.iter_items():
            triage = self.store.latest_triage(item.id)
            if triage is None or self.store.get_duplicate(item.id) is not None:
                continue  # a grouped duplicate is reviewed on its group's card
            label = self.store.get_label(item.id)
            if label is not None and not label.disagreement:
                continue
            if label is not None:
                scored.append((2.0 + (1 - label.agreement), item, triage, "reviewers disagree"))
                continue
            probs = sorted(triage.probabilities.get("category", {}).values(), reverse=True)
            top_two = probs[0] - probs[1] if len(probs) > 1 else triage.confidence.category
            uncertainty = 1.0 - top_two  # torn between two labels: most to learn from
            reason = (
                "needs a human" if triage.needs_human else f"{triage.confidence.category:.0%} sure"
            )
            scored.append(
                (uncertainty + severity_boost.get(triage.severity, 0.0), item, triage, reason)
            )
        scored.sort(key=lambda row: -row[0])
        return [(item, triage, reason) for _, item, triage, reason in scored[:limit]]

    def similar_validated(
        self, item: FeedbackItem, k: int = 2, min_similarity: float = 0.3
    ) -> list[tuple[FeedbackItem, Label, float]]:
        """The k validated items closest to this one (shown on cards, used as few-shot)."""
        found = []
        for item_id, similarity in self._similar.nearest(item, k):
            with self._examples_lock:
                example = self._examples.get(item_id)
            if example is not None and similarity >= min_similarity:
                found.append((example[0], example[1], similarity))
        return found

    # -- reporting ---------------------------------------------------------------------------
    def stats(self, since: datetime | None = None) -> Stats:
        """Counts and accuracy; with `since`, accuracy only over labels settled after it."""
        per: dict[str, Counter[str]] = {}
        cat_hits = sev_hits = judged = validated = disagreements = 0
        for label in self.store.iter_labels():
            if since is not None and label.updated_at < since:
                continue
            validated += 1
            disagreements += int(label.disagreement)
            triage = self.store.latest_triage(label.item_id)
            if triage is None:
                continue
            judged += 1
            cat_hits += int(triage.category == label.category)
            sev_hits += int(triage.severity == label.severity)
            bucket = per.setdefault(label.category, Counter())
            bucket["n"] += 1
            bucket["correct"] += int(triage.category == label.category)
        triaged = sum(1 for item in self.store.iter_items() if self.store.latest_triage(item.id))
        return Stats(
            items=self.store.count_items(),
            triaged=triaged,
            validated=validated,
            votes=len(self.store.events()),
            disagreements=disagreements,
            category_accuracy=cat_hits / judged if judged else float("nan"),
            severity_accuracy=sev_hits / judged if judged else float("nan"),
            per_category={
                name: {"n": c["n"], "accuracy": round(c["correct"] / c["n"], 4)}
                for name, c in sorted(per.items())
            },
            model_version=self.engine.model_version,
            outbox=self.store.outbox_counts() if since is None else {},
            dead_letters=[
                {"item_id": p.item_id, "target": p.target, "error": p.last_error}
                for p in (self.store.posts(status="dead") if since is None else [])
            ],
        )

    def export_labels(self) -> Iterator[dict[str, Any]]:
        """Validated items as the trainer consumes them (redacted text, final labels, reward).

        A group's label is its canonical's: each member follows its canonical as a row of
        its own with that label, `duplicate_of` naming the canonical (and no reward: the
        model was scored once, on the canonical); the canonical's `group` lists them."""
        for label in self.store.iter_labels():
            item = self.store.get_item(label.item_id)
            if item is None or self.store.get_duplicate(item.id) is not None:
                continue
            row = self._export_row(item, label)
            yield row
            for member_id in row["group"]:
                member = self.store.get_item(member_id)
                if member is not None:
                    yield self._export_row(member, label, duplicate_of=item.id)

    def _export_row(
        self, item: FeedbackItem, label: Label, duplicate_of: str | None = None
    ) -> dict[str, Any]:
        triage = self.store.latest_triage(item.id)
        reward = None
        if triage is not None and duplicate_of is None:
            reward = score(triage, label, self.taxonomy)
        return {
            "id": item.id,
            "text": item.redacted_text,
            "source": item.source,
            "form_type": item.form_type,
            "page": item.page,
            "category": label.category,
            "severity": label.severity,
            "action": label.action,
            "reviewers": label.reviewers,
            "agreement": label.agreement,
            "reward": reward.as_reward_data().model_dump() if reward else None,
            "model_version": triage.model_version if triage else None,
            "predicted": (
                {"category": triage.category, "severity": triage.severity} if triage else None
            ),
            # What happened to the item's GitHub issue, as rewards (closed as completed,
            # not planned, duplicate; reopened withdraws): a trainer may weigh them in.
            # Who a reviewer assigned it to (the Assign menu), if anyone.
            "owner": assigned.owner
            if (assigned := self.store.get_assignment(item.id)) is not None
            else None,
            "outcomes": [
                r.as_reward_data().model_dump() | {"model_version": r.model_version}
                for r in self.store.rewards(item.id)
                if r.source == OUTCOME_SOURCE
            ],
            "duplicate_of": duplicate_of,
            "group": []
            if duplicate_of is not None
            else [link.item_id for link in self.store.duplicates_of(item.id)],
        }
