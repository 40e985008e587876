"""Escalation: a card nobody took is brought to someone's attention, once.

A card found taken is not looked at again (a vote retracted later does not make it due).

A card of a severity in `[escalation] severities` whose item has no vote and no GitHub issue
`after_minutes` after the card was posted gets one reply in its thread. The reply is one
more outbox post (target `<card target>/escalation`), queued by `Escalator.queue_due` from
the worker's upkeep: stored like a card, so it survives a restart, is sent by one worker,
and is never sent twice. Whoever takes the item meanwhile (a vote, an issue) stops it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from core.issues import is_issue_target
from core.models import PostRecord, utcnow
from core.runtime import EscalationSettings
from core.service import TriageService
from core.taxonomy import ConfigError

ESCALATION_SUFFIX = "/escalation"
LOOKBACK = timedelta(days=7)  # older cards are not escalated any more (a restart after a week)


def escalation_target(card_target: str) -> str:
    return card_target + ESCALATION_SUFFIX


def is_escalation_target(target: str) -> bool:
    return target.endswith(ESCALATION_SUFFIX)


class Escalator:
    """Finds the cards of one channel that are due for escalation and queues their reply."""

    def __init__(
        self, service: TriageService, card_target: str, settings: EscalationSettings | None = None
    ) -> None:
        self.service = service
        self.store = service.store
        self.card_target = card_target
        self.target = escalation_target(card_target)
        self.settings = settings or service.runtime.escalation
        # Cards looked at once and found taken (a vote, an issue, a reply already queued) or
        # of a severity that does not escalate: not looked at again, so a round costs the
        # new cards only, however many the channel holds.
        self._settled: set[str] = set()
        known = service.taxonomy.severity_names
        for name in self.settings.severities:
            if name not in known:
                raise ConfigError(
                    f"[escalation] severities names {name!r}, which is not in the taxonomy "
                    f"({', '.join(known)})"
                )

    @property
    def minutes(self) -> float:
        return self.settings.after_minutes

    def due(self, now: datetime | None = None) -> list[str]:
        """Item ids whose card waited too long with nobody on it (and no reply yet)."""
        if self.settings.after_minutes <= 0:
            return []
        now = now or utcnow()
        cutoff = now - timedelta(minutes=self.settings.after_minutes)
        wanted = set(self.settings.severities)
        due = []
        for card in self.store.posts(target=self.card_target):
            if card.item_id in self._settled or not self._waiting(card, cutoff, now - LOOKBACK):
                continue
            if self.store.get_duplicate(card.item_id) is not None:
                continue  # a grouped report: its group's card is the one that escalates
            label = self.store.get_label(card.item_id)
            triage = self.store.latest_triage(card.item_id)
            severity = label.severity if label else (triage.severity if triage else None)
            others = self.store.posts(item_id=card.item_id)
            taken = bool(self.store.current_votes(card.item_id)) or any(
                is_issue_target(p.target) or p.target == self.target for p in others
            )
            if severity not in wanted or taken:
                self._settled.add(card.item_id)
                continue
            due.append(card.item_id)
        return due

    @staticmethod
    def _waiting(card: PostRecord, cutoff: datetime, oldest: datetime) -> bool:
        """Posted before the cutoff (its first post time: `created_at` is when it was
        queued, which is never later), and not so long ago that it is history."""
        return card.ref is not None and oldest <= card.created_at <= cutoff

    def queue_due(self, now: datetime | None = None) -> int:
        """Queue the reply of every due card; returns how many were queued."""
        due = self.due(now)
        self._settled.update(due)
        return sum(int(self.store.enqueue_post(item_id, self.target)) for item_id in due)
