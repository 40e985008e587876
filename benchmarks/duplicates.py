"""`triage-bot bench duplicates`: how well duplicates are found, and what finding them costs.

Quality, on labelled duplicate pairs from public bug trackers (`load_pairs`):
- `nlbse`: the NLBSE'24 GitHub issues in `../shared/data/external/` (react, vscode,
  tensorflow, bitcoin, opencv). Issues filed with the same title (React DevTools files one
  issue per crash, titled by its error message: "Cannot add node "1" because a node with
  that id is already in the Store.") are duplicates of each other;
- `mozilla` (`--mozilla DIR`): Firefox and Firefox-for-mobile Bugzilla reports that
  Mozilla's triagers resolved as DUPLICATE of another report, with that report, as
  published by Jahan & Rahman (SANER 2023, "Towards Understanding the Impacts of Textual
  Dissimilarity on Duplicate Bug Report Detection"; DIR is a clone of their repository,
  github.com/SigmaJahan/Towards-Understanding-the-Impacts-of-Textual-Dissimilarity-on-Duplicate-Bug-Report-Detection).
  They split the pairs into textually similar and dissimilar ones; both are reported.

Each report's hardest negative is added: the report of the set most like it by the
detector's own score that is not its duplicate (what the detector would wrongly group it
with). Precision and recall of `score >= threshold` over the pairs are reported at the
default threshold, and after N merge/split votes: the pairs are split in two halves;
reviewers' votes are drawn from the detector's mistakes on the first half (a split for a
wrong grouping, a merge for a missed duplicate), the threshold is learned from them
(`core.duplicates.learned_threshold`) and scored on the second half.

Cost (`cost`): `DuplicateDesk.check` per new item with N open cards in the window (the
encoder's cached embedding of the item, one matrix product over the window, the n-gram
overlap of the nearest few), on a scratch SQLite store, p50/p99 over a stream of items of
which a fifth repeat an open card and the rest are texts no open card was made from.
"""

from __future__ import annotations

import ast
import csv
import json
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.duplicates import DuplicateDesk, learned_threshold, ngram_cosine, ngram_vector
from core.models import FeedbackItem, utcnow
from core.ports import Encoder
from core.runtime import DuplicateSettings, RuntimeSettings
from core.triage import encoder_text

REPO = Path(__file__).resolve().parents[1]
NLBSE = REPO.parent / "shared" / "data" / "external" / "nlbse24_issues.dev.jsonl"
DESCRIPTION_CHARS = 1500  # of a Bugzilla description (their logs run to megabytes)
VOTE_COUNTS = (0, 5, 10, 20, 50)
LONERS = 300  # distinct reports whose nearest neighbour is a negative pair


@dataclass
class PairSet:
    name: str
    texts: list[str]
    pairs: list[tuple[int, int, bool, str]]  # (a, b, duplicate, stratum)


def load_nlbse(path: Path = NLBSE) -> PairSet:
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    by_title: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_title[(row["repo"], row["title"].strip().lower())].append(i)
    pairs = []
    for members in by_title.values():
        for x, a in enumerate(members):
            for b in members[x + 1 :]:
                pairs.append((a, b, True, "same title"))
    return PairSet("nlbse (GitHub, same title)", [row["text"] for row in rows], pairs)


def _cell(value: str) -> str:
    """The dataset keeps each text as a one-element Python list literal."""
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value
    return " ".join(str(x) for x in parsed) if isinstance(parsed, list) else str(parsed)


def load_mozilla(folder: Path) -> PairSet:
    csv.field_size_limit(1 << 30)
    texts: list[str] = []
    index: dict[str, int] = {}
    pairs = []
    for path in sorted(folder.glob("Datatset_*_Pair (trigram)/*_textually_*_pair.csv")):
        stratum = "textually similar" if "_similar_" in path.name else "textually dissimilar"
        for row in csv.DictReader(path.open(encoding="utf-8")):
            ends = []
            for summary, description, key in (
                ("Summary1", "description1", row["Bug ID"]),
                ("summary2", "description2", row["Duplicate_Bug_Ids"]),
            ):
                text = _cell(row[summary]) + "\n\n" + _cell(row[description])[:DESCRIPTION_CHARS]
                key = f"{path.parent.name}:{key}"
                if key not in index:
                    index[key] = len(texts)
                    texts.append(text)
                ends.append(index[key])
            if ends[0] != ends[1]:
                pairs.append((ends[0], ends[1], True, stratum))
    if not pairs:
        raise FileNotFoundError(f"{folder}: no Datatset_*_Pair (trigram)/*_pair.csv files")
    return PairSet("mozilla (Bugzilla, resolved duplicate)", texts, pairs)


