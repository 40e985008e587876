"""The triage service end to end: real encoder, real engine, real stores (both adapters)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.app import default_encoder
from core.governance import InputError
from core.models import FeedbackItem, Label, ValidationKind
from core.ports import Encoder, Store
from core.runtime import RuntimeSettings
from core.service import NotAllowedError, TriageService, UnknownItemError, make_item
from core.taxonomy import load_taxonomy
from core.triage import TriageEngine

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [json.loads(x) for x in (REPO / "examples" / "feedback.jsonl").read_text().splitlines()]


class RecordingEncoder:
    """The real encoder, remembering every text it was given (to prove PII never reaches it)."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return self.inner.encode(texts)


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return default_encoder()


def make_service(
    store: Store, encoder: Encoder, reviewers: frozenset[str] | None = None
) -> TriageService:
    taxonomy = load_taxonomy()
    return TriageService(store, TriageEngine(taxonomy, encoder), taxonomy, reviewers=reviewers)


def test_cold_start_is_useful_on_the_bundled_feedback(encoder: Encoder) -> None:
    from core.store.sqlite import SQLiteStore

    service = make_service(SQLiteStore(":memory:"), encoder)
    items = [
        service.make_item(r["text"], item_id=r["id"], form_type=r["form_type"], page=r["page"])
        for r in EXAMPLES
    ]
    results = service.engine.triage_many(items)
    cat = np.mean([t.category == r["category"] for t, r in zip(results, EXAMPLES, strict=True)])
    sev = np.mean([t.severity == r["severity"] for t, r in zip(results, EXAMPLES, strict=True)])
    # Six classes (chance ~17%) and four severities (chance 25%), with zero labels.
    assert cat >= 0.6, cat
    assert sev >= 0.55, sev
    assert {t.category for t in results} == set(service.taxonomy.category_names)
    for t in results:
        assert abs(sum(t.probabilities["category"].values()) - 1) < 1e-3
        assert t.needs_human == (t.confidence.category < service.runtime.triage.needs_human_below)
        assert t.action and t.action not in {c.action for c in service.taxonomy.categories}


def test_form_type_shifts_the_prior(encoder: Encoder) -> None:
    from core.store.sqlite import SQLiteStore

    service = make_service(SQLiteStore(":memory:"), encoder)
    text = "the export on the dashboard"
    as_feature = service.engine.triage(service.make_item(text, form_type="feature"))
    as_commercial = service.engine.triage(service.make_item(text, form_type="commercial"))
    general = service.engine.triage(service.make_item(text, form_type="general"))
    p = {
        k: t.probabilities["category"]
        for k, t in [("feature", as_feature), ("commercial", as_commercial), ("general", general)]
    }
    assert p["feature"]["feature-request"] > p["general"]["feature-request"] + 0.1
    assert p["commercial"]["noise"] > p["general"]["noise"] + 0.1
    assert as_feature.category == "feature-request"


def test_pii_is_redacted_before_the_model_and_the_store(backend, encoder: Encoder) -> None:
    recording = RecordingEncoder(encoder)
    store = backend.reopen()
    service = make_service(store, recording)
    item = service.make_item(
        "I was charged twice, card 4111 1111 1111 1111, mail me at jo@example.com", source="t"
    )
    triage, is_new = service.submit(item)
    assert is_new and item.pii_kinds == ["card", "email"]
    assert not any("4111" in t or "jo@example.com" in t for t in recording.seen)
    assert b"jo@example.com" not in backend.raw() and b"4111 1111" not in backend.raw()
    stored = store.get_item(item.id)
    assert stored is not None and stored.text == stored.redacted_text
    assert "[card]" in stored.redacted_text and "4111" not in triage.action


def test_bad_input_is_refused_and_nothing_is_stored(backend, encoder: Encoder) -> None:
    store = backend.reopen()
    service = make_service(store, encoder)
    for raw, reason in [
        ("   ", "empty"),
        (b"\xff\xfe\x00\x01", "binary"),
        ("x" * 1_000_000, "over the 65536-byte limit"),
    ]:
        with pytest.raises(InputError, match=reason):
            service.make_item(raw)
    assert store.count_items() == 0


