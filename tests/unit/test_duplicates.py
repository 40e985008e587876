"""Duplicate detection, merges, splits and the learned threshold, on a real store and encoder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import default_encoder
from core.duplicates import DETECTOR, DuplicateError, learned_threshold
from core.models import FeedbackItem, utcnow
from core.runtime import DuplicateSettings, RuntimeSettings, load_runtime_settings
from core.service import TriageService, make_item
from core.store.sqlite import SQLiteStore
from core.taxonomy import DEFAULT_CONFIG, ConfigError, load_taxonomy
from core.triage import TriageEngine
from tests.reports import REPORTS

SAME = [REPORTS[0], REPORTS[2], REPORTS[3]]
OTHER = "Please add a dark mode to the dashboard"
NEAR_MISS = "The login page crashes with a 500 error when I click Sign in"


@pytest.fixture
def service(tmp_path: Path) -> TriageService:
    taxonomy = load_taxonomy()
    store = SQLiteStore(tmp_path / "d.db")
    return TriageService(store, TriageEngine(taxonomy, default_encoder()), taxonomy)


def arrive(service: TriageService, text: str, minutes_ago: float = 0.0) -> FeedbackItem:
    item = make_item(text, received_at=utcnow() - timedelta(minutes=minutes_ago))
    service.store.add_item(item)
    return item


def test_look_alikes_join_the_first_and_a_different_report_does_not(
    service: TriageService,
) -> None:
    desk = service.duplicates
    assert desk is not None
    first = arrive(service, SAME[0], 3)
    assert desk.check(first) is None  # the first of its kind: an open card
    second = arrive(service, SAME[1], 2)
    link = desk.check(second)
    assert link is not None and link.canonical_id == first.id and link.by == DETECTOR
    assert link.similarity >= desk.threshold
    assert desk.check(second) == link  # decided once, stored
    assert desk.check(arrive(service, OTHER, 1)) is None
    assert desk.check(arrive(service, NEAR_MISS, 1)) is None  # same words, another page
    # A third look-alike joins the group's canonical, never a member.
    third = arrive(service, SAME[2])
    found = desk.check(third)
    assert found is not None and found.canonical_id == first.id
    assert [m.item_id for m in service.store.duplicates_of(first.id)] == [second.id, third.id]


def test_only_earlier_items_within_the_window_count(service: TriageService) -> None:
    desk = service.duplicates
    assert desk is not None
    later = arrive(service, SAME[0], 0)
    assert desk.check(later) is None
    earlier = arrive(service, SAME[1], 5)  # checked after, received before: its own card
    assert desk.check(earlier) is None
    old = arrive(service, SAME[2], 60 * 24 * 30)  # a month before: outside the 7 days
    assert desk.check(old) is None


def test_merge_moves_the_group_and_split_gives_the_item_back_both_stored_as_votes(
    service: TriageService,
) -> None:
    desk = service.duplicates
    assert desk is not None
    a, b, c = (arrive(service, text, 10 - i) for i, text in enumerate([SAME[0], OTHER, SAME[1]]))
    for item in (a, b, c):
        desk.check(item)
    assert service.store.get_duplicate(c.id) is not None  # c grouped under a
    with pytest.raises(DuplicateError):
        desk.merge(a.id, c.id, "UANN", "slack")  # into its own group
    changed = desk.merge(a.id, b.id, "UANN", "slack")  # a and its group join b
    assert set(changed) == {a.id, b.id, c.id}
    assert {m.item_id for m in service.store.duplicates_of(b.id)} == {a.id, c.id}
    assert desk.canonical_of(c.id) == b.id
    assert desk.split(c.id, "UBOB", "discord") == [c.id, b.id]
    assert service.store.get_duplicate(c.id) is None
    with pytest.raises(DuplicateError):
        desk.split(c.id, "UBOB", "discord")
    votes = service.store.duplicate_votes()
    assert [(v.item_id, v.other_id, v.same, v.reviewer) for v in votes] == [
        (a.id, b.id, True, "UANN"),
        (c.id, b.id, False, "UBOB"),
    ]
    # Each vote keeps its pair's score: the dark-mode request is far from both reports.
    assert max(votes[0].similarity, votes[1].similarity) < 0.5


def test_the_threshold_moves_to_separate_merges_from_splits() -> None:
    assert learned_threshold([(0.7, True), (0.9, False)], 0.75, learn_after=3) == 0.75
    # Splits of pairs at 0.78 and 0.8: grouping them was wrong, so the bar goes above them.
    raised = learned_threshold([(0.78, False), (0.8, False), (0.95, True)], 0.75, 3)
    assert 0.8 < raised <= 0.95
    # Merges of pairs at 0.7 and 0.72 that the detector missed: the bar comes down to 0.7.
    lowered = learned_threshold([(0.7, True), (0.72, True), (0.5, False)], 0.75, 3)
    assert 0.5 < lowered <= 0.7
    # Votes that agree with the default leave it where it is.
    assert learned_threshold([(0.9, True), (0.6, False), (0.8, True)], 0.75, 3) == 0.75
    # A few odd votes move it at most 0.15: a merge of unlike reports does not group all.
    assert learned_threshold([(0.3, True), (0.7, True), (0.72, True)], 0.75, 3) == 0.6
    assert learned_threshold([(0.9, False), (0.95, False), (0.98, False)], 0.75, 3) == 0.9


def test_votes_move_the_detectors_threshold_and_another_process_reads_them(
    service: TriageService, tmp_path: Path
) -> None:
    desk = service.duplicates
    assert desk is not None
    items = [arrive(service, text, 10 - i) for i, text in enumerate(SAME + [OTHER])]
    for item in items:
        desk.check(item)
    for item in items[1:3]:
        desk.split(item.id, "UANN", "slack")
    desk.merge(items[3].id, items[0].id, "UBOB", "slack")
    assert desk.threshold != 0.75
    taxonomy = load_taxonomy()
    again = TriageService(service.store, TriageEngine(taxonomy, default_encoder()), taxonomy)
    assert again.duplicates is not None and again.duplicates.threshold == desk.threshold


def test_turned_off_there_is_no_desk_and_a_bad_window_is_refused(tmp_path: Path) -> None:
    taxonomy = load_taxonomy()
    runtime = RuntimeSettings(duplicates=DuplicateSettings(enabled=False))
    engine = TriageEngine(taxonomy, default_encoder(), runtime=runtime)
    assert TriageService(SQLiteStore(tmp_path / "o.db"), engine, taxonomy).duplicates is None
    bad = tmp_path / "bad.toml"
    bad.write_text(DEFAULT_CONFIG.read_text().replace("window_days = 7", "window_days = 0"))
    with pytest.raises(ConfigError, match="duplicates.window_days"):
        load_runtime_settings(bad)


def test_a_grouped_report_waits_on_its_groups_card_not_in_the_queue_or_digest(
    service: TriageService,
) -> None:
    from datetime import timedelta as td

    from core.digest import build_digest

    desk = service.duplicates
    assert desk is not None
    first, second = arrive(service, SAME[0], 2), arrive(service, SAME[1], 1)
    for item in (first, second):
        service.triage_items([item])
        desk.check(item)
    assert [item.id for item, _, _ in service.review_queue()] == [first.id]
    made = build_digest(service.store, service.taxonomy, td(days=1))
    assert made.items.now == 2 and made.awaiting_review == 1
    service.vote(first.id, "ann", "correct", category="feature-request", severity="low")
    made = build_digest(service.store, service.taxonomy, td(days=1))
    assert made.by_category["feature-request"].now == 2  # the group's label counts for both


def test_a_card_that_joins_an_earlier_group_takes_its_reports_along(
    service: TriageService,
) -> None:
    desk = service.duplicates
    assert desk is not None
    z, x, w = (arrive(service, SAME[i], minutes) for i, minutes in ((0, 5), (1, 3), (2, 1)))
    assert desk.check(x) is None  # checked before Z was known here: an open card
    assert desk.check(w).canonical_id == x.id  # type: ignore[union-attr]
    assert desk.check(z) is None  # Z came in first: X and W are later than it
    # X is checked again (on another channel): Z is earlier and alike, so X joins Z, and W,
    # grouped under X, moves with it; X is no open card any more.
    assert desk.check(x).canonical_id == z.id  # type: ignore[union-attr]
    assert {m.item_id for m in service.store.duplicates_of(z.id)} == {x.id, w.id}
    assert desk.canonical_of(w.id) == z.id
    later = arrive(service, SAME[0] + " again")
    assert desk.check(later).canonical_id == z.id  # type: ignore[union-attr]


def test_no_group_without_a_card_and_a_repeated_merge_is_one_vote(service: TriageService) -> None:
    desk = service.duplicates
    assert desk is not None
    first, second = arrive(service, SAME[0], 2), arrive(service, SAME[1], 1)
    desk.check(first)
    assert desk.check(second, has_card=lambda item_id: False) is None  # its card was refused
    other = arrive(service, OTHER)
    desk.check(other)
    desk.merge(other.id, first.id, "UANN", "slack")
    desk.split(other.id, "UANN", "slack")
    desk.merge(other.id, first.id, "UANN", "slack")  # the same decision again
    assert [v.same for v in service.store.duplicate_votes()] == [True, False]


def test_another_process_sees_the_cards_posted_and_grouped_elsewhere(
    service: TriageService,
) -> None:
    target = "slack:C1"
    x = arrive(service, SAME[0], 5)
    service.store.enqueue_post(x.id, target)
    claimed = service.store.claim_post(target, "w1", 60)
    assert claimed is not None
    service.store.mark_posted(x.id, target, "ts-x", "w1")  # posted by another worker
    taxonomy = load_taxonomy()
    other = TriageService(service.store, TriageEngine(taxonomy, default_encoder()), taxonomy)
    desk = other.duplicates
    assert desk is not None
    desk.card_targets.add(target)
    assert desk.warm_up() == 1 and desk.open_count == 1
    assert desk.warm_up() == 0  # up to date: nothing embedded again
    report = arrive(service, SAME[1], 1)
    found = desk.check(report)
    assert found is not None and found.canonical_id == x.id
    # X is merged into another card elsewhere: the next sync drops it here.
    y = arrive(service, OTHER, 10)
    assert service.duplicates is not None
    service.duplicates.merge(x.id, y.id, "UANN", "slack")
    desk.warm_up()
    assert desk.open_count == 0
