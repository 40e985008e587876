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

    def fit(
        self,
        batch: Batch,
        category_targets: np.ndarray,
        severity_targets: np.ndarray,
        steps: int,
        sample_weight: np.ndarray | None = None,
    ) -> float:
        """Full-batch Adam from the current weights (warm start); returns the final loss.

        Full batch over every label is the replay that keeps old corrections learned
        while new ones arrive.
        """
        torch = _torch()
        functional = torch.nn.functional
        emb, ids, offsets = self._inputs(batch)
        prior_c = torch.from_numpy(batch.prior_category).float()
        prior_s = torch.from_numpy(batch.prior_severity).float()
        y_c = torch.from_numpy(category_targets).long()
        y_s = torch.from_numpy(severity_targets).long()
        weight = (
            torch.ones(len(y_c))
            if sample_weight is None
            else torch.from_numpy(sample_weight.astype(np.float32))
        )
        params = list(self.category.parameters()) + list(self.severity.parameters())
        optimiser = torch.optim.Adam(params, lr=self.learning_rate)
        loss_value = 0.0
        for _ in range(steps):
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
        self.trained_on = len(y_c)
        return loss_value

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
