"""Small torch heads for category and severity, learned on top of the cold-start prior.

logits = scale * prior + W @ embedding + mean(lexical n-gram weights) + bias

With no labels every learned part is zero and the model is exactly the prior; each
validation moves it from there. torch is imported here, lazily, and nowhere else in core.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Batch:
    """What the heads read for n items; built by the engine from cached features."""

    embeddings: np.ndarray  # (n, dim) float32
    lexical: list[list[int]]  # hashed n-gram ids per item
    prior_category: np.ndarray  # (n, C)
    prior_severity: np.ndarray  # (n, S)


def _torch() -> Any:
    import torch

    return torch


def _make_head(dim: int, buckets: int, n_out: int) -> Any:
    torch = _torch()
    nn = torch.nn

    class Head(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.dense = nn.Linear(dim, n_out)
            self.lexical = nn.EmbeddingBag(buckets, n_out, mode="mean")
            self.prior_scale = nn.Parameter(torch.ones(()))
            for p in (self.dense.weight, self.dense.bias, self.lexical.weight):
                nn.init.zeros_(p)

        def forward(self, emb: Any, ids: Any, offsets: Any, prior: Any) -> Any:
            return self.prior_scale * prior + self.dense(emb) + self.lexical(ids, offsets)

    return Head()


class LinearHeads:
    """The learned part of the embedded model (category and severity)."""

    def __init__(
        self,
        dim: int,
        n_categories: int,
        n_severities: int,
        buckets: int,
        learning_rate: float = 0.05,
        weight_decay: float = 1e-4,
        seed: int = 0,
    ) -> None:
        torch = _torch()
        torch.manual_seed(seed)
        self.dim, self.buckets = dim, buckets
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.category = _make_head(dim, buckets, n_categories)
        self.severity = _make_head(dim, buckets, n_severities)
        self.trained_on = 0
        self._adam: Any = None

    @staticmethod
    def _inputs(batch: Batch) -> tuple[Any, Any, Any]:
        torch = _torch()
        flat = [i for ids in batch.lexical for i in ids]
        lengths = [len(ids) for ids in batch.lexical]
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if lengths else np.zeros(0)
        emb = torch.from_numpy(np.ascontiguousarray(batch.embeddings, dtype=np.float32))
        return (
            emb,
            torch.tensor(flat, dtype=torch.long),
            torch.tensor(offsets, dtype=torch.long),
        )

    def predict(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        torch = _torch()
        emb, ids, offsets = self._inputs(batch)
        with torch.inference_mode():
            cat = self.category(emb, ids, offsets, torch.from_numpy(batch.prior_category).float())
            sev = self.severity(emb, ids, offsets, torch.from_numpy(batch.prior_severity).float())
        return cat.numpy().astype(np.float64), sev.numpy().astype(np.float64)

    def _optimiser(self) -> Any:
        """One Adam for the life of the heads: warm-started updates continue smoothly
        instead of restarting with cold moment estimates at every vote."""
        if self._adam is None:
            torch = _torch()
            params = list(self.category.parameters()) + list(self.severity.parameters())
            self._adam = torch.optim.Adam(params, lr=self.learning_rate)
        return self._adam

    def fit(
        self,
        batch: Batch,
        category_targets: np.ndarray,
        severity_targets: np.ndarray,
        steps: int,
        sample_weight: np.ndarray | None = None,
        focus: np.ndarray | None = None,
        max_batch: int = 256,
        seed: int = 0,
    ) -> float:
        """Adam steps from the current weights (warm start); returns the last loss.

        Each step replays the labels: all of them while they fit in `max_batch`, else the
        `focus` rows (the new labels) plus a fresh random sample of the rest, so an update
        costs the same at 200 labels and at 20,000 and old corrections stay learned.
        """
        torch = _torch()
        functional = torch.nn.functional
        n = len(category_targets)
        rng = np.random.default_rng(seed + n)
        weight_all = np.ones(n, dtype=np.float32) if sample_weight is None else sample_weight
        focus = np.zeros(0, dtype=np.int64) if focus is None else focus
        rest = np.setdiff1d(np.arange(n), focus)
        optimiser = self._optimiser()
        full = n <= max_batch
        if full:
            rows_fixed = np.arange(n)
            tensors = self._step_tensors(
                batch, rows_fixed, category_targets, severity_targets, weight_all
            )
        loss_value = 0.0
        for _ in range(steps):
            if not full:
                sample = rng.choice(rest, size=max(0, max_batch - len(focus)), replace=False)
                rows = np.concatenate([focus, sample])
                tensors = self._step_tensors(
                    batch, rows, category_targets, severity_targets, weight_all
                )
            emb, ids, offsets, prior_c, prior_s, y_c, y_s, weight = tensors
            optimiser.zero_grad()
            loss_c = functional.cross_entropy(
                self.category(emb, ids, offsets, prior_c), y_c, reduction="none"
            )
            loss_s = functional.cross_entropy(
                self.severity(emb, ids, offsets, prior_s), y_s, reduction="none"
            )
            loss = ((loss_c + loss_s) * weight).sum() / weight.sum()
            penalty = sum(
                (h.dense.weight**2).sum() + (h.lexical.weight**2).sum()
                for h in (self.category, self.severity)
            )
            (loss + self.weight_decay * penalty).backward()
            optimiser.step()
            loss_value = float(loss.detach())
        self.trained_on = n
        return loss_value

    def _step_tensors(
        self,
        batch: Batch,
        rows: np.ndarray,
        category_targets: np.ndarray,
        severity_targets: np.ndarray,
        weight: np.ndarray,
    ) -> tuple[Any, ...]:
        torch = _torch()
        sub = Batch(
            embeddings=batch.embeddings[rows],
            lexical=[batch.lexical[i] for i in rows],
            prior_category=batch.prior_category[rows],
            prior_severity=batch.prior_severity[rows],
        )
        emb, ids, offsets = self._inputs(sub)
        return (
            emb,
            ids,
            offsets,
            torch.from_numpy(sub.prior_category).float(),
            torch.from_numpy(sub.prior_severity).float(),
            torch.from_numpy(category_targets[rows]).long(),
            torch.from_numpy(severity_targets[rows]).long(),
            torch.from_numpy(weight[rows].astype(np.float32)),
        )

    def state_bytes(self) -> bytes:
        torch = _torch()
        buffer = io.BytesIO()
        torch.save(
            {"category": self.category.state_dict(), "severity": self.severity.state_dict()},
            buffer,
        )
        return buffer.getvalue()

    def load_state_bytes(self, data: bytes) -> None:
        torch = _torch()
        state = torch.load(io.BytesIO(data), weights_only=True)
        self.category.load_state_dict(state["category"])
        self.severity.load_state_dict(state["severity"])
        self._adam = None  # moments of other weights would mislead the next step
