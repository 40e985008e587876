"""The `core.ports.Store` contract, run against every adapter (see the `backend` fixture).

One test per clause of the Store docstring, plus the orderings and durability the rest of the
bot relies on. Each asserts what a broken adapter would get wrong, so it can fail.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

import pytest

from core.models import (
    DuplicateLink,
    DuplicateVote,
    FeedbackItem,
    FieldConfidence,
    Label,
    ModelRecord,
    Reward,
    ThemeName,
    Triage,
    Validation,
    ValidationKind,
)
from core.ports import Store


class Backend(Protocol):
    """What tests use of conftest's `backend` fixture (conftest is not importable as a module)."""

    def reopen(self) -> Store: ...
    def raw(self) -> bytes: ...


T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def item(item_id: str = "itm_1", *, received_at: datetime = T0, **kw: object) -> FeedbackItem:
    fields: dict[str, object] = {
        "id": item_id,
        "text": "Checkout button broken, mail me at alice@example.com",
        "redacted_text": "Checkout button broken, mail me at [email]",
        "pii_kinds": ["email"],
        "source": "slack",
        "external_ref": "C123/p456",
        "page": "/checkout",
        "rating": 2.0,
        "received_at": received_at,
        "metadata": {"channel": "feedback", "nested": {"n": 1}, "slack.team": "T1"},
    }
    fields.update(kw)
    return FeedbackItem.model_validate(fields)


def triage(item_id: str = "itm_1", *, version: str = "v1", created_at: datetime = T0) -> Triage:
    return Triage(
        item_id=item_id,
        category="bug",
        severity="high",
        action="escalate",
        confidence=FieldConfidence(category=0.9, severity=0.7),
        probabilities={"category": {"bug": 0.9, "ux": 0.1}, "severity": {"high": 0.7}},
        model_version=version,
        evidence=["broken"],
        created_at=created_at,
    )


def vote(
    vid: str,
    created_at: datetime,
    *,
    item_id: str = "itm_1",
    reviewer: str = "U1",
    kind: ValidationKind = ValidationKind.CORRECT,
    category: str | None = "bug",
) -> Validation:
    return Validation(
        id=vid,
        item_id=item_id,
        reviewer=reviewer,
        platform="slack",
        kind=kind,
        category=None if kind == ValidationKind.RETRACT else category,
        severity=None if kind == ValidationKind.RETRACT else "high",
        predicted_category="bug",
        predicted_severity="low",
        model_version="v1",
        created_at=created_at,
    )


def label(
    item_id: str = "itm_1", *, category: str = "bug", reviewers: list[str] | None = None
) -> Label:
    return Label(
        item_id=item_id,
        category=category,
        severity="high",
        action="escalate",
        reviewers=reviewers or ["U1"],
        agreement=1.0,
        updated_at=T0,
    )


def reward(item_id: str = "itm_1", *, version: str = "v1", value: float = 1.0) -> Reward:
    return Reward(
        item_id=item_id,
        model_version=version,
        value=value,
        source="human",
        reason=f"value {value}",
        created_at=T0,
    )


def current_ids(store: Store, item_id: str = "itm_1") -> list[str]:
    return [v.id for v in store.current_votes(item_id)]


# -- items ---------------------------------------------------------------------------------
def test_add_item_is_idempotent_and_never_overwrites(store: Store) -> None:
    first = item()
    assert store.add_item(first) is True
    again = item(redacted_text="something else entirely", rating=5.0)
    assert store.add_item(again) is False
    assert store.count_items() == 1
    stored = store.get_item("itm_1")
    assert stored is not None
    assert stored.redacted_text == first.redacted_text
    assert stored.rating == 2.0


def test_only_redacted_text_is_persisted(store: Store, backend: Backend) -> None:
    assert store.add_item(item())
    stored = store.get_item("itm_1")
    assert stored is not None
    assert stored.text == stored.redacted_text == "Checkout button broken, mail me at [email]"
    assert stored == item().model_copy(update={"text": item().redacted_text})
    raw = backend.raw()
    assert b"[email]" in raw  # we are looking at the right bytes
    assert b"alice@example.com" not in raw


def test_get_iter_count(store: Store) -> None:
    assert store.get_item("missing") is None
    assert store.count_items() == 0
    assert list(store.iter_items()) == []
    # Inserted out of order; iteration is by received_at, then id.
    for item_id, seconds in [("c", 5), ("b", 1), ("a", 5), ("d", 3)]:
        assert store.add_item(item(item_id, received_at=at(seconds)))
    assert store.count_items() == 4
    assert [i.id for i in store.iter_items()] == ["b", "d", "a", "c"]
    got = store.get_item("d")
    assert got is not None and got.received_at == at(3) and got.metadata["nested"] == {"n": 1}


# -- predictions ---------------------------------------------------------------------------
def test_latest_triage_is_the_last_saved(store: Store, backend: Backend) -> None:
    assert store.latest_triage("itm_1") is None
    store.add_item(item())
    store.add_item(item("other"))
    store.save_triage(triage(version="v1", created_at=at(10)))
    store.save_triage(triage(version="v2", created_at=at(10)))  # same instant: insertion wins
    store.save_triage(triage("other", version="v9"))
    latest = store.latest_triage("itm_1")
    assert latest is not None and latest.model_version == "v2"
    # Insertion order, not created_at: a re-run with an older clock still counts as newest.
    store.save_triage(triage(version="v3", created_at=at(-100)))
    latest = store.latest_triage("itm_1")
    assert latest == triage(version="v3", created_at=at(-100))
    # Every prediction is kept (the port has no history reader, so look at the raw data).
    raw = backend.raw()
    assert all(v.encode() in raw for v in ("v1", "v2", "v3", "v9"))


def test_many_triages_in_a_burst_keep_insertion_order(store: Store) -> None:
    store.add_item(item())
    for n in range(30):
        store.save_triage(triage(version=f"v{n}", created_at=T0))
        latest = store.latest_triage("itm_1")
        assert latest is not None and latest.model_version == f"v{n}"


def test_no_triage_is_kept_for_an_item_the_store_does_not_hold(store: Store) -> None:
    """An item forgotten while the outbox triaged it leaves no prediction behind."""
    store.save_triage(triage("never-stored"))
    assert store.latest_triage("never-stored") is None


# -- votes ---------------------------------------------------------------------------------
def test_duplicate_validation_ids_are_ignored(store: Store) -> None:
    first = vote("val_a", at(1), category="bug")
    assert store.add_validation(first) is True
    redelivered = vote("val_a", at(2), category="ux")  # same event id, different content
    assert store.add_validation(redelivered) is False
    assert store.add_validation(first) is False
    assert [e.id for e in store.events("itm_1")] == ["val_a"]
    assert store.current_votes("itm_1") == [first]


def test_latest_vote_wins_even_when_an_older_one_arrives_late(store: Store) -> None:
    assert store.add_validation(vote("val_old", at(1), category="ux"))
    assert store.add_validation(vote("val_new", at(2), category="bug"))
    assert current_ids(store) == ["val_new"]
    # A redelivered (new event id) but older vote must not overwrite the newer one.
    assert store.add_validation(vote("val_older", at(0), category="noise")) is True
    assert current_ids(store) == ["val_new"]
    assert store.current_votes("itm_1")[0].category == "bug"
    assert [e.id for e in store.events("itm_1")] == ["val_old", "val_new", "val_older"]


