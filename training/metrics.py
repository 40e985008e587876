"""Classification metrics, written out so the numbers we publish are easy to audit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def confusion(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> list[list[int]]:
    """Rows are gold labels, columns predictions, both in `labels` order."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted, strict=True):
        if g in index and p in index:
            matrix[index[g]][index[p]] += 1
    return matrix


def per_class(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> dict[str, dict[str, float]]:
    out = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": tp + fn,
        }
    return out


def macro_f1(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None
) -> float:
    """Mean F1 over the labels present in `gold` (as scikit-learn does for y_true labels)."""
    present = sorted(set(gold)) if labels is None else [lab for lab in labels if lab in set(gold)]
    scores = per_class(gold, predicted, present)
    return sum(s["f1"] for s in scores.values()) / len(scores) if scores else math.nan


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    pairs = list(zip(gold, predicted, strict=True))
    return sum(g == p for g, p in pairs) / len(pairs) if pairs else math.nan


def mcc(gold: Sequence[str], predicted: Sequence[str], positive: str) -> float:
    """Matthews correlation for one class against the rest."""
    tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == positive and p == positive)
    tn = sum(1 for g, p in zip(gold, predicted, strict=True) if g != positive and p != positive)
    fp = sum(1 for g, p in zip(gold, predicted, strict=True) if g != positive and p == positive)
    fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == positive and p != positive)
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denom if denom else 0.0


def report(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    return {
        "macro_f1": round(macro_f1(gold, predicted, labels), 4),
        "accuracy": round(accuracy(gold, predicted), 4),
        "per_class": per_class(gold, predicted, labels),
        "labels": list(labels),
        "confusion": confusion(gold, predicted, labels),
    }