def test_submit_is_idempotent(backend, encoder: Encoder) -> None:
    store = backend.reopen()
    service = make_service(store, encoder)
    first, new1 = service.submit(service.make_item("The search page is blank", source="t"))
    again, new2 = service.submit(service.make_item("The search page is blank", source="t"))
    assert new1 and not new2 and first == again
    assert store.count_items() == 1


def test_votes_labels_rewards_and_errors(backend, encoder: Encoder) -> None:
    store = backend.reopen()
    service = make_service(store, encoder, reviewers=frozenset({"ann", "bob", "cy"}))
    triage, _ = service.submit(
        service.make_item("Checkout fails for every customer since the deploy", source="t")
    )
    item_id = triage.item_id

    confirmed = service.vote(item_id, "ann", "confirm")
    assert confirmed.stored and confirmed.label is not None
    assert (confirmed.label.category, confirmed.label.severity) == (
        triage.category,
        triage.severity,
    )
    assert confirmed.reward is not None and confirmed.reward.value == 1.0
    assert confirmed.reward.model_version == triage.model_version

    other = "content-gap" if triage.category != "content-gap" else "website-bug"
    service.vote(item_id, "bob", "correct", category=other, severity="low")
    corrected = service.vote(item_id, "cy", "correct", category=other, severity="low")
    assert corrected.label is not None and corrected.label.category == other
    assert corrected.label.disagreement and corrected.label.reviewers == ["ann", "bob", "cy"]
    assert corrected.reward is not None and corrected.reward.value < 0
    assert [r.value for r in store.rewards(item_id)] == [corrected.reward.value]

    # Retracting two of three votes leaves ann's confirm as the label; retracting hers too
    # removes the label, but every event stays in the audit trail.
    service.vote(item_id, "bob", "retract")
    service.vote(item_id, "cy", "retract")
    label = store.get_label(item_id)
    assert label is not None and label.category == triage.category
    service.vote(item_id, "ann", "retract")
    assert store.get_label(item_id) is None
    assert len(store.events(item_id)) == 6

    noise = service.vote(item_id, "ann", ValidationKind.NOISE)
    assert noise.label is not None and (noise.label.category, noise.label.severity) == (
        "noise",
        "low",
    )

    before = len(store.events())
    with pytest.raises(ValueError, match="unknown category 'bugz'"):
        service.vote(item_id, "ann", "correct", category="bugz")
    with pytest.raises(UnknownItemError):
        service.vote("fb_nope", "ann", "confirm")
    with pytest.raises(NotAllowedError):
        service.vote(item_id, "mallory", "confirm")
    assert len(store.events()) == before

    duplicate = service.vote(item_id, "bob", "confirm", validation_id="slack-Ev1")
    again = service.vote(item_id, "bob", "confirm", validation_id="slack-Ev1")
    assert duplicate.stored and not again.stored
    assert len(store.events()) == before + 1


def test_online_learning_changes_a_later_prediction_and_survives_restart(
    backend, encoder: Encoder
) -> None:
    store = backend.reopen()
    service = make_service(store, encoder)
    texts = [
        "the mascot drawing in the footer looks like a potato",
        "your mascot drawing on the homepage looks like a potato",
        "the potato mascot drawing on the about page",
    ]
    probe = service.make_item("that mascot drawing looks like a potato to me", source="probe")
    cold = service.engine.triage(probe)
    target = "positive" if cold.category != "positive" else "content-gap"
    reports = []
    for text in texts:
        triage, _ = service.submit(service.make_item(text, source="t"))
        outcome = service.vote(triage.item_id, "ann", "correct", category=target, severity="low")
        assert outcome.learned is not None
        reports.append(outcome.learned)
    # Never worse on what was validated before each step.
    for report in reports[1:]:
        assert report.accuracy_after >= report.accuracy_before
    learned = service.engine.triage(probe)
    assert learned.category == target, (cold.category, learned.probabilities)
    assert learned.model_version != cold.model_version

    # A new process on the same store relearns every label at start-up.
    restarted = make_service(backend.reopen(), encoder)
    report = restarted.warm_start()
    assert report.labels == 3
    assert restarted.engine.triage(probe).category == target