def test_an_equal_timestamp_replaces_like_sqlite(store: Store) -> None:
    assert store.add_validation(vote("val_a", at(1), category="ux"))
    assert store.add_validation(vote("val_b", at(1), category="bug"))
    assert current_ids(store) == ["val_b"]


def test_latest_wins_for_every_arrival_order(store: Store) -> None:
    """All 24 arrival orders of four votes (one a retract) end in the same state."""
    votes = [
        ("v0", 0, ValidationKind.CONFIRM),
        ("v1", 1, ValidationKind.CORRECT),
        ("v2", 2, ValidationKind.RETRACT),
        ("v3", 3, ValidationKind.NOISE),
    ]
    for n, order in enumerate(itertools.permutations(votes)):
        item_id = f"perm_{n}"
        for vid, seconds, kind in order:
            store.add_validation(vote(f"{item_id}_{vid}", at(seconds), item_id=item_id, kind=kind))
        assert current_ids(store, item_id) == [f"{item_id}_v3"], order
        assert len(store.events(item_id)) == 4
    # And with the retract newest, no vote is current whatever the order.
    for n, order in enumerate(itertools.permutations(votes[:3])):
        item_id = f"retracted_{n}"
        for vid, seconds, kind in order:
            store.add_validation(vote(f"{item_id}_{vid}", at(seconds), item_id=item_id, kind=kind))
        assert store.current_votes(item_id) == [], order


def test_votes_per_reviewer_are_independent(store: Store) -> None:
    assert store.add_validation(vote("val_1", at(1), reviewer="U1", category="bug"))
    assert store.add_validation(vote("val_2", at(5), reviewer="U2", category="ux"))
    assert store.add_validation(vote("val_3", at(3), reviewer="U1", category="perf"))
    assert store.add_validation(vote("val_x", at(9), item_id="itm_2", reviewer="U1"))
    current = {v.reviewer: v for v in store.current_votes("itm_1")}
    assert {r: v.id for r, v in current.items()} == {"U1": "val_3", "U2": "val_2"}
    assert current["U1"].category == "perf"
    assert current_ids(store) == ["val_3", "val_2"]  # ordered by created_at
    # U1 retracting leaves U2's vote alone.
    assert store.add_validation(vote("val_4", at(4), reviewer="U1", kind=ValidationKind.RETRACT))
    assert current_ids(store) == ["val_2"]
    assert current_ids(store, "itm_2") == ["val_x"]


def test_retract_removes_the_current_vote_but_keeps_events(store: Store) -> None:
    assert store.add_validation(vote("val_1", at(1)))
    assert store.add_validation(vote("val_2", at(2), kind=ValidationKind.RETRACT))
    assert store.current_votes("itm_1") == []
    assert [e.id for e in store.events("itm_1")] == ["val_1", "val_2"]
    assert store.events("itm_1")[1].kind == ValidationKind.RETRACT
    # An older vote redelivered after the retract does not resurrect it...
    assert store.add_validation(vote("val_0", at(0)))
    assert store.current_votes("itm_1") == []
    # ...a newer one does, and a retract older than the current vote is ignored.
    assert store.add_validation(vote("val_3", at(3)))
    assert store.add_validation(vote("val_r", at(2.5), kind=ValidationKind.RETRACT))
    assert current_ids(store) == ["val_3"]
    assert len(store.events("itm_1")) == 5


def test_events_keep_arrival_order_across_items(store: Store) -> None:
    arrivals = [("e1", "a", 5), ("e2", "b", 1), ("e3", "a", 0), ("e4", "b", 9)]
    for vid, item_id, seconds in arrivals:
        assert store.add_validation(vote(vid, at(seconds), item_id=item_id))
    assert [e.id for e in store.events()] == ["e1", "e2", "e3", "e4"]
    assert [e.id for e in store.events("a")] == ["e1", "e3"]
    assert store.events("nothing") == []


