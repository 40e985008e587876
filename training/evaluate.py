"""Offline evaluation of the production model on labelled data nobody here wrote.

`triage-bot eval` trains exactly what `triage-bot train` would promote (`fit_candidate`) on
one file and scores it on another, or by K-fold cross-validation on one file. Figures come
with per-class precision/recall/F1, a confusion matrix, per-group breakdowns (e.g. per
GitHub repo or per YouTube video), the training time and the peak memory, so that a number
in the README can be re-run and audited.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.models import FeedbackItem, Label
from core.ports import Encoder
from core.runtime import RuntimeSettings
from core.service import make_item
from core.taxonomy import Taxonomy
from training.candidate import fit_candidate
from training.finetune import FinetuneConfig, fit_finetuned
from training.metrics import mcc, report

Example = tuple[FeedbackItem, Label]
Progress = Callable[[str, int, int], None]

SPAM_LABEL = "noise"  # the label MCC is reported for (spam against the rest)


def gold_label(item_id: str, category: str, taxonomy: Taxonomy) -> Label:
    """A label as if one reviewer had validated the item with the data set's answer."""
    return Label(
        item_id=item_id,
        category=category,
        severity=taxonomy.lowest_severity,
        reviewers=["gold"],
        agreement=1.0,
    )


def examples_from_rows(
    rows: Sequence[dict[str, Any]],
    taxonomy: Taxonomy,
    label_field: str,
    prefix: str,
    runtime: RuntimeSettings | None = None,
) -> list[Example]:
    """Rows as the bot would have stored them (cleaned, PII redacted) with their gold label."""
    out = []
    limit = (runtime or RuntimeSettings()).triage.max_text_bytes
    for i, row in enumerate(rows):
        text = row["text"].encode("utf-8")[:limit].decode("utf-8", "ignore")
        item = make_item(
            text,
            source="file",
            item_id=f"{prefix}-{i}",
            form_type=row.get("form_type"),
            max_text_bytes=limit,
        )
        out.append((item, gold_label(item.id, str(row[label_field]), taxonomy)))
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _scores(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    out = report(gold, predicted, labels)
    if SPAM_LABEL in labels and len(labels) == 2:
        out["mcc"] = round(mcc(gold, predicted, SPAM_LABEL), 4)
    return out


def _grouped(
    gold: Sequence[str],
    predicted: Sequence[str],
    groups: Sequence[str],
    labels: Sequence[str],
) -> dict[str, Any]:
    by_group: dict[str, list[int]] = defaultdict(list)
    for i, group in enumerate(groups):
        by_group[group].append(i)
    per_group = {
        group: _scores([gold[i] for i in rows], [predicted[i] for i in rows], labels)
        | {"n": len(rows)}
        for group, rows in sorted(by_group.items())
    }
    out: dict[str, Any] = {
        "groups": per_group,
        "group_mean_macro_f1": round(
            sum(g["macro_f1"] for g in per_group.values()) / len(per_group), 4
        ),
    }
    if all("mcc" in g for g in per_group.values()):
        out["group_mean_mcc"] = round(sum(g["mcc"] for g in per_group.values()) / len(per_group), 4)
    return out


def _fit_predict(
    train: Sequence[Example],
    test: Sequence[Example],
    taxonomy: Taxonomy,
    encoder: Encoder,
    steps: int,
    seed: int,
    progress: Progress | None,
    stage: str,
    finetune: FinetuneConfig | None = None,
    runtime: RuntimeSettings | None = None,
) -> tuple[list[str], float, dict[str, Any] | None]:
    """Predictions on `test` of the model `train` would promote, its training time
    (fine-tuning included) and what fine-tuning did, if `train` would have fine-tuned.
    `stage` prefixes the progress line (e.g. "fold 2/5")."""

    def on_step(done: int, total: int) -> None:
        if progress:
            progress(stage, done, total)

    def on_phase(what: str, done: int, total: int) -> None:
        if progress:
            progress(f"{stage}: {what}", done, total)

    started = time.perf_counter()
    tuned: dict[str, Any] | None = None
    if finetune is None or not finetune.applies(len(train)):
        model = fit_candidate(
            train, taxonomy, encoder, steps=steps, seed=seed, progress=on_step, runtime=runtime
        )
    else:
        model, report = fit_finetuned(
            train,
            taxonomy,
            encoder,
            finetune,
            steps=steps,
            seed=seed,
            progress=on_phase,
            runtime=runtime,
        )
        tuned = finetune.as_dict() | report.as_dict()
    seconds = time.perf_counter() - started
    predicted = [t.category for t in model.triage_many([item for item, _ in test])]
    return predicted, seconds, tuned


def evaluate(
    train_rows: Sequence[dict[str, Any]],
    test_rows: Sequence[dict[str, Any]],
    *,
    taxonomy: Taxonomy,
    encoder: Encoder,
    label_field: str = "label",
    group_by: str | None = None,
    steps: int = 300,
    seed: int = 0,
    progress: Progress | None = None,
    finetune: FinetuneConfig | None = None,
    runtime: RuntimeSettings | None = None,
) -> dict[str, Any]:
    """Train on `train_rows`, score on `test_rows`."""
    labels = taxonomy.category_names
    train = examples_from_rows(train_rows, taxonomy, label_field, "train", runtime)
    test = examples_from_rows(test_rows, taxonomy, label_field, "test", runtime)
    predicted, seconds, tuned = _fit_predict(
        train, test, taxonomy, encoder, steps, seed, progress, "training", finetune, runtime
    )
    gold = [label.category for _, label in test]
    out = _scores(gold, predicted, labels) | {
        "n_train": len(train),
        "n_test": len(test),
        "train_seconds": round(seconds, 1),
        "peak_rss_mb": peak_rss_mb(),
        "finetune": tuned,  # None: heads only (too few labels, or --no-finetune)
    }
    if group_by:
        out |= _grouped(gold, predicted, [str(r.get(group_by, "")) for r in test_rows], labels)
    return out


def folds(labels: Sequence[str], k: int, seed: int) -> list[list[int]]:
    """Stratified K folds: each label's rows dealt round-robin after a seeded shuffle."""
    import random

    if k < 2:
        raise ValueError("--cv needs at least 2 folds")
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    out: list[list[int]] = [[] for _ in range(k)]
    position = 0
    for label in sorted(by_label):
        rows = by_label[label]
        rng.shuffle(rows)
        for i in rows:
            out[position % k].append(i)
            position += 1
    if any(not fold for fold in out):
        raise ValueError(f"--cv {k}: fewer rows than folds")
    return [sorted(fold) for fold in out]


def holdout_split(
    rows: Sequence[dict[str, Any]], label_field: str, fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A stratified split of one file: about `fraction` of each label held out for
    testing (the first of round(1 / fraction) folds), the rest to train on."""
    if not 0.0 < fraction <= 0.5:
        raise ValueError("--holdout must be a fraction in (0, 0.5]")
    k = max(2, round(1 / fraction))
    held = set(folds([str(r[label_field]) for r in rows], k, seed)[0])
    return (
        [r for i, r in enumerate(rows) if i not in held],
        [r for i, r in enumerate(rows) if i in held],
    )


def cross_validate(
    rows: Sequence[dict[str, Any]],
    k: int,
    *,
    taxonomy: Taxonomy,
    encoder: Encoder,
    label_field: str = "label",
    group_by: str | None = None,
    steps: int = 300,
    seed: int = 0,
    progress: Progress | None = None,
    finetune: FinetuneConfig | None = None,
    runtime: RuntimeSettings | None = None,
) -> dict[str, Any]:
    """K-fold: every row is predicted once by a model that never saw it; scores are pooled
    over all rows (and per fold, to show the spread)."""
    labels = taxonomy.category_names
    examples = examples_from_rows(rows, taxonomy, label_field, "cv", runtime)
    gold = [label.category for _, label in examples]
    predicted: list[str] = [""] * len(rows)
    fold_f1: list[float] = []
    seconds: list[float] = []
    tuned: list[dict[str, Any]] = []
    for number, fold in enumerate(folds(gold, k, seed), start=1):
        held = set(fold)
        train = [e for i, e in enumerate(examples) if i not in held]
        test = [examples[i] for i in fold]
        fold_predictions, took, fold_tuning = _fit_predict(
            train,
            test,
            taxonomy,
            encoder,
            steps,
            seed,
            progress,
            f"fold {number}/{k}",
            finetune,
            runtime,
        )
        if fold_tuning:
            tuned.append(fold_tuning)
        for i, p in zip(fold, fold_predictions, strict=True):
            predicted[i] = p
        fold_f1.append(report([gold[i] for i in fold], fold_predictions, labels)["macro_f1"])
        seconds.append(took)
    mean = sum(fold_f1) / k
    out = _scores(gold, predicted, labels) | {
        "cv": k,
        "fold_macro_f1": fold_f1,
        "fold_macro_f1_std": round(math.sqrt(sum((f - mean) ** 2 for f in fold_f1) / k), 4),
        "n": len(rows),
        "train_seconds": round(sum(seconds) / k, 1),
        "peak_rss_mb": peak_rss_mb(),
        # The first fold's fine-tuning (config and report) and how many folds fine-tuned.
        "finetune": tuned[0] | {"folds": len(tuned)} if tuned else None,
    }
    if group_by:
        out |= _grouped(gold, predicted, [str(r.get(group_by, "")) for r in rows], labels)
    return out


def plot_evaluation(result: dict[str, Any], path: Path, title: str) -> None:
    """An evaluation as a PNG: the confusion matrix (share of each gold label, counts in the
    cells), F1 per label, and macro-F1 per group when there are groups."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = result["labels"]
    counts = np.array(result["confusion"], dtype=float)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    groups = result.get("groups") or {}
    panels = 3 if groups else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.6), dpi=110)
    ax = axes[0]
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, col), count in np.ndenumerate(counts):
        ax.text(
            col,
            row,
            f"{int(count)}\n{shares[row, col]:.0%}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if shares[row, col] > 0.6 else "black",
        )
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("confusion (share of each gold label)")
    f1 = [result["per_class"][label]["f1"] for label in labels]
    _bars(axes[1], labels, f1, result["macro_f1"], "macro-F1", "F1", "per label", "tab:blue")
    if groups:
        names = list(groups)
        values = [groups[g]["macro_f1"] for g in names]
        mean = result["group_mean_macro_f1"]
        _bars(axes[2], names, values, mean, "mean", "macro-F1", "per group", "tab:green")
    fig.suptitle(f"{title}: macro-F1 {result['macro_f1']:.3f}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _bars(
    ax: Any,
    names: Sequence[str],
    values: Sequence[float],
    line: float,
    line_label: str,
    xlabel: str,
    title: str,
    color: str,
) -> None:
    """Horizontal bars on a 0-1 scale, first name on top, with a reference line."""
    ax.barh(names, values, color=color)
    ax.axvline(line, color="grey", linestyle="--", label=line_label)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(loc="lower right")