def test_stats_and_export(backend, encoder: Encoder) -> None:
    store = backend.reopen()
    service = make_service(store, encoder)
    a, _ = service.submit(service.make_item("Login is broken for everyone", source="t"))
    b, _ = service.submit(service.make_item("Please add a CSV export", source="t"))
    service.submit(service.make_item("Love it", source="t"))
    service.vote(a.item_id, "ann", "confirm")
    wrong = "noise" if b.category != "noise" else "positive"
    service.vote(b.item_id, "ann", "correct", category=wrong, severity="low")
    stats = service.stats().as_dict()
    assert (stats["items"], stats["triaged"], stats["validated"], stats["votes"]) == (3, 3, 2, 2)
    assert stats["category_accuracy"] == 0.5
    assert stats["per_category"][wrong] == {"n": 1, "accuracy": 0.0}
    exported = {r["id"]: r for r in service.export_labels()}
    assert set(exported) == {a.item_id, b.item_id}
    assert exported[a.item_id]["reward"]["value"] == 1.0
    assert exported[b.item_id]["category"] == wrong and exported[b.item_id]["reviewers"] == ["ann"]
    assert exported[b.item_id]["text"] == "Please add a CSV export"


def test_an_update_that_hurts_earlier_labels_keeps_to_its_time_budget(encoder: Encoder) -> None:
    """Votes that contradict earlier ones make the update train longer, but only while it
    stays within `[learning] online_seconds`; either way it is rolled back in the end."""
    base = load_taxonomy()
    texts = [f"the checkout page crashes when I pay with card {n}" for n in range(6)]

    def engine_with(seconds: float) -> TriageEngine:
        defaults = RuntimeSettings()
        learning = defaults.learning.model_copy(update={"online_seconds": seconds})
        runtime = defaults.model_copy(update={"learning": learning})
        engine = TriageEngine(base, encoder, runtime=runtime)
        engine.learn(labelled("website-bug", "a"), steps=100, previous=0)
        return engine

    def labelled(category: str, prefix: str) -> list[tuple[FeedbackItem, Label]]:
        items = [make_item(t, source="t", item_id=f"{prefix}{n}") for n, t in enumerate(texts)]
        label = {"category": category, "severity": "high", "reviewers": ["ann"], "agreement": 1.0}
        return [(i, Label(item_id=i.id, **label)) for i in items]

    later = [pair for prefix in "bcde" for pair in labelled("positive", prefix)]
    contradicting = labelled("website-bug", "a") + later
    steps = RuntimeSettings().learning.online_steps
    for seconds, rounds in ((60.0, 4), (1e-6, 1)):
        engine = engine_with(seconds)
        probe = engine.triage(contradicting[0][0]).probabilities
        report = engine.learn(contradicting, previous=6)
        assert report.steps == rounds * steps, (seconds, report)
        assert report.accuracy_after == report.accuracy_before > 0.5
        assert engine.triage(contradicting[0][0]).probabilities == probe  # rolled back


def test_an_action_a_reviewer_types_is_cleaned_and_redacted(backend, encoder: Encoder) -> None:
    store = backend.reopen()
    service = make_service(store, encoder)
    triage, _ = service.submit(service.make_item("Checkout page crashes", source="t"))
    typed = "Call jo@example.com\x00 about it, password: Hunter2!x"
    outcome = service.vote(triage.item_id, "ann", "correct", action=typed)
    (stored,) = store.current_votes(triage.item_id)
    assert outcome.stored and stored.action is not None
    assert "jo@example.com" not in stored.action and "Hunter2" not in stored.action
    assert "\x00" not in stored.action and stored.action.startswith("Call [email]")