class Scorer:
    """The detector's score for any two texts of a set, every text embedded once."""

    def __init__(self, texts: Sequence[str], encoder: Encoder, settings: DuplicateSettings):
        runtime = RuntimeSettings()
        items = [FeedbackItem(id=f"t{i}", text=t, redacted_text=t) for i, t in enumerate(texts)]
        self.vectors = encoder.encode([encoder_text(item, runtime) for item in items])
        buckets = runtime.learning.lexical_buckets
        self.ngrams = [ngram_vector(t, buckets) for t in texts]
        self.weight = settings.embedding_weight

    def score(self, a: int, b: int) -> float:
        embedding = float(self.vectors[a] @ self.vectors[b])
        return self.weight * embedding + (1 - self.weight) * ngram_cosine(
            self.ngrams[a], self.ngrams[b]
        )

    def hardest_negative(self, a: int, not_: set[int], shortlist: int = 20) -> int:
        sims = self.vectors @ self.vectors[a]
        order = np.argsort(-sims)
        picks = [int(j) for j in order[: shortlist + len(not_) + 1] if int(j) not in not_]
        return max(picks[:shortlist], key=lambda j: self.score(a, j))


def with_negatives(pairs: PairSet, scorer: Scorer) -> list[tuple[int, int, bool, str, float]]:
    """The positives and, per report in them, its hardest negative; each with its score."""
    same: dict[int, set[int]] = defaultdict(set)
    for a, b, _, _ in pairs.pairs:
        same[a] |= {a, b}
        same[b] |= {a, b}
    # Duplicates of duplicates are duplicates: no negative may come from the same group.
    changed = True
    while changed:
        changed = False
        for a in list(same):
            grown = set().union(*(same[x] for x in same[a]))
            if grown != same[a]:
                same[a], changed = grown, True
    out = [(a, b, True, s, scorer.score(a, b)) for a, b, _, s in pairs.pairs]
    for a in sorted(same):
        b = scorer.hardest_negative(a, same[a])
        out.append((a, b, False, "hardest negative", scorer.score(a, b)))
    # Reports in no pair: their nearest other report must not be grouped with them either
    # (what a team sees most: a distinct report that should get its own card).
    loners = [i for i in range(len(pairs.texts)) if i not in same]
    for a in random.Random(0).sample(loners, min(LONERS, len(loners))):
        b = scorer.hardest_negative(a, {a})
        out.append((a, b, False, "nearest to a distinct report", scorer.score(a, b)))
    return out


def precision_recall(
    rows: Sequence[tuple[int, int, bool, str, float]], threshold: float
) -> dict[str, float | int]:
    positives = [r for r in rows if r[2]]
    negatives = [r for r in rows if not r[2]]
    tp = sum(1 for r in positives if r[4] >= threshold)
    fp = sum(1 for r in negatives if r[4] >= threshold)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / len(positives) if positives else float("nan")
    return {
        "pairs": len(positives),
        "negatives": len(negatives),
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(2 * precision * recall / (precision + recall), 3)
        if precision + recall
        else 0.0,
    }


