"""Replies in a card's thread: what is detail, not a card of its own.

A dispute (reviewers' votes on an item disagree) gets one reply in the card's thread, the
first time its label is disputed, so the card itself stays one compact message rewritten
in place. Like an escalation (`core.escalation`), the reply is an outbox post of its own
(target `<card target>/dispute`): stored before it is sent, sent by one worker, never twice.
"""

from __future__ import annotations

from collections.abc import Callable

from core.models import Label, Validation, ValidationKind
from core.ports import Store
from core.service import VoteOutcome

DISPUTE_SUFFIX = "/dispute"


def dispute_target(card_target: str) -> str:
    return card_target + DISPUTE_SUFFIX


def is_dispute_target(target: str) -> bool:
    return target.endswith(DISPUTE_SUFFIX)


class DisputeNotices:
    """Queues the dispute reply of a card the first time a vote leaves its label disputed."""

    def __init__(
        self, store: Store, card_target: str, wake: Callable[[], object] = lambda: None
    ) -> None:
        self.store = store
        self.card_target = card_target
        self.target = dispute_target(card_target)
        self.wake = wake

    def note(self, outcome: VoteOutcome) -> bool:
        label = outcome.label
        if not outcome.stored or label is None or not label.disagreement:
            return False
        card = self.store.get_post(label.item_id, self.card_target)
        if card is None or card.ref is None:
            return False
        queued = self.store.enqueue_post(label.item_id, self.target)
        if queued:
            self.wake()
        return queued


def dispute_text(
    votes: list[Validation], label: Label | None, who: Callable[[str], str], bold: str
) -> str:
    """The dispute reply on any platform: who said what, and where the label stands.
    `who` shows a reviewer (a mention or a literal name), `bold` the platform's marker."""
    said = [
        f"{who(v.reviewer)} {v.category} / {v.severity}"
        for v in votes
        if v.kind != ValidationKind.RETRACT and v.category and v.severity
    ]
    stands = (
        f"The label stands at {bold}{label.category} / {label.severity}{bold} "
        f"(agreement {label.agreement:.0%}); another vote settles it."
        if label is not None
        else "There is no label until the votes agree."
    )
    return "Reviewers disagree on this item: " + " · ".join(said) + ". " + stands
