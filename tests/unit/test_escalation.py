"""Which cards are due for escalation: the rules, on a real store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import default_encoder
from core.escalation import Escalator, escalation_target
from core.models import FieldConfidence, Triage, utcnow
from core.runtime import EscalationSettings
from core.service import TriageService, make_item
from core.store.sqlite import SQLiteStore
from core.taxonomy import ConfigError, load_taxonomy
from core.triage import TriageEngine

CARDS = "slack:C1"


@pytest.fixture
def service(tmp_path: Path) -> TriageService:
    taxonomy = load_taxonomy()
    store = SQLiteStore(tmp_path / "e.db")
    return TriageService(store, TriageEngine(taxonomy, default_encoder()), taxonomy)


def card(service: TriageService, item_id: str, severity: str) -> None:
    service.store.add_item(make_item(f"text of {item_id}", item_id=item_id), post_to=[CARDS])
    service.store.save_triage(
        Triage(
            item_id=item_id,
            category="website-bug",
            severity=severity,
            action="Fix it.",
            confidence=FieldConfidence(category=0.9, severity=0.9),
            model_version="v1",
        )
    )
    post = service.store.claim_post(CARDS, "w", 60)
    assert post is not None
    service.store.mark_posted(post.item_id, CARDS, f"ts-{item_id}", "w")


def test_only_untaken_cards_of_the_chosen_severities_are_due_and_only_once(
    service: TriageService,
) -> None:
    escalator = Escalator(service, CARDS, EscalationSettings(after_minutes=30))
    for item_id, severity in [
        ("a", "critical"),
        ("b", "low"),
        ("c", "critical"),
        ("d", "critical"),
    ]:
        card(service, item_id, severity)
    service.vote("c", "UANN", "confirm")
    service.store.enqueue_post("d", "github:acme/web")
    now = utcnow()
    assert escalator.due(now) == []
    assert escalator.due(now + timedelta(minutes=31)) == ["a"]
    assert escalator.queue_due(now + timedelta(minutes=31)) == 1
    assert service.store.get_post("a", escalation_target(CARDS)) is not None
    assert escalator.queue_due(now + timedelta(hours=2)) == 0
    # A vote takes a card: one corrected to a severity that escalates is not due.
    service.vote("b", "UANN", "correct", severity="critical")
    assert escalator.due(now + timedelta(hours=2)) == []


def test_off_and_unknown_severities() -> None:
    taxonomy = load_taxonomy()
    store = SQLiteStore(":memory:")
    service = TriageService(store, TriageEngine(taxonomy, default_encoder()), taxonomy)
    assert Escalator(service, CARDS, EscalationSettings(after_minutes=0)).due() == []
    with pytest.raises(ConfigError, match="blocker"):
        Escalator(service, CARDS, EscalationSettings(severities=["blocker"]))


def test_a_grouped_duplicate_never_escalates_on_its_own(service: TriageService) -> None:
    from core.models import DuplicateLink

    escalator = Escalator(service, CARDS, EscalationSettings(after_minutes=30))
    card(service, "canon", "critical")
    card(service, "member", "critical")
    service.store.put_duplicate(
        DuplicateLink(item_id="member", canonical_id="canon", similarity=0.9, by="triage-bot")
    )
    assert escalator.due(utcnow() + timedelta(minutes=31)) == ["canon"]
