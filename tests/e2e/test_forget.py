"""Forgetting in a running bot: a `TriageService` (the bot) learns of a forget done by
another process (the CLI) through the store's audit events, drops the items from every
cache it keeps and relearns without them; its outbox worker prunes by the retention
setting. Real encoder, real engine, both stores."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import core.outbox
from bot.app import default_encoder
from core.features import encoder_view
from core.lifecycle import forget
from core.models import utcnow
from core.outbox import Outbox, start_thread
from core.ports import Encoder, Store
from core.runtime import RetentionSettings, RuntimeSettings
from core.service import TriageService, UnknownItemError
from core.taxonomy import load_taxonomy
from core.triage import TriageEngine, model_text
from tests.fakes.chat import RecordingChannel

POTATO = [
    "the mascot drawing in the footer looks like a potato",
    "your mascot drawing on the homepage looks like a potato",
    "the potato mascot drawing on the about page",
]
PROBE = "that mascot drawing looks like a potato to me"
SEARCH = "The search results page takes thirty seconds to load"


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return default_encoder()


def make_service(
    store: Store, encoder: Encoder, runtime: RuntimeSettings | None = None
) -> TriageService:
    taxonomy = load_taxonomy()
    engine = TriageEngine(taxonomy, encoder, runtime=runtime)
    return TriageService(store, engine, taxonomy)


def wait_for(condition: Callable[[], Any], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_running_service_drops_what_another_process_forgot_and_relearns(
    backend, encoder: Encoder
) -> None:
    bot = make_service(backend.reopen(), encoder)
    bot.warm_start()
    probe = bot.make_item(PROBE, source="probe")
    cold = bot.engine.triage(probe)
    target = "positive" if cold.category != "positive" else "content-gap"
    potato = []
    for text in POTATO:
        triage, _ = bot.submit(bot.make_item(text, source="slack"))
        bot.vote(triage.item_id, "ann", "correct", category=target, severity="low")
        potato.append(triage.item_id)
    kept, _ = bot.submit(bot.make_item(SEARCH, source="slack"))
    bot.vote(kept.item_id, "ann", "confirm")
    assert bot.engine.triage(probe).category == target  # the potato labels taught it
    shown = {found.id for found, _, _ in bot.similar_validated(probe, k=3)}
    assert shown and shown <= set(potato)  # the card's similar items and the LLM's few-shot

    # `triage-bot forget`, in another process on the same store.
    cli = backend.reopen()
    (event,) = forget(cli, potato, action="forget", selector={"item": potato}, by="cli:test")
    assert event.counts["items"] == 3 and event.counts["labels"] == 3
    assert {found.id for found, _, _ in bot.similar_validated(probe, k=3)} == shown  # not yet

    report = bot.sync_forgotten()
    assert report is not None and report.labels == 1
    assert bot.sync_forgotten() is None  # applied once
    left = bot.similar_validated(probe, k=5, min_similarity=-1.0)
    assert [found.id for found, _, _ in left] == [kept.item_id]
    assert set(bot._examples) == {kept.item_id}
    # Nothing of the forgotten texts stays in memory: features, evidence words, embeddings.
    assert not set(potato) & set(bot.engine._feature_keys)
    assert not set(POTATO) & {text for text, _ in bot.engine._features}
    if hasattr(encoder, "_cache"):
        for text in POTATO:
            view = encoder_view(model_text(bot.make_item(text), bot.runtime))
            assert encoder._key(view) not in encoder._cache  # type: ignore[attr-defined]
    # Relearned from the base model on what is left: as a fresh start on the store is.
    fresh = make_service(backend.reopen(), encoder)
    assert fresh.warm_start().labels == 1
    assert bot.engine.model_version == fresh.engine.model_version
    now, then = bot.engine.triage(probe), fresh.engine.triage(probe)
    assert now.category == then.category != target
    assert now.probabilities["category"] == pytest.approx(then.probabilities["category"], abs=0.02)
    with pytest.raises(UnknownItemError):
        bot.vote(potato[0], "ann", "confirm")


class FailsOnce:
    """The bot's store, unreachable for the first model read after a forget."""

    def __init__(self, store: Store) -> None:
        self._store, self.failed = store, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get_model(self, version: str) -> Any:
        if not self.failed:
            self.failed = True
            raise ConnectionError("store unreachable")
        return self._store.get_model(version)


