"""The GPU trainer's code path, tiny and on the CPU: `triage-bot train --finetune` fine-tunes
the encoder, the registry keeps its weights next to the heads (over Mongo's 16 MiB document
limit), the promotion gate still holds, and services on the store serve the tuned encoder.
The real runs are `scripts/gpu-train-check`; this checks the code, not the figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import Backend, with_database
from typer.testing import CliRunner

from bot.app import default_encoder
from bot.cli import app
from core.backends import bundle
from core.backends.embedded import MiniLMEncoder
from core.ports import Store
from core.service import TriageService
from core.store.mongo import MongoStore
from core.store.sqlite import SQLiteStore
from core.taxonomy import Taxonomy, load_taxonomy
from core.triage import TriageEngine
from training.train import held_out, labelled_examples, score

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [json.loads(x) for x in (REPO / "examples" / "feedback.jsonl").read_text().splitlines()]
LABELLED = EXAMPLES[:20]  # 13 to train on, 7 held out (by `held_out`, share 0.2)
T0 = datetime(2026, 11, 1, tzinfo=UTC)
TINY = ["--finetune", "--device", "cpu", "--epochs", "1", "--batch-size", "8"]
TINY += ["--max-length", "32", "--steps", "60", "--json"]


def store_url(store: Store) -> str:
    if isinstance(store, SQLiteStore):
        return f"sqlite:///{store.path}"
    assert isinstance(store, MongoStore)
    return with_database(store.url, store.database_name)


def service_on(store: Store, taxonomy: Taxonomy) -> TriageService:
    """A bot's service with its own encoder: loading a tuned model swaps that encoder's
    weights, and the test session's shared encoder must stay stock."""
    encoder = default_encoder()
    assert isinstance(encoder, MiniLMEncoder)
    return TriageService(store, TriageEngine(taxonomy, encoder.fork()), taxonomy)


