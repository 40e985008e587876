"""Votes: what a reaction or a button means, who may vote, and what happens on a vote.

What happens on a vote is one function, `VoteDesk.cast`: check the reviewer rule, store
the vote with its label and reward (quick, so it finishes before the platform's ack and an
acknowledged vote survives a crash), queue the card's rewrite in the outbox, and wake the
learner, which learns off the request path (one update covers a burst of votes). Slack and
Discord translate their payloads into a `Ballot` or a reaction and call it; nothing else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from core.models import Validation, ValidationKind
from core.service import NotAllowedError, TriageService, VoteOutcome
from core.taxonomy import Taxonomy

log = logging.getLogger("triage_bot.votes")

NOT_A_REVIEWER = "You are not on this channel's reviewer list, so your vote was not recorded."
REVIEWERS_ONLY = "You are not on this channel's reviewer list, so this command is not open to you."


@dataclass(frozen=True)
class ReactionVote:
    """What one emoji means on a card, per the taxonomy."""

    kind: ValidationKind
    category: str | None = None
    severity: str | None = None

    def supports(self, vote: Validation | None) -> bool:
        """Whether a reviewer's current vote rests on this reaction, so removing the
        reaction retracts it (removing an unrelated emoji changes nothing)."""
        if vote is None or vote.kind != self.kind:
            return False
        if self.category and vote.category != self.category:
            return False
        return not (self.severity and vote.severity != self.severity)


def reaction_vote(name: str, taxonomy: Taxonomy) -> ReactionVote | None:
    """What an emoji (by its short name, e.g. "bug") means on a card; None if nothing."""
    if name == taxonomy.emoji.confirm:
        return ReactionVote(ValidationKind.CONFIRM)
    if name == taxonomy.emoji.reject:
        return ReactionVote(ValidationKind.REJECT)
    for spec in taxonomy.categories:
        if spec.emoji == name:
            if spec.name == taxonomy.noise_category:
                return ReactionVote(ValidationKind.NOISE)
            return ReactionVote(ValidationKind.CORRECT, category=spec.name)
    for sev in taxonomy.severities:
        if sev.emoji == name:
            return ReactionVote(ValidationKind.CORRECT, severity=sev.name)
    return None


@dataclass(frozen=True)
class ReviewerRule:
    """Who may vote (and read /triage queue and stats): an allowlist of user ids and/or
    platform roles; a user must pass both that are set.

    `ids=None` is "any user": for `serve` only when the team said so (TRIAGE_REVIEWERS=*;
    `Settings.require_reviewer_rule` refuses to start without a rule), for local commands
    (the console, `validate`) also when unset. `roles=None`: no role is needed.
    """

    ids: frozenset[str] | None = None
    roles: frozenset[str] | None = None

    def allows(self, user: str, roles: Iterable[str] = ()) -> bool:
        if self.ids is not None and user not in self.ids:
            return False
        return self.roles is None or not self.roles.isdisjoint(roles)


@dataclass(frozen=True)
class Ballot:
    """One vote as a platform saw it, translated."""

    item_id: str
    reviewer: str
    kind: ValidationKind
    platform: str
    category: str | None = None
    severity: str | None = None
    action: str | None = None
    validation_id: str | None = None  # the platform's event id: a redelivery is a duplicate
    created_at: datetime | None = None
    roles: frozenset[str] = frozenset()


class Learner:
    """Learns from stored votes in one background thread, so the request path never waits
    for a model update.

    A vote is learned once votes have been quiet for `quiet_seconds` (then within
    `[learning] online_seconds` more); under a burst, at most every `max_wait_seconds`, so
    the votes of a burst are learned in few updates and learning never starves the acks
    (the update competes with them for the interpreter).
    """

    def __init__(
        self, service: TriageService, quiet_seconds: float = 0.25, max_wait_seconds: float = 10.0
    ) -> None:
        self.service = service
        self.quiet_seconds = quiet_seconds
        self.max_wait_seconds = max_wait_seconds
        self._due = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="learner", daemon=True)
            self._thread.start()
        self._due.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._due.wait()
            first = time.monotonic()
            self._due.clear()
            # More votes within the quiet window: wait for the lull (or the longest wait).
            while self._due.wait(self.quiet_seconds) and not self._stop.is_set():
                self._due.clear()
                if time.monotonic() - first >= self.max_wait_seconds:
                    break
            if self._stop.is_set():
                return
            try:
                self.service.learn_pending()
            except Exception:  # the votes are stored; the next update learns them
                log.exception("learning from votes failed")

    def stop(self) -> None:
        self._stop.set()
        self._due.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


class VoteDesk:
    """The one path of a vote, shared by every platform."""

    def __init__(
        self,
        service: TriageService,
        rule: ReviewerRule,
        learner: Learner,
        card_changed: Callable[[str], object],
    ) -> None:
        self.service = service
        self.taxonomy = service.taxonomy
        self.rule = rule
        self.learner = learner
        self.card_changed = card_changed  # queues the card's rewrite (the outbox)
        # Told of every stored vote, inside its transaction (a dispute's thread reply).
        self.on_stored: list[Callable[[VoteOutcome], object]] = []

    def may_vote(self, user: str, roles: Iterable[str] = ()) -> bool:
        return self.rule.allows(user, roles)

    def group_of(self, item_id: str) -> str:
        """The item a vote counts for: a grouped duplicate's canonical (the group shares
        one label), else the item itself."""
        desk = self.service.duplicates
        return desk.canonical_of(item_id) if desk is not None else item_id

    def cast(self, ballot: Ballot) -> VoteOutcome:
        """Check, store, queue the card rewrite, learn later. Raises NotAllowedError,
        UnknownItemError or ValueError (a vote the rules refuse), nothing stored then."""
        if not self.may_vote(ballot.reviewer, ballot.roles):
            raise NotAllowedError(NOT_A_REVIEWER)
        ballot = replace(ballot, item_id=self.group_of(ballot.item_id))
        with self.service.store.transaction():  # the vote and its card rewrite: one commit
            return self._cast(ballot)

    def _cast(self, ballot: Ballot) -> VoteOutcome:
        outcome = self.service.vote(
            ballot.item_id,
            ballot.reviewer,
            ballot.kind,
            category=ballot.category,
            severity=ballot.severity,
            action=ballot.action,
            platform=ballot.platform,
            validation_id=ballot.validation_id,
            created_at=ballot.created_at,
            learn=False,
        )
        if outcome.stored:
            self.card_changed(ballot.item_id)
            for hook in self.on_stored:
                hook(outcome)
            self.learner.kick()
        return outcome

    def react(
        self,
        item_id: str,
        reviewer: str,
        emoji: str,
        *,
        removed: bool,
        platform: str,
        validation_id: str | None = None,
        created_at: datetime | None = None,
        roles: Iterable[str] = (),
    ) -> VoteOutcome | None:
        """A reaction added to a card (a vote) or removed (a retraction of the vote that
        rests on it). None when it means nothing; NotAllowedError for a non-reviewer's
        added reaction (a non-reviewer's removal is ignored: they hold no vote)."""
        meaning = reaction_vote(emoji, self.taxonomy)
        if meaning is None:
            return None
        if not self.may_vote(reviewer, roles):
            if removed:
                return None
            raise NotAllowedError(NOT_A_REVIEWER)
        kind, category, severity = meaning.kind, meaning.category, meaning.severity
        if removed:
            votes = self.service.store.current_votes(self.group_of(item_id))
            mine = next((v for v in votes if v.reviewer == reviewer), None)
            if not meaning.supports(mine):
                return None
            kind, category, severity = ValidationKind.RETRACT, None, None
        return self.cast(
            Ballot(
                item_id=item_id,
                reviewer=reviewer,
                kind=kind,
                platform=platform,
                category=category,
                severity=severity,
                validation_id=validation_id,
                created_at=created_at,
                roles=frozenset(roles),
            )
        )
