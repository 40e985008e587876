"""A reviewer simulation: how fast does the production learning loop learn from validations?

Items of a stream arrive in order and are triaged by the production service (store, votes,
consensus, online learning: the same code the bot runs). A simulated reviewer validates a
budget of them, spread over the stream, chosen at random or from the review queue (smallest
margin between the top two categories first), answering with the gold label (wrong
with probability `noise`).
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.governance import InputError, clean_text, jsonl_lines, read_text_file
from core.models import FeedbackItem
from core.ports import Encoder
from core.runtime import RuntimeSettings
from core.service import TriageService
from core.store.sqlite import SQLiteStore
from core.taxonomy import Taxonomy
from core.triage import TriageEngine
from training.candidate import fit_candidate
from training.evaluate import gold_label
from training.metrics import accuracy, macro_f1

CHECKPOINTS = (25, 50, 100, 200)


def load_rows(
    path: Path,
    label_field: str,
    on_bad: Callable[[int, str], None] | None = None,
    labels: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """The good labelled rows of a JSONL file; each bad one is handed to `on_bad` with its
    line and the reason (without `on_bad`, the first bad row is a ValueError).

    Lines end at `\n` only (U+2028 and the other Unicode line breaks are valid inside a
    JSON string). A row is bad when it is not JSON, when its text or form type is not a
    string, when its label is missing or neither a string nor an integer, or when its text
    is not something intake would store (`core.governance.clean_text`), or, given
    `labels`, when its label is not one of them. A file is refused as a whole only when its
    bytes are not text.
    """

    def bad(number: int, reason: str) -> None:
        if on_bad is None:
            raise ValueError(f"{path}:{number}: {reason}")
        on_bad(number, reason)

    rows = []
    for number, line in jsonl_lines(read_text_file(path)):
        parsed = _parse_row(line, label_field, labels)
        if isinstance(parsed, str):
            bad(number, parsed)
        else:
            rows.append(parsed)
    if not rows:
        raise ValueError(f"{path}: no usable rows")
    return rows


def _parse_row(line: str, label_field: str, labels: Collection[str] | None) -> str | dict[str, Any]:
    """The row a JSONL line holds, or why it cannot be used."""
    if any("\udc80" <= c <= "\udcff" for c in line):  # bytes that were not UTF-8
        return "not UTF-8 text"
    try:
        row = json.loads(line, strict=False)  # raw controls in strings are text
    except json.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    except RecursionError:
        return "invalid JSON: nested too deeply"
    except ValueError as exc:  # e.g. an integer past Python's digit limit
        return f"invalid JSON: {str(exc).partition(';')[0]}"
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    if not isinstance(row.get("text"), str):
        return "expected an object with a text field (a string)"
    if row.get("form_type") is not None and not isinstance(row["form_type"], str):
        return f"form_type must be a string, got {type(row['form_type']).__name__}"
    if label_field not in row:
        return f"no {label_field!r} field"
    label = row[label_field]
    if isinstance(label, bool) or not isinstance(label, str | int) or not str(label).strip():
        return f"{label_field!r} must be a non-empty string (or an integer)"
    if labels is not None and str(label) not in labels:
        return f"unknown {label_field} {str(label)!r} (not one of: {', '.join(sorted(labels))})"
    try:  # any size: evaluation cuts the text to the configured limit itself
        clean_text(row["text"], sys.maxsize)
    except InputError as exc:
        return str(exc)
    return row


def taxonomy_for_labels(labels: Sequence[str], base: Taxonomy) -> Taxonomy:
    """A taxonomy whose categories are a data set's labels (for --label-field).

    Labels that the base taxonomy knows keep their description, examples and cues; others
    get their own name as a description, so the cold start still has something to go on.
    """
    known = {c.name: c for c in base.categories}
    categories = []
    for i, label in enumerate(labels):
        spec = known.get(label)
        categories.append(
            {
                "name": label,
                "description": spec.description if spec else label.replace("-", " "),
                "examples": list(spec.examples) if spec else [],
                "cues": list(spec.cues) if spec else [],
                "emoji": f"label_{i}",
                "action": spec.action if spec else f"Handle as {label}: {{subject}}{{where}}.",
            }
        )
    data = base.model_dump()
    data.update(categories=categories, form_types={})
    return Taxonomy.model_validate(data)


@dataclass
class SimulationResult:
    prequential_accuracy: float
    macro_f1_at: dict[str, float]
    full_macro_f1: float
    cold_macro_f1: float
    validations: int
    learn_ms_p50: float
    learn_ms_max: float
    curve: list[tuple[int, float]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "prequential_accuracy": round(self.prequential_accuracy, 4),
            "macro_f1_at": {k: round(v, 4) for k, v in self.macro_f1_at.items()},
            "full_macro_f1": round(self.full_macro_f1, 4),
            "cold_macro_f1": round(self.cold_macro_f1, 4),
            "validations": self.validations,
            "learn_ms_p50": round(self.learn_ms_p50, 1),
            "learn_ms_max": round(self.learn_ms_max, 1),
        }


def _items(
    service: TriageService, rows: Sequence[dict[str, Any]], prefix: str
) -> list[FeedbackItem]:
    items = []
    for i, row in enumerate(rows):
        text = row["text"][: service.runtime.triage.max_text_bytes // 4]
        items.append(
            service.make_item(
                text, source="simulation", item_id=f"{prefix}-{i}", form_type=row.get("form_type")
            )
        )
    return items


def simulate(
    stream: Sequence[dict[str, Any]],
    test: Sequence[dict[str, Any]],
    *,
    taxonomy: Taxonomy,
    encoder: Encoder,
    budget: int,
    order: str = "uncertainty",
    label_field: str = "category",
    noise: float = 0.0,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    runtime: RuntimeSettings | None = None,
) -> SimulationResult:
    if order not in ("random", "uncertainty"):
        raise ValueError("order must be 'random' or 'uncertainty'")
    rng = random.Random(seed)
    labels = taxonomy.category_names
    engine = TriageEngine(taxonomy, encoder, seed=seed, runtime=runtime)
    service = TriageService(SQLiteStore(":memory:"), engine, taxonomy)
    stream_items = _items(service, stream, "a")
    test_items = _items(service, test, "b")
    gold_stream = [str(r[label_field]) for r in stream]
    gold_test = [str(r[label_field]) for r in test]
    with_progress = progress or (lambda done, total: None)

    def test_f1() -> float:
        return macro_f1(
            gold_test, [t.category for t in service.engine.triage_many(test_items)], labels
        )

    cold = test_f1()
    budget = min(budget, len(stream_items))
    checkpoints = sorted({c for c in CHECKPOINTS if c <= budget} | {budget})
    f1_at: dict[str, float] = {}
    curve: list[tuple[int, float]] = [(0, cold)]
    arrived_predictions: list[str] = []
    pool: list[int] = []
    done = 0
    learn_ms: list[float] = []
    for i, item in enumerate(stream_items):
        triage, _ = service.submit(item)
        arrived_predictions.append(triage.category)
        pool.append(i)
        target = budget * (i + 1) // len(stream_items)
        while done < target and pool:
            if order == "random":
                pick = pool.pop(rng.randrange(len(pool)))
            else:
                margins = service.engine.category_margin([stream_items[j] for j in pool])
                pick = pool.pop(int(margins.argmin()))
            answer = gold_stream[pick]
            if noise and rng.random() < noise:
                answer = rng.choice([lab for lab in labels if lab != answer] or [answer])
            predicted = service.store.latest_triage(stream_items[pick].id)
            started = time.perf_counter()
            if predicted is not None and predicted.category == answer:
                service.vote(
                    stream_items[pick].id, "sim-reviewer", "confirm", platform="simulation"
                )
            else:
                service.vote(
                    stream_items[pick].id,
                    "sim-reviewer",
                    "correct",
                    category=answer,
                    platform="simulation",
                )
            learn_ms.append((time.perf_counter() - started) * 1000)
            done += 1
            if done in checkpoints:
                f1_at[str(done)] = test_f1()
                curve.append((done, f1_at[str(done)]))
            with_progress(done, budget)

    examples = [
        (item, gold_label(item.id, g, taxonomy))
        for item, g in zip(stream_items, gold_stream, strict=True)
    ]
    full = fit_candidate(
        examples, taxonomy, encoder, seed=seed, runtime=engine.runtime
    )  # what `train` would build
    full_f1 = macro_f1(gold_test, [t.category for t in full.triage_many(test_items)], labels)
    learn_ms.sort()
    return SimulationResult(
        prequential_accuracy=accuracy(gold_stream, arrived_predictions),
        macro_f1_at=f1_at,
        full_macro_f1=full_f1,
        cold_macro_f1=cold,
        validations=done,
        learn_ms_p50=learn_ms[len(learn_ms) // 2] if learn_ms else 0.0,
        learn_ms_max=learn_ms[-1] if learn_ms else 0.0,
        curve=curve,
    )


def plot_curves(
    curves: dict[str, list[tuple[int, float]]], full: float, path: Path, title: str
) -> None:
    """Learning curves (macro-F1 on the test set by validations) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, points in curves.items():
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", label=name)
    ax.axhline(full, color="grey", linestyle="--", label=f"all labels ({full:.3f})")
    ax.axhline(0.9 * full, color="grey", linestyle=":", label="90% of all labels")
    ax.set_xlabel("validations")
    ax.set_ylabel("macro-F1 on the test set")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