def after_votes(
    rows: list[tuple[int, int, bool, str, float]],
    settings: DuplicateSettings,
    counts: Sequence[int] = VOTE_COUNTS,
    seeds: int = 5,
) -> list[dict[str, Any]]:
    """Precision and recall on one half of the pairs after N votes on the other's
    mistakes, averaged over `seeds` shuffles."""
    out = []
    for n in counts:
        runs = []
        for seed in range(seeds):
            rng = random.Random(seed)
            shuffled = rows[:]
            rng.shuffle(shuffled)
            train, test = shuffled[: len(rows) // 2], shuffled[len(rows) // 2 :]
            t = settings.threshold
            votes: list[tuple[float, bool]] = []
            for _ in range(n):  # one vote at a time, each on a mistake of the threshold then
                mistakes = [r for r in train if (r[4] >= t) != r[2]]
                if not mistakes:
                    break
                pick = rng.choice(mistakes)
                train.remove(pick)
                votes.append((pick[4], pick[2]))
                t = learned_threshold(votes, settings.threshold, settings.learn_after)
            runs.append((t, precision_recall(test, t)))
        out.append(
            {
                "votes": n,
                "threshold": round(statistics.mean(t for t, _ in runs), 3),
                **{
                    key: round(statistics.mean(float(m[key]) for _, m in runs), 3)
                    for key in ("precision", "recall", "f1")
                },
            }
        )
    return out


def quality(
    sets: Sequence[PairSet],
    encoder: Encoder,
    settings: DuplicateSettings | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    settings = settings or DuplicateSettings()
    figures: dict[str, Any] = {"threshold": settings.threshold, "sets": []}
    for pair_set in sets:
        progress(f"embedding {len(pair_set.texts)} reports of {pair_set.name}")
        scorer = Scorer(pair_set.texts, encoder, settings)
        rows = with_negatives(pair_set, scorer)
        strata = sorted({r[3] for r in rows})
        figures["sets"].append(
            {
                "name": pair_set.name,
                "reports": len(pair_set.texts),
                "at_default": precision_recall(rows, settings.threshold),
                # Per kind of pair: the share grouped (recall of duplicates, false groupings
                # of negatives).
                "grouped_by_kind": {
                    kind: _grouped([r for r in rows if r[3] == kind], settings.threshold)
                    for kind in strata
                },
                "after_votes": after_votes(rows, settings),
                "best_threshold": _best(rows),
            }
        )
    return figures


def _grouped(rows: Sequence[tuple[int, int, bool, str, float]], threshold: float) -> dict[str, Any]:
    return {
        "pairs": len(rows),
        "grouped": round(sum(1 for r in rows if r[4] >= threshold) / len(rows), 3),
    }


def _best(rows: Sequence[tuple[int, int, bool, str, float]]) -> dict[str, float | int]:
    """The threshold with the best F1 on the whole set (in hindsight, for reference)."""
    cuts = sorted({round(r[4], 3) for r in rows})
    best = max(cuts, key=lambda t: float(precision_recall(rows, t)["f1"]))
    return {"threshold": best, **precision_recall(rows, best)}


def cost(
    encoder: Encoder,
    open_cards: int = 10_000,
    checks: int = 500,
    texts: Sequence[str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """p50/p99 of one `DuplicateDesk.check` with `open_cards` open cards in the window."""
    from core.store.sqlite import SQLiteStore

    pool = list(texts or _pool_texts())
    fresh, pool = pool[-max(1, len(pool) // 5) :], pool[: -max(1, len(pool) // 5)]
    rng = random.Random(0)
    runtime = RuntimeSettings()
    with tempfile.TemporaryDirectory() as scratch:
        store = SQLiteStore(str(Path(scratch) / "bench.db"))
        now = utcnow()
        items = []
        for i in range(open_cards):
            base = pool[i % len(pool)]
            text = f"{base}\n\n(report {i} from the bench's window)" if i >= len(pool) else base
            items.append(
                FeedbackItem(
                    id=f"itm_open_{i}",
                    text=text,
                    redacted_text=text,
                    received_at=now - timedelta(minutes=open_cards - i),
                )
            )
        with store.transaction():
            for item in items:
                store.add_item(item)
        desk = DuplicateDesk(
            store,
            runtime.duplicates,
            lambda batch: encoder.encode([encoder_text(it, runtime) for it in batch]),
            lambda: 0,
            runtime.learning.lexical_buckets,
        )
        progress(f"embedding {open_cards} open cards")
        started = time.perf_counter()
        desk.warm_up()
        warm_seconds = time.perf_counter() - started
        new = []
        for i in range(checks):
            if i % 5 == 0:
                text = items[rng.randrange(open_cards)].redacted_text + " again, still broken"
            else:  # a report unlike any open card
                text = f"{fresh[rng.randrange(len(fresh))]} (new report {i})"
            new.append(FeedbackItem(id=f"itm_new_{i}", text=text, redacted_text=text))
        encoder.encode([encoder_text(it, runtime) for it in new])  # the triage's embedding
        progress(f"checking {checks} new items against {desk.open_count} open cards")
        times, grouped = [], 0
        for item in new:
            store.add_item(item)
            started = time.perf_counter()
            link = desk.check(item)
            times.append(time.perf_counter() - started)
            grouped += link is not None
        store.close()
    times.sort()
    return {
        "open_cards": open_cards,
        "checks": checks,
        "grouped": grouped,
        "warm_up_seconds": round(warm_seconds, 1),
        "p50_ms": round(1000 * times[len(times) // 2], 2),
        "p99_ms": round(1000 * times[min(len(times) - 1, int(0.99 * len(times)))], 2),
        "max_ms": round(1000 * times[-1], 2),
    }


def _pool_texts() -> list[str]:
    """Real issue texts for the window (the shared data), else the demo's feedback."""
    path = NLBSE if NLBSE.exists() else REPO / "examples" / "feedback.jsonl"
    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    return [str(row.get("text") or row.get("comment") or "")[:1500] for row in rows]
