"""The learning loop with real stores: reviewer weights, batch training, the promotion gate,
and a running service picking up a promoted model."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import default_encoder
from core.service import TriageService
from core.taxonomy import load_taxonomy
from core.triage import TriageEngine
from training.simulate import simulate, taxonomy_for_labels
from training.train import held_out, train

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [json.loads(x) for x in (REPO / "examples" / "feedback.jsonl").read_text().splitlines()]
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def service_on(store) -> TriageService:
    taxonomy = load_taxonomy()
    return TriageService(store, TriageEngine(taxonomy, default_encoder()), taxonomy)


def test_reviewer_track_record_weighs_their_votes(backend) -> None:
    service = service_on(backend.reopen())
    items = []
    for i, text in enumerate(
        ["Login broken", "Add dark mode", "Docs missing for auth", "Great docs"]
    ):
        triage, _ = service.submit(service.make_item(text, source=f"t{i}"))
        items.append(triage.item_id)
    # ann agrees with cy on three items; bob disagrees with both on them.
    for n, item in enumerate(items[:3]):
        at = T0 + timedelta(minutes=n * 10)
        service.vote(
            item,
            "ann",
            "correct",
            category="website-bug",
            severity="high",
            created_at=at,
            learn=False,
        )
        service.vote(
            item,
            "cy",
            "correct",
            category="website-bug",
            severity="high",
            created_at=at + timedelta(minutes=1),
            learn=False,
        )
        service.vote(
            item,
            "bob",
            "correct",
            category="noise",
            severity="low",
            created_at=at + timedelta(minutes=2),
            learn=False,
        )
    weights = service.reviewer_weights()
    assert weights["ann"] > 1.0 > weights["bob"]
    # On a new item ann and bob disagree; bob votes last, but ann's record wins the tie.
    service.vote(items[3], "ann", "correct", category="positive", severity="low", learn=False)
    outcome = service.vote(
        items[3], "bob", "correct", category="noise", severity="low", learn=False
    )
    assert outcome.label is not None and outcome.label.category == "positive"
    assert outcome.label.disagreement
    stats = service.stats().as_dict()
    assert stats["disagreements"] == 4


def test_training_promotion_gate_and_pickup(backend) -> None:
    store = backend.reopen()
    service = service_on(store)
    taxonomy, encoder = service.taxonomy, service.engine.encoder
    ids = {}
    for row in EXAMPLES:
        item = service.make_item(
            row["text"], item_id=row["id"], form_type=row["form_type"], page=row["page"]
        )
        service.submit(item)
        service.vote(
            item.id,
            "ann",
            "correct",
            category=row["category"],
            severity=row["severity"],
            created_at=T0,
            learn=False,
        )
        ids[row["id"]] = row
    first = train(store, taxonomy, encoder, steps=60, force=True)
    assert first.promoted and first.reason == "forced"
    assert first.train_count + first.eval_count == len(EXAMPLES) and first.eval_count > 0
    assert store.promoted_model().version == first.version
    record, weights = store.get_model(first.version)
    assert record.config["taxonomy"]["categories"][0]["name"] == "website-bug"
    assert record.metrics["candidate"]["category_macro_f1"] > 0 and len(weights) > 1000

    # A running service picks the promoted model up without a restart.
    assert service.refresh_model()
    assert service.engine.base_version == first.version
    assert not service.refresh_model()  # nothing new

    # Poison the training slice (bob relabels everything not held out as noise, later):
    # the candidate is worse on the held-out slice and is not promoted.
    for item_id in ids:
        if not held_out(item_id, 0.2):
            service.vote(
                item_id,
                "bob",
                "correct",
                category="noise",
                severity="low",
                created_at=T0 + timedelta(hours=1),
                learn=False,
            )
    second = train(store, taxonomy, encoder, steps=60)
    assert not second.promoted, second
    assert second.candidate["category_macro_f1"] < second.current["category_macro_f1"]
    assert store.promoted_model().version == first.version
    assert [m.version for m in store.list_models()] == [second.version, first.version]

    # A restart keeps every label and the promoted model.
    restarted = service_on(backend.reopen())
    report = restarted.warm_start()
    assert report.labels == len(EXAMPLES)
    assert restarted.engine.base_version == first.version


def test_simulation_reports_what_the_issue_asks_for() -> None:
    rows = [
        {"text": r["text"], "label": r["category"], "form_type": r["form_type"]} for r in EXAMPLES
    ]
    taxonomy = taxonomy_for_labels(sorted({r["label"] for r in rows}), load_taxonomy())
    result = simulate(
        rows[:36],
        rows[36:],
        taxonomy=taxonomy,
        encoder=default_encoder(),
        budget=30,
        order="uncertainty",
        label_field="label",
        noise=0.1,
        seed=1,
    )
    figures = result.as_dict()
    assert set(figures["macro_f1_at"]) == {"25", "30"}
    assert 0 <= figures["prequential_accuracy"] <= 1 and 0 <= figures["full_macro_f1"] <= 1
    assert figures["validations"] == 30


def test_batch_training_halves_the_embedding_weight_once_labels_are_many() -> None:
    """Few labels lean on the embedding (full weight); from MANY_LABELS on, the n-grams
    get their say (half weight), and the saved model keeps the weight it was trained with."""
    from core.backends.heads import MANY_LABELS, MANY_LABELS_EMBEDDING_SCALE
    from training.evaluate import examples_from_rows
    from training.train import fit_candidate

    taxonomy = load_taxonomy()
    many = [dict(r, text=f"{r['text']} (report {i})") for i, r in enumerate(EXAMPLES * 6)]
    examples = examples_from_rows(many, taxonomy, "category", "many")
    assert len(examples) >= MANY_LABELS
    encoder = default_encoder()
    few = fit_candidate(examples[:40], taxonomy, encoder, steps=10)
    lots = fit_candidate(examples[:MANY_LABELS], taxonomy, encoder, steps=10)
    assert few.heads.embedding_scale[0] == 1.0
    assert lots.heads.embedding_scale[0] == MANY_LABELS_EMBEDDING_SCALE
    reloaded = TriageEngine(taxonomy, encoder)
    reloaded.load("v", lots.weights())
    assert reloaded.heads.embedding_scale[0] == MANY_LABELS_EMBEDDING_SCALE