def _race(handles: list[Store], votes: list[Validation]) -> list[bool]:
    """Send each vote from its own thread, all released at once; re-raise any error."""
    barrier = threading.Barrier(len(votes))
    results: list[bool] = []
    errors: list[BaseException] = []

    def send(n: int, v: Validation) -> None:
        try:
            barrier.wait()
            results.append(handles[n % len(handles)].add_validation(v))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n, v)) for n, v in enumerate(votes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def test_concurrent_votes_for_one_reviewer_end_with_the_newest(
    store: Store, backend: Backend
) -> None:
    """8 threads over two handles (as two bot processes would) race on one (item, reviewer)."""
    handles = [store, backend.reopen()]
    rng = random.Random(7)
    for round_ in range(5):
        item_id = f"race_{round_}"
        votes = [vote(f"{item_id}_{n}", at(n), item_id=item_id) for n in range(8)]
        rng.shuffle(votes)
        assert _race(handles, votes) == [True] * 8
        assert current_ids(store, item_id) == [f"{item_id}_7"]
        assert sorted(e.id for e in store.events(item_id)) == sorted(v.id for v in votes)


# -- labels and rewards --------------------------------------------------------------------
def test_labels_put_replace_delete_iter(store: Store) -> None:
    assert store.get_label("itm_1") is None
    assert list(store.iter_labels()) == []
    store.put_label(label("itm_1", category="bug"))
    store.put_label(label("itm_2", category="ux"))
    store.put_label(label("itm_1", category="perf", reviewers=["U1", "U2"]))
    got = store.get_label("itm_1")
    assert got == label("itm_1", category="perf", reviewers=["U1", "U2"])
    labels = list(store.iter_labels())
    assert sorted(lb.item_id for lb in labels) == ["itm_1", "itm_2"]
    assert {lb.item_id: lb.category for lb in labels} == {"itm_1": "perf", "itm_2": "ux"}
    store.delete_label("itm_1")
    assert store.get_label("itm_1") is None
    store.delete_label("itm_1")  # deleting nothing is fine
    assert [lb.item_id for lb in store.iter_labels()] == ["itm_2"]


def test_rewards_replace_per_item_and_model_version(store: Store) -> None:
    assert store.rewards() == []
    store.put_reward(reward("itm_1", version="v1", value=1.0))
    store.put_reward(reward("itm_1", version="v2", value=-1.0))
    store.put_reward(reward("itm_2", version="v1", value=0.5))
    store.put_reward(reward("itm_1", version="v1", value=-0.5))  # replaces, not appends
    mine = {(r.item_id, r.model_version): r.value for r in store.rewards("itm_1")}
    assert mine == {("itm_1", "v1"): -0.5, ("itm_1", "v2"): -1.0}
    everything = {(r.item_id, r.model_version): r.value for r in store.rewards()}
    assert everything == {**mine, ("itm_2", "v1"): 0.5}
    assert len(store.rewards()) == 3
    assert store.rewards("nothing") == []


def test_rewards_of_other_sources_live_beside_a_votes_reward(store: Store) -> None:
    store.put_reward(reward("itm_1", version="v1", value=1.0))
    outcome = reward("itm_1", version="v1", value=-0.3).model_copy(
        update={"source": "github-outcome", "reason": "closed as not planned"}
    )
    store.put_reward(outcome)
    store.put_reward(outcome.model_copy(update={"value": 0.0, "reason": "reopened"}))
    got = {(r.source, r.value, r.reason) for r in store.rewards("itm_1")}
    assert got == {("human", 1.0, "value 1.0"), ("github-outcome", 0.0, "reopened")}


# -- outbox and event dedupe ----------------------------------------------------------------
SLACK = "slack:C123"
LONG = 60.0  # a lease that cannot expire during a test


def aware_utc(value: datetime | None) -> bool:
    return value is not None and value.utcoffset() == timedelta(0)


def test_enqueue_post_is_idempotent(store: Store) -> None:
    assert store.get_post("itm_1", SLACK) is None
    assert store.count_unposted(SLACK) == 0
    assert store.enqueue_post("itm_1", SLACK) is True
    assert store.enqueue_post("itm_1", SLACK) is False
    post = store.get_post("itm_1", SLACK)
    assert post is not None
    assert (post.item_id, post.target, post.status) == ("itm_1", SLACK, "pending")
    assert (post.ref, post.claimed_by, post.claimed_until, post.attempts) == (None, None, None, 0)
    assert aware_utc(post.created_at) and aware_utc(post.updated_at)
    assert store.count_unposted(SLACK) == 1
    assert post.detail == {}


def test_a_post_keeps_its_detail_and_merges_more(store: Store) -> None:
    issue = "github:acme/web"
    draft = {"title": "Checkout fails", "labels": ["bug"], "requested_by": {"user": "U1"}}
    assert store.enqueue_post("itm_1", issue, detail=draft) is True
    assert store.enqueue_post("itm_1", issue, detail={"title": "other"}) is False
    post = store.get_post("itm_1", issue)
    assert post is not None and post.detail == draft
    assert store.set_post_detail("itm_1", issue, {"state": "open", "labels": ["bug", "p1"]})
    merged = store.get_post("itm_1", issue)
    assert merged is not None
    assert merged.detail == {**draft, "state": "open", "labels": ["bug", "p1"]}
    assert store.set_post_detail("itm_missing", issue, {"state": "open"}) is False
    store.add_item(item("itm_2"), post_to=[SLACK])
    assert store.set_post_detail("itm_2", SLACK, {"note": 1})  # a post queued with its item
    queued = store.get_post("itm_2", SLACK)
    assert queued is not None and queued.detail == {"note": 1}


def test_a_dead_post_can_be_queued_again(store: Store) -> None:
    issue = "github:acme/web"
    store.enqueue_post("itm_1", issue, detail={"title": "t"})
    assert store.requeue_post("itm_1", issue) is False  # only a dead one
    post = store.claim_post(issue, "w1", LONG)
    assert post is not None
    store.dead_post("itm_1", issue, "w1", "GitHub 422: Validation Failed")
    assert store.requeue_post("itm_1", issue) is True
    again = store.get_post("itm_1", issue)
    assert again is not None
    assert (again.status, again.attempts, again.last_error) == ("pending", 0, None)
    assert again.detail == {"title": "t"}
    claimed = store.claim_post(issue, "w2", LONG)
    assert claimed is not None and claimed.item_id == "itm_1"
    assert store.requeue_post("itm_missing", issue) is False


def test_claim_hands_out_the_oldest_pending_post_first(store: Store) -> None:
    for item_id in ["itm_c", "itm_a", "itm_b"]:  # creation order is not id order
        assert store.enqueue_post(item_id, SLACK)
        time.sleep(0.005)
    claimed = [store.claim_post(SLACK, "w1", LONG) for _ in range(4)]
    assert [p.item_id if p else None for p in claimed] == ["itm_c", "itm_a", "itm_b", None]
    first = claimed[0]
    assert first is not None
    assert (first.status, first.claimed_by, first.attempts) == ("claimed", "w1", 1)
    assert aware_utc(first.claimed_until) and first.claimed_until is not None
    assert first.claimed_until > datetime.now(UTC) + timedelta(seconds=LONG - 10)
    assert store.get_post("itm_c", SLACK) == first


def test_a_claimed_post_is_claimed_again_only_after_its_lease_expires(store: Store) -> None:
    store.enqueue_post("itm_1", SLACK)
    first = store.claim_post(SLACK, "w1", 0.2)
    assert first is not None and first.claimed_by == "w1"
    assert store.claim_post(SLACK, "w2", LONG) is None  # w1 still holds it
    time.sleep(0.4)
    again = store.claim_post(SLACK, "w2", LONG)
    assert again is not None
    assert (again.item_id, again.claimed_by, again.attempts) == ("itm_1", "w2", 2)
    assert store.claim_post(SLACK, "w1", LONG) is None  # w2's lease is long


def test_release_post_only_by_the_holder(store: Store) -> None:
    store.enqueue_post("itm_1", SLACK)
    assert store.claim_post(SLACK, "w1", LONG) is not None
    store.release_post("itm_1", SLACK, "w2")  # not w2's to give back
    held = store.get_post("itm_1", SLACK)
    assert held is not None and (held.status, held.claimed_by) == ("claimed", "w1")
    assert store.claim_post(SLACK, "w2", LONG) is None
    store.release_post("itm_1", SLACK, "w1")
    back = store.get_post("itm_1", SLACK)
    assert back is not None
    assert (back.status, back.claimed_by, back.claimed_until) == ("pending", None, None)
    retry = store.claim_post(SLACK, "w2", LONG)
    assert retry is not None and (retry.claimed_by, retry.attempts) == ("w2", 2)


def test_a_released_post_waits_out_its_delay_and_keeps_the_error(store: Store) -> None:
    store.enqueue_post("itm_a", SLACK)
    time.sleep(0.005)
    store.enqueue_post("itm_b", SLACK)
    first = store.claim_post(SLACK, "w1", LONG)
    assert first is not None and first.item_id == "itm_a"
    store.release_post("itm_a", SLACK, "w1", delay_seconds=0.4, error="ratelimited")
    waiting = store.get_post("itm_a", SLACK)
    assert waiting is not None and (waiting.status, waiting.last_error) == (
        "pending",
        "ratelimited",
    )
    assert waiting.next_attempt_at is not None and aware_utc(waiting.next_attempt_at)
    # The post behind it is not held up; the released one comes back after its delay.
    behind = store.claim_post(SLACK, "w1", LONG)
    assert behind is not None and behind.item_id == "itm_b"
    assert store.claim_post(SLACK, "w1", LONG) is None
    time.sleep(0.5)
    again = store.claim_post(SLACK, "w1", LONG)
    assert again is not None and (again.item_id, again.attempts) == ("itm_a", 2)
    assert store.mark_posted("itm_a", SLACK, "ts-a", "w1")
    done = store.get_post("itm_a", SLACK)
    assert done is not None and (done.last_error, done.next_attempt_at) == (None, None)


def test_dead_posts_are_never_claimed_and_are_counted(store: Store) -> None:
    store.enqueue_post("itm_a", SLACK)
    store.enqueue_post("itm_b", SLACK)
    claimed = store.claim_post(SLACK, "w1", 0.0)
    assert claimed is not None
    store.dead_post(claimed.item_id, SLACK, "w2", "invalid_blocks")  # not w2's to end
    assert store.get_post(claimed.item_id, SLACK).status == "claimed"  # type: ignore[union-attr]
    store.dead_post(claimed.item_id, SLACK, "w1", "invalid_blocks")
    dead = store.get_post(claimed.item_id, SLACK)
    assert dead is not None and (dead.status, dead.last_error) == ("dead", "invalid_blocks")
    other = store.claim_post(SLACK, "w1", 0.0)
    assert other is not None and other.item_id != claimed.item_id
    time.sleep(0.05)
    assert store.claim_post(SLACK, "w1", LONG) is not None  # the expired claim, not the dead
    assert store.claim_post(SLACK, "w1", LONG) is None
    assert [p.item_id for p in store.posts(SLACK, "dead")] == [claimed.item_id]
    assert store.outbox_counts() == {SLACK: {"dead": 1, "claimed": 1}}


def test_request_update_marks_a_posted_card_stale_for_one_rewrite(store: Store) -> None:
    store.enqueue_post("itm_1", SLACK)
    assert store.request_update("itm_1", SLACK) is False  # no card yet: nothing to rewrite
    store.claim_post(SLACK, "w1", LONG)
    store.mark_posted("itm_1", SLACK, "ts-1", "w1")
    assert store.claim_post(SLACK, "w1", LONG) is None
    assert store.request_update("itm_1", SLACK) and store.request_update("itm_1", SLACK)
    assert store.outbox_counts()[SLACK] == {"posted": 1, "stale": 1}
    rewrite = store.claim_post(SLACK, "w1", LONG)
    assert rewrite is not None and rewrite.ref == "ts-1" and not rewrite.stale
    assert store.request_update("itm_1", SLACK)  # a vote during the rewrite: once more
    store.mark_posted("itm_1", SLACK, "ts-1", "w1")
    assert store.get_post("itm_1", SLACK).stale  # type: ignore[union-attr]
    again = store.claim_post(SLACK, "w1", LONG)
    assert again is not None
    # A failed rewrite stays posted (the card exists) and stale, after its delay.
    store.release_post("itm_1", SLACK, "w1", delay_seconds=LONG, error="ratelimited")
    kept = store.get_post("itm_1", SLACK)
    assert kept is not None and (kept.status, kept.stale, kept.ref) == ("posted", True, "ts-1")
    assert store.claim_post(SLACK, "w1", LONG) is None
    assert store.find_post(SLACK, "ts-1") is not None


def test_an_item_is_stored_with_its_posts_and_more_submitters(store: Store) -> None:
    assert store.add_item(item("itm_1"), post_to=[SLACK, "discord:1"]) is True
    assert store.add_item(item("itm_1"), post_to=[SLACK]) is False
    assert {p.target for p in store.posts()} == {SLACK, "discord:1"}
    assert store.add_submitter("itm_1", "slack:U1") and store.add_submitter("itm_1", "slack:U2")
    assert store.add_submitter("itm_1", "slack:U1") is False
    assert store.add_submitter("itm_missing", "slack:U1") is False
    stored = store.get_item("itm_1")
    assert stored is not None and stored.metadata["submitters"] == ["slack:U1", "slack:U2"]
    assert stored.metadata["slack.team"] == "T1"  # the rest of the metadata is untouched


def test_mark_posted_records_the_ref_and_is_never_claimed_again(store: Store) -> None:
    store.enqueue_post("itm_a", SLACK)
    time.sleep(0.005)
    store.enqueue_post("itm_b", SLACK)
    assert store.find_post(SLACK, "1700000000.000100") is None
    claimed = store.claim_post(SLACK, "w1", 0.2)
    assert claimed is not None and claimed.item_id == "itm_a"
    store.mark_posted("itm_a", SLACK, "1700000000.000100")
    posted = store.get_post("itm_a", SLACK)
    assert posted is not None
    assert (posted.status, posted.ref) == ("posted", "1700000000.000100")
    assert (posted.claimed_by, posted.claimed_until, posted.attempts) == (None, None, 1)
    assert store.find_post(SLACK, "1700000000.000100") == posted
    assert store.find_post(SLACK, "1700000000.999999") is None
    assert store.find_post("slack:OTHER", "1700000000.000100") is None
    assert store.count_unposted(SLACK) == 1
    store.release_post("itm_a", SLACK, "w1")  # a late release cannot un-post it
    assert store.get_post("itm_a", SLACK) == posted
    assert store.enqueue_post("itm_a", SLACK) is False  # nor can a re-enqueue
    time.sleep(0.4)  # past the lease it was claimed with
    nxt = store.claim_post(SLACK, "w2", 0.2)
    assert nxt is not None and nxt.item_id == "itm_b"
    store.mark_posted("itm_b", SLACK, "1700000000.000200")
    assert store.count_unposted(SLACK) == 0
    time.sleep(0.4)
    assert store.claim_post(SLACK, "w3", LONG) is None


def test_mark_posted_by_a_worker_only_while_it_holds_the_claim(store: Store) -> None:
    store.enqueue_post("itm_1", SLACK)
    assert store.claim_post(SLACK, "w1", 0.2) is not None
    time.sleep(0.4)  # w1's lease runs out mid-post; w2 takes the post over
    assert store.claim_post(SLACK, "w2", LONG) is not None
    assert store.mark_posted("itm_1", SLACK, "ref-w1", "w1") is False  # w1's late answer
    held = store.get_post("itm_1", SLACK)
    assert held is not None and (held.status, held.claimed_by, held.ref) == (
        "claimed",
        "w2",
        None,
    )
    assert store.mark_posted("itm_1", SLACK, "ref-w2", "w2") is True
    assert store.mark_posted("itm_1", SLACK, "ref-w1", "w1") is False  # posted: no longer held
    posted = store.get_post("itm_1", SLACK)
    assert posted is not None and (posted.status, posted.ref) == ("posted", "ref-w2")


def test_outbox_targets_are_independent(store: Store) -> None:
    other = "slack:C999"
    assert store.enqueue_post("itm_1", SLACK) is True
    assert store.enqueue_post("itm_1", other) is True  # same item, another destination
    mine = store.claim_post(SLACK, "w1", LONG)
    assert mine is not None and mine.target == SLACK
    theirs = store.claim_post(other, "w1", LONG)  # not blocked by the claim on SLACK
    assert theirs is not None and (theirs.item_id, theirs.target) == ("itm_1", other)
    store.mark_posted("itm_1", SLACK, "ref-1")
    assert store.count_unposted(SLACK) == 0
    assert store.count_unposted(other) == 1
    assert store.find_post(other, "ref-1") is None
    left = store.get_post("itm_1", other)
    assert left is not None and left.status == "claimed"
    assert store.claim_post("slack:EMPTY", "w1", LONG) is None


def test_mark_event_seen_once_and_durably(store: Store, backend: Backend) -> None:
    assert store.mark_event_seen("slack:Ev1") is True
    assert store.mark_event_seen("slack:Ev1") is False
    assert store.mark_event_seen("slack:Ev2") is True
    store.enqueue_post("itm_1", SLACK)
    store.claim_post(SLACK, "w1", LONG)
    store.close()

    again = backend.reopen()
    assert again.mark_event_seen("slack:Ev1") is False
    assert again.mark_event_seen("slack:Ev2") is False
    assert again.mark_event_seen("slack:Ev3") is True
    held = again.get_post("itm_1", SLACK)
    assert held is not None and (held.status, held.claimed_by) == ("claimed", "w1")
    assert again.claim_post(SLACK, "w2", LONG) is None


def test_concurrent_claims_hand_each_post_to_exactly_one_worker(
    store: Store, backend: Backend
) -> None:
    """8 workers, each on its own handle (as separate processes would be), drain 30 posts."""
    ids = [f"itm_{n:02d}" for n in range(30)]
    for item_id in ids:
        assert store.enqueue_post(item_id, SLACK)
    workers = 8
    handles = [backend.reopen() for _ in range(workers)]
    barrier = threading.Barrier(workers)
    claims: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        handle, name = handles[n], f"w{n}"
        try:
            barrier.wait()
            while (post := handle.claim_post(SLACK, name, LONG)) is not None:
                assert post.claimed_by == name
                claims.append((post.item_id, name))
                handle.mark_posted(post.item_id, SLACK, f"ref-{post.item_id}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    claimed = sorted(item_id for item_id, _ in claims)
    assert claimed == ids  # every post exactly once: none missed, none twice
    assert store.count_unposted(SLACK) == 0
    for item_id in ids:
        post = store.get_post(item_id, SLACK)
        assert post is not None and (post.status, post.attempts) == ("posted", 1)
        assert store.find_post(SLACK, f"ref-{item_id}") == post


# -- model registry --------------------------------------------------------------------------
def model(version: str, *, created_at: datetime = T0, **kw: object) -> ModelRecord:
    fields: dict[str, object] = {
        "version": version,
        "created_at": created_at,
        "taxonomy_fingerprint": "tax_abc",
        "config": {"lr": 0.01, "heads": ["category", "severity"], "nested": {"a.b": 1}},
        "metrics": {"macro_f1": 0.71, "per_class": {"bug": 0.8}},
        "train_count": 120,
        "eval_count": 30,
    }
    fields.update(kw)
    return ModelRecord.model_validate(fields)


def test_put_model_is_idempotent_and_keeps_the_first_weights(store: Store) -> None:
    assert store.put_model(model("m1"), b"first") is True
    assert store.put_model(model("m1", train_count=999), b"second") is False
    got = store.get_model("m1")
    assert got is not None
    record, weights = got
    assert weights == b"first"
    assert record == model("m1")
    assert len(store.list_models()) == 1


def test_get_model_returns_the_record_and_identical_bytes(store: Store) -> None:
    blob = random.Random(7).randbytes(3 * 1024 * 1024)  # a realistic state dict size
    stamp = datetime(2025, 6, 30, 23, 59, 58, 654321, tzinfo=CEST)
    assert store.put_model(model("big", created_at=stamp), blob) is True
    assert store.put_model(model("empty"), b"") is True
    got = store.get_model("big")
    assert got is not None
    record, weights = got
    assert type(weights) is bytes and weights == blob
    assert record == model("big", created_at=stamp)
    assert record.created_at.tzinfo is not None
    assert record.created_at.astimezone(UTC) == stamp.astimezone(UTC)
    assert record.created_at.microsecond == 654321
    assert record.promoted_at is None
    assert store.get_model("empty") == (model("empty"), b"")
    assert store.get_model("nope") is None


def test_list_models_is_newest_first(store: Store) -> None:
    assert store.list_models() == []
    store.put_model(model("m_mid", created_at=at(10)), b"b")
    store.put_model(model("m_old", created_at=at(0)), b"a")
    store.put_model(model("m_new", created_at=at(20)), b"c")
    store.put_model(model("m_new2", created_at=at(20)), b"d")  # same time: version breaks it
    assert [m.version for m in store.list_models()] == ["m_new2", "m_new", "m_mid", "m_old"]
    assert store.list_models()[2] == model("m_mid", created_at=at(10))


def test_promote_unknown_version_raises_key_error(store: Store) -> None:
    store.put_model(model("m1"), b"w")
    with pytest.raises(KeyError, match="nope"):
        store.promote_model("nope")
    assert store.promoted_model() is None
    assert store.list_models()[0].promoted_at is None


def test_promote_makes_the_latest_promoted_version_current(store: Store) -> None:
    assert store.promoted_model() is None
    store.put_model(model("m1", created_at=at(0)), b"one")
    store.put_model(model("m2", created_at=at(1)), b"two")
    assert store.promoted_model() is None

    before = datetime.now(UTC)
    first = store.promote_model("m1")
    assert first.version == "m1" and first.promoted_at is not None
    assert aware_utc(first.promoted_at) and first.promoted_at >= before - timedelta(seconds=1)
    assert store.promoted_model() == first
    got = store.get_model("m1")
    assert got is not None and got[0] == first and got[1] == b"one"

    second = store.promote_model("m2")
    assert second.promoted_at is not None and second.promoted_at > first.promoted_at
    assert store.promoted_model() == second

    # Promoting the first one again makes it current again (a rollback), immediately.
    again = store.promote_model("m1")
    assert again.promoted_at is not None and again.promoted_at > second.promoted_at
    current = store.promoted_model()
    assert current is not None and current.version == "m1" and current == again
    # The others keep their own promotion time; the record is otherwise unchanged.
    listed = {m.version: m for m in store.list_models()}
    assert listed["m2"] == second and listed["m1"] == again
    assert again.model_copy(update={"promoted_at": None}) == model("m1", created_at=at(0))


def test_rapid_promotions_always_end_with_the_last_one(store: Store) -> None:
    for version in ("a", "b", "c"):
        store.put_model(model(version), version.encode())
    order = ["a", "b", "c", "a", "c", "b", "a", "b", "c", "a"] * 3
    for version in order:
        store.promote_model(version)
        current = store.promoted_model()
        assert current is not None and current.version == version


def test_model_registry_survives_close_and_reopen(store: Store, backend: Backend) -> None:
    blob = random.Random(11).randbytes(256 * 1024)
    store.put_model(model("m1", created_at=at(0)), blob)
    store.put_model(model("m2", created_at=at(5)), b"two")
    store.promote_model("m2")
    promoted = store.promote_model("m1")
    store.close()

    again = backend.reopen()
    assert [m.version for m in again.list_models()] == ["m2", "m1"]
    assert again.promoted_model() == promoted
    got = again.get_model("m1")
    assert got is not None and got == (promoted, blob)
    assert again.put_model(model("m1"), b"other") is False
    assert again.promote_model("m2").version == "m2"
    current = again.promoted_model()
    assert current is not None and current.version == "m2"


def test_weights_above_the_bson_document_limit_round_trip(store: Store, backend: Backend) -> None:
    """A model with a fine-tuned encoder is ~45 MB; BSON documents stop at 16 MiB."""
    blob = random.Random(3).randbytes(17 * 1024 * 1024 + 5)
    assert store.put_model(model("huge", created_at=at(0)), blob) is True
    assert store.put_model(model("huge"), b"other") is False
    got = store.get_model("huge")
    assert got is not None and got == (model("huge", created_at=at(0)), blob)
    store.put_model(model("small", created_at=at(1)), b"w")
    store.promote_model("huge")
    assert [m.version for m in store.list_models()] == ["small", "huge"]
    again = backend.reopen()
    current = again.promoted_model()
    assert current is not None and current.version == "huge"
    reread = again.get_model("huge")
    assert reread is not None and reread[1] == blob


def test_mongo_chunks_big_weights_and_stores_promotion_as_a_date(
    store: Store, backend: Backend
) -> None:
    if getattr(backend, "name", None) != "mongo":
        pytest.skip("Mongo-only: the BSON document limit and BSON dates")
    from core.store.mongo import WEIGHTS_CHUNK_BYTES, MongoStore

    assert isinstance(store, MongoStore)
    blob = random.Random(5).randbytes(2 * WEIGHTS_CHUNK_BYTES + 1)
    assert store.put_model(model("huge"), blob) is True
    chunks = list(store._chunks.find({}, {"data": False}).sort("n"))
    assert [c["n"] for c in chunks] == [0, 1, 2] and len({c["blob"] for c in chunks}) == 1
    # A second writer of the same version writes no chunks and keeps the first weights.
    assert store.put_model(model("huge"), blob[::-1]) is False
    assert store._chunks.count_documents({}) == 3
    got = store.get_model("huge")
    assert got is not None and got[1] == blob
    store.put_model(model("m1"), b"w")
    promoted = store.promote_model("m1")
    assert promoted.promoted_at is not None
    raw = store._models.find_one({"_id": "m1"})
    assert raw is not None and isinstance(raw["promoted_at"], datetime)
    assert abs(raw["promoted_at"] - promoted.promoted_at) < timedelta(milliseconds=1)
    indexed = [dict(ix["key"]) for ix in store._models.list_indexes()]
    assert any(next(iter(key)) == "_promoted_key" for key in indexed)


# -- representation and durability ----------------------------------------------------------
@pytest.mark.parametrize("zone", [UTC, CEST], ids=["utc", "plus2"])
def test_datetimes_round_trip_timezone_aware(store: Store, zone: timezone) -> None:
    stamp = datetime(2025, 6, 30, 23, 59, 58, 654321, tzinfo=zone)
    store.add_item(item(received_at=stamp))
    store.save_triage(triage(created_at=stamp))
    store.add_validation(vote("val_1", stamp))
    store.put_label(label().model_copy(update={"updated_at": stamp}))
    store.put_reward(reward().model_copy(update={"created_at": stamp}))
    got_item, got_triage = store.get_item("itm_1"), store.latest_triage("itm_1")
    got_label = store.get_label("itm_1")
    assert got_item and got_triage and got_label
    loaded = [
        got_item.received_at,
        got_triage.created_at,
        store.current_votes("itm_1")[0].created_at,
        store.events("itm_1")[0].created_at,
        got_label.updated_at,
        store.rewards("itm_1")[0].created_at,
    ]
    for value in loaded:
        assert value.tzinfo is not None and value.utcoffset() is not None
        assert value.astimezone(UTC) == stamp.astimezone(UTC)  # same instant, to the µs
        assert value.microsecond == 654321


def test_data_survives_close_and_reopen(store: Store, backend: Backend) -> None:
    store.add_item(item())
    store.save_triage(triage(version="v1"))
    store.save_triage(triage(version="v2"))
    store.add_validation(vote("val_1", at(1)))
    store.add_validation(vote("val_2", at(2), reviewer="U2"))
    store.put_label(label())
    store.put_reward(reward())
    store.close()

    again = backend.reopen()
    assert again.count_items() == 1
    assert again.get_item("itm_1") == item().model_copy(update={"text": item().redacted_text})
    latest = again.latest_triage("itm_1")
    assert latest is not None and latest.model_version == "v2"
    assert current_ids(again) == ["val_1", "val_2"]
    assert [e.id for e in again.events()] == ["val_1", "val_2"]
    assert again.get_label("itm_1") == label()
    assert again.rewards() == [reward()]
    # Still idempotent and still ordered after reopening.
    assert again.add_item(item()) is False
    assert again.add_validation(vote("val_1", at(1))) is False
    again.save_triage(triage(version="v3"))
    latest = again.latest_triage("itm_1")
    assert latest is not None and latest.model_version == "v3"


# -- intake cursors -------------------------------------------------------------------------
def test_intake_cursor_is_none_until_set_then_replaced(store: Store) -> None:
    assert store.get_intake_cursor("mongodb:shop.feedback") is None
    store.set_intake_cursor("mongodb:shop.feedback", '{"after": 1}')
    store.set_intake_cursor("mongodb:shop.other", "x")
    assert store.get_intake_cursor("mongodb:shop.feedback") == '{"after": 1}'
    store.set_intake_cursor("mongodb:shop.feedback", '{"after": 2}')
    assert store.get_intake_cursor("mongodb:shop.feedback") == '{"after": 2}'
    assert store.get_intake_cursor("mongodb:shop.other") == "x"  # sources are independent
    assert store.get_intake_cursor("mongodb:shop") is None


def test_intake_cursor_survives_reopen_and_is_shared(store: Store, backend: Backend) -> None:
    store.set_intake_cursor("src", "position-1")
    other = backend.reopen()  # another process on the same store
    assert other.get_intake_cursor("src") == "position-1"
    other.set_intake_cursor("src", "position-2")
    assert store.get_intake_cursor("src") == "position-2"
    store.close()
    assert backend.reopen().get_intake_cursor("src") == "position-2"


def test_writes_in_a_transaction_are_all_kept(store: Store, backend: Backend) -> None:
    with store.transaction():
        assert store.add_item(item("itm_t"), post_to=["slack:C1"])
        with store.transaction():  # nested: a savepoint on SQLite
            assert store.add_validation(vote("v_t", T0, item_id="itm_t"))
        assert store.mark_event_seen("evt_t")
    again = backend.reopen()
    assert again.get_item("itm_t") is not None
    assert [v.id for v in again.current_votes("itm_t")] == ["v_t"]
    assert not again.mark_event_seen("evt_t")


def test_a_failing_transaction_keeps_nothing_on_sqlite(store: Store, backend: Backend) -> None:
    if getattr(backend, "name", None) == "mongo":
        pytest.skip("MongoDB writes are each durable: idempotent retries heal, not rollback")
    with pytest.raises(RuntimeError), store.transaction():
        store.add_item(item("itm_gone"))
        store.mark_event_seen("evt_gone")
        raise RuntimeError("the request failed half way")
    with store.transaction():
        store.add_item(item("itm_kept"))
        with pytest.raises(ValueError), store.transaction():
            store.add_validation(vote("v_gone", T0, item_id="itm_kept"))
            raise ValueError("only the inner write is undone")
    assert store.get_item("itm_gone") is None and store.mark_event_seen("evt_gone")
    assert store.get_item("itm_kept") is not None and store.current_votes("itm_kept") == []


# -- forgetting and retention ----------------------------------------------------------------
SECRET = "Refund order 4711 for Jane at the Elm Street branch"


def _item_with_everything(store: Store, item_id: str, text: str, *, ref: str) -> None:
    """An item with a triage, a vote with free text, a label, a reward and a posted card."""
    assert store.add_item(item(item_id, redacted_text=text), post_to=[SLACK])
    store.save_triage(triage(item_id))
    typed = vote(f"v_{item_id}", T0, item_id=item_id).model_copy(
        update={"action": f"call back about: {text}"}
    )
    assert store.add_validation(typed)
    store.put_label(label(item_id))
    store.put_reward(reward(item_id))
    store.claim_post(SLACK, "w1", LONG)
    assert store.mark_posted(item_id, SLACK, ref)


def test_forget_items_deletes_everything_derived_and_keeps_an_audit_event_without_it(
    store: Store, backend: Backend
) -> None:
    from core.models import AuditEvent

    _item_with_everything(store, "itm_gone", SECRET, ref="1700000000.000100")
    _item_with_everything(store, "itm_kept", "The search page is slow", ref="1700000000.000200")
    assert [p.item_id for p in store.posts(item_id="itm_gone")] == ["itm_gone"]
    asked = AuditEvent(
        action="forget",
        by="cli:ops",
        selector={"item": ["itm_gone", "itm_never"]},
        reason="erasure request",
        item_ids=["itm_gone", "itm_never", "itm_gone"],
    )
    event = store.forget_items(asked)

    assert store.get_item("itm_gone") is None
    assert store.latest_triage("itm_gone") is None
    assert store.events("itm_gone") == [] and store.current_votes("itm_gone") == []
    assert store.get_label("itm_gone") is None and store.rewards("itm_gone") == []
    assert store.get_post("itm_gone", SLACK) is None
    assert store.find_post(SLACK, "1700000000.000100") is None  # a vote on the card: unknown
    assert store.posts(item_id="itm_gone") == []
    assert [i.id for i in store.iter_items()] == ["itm_kept"] and store.count_items() == 1
    assert [lab.item_id for lab in store.iter_labels()] == ["itm_kept"]
    assert [v.item_id for v in store.events()] == ["itm_kept"]
    assert store.find_post(SLACK, "1700000000.000200") is not None

    assert event.seq > 0 and event.id == asked.id
    assert event.item_ids == ["itm_gone", "itm_never"]
    assert event.counts == {
        "items": 1,
        "triages": 1,
        "votes": 1,
        "labels": 1,
        "rewards": 1,
        "assignments": 0,
        "duplicates": 0,
        "duplicate_votes": 0,
        "posts": 1,
    }
    assert event.cards == [f"{SLACK} 1700000000.000100"]
    assert store.audit_events() == [event]
    assert store.last_audit_seq() == event.seq
    assert "Refund" not in event.model_dump_json()
    raw = backend.raw()  # SQLite: the file and its log, deleted pages zeroed
    assert b"search page is slow" in raw  # we are looking at the right bytes
    assert b"Refund order 4711" not in raw and b"Elm Street" not in raw

    # Again: nothing left to delete, and a second event after the first.
    again = store.forget_items(AuditEvent(action="forget", item_ids=["itm_gone"]))
    assert again.seq > event.seq and again.counts["items"] == 0 and again.cards == []
    assert store.audit_events(after=event.seq) == [again]
    assert store.last_audit_seq() == again.seq
    store.close()
    assert backend.reopen().audit_events() == [event, again]


def test_forget_items_adds_its_counts_to_the_callers(store: Store) -> None:
    from core.models import AuditEvent

    alone = store.forget_items(AuditEvent(action="prune", counts={"seen_events": 3}))
    assert alone.item_ids == [] and alone.counts["seen_events"] == 3
    assert alone.counts["items"] == 0
    assert store.audit_events() == [alone]


def test_audit_events_from_two_handles_keep_one_order(store: Store, backend: Backend) -> None:
    from core.models import AuditEvent

    other = backend.reopen()  # another process on the same store
    seqs = []
    for n in range(6):
        handle = store if n % 2 else other
        seqs.append(handle.forget_items(AuditEvent(action="forget", item_ids=[f"x{n}"])).seq)
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    assert [e.item_ids for e in other.audit_events()] == [[f"x{n}"] for n in range(6)]
    assert [e.seq for e in store.audit_events(after=seqs[2])] == seqs[3:]
    assert store.audit_events(after=seqs[-1]) == []


def test_items_received_before_is_oldest_first(store: Store) -> None:
    for item_id, seconds in [("c", 30), ("b", 10), ("a", 10), ("d", 3600)]:
        assert store.add_item(item(item_id, received_at=at(seconds)))
    assert store.items_received_before(at(0)) == []
    assert store.items_received_before(at(31)) == ["a", "b", "c"]
    # An aware time in another zone is the same instant.
    assert store.items_received_before(at(11).astimezone(CEST)) == ["a", "b"]


def test_prune_seen_events_by_age(store: Store) -> None:
    from core.models import utcnow

    assert store.mark_event_seen("slack:Ev1") and store.mark_event_seen("slack:Ev2")
    soon = utcnow() + timedelta(seconds=1)
    assert store.prune_seen_events(utcnow() - timedelta(days=1)) == 0
    assert store.prune_seen_events(soon, dry_run=True) == 2
    assert store.mark_event_seen("slack:Ev1") is False  # the dry run deleted nothing
    assert store.prune_seen_events(soon) == 2
    assert store.mark_event_seen("slack:Ev1") is True  # forgotten: seen anew


def test_prune_posts_only_of_finished_cards_whose_item_is_gone_or_old(store: Store) -> None:
    from core.models import utcnow

    later = utcnow() + timedelta(days=1)
    for item_id, received in [
        ("old_posted", T0),
        ("old_dead", T0),
        ("old_pending", T0),
        ("new_posted", later),
    ]:
        queued = item(item_id, received_at=received, metadata={"post_to": [SLACK]})
        assert store.add_item(queued, post_to=[SLACK])  # as intake stores it
    assert store.enqueue_post("no_item", SLACK)  # an item that vanished
    while (post := store.claim_post(SLACK, "w1", LONG)) is not None:
        if post.item_id == "old_dead":
            store.dead_post(post.item_id, SLACK, "w1", "invalid_blocks")
        elif post.item_id == "old_pending":
            store.release_post(post.item_id, SLACK, "w1", delay_seconds=3600)
        else:
            store.mark_posted(post.item_id, SLACK, f"ref-{post.item_id}", "w1")
    cutoff = utcnow() + timedelta(seconds=1)  # every row was last touched before it

    assert store.prune_posts(utcnow() - timedelta(days=1)) == 0  # none that old
    assert store.prune_posts(cutoff, dry_run=True) == 3
    assert len(store.posts()) == 5
    assert store.prune_posts(cutoff) == 3
    assert sorted(p.item_id for p in store.posts()) == ["new_posted", "old_pending"]
    assert store.find_post(SLACK, "ref-new_posted") is not None  # its item is recent: votes on
    assert store.find_post(SLACK, "ref-old_posted") is None
    for item_id in ("old_posted", "old_dead"):  # recovery will not queue them again
        kept = store.get_item(item_id)
        assert kept is not None and kept.metadata["post_to"] == []
    pending = store.get_item("old_pending")
    assert pending is not None and pending.metadata["post_to"] == [SLACK]
    assert store.get_label("old_posted") is None and store.count_items() == 4


def test_a_store_made_before_rewards_had_a_source_keeps_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SQLite only: an older file is upgraded in place, its rewards and posts kept."""
    import sqlite3

    from core.store.sqlite import SQLiteStore

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE rewards (item_id TEXT NOT NULL, model_version TEXT NOT NULL, "
        "doc TEXT NOT NULL, PRIMARY KEY (item_id, model_version));"
        "CREATE TABLE posts (item_id TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL,"
        " ref TEXT, claimed_by TEXT, claimed_until TEXT, attempts INTEGER NOT NULL DEFAULT 0,"
        " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (item_id, target));"
    )
    db.execute(
        "INSERT INTO rewards VALUES (?, ?, ?)", ("itm_1", "v1", reward("itm_1").model_dump_json())
    )
    now = T0.isoformat()
    db.execute(
        "INSERT INTO posts(item_id, target, status, ref, created_at, updated_at) "
        "VALUES ('itm_1', ?, 'posted', '1.0', ?, ?)",
        (SLACK, now, now),
    )
    db.commit()
    db.close()
    store = SQLiteStore(path)
    try:
        assert [(r.item_id, r.source) for r in store.rewards()] == [("itm_1", "human")]
        store.put_reward(reward("itm_1").model_copy(update={"source": "github-outcome"}))
        assert len(store.rewards("itm_1")) == 2
        post = store.get_post("itm_1", SLACK)
        assert post is not None and post.detail == {} and post.ref == "1.0"
    finally:
        store.close()


def test_a_post_released_untried_does_not_count_the_attempt(store: Store) -> None:
    store.enqueue_post("itm_1", SLACK)
    post = store.claim_post(SLACK, "w1", LONG)
    assert post is not None and post.attempts == 1
    store.release_post("itm_1", SLACK, "w1", attempted=False, error="waiting out a rate limit")
    waiting = store.get_post("itm_1", SLACK)
    assert waiting is not None and (waiting.status, waiting.attempts) == ("pending", 0)
    again = store.claim_post(SLACK, "w1", LONG)
    assert again is not None and again.attempts == 1
    store.release_post("itm_1", SLACK, "w1")
    tried = store.get_post("itm_1", SLACK)
    assert tried is not None and tried.attempts == 1


def test_an_items_owner_assignment_is_replaced_listed_and_forgotten(store: Store) -> None:
    from core.models import Assignment, AuditEvent

    assert store.get_assignment("itm_1") is None and list(store.iter_assignments()) == []
    store.add_item(item("itm_1"))
    store.put_assignment(Assignment(item_id="itm_1", owner="payments", by="UANN"))
    store.put_assignment(Assignment(item_id="itm_2", owner="docs", by="UBOB"))
    store.put_assignment(Assignment(item_id="itm_1", owner="web", by="UBOB", platform="slack"))
    got = store.get_assignment("itm_1")
    assert got is not None and (got.owner, got.by, got.platform) == ("web", "UBOB", "slack")
    assert sorted(a.owner for a in store.iter_assignments()) == ["docs", "web"]
    event = store.forget_items(AuditEvent(action="forget", item_ids=["itm_1"]))
    assert event.counts["assignments"] == 1
    assert store.get_assignment("itm_1") is None
    assert [a.item_id for a in store.iter_assignments()] == ["itm_2"]


def link(
    item_id: str, canonical_id: str, *, similarity: float = 0.9, **kw: object
) -> DuplicateLink:
    return DuplicateLink.model_validate(
        {"item_id": item_id, "canonical_id": canonical_id, "similarity": similarity, "by": "UANN"}
        | kw
    )


def dup_vote(vote_id: str, item_id: str, other_id: str, *, same: bool = True) -> DuplicateVote:
    return DuplicateVote(
        id=vote_id, item_id=item_id, other_id=other_id, same=same, similarity=0.8, reviewer="UANN"
    )


def test_a_duplicate_link_is_replaced_listed_oldest_first_and_deleted(store: Store) -> None:
    assert store.get_duplicate("itm_2") is None and list(store.iter_duplicates()) == []
    assert store.duplicates_of("itm_1") == []
    assert store.delete_duplicate("itm_2") is False  # none to delete
    store.put_duplicate(link("itm_2", "itm_1", similarity=0.91, created_at=at(1)))
    store.put_duplicate(link("itm_3", "itm_9"))
    store.put_duplicate(link("itm_4", "itm_1"))
    # Replaced: itm_3 moves from itm_9's group to itm_1's, and to the end of the order.
    store.put_duplicate(link("itm_3", "itm_1", similarity=-0.5, by="UBOB", platform="slack"))
    got = store.get_duplicate("itm_3")
    assert got is not None
    assert (got.canonical_id, got.similarity, got.by, got.platform) == (
        "itm_1",
        -0.5,
        "UBOB",
        "slack",
    )
    first = store.get_duplicate("itm_2")
    assert first is not None and first.created_at == at(1) and first.similarity == 0.91
    assert [d.item_id for d in store.duplicates_of("itm_1")] == ["itm_2", "itm_4", "itm_3"]
    assert store.duplicates_of("itm_9") == []
    assert [d.item_id for d in store.iter_duplicates()] == ["itm_2", "itm_4", "itm_3"]
    assert store.delete_duplicate("itm_4") is True
    assert store.delete_duplicate("itm_4") is False
    assert store.get_duplicate("itm_4") is None
    assert [d.item_id for d in store.duplicates_of("itm_1")] == ["itm_2", "itm_3"]
    assert [d.item_id for d in store.iter_duplicates()] == ["itm_2", "itm_3"]


def test_a_duplicate_vote_is_kept_once_and_listed_oldest_first(store: Store) -> None:
    assert store.duplicate_votes() == []
    merge = dup_vote("dup_b", "itm_2", "itm_1")
    split = dup_vote("dup_a", "itm_3", "itm_1", same=False)
    assert store.add_duplicate_vote(merge) is True
    assert store.add_duplicate_vote(split) is True
    assert store.add_duplicate_vote(merge) is False  # redelivered: kept once
    assert store.add_duplicate_vote(merge.model_copy(update={"same": False})) is False
    assert store.duplicate_votes() == [merge, split]  # arrival order, not id order
    third = dup_vote("dup_c", "itm_2", "itm_1", same=False)
    assert store.add_duplicate_vote(third) is True
    assert [v.id for v in store.duplicate_votes()] == ["dup_b", "dup_a", "dup_c"]


def test_forgetting_an_item_drops_its_link_the_links_to_it_and_the_votes_naming_it(
    store: Store,
) -> None:
    from core.models import AuditEvent

    for item_id in ("itm_1", "itm_2", "itm_3", "itm_4", "itm_5"):
        store.add_item(item(item_id))
    store.put_duplicate(link("itm_2", "itm_1"))  # members of itm_1, which is forgotten
    store.put_duplicate(link("itm_3", "itm_1"))
    store.put_duplicate(link("itm_4", "itm_5"))  # itm_4 is forgotten: its own link goes
    store.put_duplicate(link("itm_6", "itm_5"))  # untouched
    store.add_duplicate_vote(dup_vote("dup_1", "itm_2", "itm_1"))  # names itm_1 as the other
    store.add_duplicate_vote(dup_vote("dup_2", "itm_4", "itm_5"))  # names itm_4 as the item
    store.add_duplicate_vote(dup_vote("dup_3", "itm_6", "itm_5", same=False))  # untouched
    event = store.forget_items(AuditEvent(action="forget", item_ids=["itm_1", "itm_4"]))
    assert event.counts["duplicates"] == 3 and event.counts["duplicate_votes"] == 2
    assert store.duplicates_of("itm_1") == []
    assert store.get_duplicate("itm_2") is None and store.get_duplicate("itm_3") is None
    assert store.get_duplicate("itm_4") is None
    assert [(d.item_id, d.canonical_id) for d in store.iter_duplicates()] == [("itm_6", "itm_5")]
    assert [v.id for v in store.duplicate_votes()] == ["dup_3"]
    assert store.get_item("itm_2") is not None  # the members stay, standing alone
    again = store.forget_items(AuditEvent(action="forget", item_ids=["itm_1", "itm_4"]))
    assert again.counts["duplicates"] == 0 and again.counts["duplicate_votes"] == 0


def test_theme_names_are_replaced_listed_in_put_order_deleted_and_outlive_forgetting(
    store: Store,
) -> None:
    from core.models import AuditEvent

    assert store.theme_names() == [] and store.delete_theme_name("thm_a") is False
    login = ThemeName(id="thm_a", name="Login fails", centroid=[0.1, -0.2, 0.3], by="UANN")
    billing = ThemeName(
        id="thm_b",
        name="Billing",
        centroid=[0.5, 0.5, 0.0],
        by="UBOB",
        space=[0.0, 1.0, 0.0],
        item_ids=["it_1", "it_2"],
    )
    store.put_theme_name(login)
    store.put_theme_name(billing)
    assert store.theme_names() == [login, billing]
    # Renamed: replaced by id and, as a replaced duplicate link does, moved to the end.
    renamed = login.model_copy(update={"name": "Sign-in loops", "by": "UBOB"})
    store.put_theme_name(renamed)
    assert store.theme_names() == [billing, renamed]
    assert store.theme_names()[1].centroid == [0.1, -0.2, 0.3]
    assert store.delete_theme_name("thm_b") is True
    assert store.delete_theme_name("thm_b") is False
    assert store.theme_names() == [renamed]
    store.put_theme_name(billing)
    store.add_item(item("itm_1"))
    store.forget_items(AuditEvent(action="forget", item_ids=["itm_1", "thm_a"]))
    assert store.theme_names() == [renamed, billing]  # a name keys no item: it stays