def train_cli(store: Store, *args: str) -> dict:
    result = CliRunner().invoke(
        app, ["train", *args, "--store", store_url(store)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_finetuned_model_is_gated_saved_and_served(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRIAGE_REVIEWERS", raising=False)
    taxonomy = load_taxonomy()
    store = backend.reopen()
    running = service_on(store, taxonomy)
    items = [
        running.make_item(row["text"], item_id=row["id"], form_type=row["form_type"])
        for row in LABELLED
    ]
    running.submit_many(items)
    for row in LABELLED:
        running.vote(
            row["id"],
            "ann",
            "correct",
            category=row["category"],
            severity=row["severity"],
            created_at=T0,
            learn=False,
        )
    probe = running.make_item("The checkout page crashes when I press pay", source="probe")
    stock_vector = running.engine.embed([probe])

    first = train_cli(store, *TINY, "--force")
    assert first["promoted"] and first["train_count"] == 13 and first["eval_count"] == 7
    assert first["finetune"]["device"] == "cpu" and first["finetune"]["steps"] == 2
    record, weights = store.get_model(first["version"]) or pytest.fail("model not saved")
    assert record.config["encoder_weights"] == "fine-tuned"
    assert record.config["finetune"]["max_length"] == 32
    assert len(weights) > 40_000_000  # MiniLM-L6 in fp16, next to the heads
    heads, state = bundle.unpack(weights)
    assert state is not None and bundle.unpack(heads) == (heads, None)
    assert {a.dtype for a in state.values() if a.dtype.kind == "f"} == {np.dtype(np.float16)}
    assert bundle.digest(state) == record.config["encoder_weights_sha256"]
    assert default_encoder().tuned_weights is None  # type: ignore[attr-defined]

    # A running service picks the promoted model up, tuned encoder included.
    assert running.refresh_model()
    assert running.engine.base_version == first["version"]
    assert running.engine.encoder.tuned_weights is not None  # type: ignore[attr-defined]
    assert not np.allclose(running.engine.embed([probe]), stock_vector, atol=1e-4)
    if backend.name != "sqlite":
        return  # the rest does not depend on the store: once is enough (CPU time)

    # A fresh process reproduces exactly what the trainer scored on the held-out slice.
    fresh = service_on(backend.reopen(), taxonomy)
    assert fresh.refresh_model()
    held = [e for e in labelled_examples(store) if held_out(e[0].id, 0.2)]
    assert score(fresh.engine, held) == record.metrics["candidate"]
    triage = fresh.engine.triage(probe)
    assert triage.model_version.startswith(first["version"])
    assert triage.category in taxonomy.category_names

    # Poisoned training labels make a worse candidate: saved, not promoted.
    for row in LABELLED:
        if not held_out(row["id"], 0.2):
            running.vote(
                row["id"],
                "bob",
                "correct",
                category="noise",
                severity="low",
                created_at=T0 + timedelta(hours=1),
                learn=False,
            )
    worse = train_cli(store, "--steps", "60", "--json")  # heads only, on the stock encoder
    assert not worse["promoted"], worse
    assert worse["candidate"]["category_macro_f1"] < worse["current"]["category_macro_f1"]
    assert worse["current_version"] == first["version"]
    current = store.promoted_model()
    assert current is not None and current.version == first["version"]

    # A heads-only model promoted later puts the stock encoder back.
    store.promote_model(worse["version"])
    plain = store.get_model(worse["version"]) or pytest.fail("model not saved")
    assert plain[0].config["encoder_weights"] == "stock"
    assert worse["finetune"] is None and len(plain[1]) < 20_000_000
    assert running.refresh_model()
    assert running.engine.encoder.tuned_weights is None  # type: ignore[attr-defined]
    assert np.allclose(running.engine.embed([probe]), stock_vector, atol=1e-6)


def test_cuda_without_a_gpu_is_one_line(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: scripts/gpu-train-check covers it")
    result = CliRunner().invoke(
        app, ["train", "--device", "cuda", "--store", f"sqlite:///{tmp_path / 'x.db'}"]
    )
    assert result.exit_code == 2
    assert "--device cuda: no CUDA device available" in result.stderr


def test_eval_finetune_scores_a_finetuned_model(tmp_path: Path) -> None:
    """`triage-bot eval --finetune`: the same fine-tuning, measured on labelled files."""
    for name, rows in (("a", EXAMPLES[:12]), ("b", EXAMPLES[40:48])):
        lines = [json.dumps({"text": r["text"], "label": r["category"]}) for r in rows]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines))
    args = ["eval", "--train", str(tmp_path / "a.jsonl"), "--test", str(tmp_path / "b.jsonl")]
    args += ["--label-field", "label", "--finetune", "--epochs", "1", "--batch-size", "8"]
    args += ["--max-length", "16", "--steps", "20", "--json"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["n_train"] == 12 and out["n_test"] == 8 and 0.0 <= out["macro_f1"] <= 1.0
    assert out["finetune"]["epochs"] == 1 and out["finetune"]["max_length"] == 16
    assert default_encoder().tuned_weights is None  # type: ignore[attr-defined]


def test_time_budget_cuts_the_plan_and_still_decays_the_learning_rate() -> None:
    """A budget smaller than the plan: fewer steps, reported as such, and the encoder is
    still tuned (the schedule reaches zero at the new last step instead of stopping hot)."""
    from training.evaluate import examples_from_rows
    from training.finetune import BUDGET_PROBE_STEPS, FinetuneConfig, finetune_encoder

    taxonomy = load_taxonomy()
    rows = [{"text": r["text"], "category": r["category"]} for r in EXAMPLES[:40]]
    examples = examples_from_rows(rows, taxonomy, "category", "budget")
    config = FinetuneConfig(epochs=2, batch_size=2, max_length=16, time_budget=1e-3)
    tuned, report = finetune_encoder(examples, taxonomy, default_encoder(), config)
    assert report.planned_steps == 40 and report.steps == BUDGET_PROBE_STEPS
    assert report.epochs_done == pytest.approx(BUDGET_PROBE_STEPS / 20)
    assert report.stopped_by == "time budget" and report.budget_seconds == 1e-3
    assert tuned.tuned_weights is not None
    unlimited = FinetuneConfig(epochs=1, batch_size=8, max_length=16, time_budget=None)
    assert finetune_encoder(examples, taxonomy, default_encoder(), unlimited)[1].steps == 5
    with pytest.raises(ValueError, match="time-budget"):
        FinetuneConfig(time_budget=0)


@pytest.mark.parametrize(
    ("minimum", "flag", "tuned"),
    [(10, None, True), (13, None, False), (13, "--finetune", True), (10, "--no-finetune", False)],
)
def test_eval_fine_tunes_when_train_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minimum: int, flag: str | None, tuned: bool
) -> None:
    """Without --finetune/--no-finetune, fine-tuning follows the config's
    `finetune_min_examples`: on with enough labels to train on (12 here), off below."""
    config = (REPO / "config" / "default.toml").read_text()
    assert "finetune_min_examples = 300" in config
    team = tmp_path / "team.toml"
    team.write_text(
        config.replace("finetune_min_examples = 300", f"finetune_min_examples = {minimum}")
    )
    monkeypatch.setenv("TRIAGE_CONFIG", str(team))
    for name, rows in (("a", EXAMPLES[:12]), ("b", EXAMPLES[40:44])):
        lines = [json.dumps({"text": r["text"], "label": r["category"]}) for r in rows]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines))
    args = ["eval", "--train", str(tmp_path / "a.jsonl"), "--test", str(tmp_path / "b.jsonl")]
    args += ["--label-field", "label", "--epochs", "1", "--batch-size", "8", "--max-length", "16"]
    args += ["--steps", "10", "--json"] + ([flag] if flag else [])
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    if tuned:
        assert out["finetune"]["steps"] == 2 and out["finetune"]["time_budget"] == 600.0
    else:
        assert out["finetune"] is None
