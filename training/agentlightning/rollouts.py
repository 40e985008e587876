"""Rollout inputs for Agent Lightning: the team's validated items, as the VERL trainer wants them.

Why this shape:
- `agentlightning.verl.entrypoint.run_ppo(config, train_dataset, val_dataset)` takes in-memory
  sequences of dicts (it wraps them in `datasets.Dataset.from_list`), and its trainer sends
  each row, as it is, as one rollout's `input`. So a row is a dict of JSON values with the
  same keys on every row (one Arrow schema), plus `extra_info.index`, which verl reads.
- The row carries the human label that the agent's reward is computed against: the trainer
  is on-policy (it makes rollouts, takes their last reward, deletes them), so a validation
  reaches it as ground truth for fresh answers, never as a late reward on an old one.
- Only the redacted text leaves the store, as in `export labels`.
- Train / validation is split by item id with `triage-bot train`'s holdout hash, so an item
  stays on its side as more items are validated, and both trainers hold out the same items.
- On disk it is JSON lines (`train.jsonl`, `validation.jsonl`): `read_rows` gives back the
  list of dicts `run_ppo` takes, and the core venv needs no pyarrow to write it.

Nothing here imports agentlightning: the export runs in the core (Python 3.11) venv.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.models import FeedbackItem, Label

DATA_SOURCE = "triage-bot"
TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"
DEFAULT_OUT = Path("out") / "agentlightning"


class RolloutItem(BaseModel):
    """The feedback the agent triages (already redacted)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    text: str
    source: str = "file"
    form_type: str | None = None
    page: str | None = None


class RolloutLabel(BaseModel):
    """The reviewers' consensus: what the reward scores the answer against."""

    model_config = ConfigDict(extra="ignore")

    category: str
    severity: str
    action: str | None = None
    reviewers: list[str]
    agreement: float


class RolloutInput(BaseModel):
    """One rollout's input as the agent receives it. Extra keys are ignored: the trainer
    adds its own (`index`, `uid`, ...)."""

    model_config = ConfigDict(extra="ignore")

    data_id: str
    taxonomy: str  # fingerprint of the taxonomy the label was given in
    item: RolloutItem
    label: RolloutLabel

    def feedback_item(self) -> FeedbackItem:
        return FeedbackItem(
            id=self.item.id,
            text=self.item.text,
            redacted_text=self.item.text,
            source=self.item.source,
            form_type=self.item.form_type,
            page=self.item.page,
        )

    def human_label(self) -> Label:
        return Label(
            item_id=self.item.id,
            category=self.label.category,
            severity=self.label.severity,
            action=self.label.action,
            reviewers=self.label.reviewers,
            agreement=self.label.agreement,
            disagreement=self.label.agreement < 1.0,
        )


def rollout_row(record: Mapping[str, Any], taxonomy_fingerprint: str) -> dict[str, Any]:
    """One `export labels` record as a rollout input row (the index is set by `split_rows`)."""
    return {
        "data_id": record["id"],
        "data_source": DATA_SOURCE,
        "taxonomy": taxonomy_fingerprint,
        "item": {
            "id": record["id"],
            "text": record["text"],
            "source": record.get("source") or "file",
            "form_type": record.get("form_type"),
            "page": record.get("page"),
        },
        "label": {
            "category": record["category"],
            "severity": record["severity"],
            "action": record.get("action"),
            "reviewers": list(record.get("reviewers") or []),
            "agreement": float(record.get("agreement", 1.0)),
        },
        "extra_info": {"index": 0, "split": "train"},
    }


def _rank(item_id: str) -> str:
    return hashlib.sha256(item_id.encode()).hexdigest()


def split_rows(
    rows: Iterable[dict[str, Any]], validation_share: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and validation rows, split by item id and ordered by it (deterministic).

    With two or more rows and a share above 0, each side gets at least one row (the
    trainer refuses an empty one): the lowest-hashed row moves over.
    """
    from training.train import held_out  # lazy: the agent imports this module too

    ordered = sorted(rows, key=lambda row: _rank(row["data_id"]))
    validation = [r for r in ordered if held_out(r["data_id"], validation_share)]
    train = [r for r in ordered if not held_out(r["data_id"], validation_share)]
    if validation_share > 0 and len(ordered) >= 2:
        if not validation:
            validation.append(train.pop(0))
        elif not train:
            train.append(validation.pop(0))
    for split, part in (("train", train), ("validation", validation)):
        for index, row in enumerate(part):
            row["extra_info"] = {"index": index, "split": split}
    return train, validation


def write_rollouts(
    records: Iterable[Mapping[str, Any]],
    taxonomy_fingerprint: str,
    out: Path,
    validation_share: float = 0.2,
) -> dict[str, Any]:
    """Write `train.jsonl` and `validation.jsonl` under `out`; return what was written."""
    if not 0.0 <= validation_share < 1.0:
        raise ValueError("--validation-share must be in [0, 1)")
    rows = [rollout_row(record, taxonomy_fingerprint) for record in records]
    train, validation = split_rows(rows, validation_share)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, part in ((TRAIN_FILE, train), (VALIDATION_FILE, validation)):
        path = out / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in part))
        tmp.replace(path)  # a trainer reading the old file never sees half a new one
        files[name.removesuffix(".jsonl")] = str(path)
    return {
        "format": "agentlightning",
        "train": len(train),
        "validation": len(validation),
        "taxonomy": taxonomy_fingerprint,
        "files": files,
    }


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of one exported file, as `run_ppo` takes them. Lines end at "\n" only:
    U+2028 and the like inside a JSON string are text, not line breaks."""
    lines = path.read_text(encoding="utf-8").split("\n")
    return [json.loads(line) for line in lines if line.strip()]