def test_a_forget_that_fails_to_apply_is_applied_at_the_next_sync(
    backend, encoder: Encoder
) -> None:
    store = FailsOnce(backend.reopen())
    bot = make_service(store, encoder)  # type: ignore[arg-type]
    triage, _ = bot.submit(bot.make_item(POTATO[0], source="slack"))
    bot.vote(triage.item_id, "ann", "confirm")
    forget(backend.reopen(), [triage.item_id], action="forget", selector={}, by="cli:test")
    with pytest.raises(ConnectionError):
        bot.sync_forgotten()
    report = bot.sync_forgotten()  # not lost: the same event again
    assert report is not None and store.failed and triage.item_id not in bot._examples
    assert bot.sync_forgotten() is None


class ForgottenMidVote:
    """The bot's store, on which another process forgets an item right after a vote on
    it has read the item (the window between the vote's check and its writes)."""

    def __init__(self, store: Store, other: Store, item_id: str) -> None:
        self._store, self._other, self._item_id = store, other, item_id
        self.forgotten = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get_item(self, item_id: str) -> Any:
        found = self._store.get_item(item_id)
        if item_id == self._item_id and not self.forgotten:
            self.forgotten = True
            forget(self._other, [item_id], action="forget", selector={}, by="cli:test")
        return found


def test_a_vote_racing_a_forget_leaves_nothing_behind(backend, encoder: Encoder) -> None:
    store = backend.reopen()
    setup = make_service(store, encoder)
    triage, _ = setup.submit(setup.make_item(SEARCH, source="slack"))
    racing = ForgottenMidVote(store, backend.reopen(), triage.item_id)
    bot = make_service(racing, encoder)  # type: ignore[arg-type]
    with pytest.raises(UnknownItemError):
        bot.vote(
            triage.item_id,
            "ann",
            "correct",
            category="website-bug",
            severity="low",
            action="call Jane",
        )
    assert racing.forgotten
    assert store.events(triage.item_id) == [] and store.current_votes(triage.item_id) == []
    assert store.get_label(triage.item_id) is None and store.rewards(triage.item_id) == []


def test_the_outbox_worker_prunes_at_start_and_applies_a_forget(
    backend, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core.outbox, "MODEL_REFRESH_SECONDS", 0.2)
    runtime = RuntimeSettings(retention=RetentionSettings(items_days=30))
    store = backend.reopen()
    bot = make_service(store, encoder, runtime)
    old = bot.make_item("an old note about the login page", received_at=utcnow() - timedelta(40))
    bot.submit(old)
    bot.vote(old.id, "ann", "confirm")
    recent, _ = bot.submit(bot.make_item(SEARCH, source="slack"))
    bot.vote(recent.item_id, "ann", "confirm")
    assert set(bot._examples) == {old.id, recent.item_id}

    outbox = Outbox(bot, RecordingChannel(), worker_id="w1", lease_seconds=30)
    thread, stop = start_thread(outbox, "outbox-test")
    try:
        wait_for(lambda: store.get_item(old.id) is None)  # pruned at start
        (pruned,) = store.audit_events()
        assert (pruned.action, pruned.by, pruned.item_ids) == ("prune", "bot", [old.id])
        assert pruned.selector["items_days"] == 30
        wait_for(lambda: old.id not in bot._examples)

        cli = backend.reopen()
        forget(cli, [recent.item_id], action="forget", selector={}, by="cli:test")
        wait_for(lambda: not bot._examples)  # within the worker's next upkeep
        assert bot.similar_validated(old, k=3, min_similarity=-1.0) == []
    finally:
        stop.set()
        outbox.wake()
        thread.join(timeout=10)
    assert store.get_item(recent.item_id) is None
