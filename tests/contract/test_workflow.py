"""The shared workflow (core/intake.py, core/outbox.py, core/votes.py), once, on every store.

Slack and Discord each add only a thin layer (tests/e2e/test_slack.py, test_discord.py). Here
the real engine, the real store adapters and a recording chat channel (tests/fakes/chat.py)
stand in for a platform; each test checks what a broken workflow would get wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from bot.app import default_encoder
from core.governance import InputError
from core.intake import Intake, Submission, to_item
from core.models import ValidationKind
from core.outbox import Outbox
from core.ports import Encoder, Store
from core.runtime import OutboxSettings
from core.service import NotAllowedError, TriageService
from core.taxonomy import load_taxonomy
from core.triage import TriageEngine
from core.votes import Ballot, Learner, ReviewerRule, VoteDesk
from tests.fakes.chat import RecordingChannel

pytestmark = pytest.mark.slow
TAXONOMY = load_taxonomy()
FAST = OutboxSettings(batch=4, retry_base_seconds=0.2, retry_max_seconds=1.0)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return default_encoder()


class Workflow:
    """Intake, outbox and votes wired as a bot process wires them."""

    def __init__(self, store: Store, encoder: Encoder, settings: OutboxSettings = FAST) -> None:
        self.store = store
        self.service = TriageService(store, TriageEngine(TAXONOMY, encoder), TAXONOMY)
        self.channel = RecordingChannel()
        self.outbox = Outbox(
            self.service, self.channel, worker_id="w1", lease_seconds=30, settings=settings
        )
        self.intake = Intake(store)
        self.learner = Learner(self.service)
        self.votes = VoteDesk(
            self.service,
            ReviewerRule(ids=frozenset({"ann", "bob"})),
            self.learner,
            self.outbox.request_update,
        )

    def accept(self, text: str) -> str:
        submission = Submission(text=text, source="webhook")
        return self.intake.accept(submission, [self.channel.target]).item_id


@pytest.fixture
def flow(store: Store, encoder: Encoder) -> Iterator[Workflow]:
    wf = Workflow(store, encoder)
    yield wf
    wf.learner.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# -- intake ------------------------------------------------------------------------------------
def test_intake_redacts_every_user_field_and_keeps_platform_facts(flow: Workflow) -> None:
    accepted = flow.intake.accept(
        Submission(
            text="Checkout fails, mail jo@example.com",
            source="webhook",
            ref="body-1",
            form_type="Bug jo@example.com",
            page="/checkout?email=jo@example.com",
            metadata={"contact": "jo@example.com", "jo@example.com": ["call +1 415 555 0100"]},
            origin={"slack": {"channel": "C1", "ts": "1733090000.000100"}},
        ),
        [flow.channel.target],
    )
    stored = flow.store.get_item(accepted.item_id)
    assert stored is not None
    dumped = stored.model_dump_json()
    assert "jo@example.com" not in dumped and "555 0100" not in dumped
    assert stored.page == "/checkout?email=[email]" and stored.form_type == "bug [email]"
    assert stored.metadata["slack"] == {"channel": "C1", "ts": "1733090000.000100"}
    # Stored with its card queued, and not triaged: the ack never waits for the model.
    post = flow.store.get_post(accepted.item_id, flow.channel.target)
    assert post is not None and post.status == "pending"
    assert flow.store.latest_triage(accepted.item_id) is None


def test_metadata_keys_a_store_would_misread_are_kept_under_safe_names(flow: Workflow) -> None:
    """A MongoDB document or an import row may carry `$where` or `a.b` keys: the item is
    stored (on both stores) with the values under keys no store reads as operators."""
    accepted = flow.intake.accept(
        Submission(
            text="Search is broken",
            source="file",
            ref="rows.jsonl:3",
            metadata={"$where": "1", "a.b": {"$gt": "x\x00y"}, "ok\x00": 2},
        )
    )
    stored = flow.store.get_item(accepted.item_id)
    assert stored is not None
    assert stored.metadata == {"_where": "1", "a_b": {"_gt": "x\x00y"}, "ok": 2}


def test_ids_are_namespaced_by_source_and_bad_fields_are_named(flow: Workflow) -> None:
    one = to_item(Submission(text="Broken link", source="file", ref="a.jsonl:1"))
    other = to_item(Submission(text="Broken link", source="file", ref="b.jsonl:1"))
    chat = to_item(Submission(text="Broken link", source="slack-command"))
    assert len({one.id, other.id, chat.id}) == 3
    cases = {
        "page must be text, got dict": {"page": {"url": "/x"}},
        "rating must be a number, got str": {"rating": "five"},
        "form type must be text, got list": {"form_type": ["bug"]},
        "metadata must be an object, got str": {"metadata": "x"},
        "text must be text, got int": {"text": 42},
    }
    for reason, bad in cases.items():
        fields = {"text": "Broken link", "source": "file", **bad}
        with pytest.raises(InputError, match=reason):
            flow.intake.accept(Submission(**fields))  # type: ignore[arg-type]
    assert flow.store.count_items() == 0


def test_several_submitters_of_the_same_text_are_all_recorded(flow: Workflow) -> None:
    for user in ("slack:U1", "slack:U2", "slack:U1"):
        flow.intake.accept(
            Submission(text="Dark mode please", source="slack-command", submitter=user),
            [flow.channel.target],
        )
    (item,) = list(flow.store.iter_items())
    assert item.metadata["submitters"] == ["slack:U1", "slack:U2"]
    assert flow.store.count_unposted(flow.channel.target) == 1


# -- the outbox ---------------------------------------------------------------------------------
def test_items_that_arrive_together_are_triaged_in_one_batch(
    flow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [flow.accept(f"The pricing page typo number {i}") for i in range(4)]
    batches: list[int] = []
    real = flow.service.engine.triage_many

    def counted(items):  # type: ignore[no-untyped-def]
        batches.append(len(items))
        return real(items)

    monkeypatch.setattr(flow.service.engine, "triage_many", counted)
    assert flow.outbox.drain() == 4
    assert batches == [4]
    assert all(len(flow.channel.posted(i)) == 1 for i in ids)
    assert flow.store.count_unposted(flow.channel.target) == 0


def test_a_failing_post_backs_off_without_blocking_the_posts_behind_it(flow: Workflow) -> None:
    stuck, *rest = [flow.accept(f"Search is broken on page {i}") for i in range(3)]
    flow.channel.fail[stuck] = (2, None)
    flow.outbox.drain()
    assert all(len(flow.channel.posted(i)) == 1 for i in rest)
    post = flow.store.get_post(stuck, flow.channel.target)
    assert post is not None and post.status == "pending" and post.last_error
    assert post.next_attempt_at is not None and post.attempts == 1
    assert flow.outbox.drain() == 0  # still waiting out its backoff: not retried at once
    # Retried on its own schedule (0.2 s, then 0.4 s) until it goes through, exactly once.
    assert wait_for(lambda: flow.outbox.drain() >= 0 and len(flow.channel.posted(stuck)) == 1)
    assert [a for a in flow.channel.attempts if a[0] == stuck] == [(stuck, False)] * 3
    assert flow.channel.finds == 2  # each retry looked for an earlier attempt's card first


def test_a_refused_card_gets_a_minimal_one_then_the_dead_letter(flow: Workflow) -> None:
    too_long, hopeless, fine = (flow.accept(f"Login is broken case {i}") for i in range(3))
    flow.channel.refuse_full.add(too_long)
    flow.channel.refuse_all.add(hopeless)
    flow.outbox.drain()
    (minimal,) = flow.channel.posted(too_long)
    assert minimal.minimal
    assert flow.channel.posted(hopeless) == [] and len(flow.channel.posted(fine)) == 1
    dead = flow.store.get_post(hopeless, flow.channel.target)
    assert dead is not None and dead.status == "dead" and dead.last_error == "invalid_blocks"
    stats = flow.service.stats()
    assert stats.outbox[flow.channel.target]["dead"] == 1
    assert stats.dead_letters == [
        {"item_id": hopeless, "target": flow.channel.target, "error": "invalid_blocks"}
    ]
    assert "1 dead-lettered" in (stats.outbox_line(flow.channel.target) or "")
    time.sleep(FAST.retry_max_seconds)
    assert flow.outbox.drain() == 0  # a dead post is never tried again


def test_a_rate_limit_pauses_the_worker_for_its_retry_after(flow: Workflow) -> None:
    first, second = flow.accept("Images do not load"), flow.accept("Video does not play")
    flow.channel.fail[first] = (1, 0.5)
    flow.outbox.drain()
    assert flow.channel.posted(second) == []  # not sent into the rate limit
    assert flow.outbox.run_once() == 0
    assert wait_for(lambda: flow.outbox.drain() >= 0 and len(flow.channel.messages) == 2)


def test_after_a_crash_a_card_the_platform_has_is_found_not_reposted(flow: Workflow) -> None:
    item_id = flow.accept("The contact form gives a 500 error")
    claimed = flow.store.claim_post(flow.channel.target, "dead-worker", lease_seconds=0.0)
    assert claimed is not None and claimed.item_id == item_id
    ref = flow.channel.add_message(item_id)  # it reached the platform, then the worker died
    assert flow.outbox.drain() == 1
    assert len(flow.channel.posted(item_id)) == 1
    post = flow.store.get_post(item_id, flow.channel.target)
    assert post is not None and post.ref == ref and post.status == "posted"


def test_recovery_queues_an_item_stored_without_its_post(flow: Workflow) -> None:
    item = to_item(Submission(text="Docs are wrong", source="webhook"))
    item.metadata["post_to"] = [flow.channel.target]
    flow.store.add_item(item)  # a process that died before queueing the post
    assert flow.outbox.recover() == 1 and flow.outbox.recover() == 0
    flow.outbox.drain()
    assert len(flow.channel.posted(item.id)) == 1


# -- votes -------------------------------------------------------------------------------------
def test_votes_rewrite_the_card_through_the_queue_and_learn_off_the_request_path(
    flow: Workflow,
) -> None:
    item_id = flow.accept("The signup form returns a 500 error")
    flow.outbox.drain()
    (card,) = flow.channel.posted(item_id)
    version = flow.service.engine.model_version
    for reviewer in ("ann", "bob"):
        outcome = flow.votes.cast(Ballot(item_id, reviewer, ValidationKind.CONFIRM, "chat"))
        assert outcome.stored and outcome.learned is None  # stored now, learned later
    post = flow.store.get_post(item_id, flow.channel.target)
    assert post is not None and post.stale
    assert flow.outbox.drain() == 1  # two votes, one rewrite
    assert [len(e.votes) for e in card.edits] == [2]
    assert wait_for(lambda: flow.service.engine.model_version != version)


def test_the_reviewer_rule_applies_to_every_vote_and_retraction(flow: Workflow) -> None:
    item_id = flow.accept("Please add SSO with Okta")
    flow.outbox.drain()
    with pytest.raises(NotAllowedError):
        flow.votes.cast(Ballot(item_id, "mal", ValidationKind.NOISE, "chat"))
    with pytest.raises(NotAllowedError):
        flow.votes.react(item_id, "mal", "bug", removed=False, platform="chat")
    assert flow.votes.react(item_id, "mal", "bug", removed=True, platform="chat") is None
    assert flow.store.events(item_id) == []

    flow.votes.react(item_id, "ann", "bug", removed=False, platform="chat", validation_id="e1")
    flow.votes.react(item_id, "ann", "fire", removed=False, platform="chat", validation_id="e2")
    (vote,) = flow.store.current_votes(item_id)
    assert (vote.category, vote.severity) == ("website-bug", "critical")
    # Removing an emoji the vote does not rest on changes nothing; the one it rests on
    # retracts it. An emoji that means nothing is nothing.
    assert (
        flow.votes.react(item_id, "ann", "white_check_mark", removed=True, platform="chat") is None
    )
    assert flow.votes.react(item_id, "ann", "tada", removed=False, platform="chat") is None
    flow.votes.react(item_id, "ann", "fire", removed=True, platform="chat", validation_id="e3")
    assert flow.store.current_votes(item_id) == []
    assert len(flow.store.events(item_id)) == 3


def test_roles_admit_reviewers_where_the_platform_has_them() -> None:
    rule = ReviewerRule(ids=None, roles=frozenset({"42"}))
    assert rule.allows("anyone", roles={"7", "42"}) and not rule.allows("anyone", roles={"7"})
    both = ReviewerRule(ids=frozenset({"ann"}), roles=frozenset({"42"}))
    assert both.allows("ann", {"42"}) and not both.allows("ann") and not both.allows("bob", {"42"})
    assert ReviewerRule().allows("anyone")
