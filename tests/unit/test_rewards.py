from datetime import UTC, datetime, timedelta

from core.models import FieldConfidence, Triage, Validation, ValidationKind
from core.rewards import consensus, score
from core.taxonomy import load_taxonomy

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def vote(
    reviewer: str, category: str, severity: str, minute: int, kind: str = "correct"
) -> Validation:
    return Validation(
        item_id="i1",
        reviewer=reviewer,
        kind=ValidationKind(kind),
        category=category if kind != "retract" else None,
        severity=severity if kind != "retract" else None,
        created_at=T0 + timedelta(minutes=minute),
    )


def triage(category: str, severity: str) -> Triage:
    return Triage(
        item_id="i1",
        category=category,
        severity=severity,
        action="x",
        confidence=FieldConfidence(category=0.9, severity=0.9),
        model_version="m1",
    )


def test_no_votes_no_label() -> None:
    assert consensus([]) is None
    assert consensus([vote("a", "", "", 1, kind="retract")]) is None


def test_majority_wins_per_field_and_disagreement_is_recorded() -> None:
    label = consensus(
        [
            vote("a", "website-bug", "high", 1),
            vote("b", "website-bug", "medium", 2),
            vote("c", "content-gap", "high", 3),
        ]
    )
    assert label is not None
    assert (label.category, label.severity) == ("website-bug", "high")
    assert label.reviewers == ["a", "b", "c"]
    assert label.disagreement and abs(label.agreement - 2 / 3) < 1e-3


def test_tie_goes_to_the_most_recent_vote_and_weights_count() -> None:
    votes = [vote("a", "website-bug", "high", 1), vote("b", "content-gap", "low", 2)]
    label = consensus(votes)
    assert label is not None and label.category == "content-gap"
    label = consensus(votes, weights={"a": 2.0})
    assert label is not None and label.category == "website-bug"
    unanimous = consensus([vote("a", "noise", "low", 1)])
    assert unanimous is not None and not unanimous.disagreement and unanimous.agreement == 1.0


def test_reward_scores_each_field_with_partial_credit() -> None:
    tax = load_taxonomy()
    label = consensus([vote("a", "website-bug", "high", 1)])
    assert label is not None
    assert score(triage("website-bug", "high"), label, tax).value == 1.0
    # category right, severity one step off (of 3 steps): 0.6 + 0.4 * (1 - 2/3)
    assert abs(score(triage("website-bug", "medium"), label, tax).value - 0.7333) < 1e-3
    # category wrong, severity right: -0.6 + 0.4
    assert abs(score(triage("content-gap", "high"), label, tax).value - (-0.2)) < 1e-6
    worst = score(triage("noise", "low"), label, tax)
    assert abs(worst.value - (-0.6 + 0.4 * (1 - 2 * 2 / 3))) < 1e-3
    assert worst.model_version == "m1"
    data = worst.as_reward_data().model_dump()
    assert (
        set(data) == {"value", "source", "reason"}
        and "category noise != website-bug" in data["reason"]
    )
