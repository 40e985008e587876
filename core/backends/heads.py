"""The learned heads for category and severity, on top of the cold-start prior.

logits = scale * prior + W @ embedding + V @ tfidf(n-grams) + bias

With no labels every learned part is zero and the model is exactly the prior; each
validation moves it from there. The n-gram vector is TF-IDF as in a classic text classifier
(sublinear counts, times inverse document frequency, unit length per block: words, then
characters); the IDF is fitted by batch training and kept by online updates.

Written in numpy and scipy.sparse with the gradients by hand: the model is linear, and on
a CPU a sparse matrix product is ~30x faster than torch's EmbeddingBag backward, which
keeps an online update well under a second and batch training to seconds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sparse

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
# The sentence embedding's weight against the two TF-IDF blocks (unit vectors too, under the
# same weight decay, so the weight sets how much each block may say). With few labels the
# embedding's prior knowledge carries the model; from a few hundred on, the n-grams have seen
# enough and half weight lets them speak (5-fold CV, README "Accuracy"): CLAP priority, 285
# labels a fold, 0.777 at full weight and 0.758 at half; NLBSE'24, 1,196 a fold, heads only
# 0.779 at half and 0.773 at full, fine-tuned encoder 0.805 at half. Saved with the weights;
# a model saved before the weight existed (no array) used full weight.
FULL_EMBEDDING_SCALE = 1.0
MANY_LABELS_EMBEDDING_SCALE = 0.5
MANY_LABELS = 300


def embedding_scale_for(labels: int) -> float:
    """The embedding's weight for heads trained in one batch on `labels` labels."""
    return MANY_LABELS_EMBEDDING_SCALE if labels >= MANY_LABELS else FULL_EMBEDDING_SCALE


@dataclass(frozen=True)
class Batch:
    """What the heads read for n items; built by the engine from cached features."""

    embeddings: np.ndarray  # (n, dim) float32
    lexical: list[np.ndarray]  # hashed n-gram ids per item (unique)
    counts: list[np.ndarray]  # how often each of those n-grams occurs
    prior_category: np.ndarray  # (n, C)
    prior_severity: np.ndarray  # (n, S)


class _Head:
    """One linear softmax classifier and its Adam state."""

    PARAMS = ("dense", "lexical", "bias", "scale")

    def __init__(self, dim: int, buckets: int, n_out: int) -> None:
        self.dense = np.zeros((dim, n_out), dtype=np.float32)
        self.lexical = np.zeros((buckets, n_out), dtype=np.float32)
        self.bias = np.zeros(n_out, dtype=np.float32)
        self.scale = np.ones(1, dtype=np.float32)
        self.reset_optimiser()

    def reset_optimiser(self) -> None:
        self.moments = {
            p: (np.zeros_like(getattr(self, p)), np.zeros_like(getattr(self, p)))
            for p in self.PARAMS
        }
        self.step_count = 0

    def logits(self, emb: np.ndarray, lex: sparse.csr_matrix, prior: np.ndarray) -> np.ndarray:
        return (
            self.scale[0] * prior + emb @ self.dense + np.asarray(lex @ self.lexical) + self.bias
        ).astype(np.float64)

    def step(
        self,
        emb: np.ndarray,
        lex: sparse.csr_matrix,
        lex_t: sparse.csr_matrix,
        touched: np.ndarray,
        prior: np.ndarray,
        targets: np.ndarray,
        weight: np.ndarray,
        learning_rate: float,
        weight_decay: float,
        self_trust: float = 0.0,
    ) -> float:
        """One Adam step on the weighted mean cross-entropy plus an L2 penalty.

        `self_trust` > 0 blends the model's own belief into the target (soft bootstrapping,
        Reed et al. 2015): a label the model strongly doubts pulls less, so one mistaken
        validation is not memorised as hard as a right one.

        `lex` has one column per n-gram in `touched` (the ones these texts contain): only
        those rows of the n-gram weights move (a lazy, sparse Adam), so a step costs what
        the batch's text costs, not what the 100,000-row table costs.
        """
        lexical = self.lexical[touched]
        logits = (
            self.scale[0] * prior + emb @ self.dense + np.asarray(lex @ lexical) + self.bias
        ).astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(len(targets))
        share = weight / weight.sum()
        probs = np.exp(log_probs)
        target = np.zeros_like(probs)
        target[rows, targets] = 1.0
        if self_trust:
            target = (1 - self_trust) * target + self_trust * probs
        loss = float(-((target * log_probs).sum(axis=1) * share).sum())
        grad_logits = probs - target
        grad_logits = (grad_logits * share[:, None]).astype(np.float32)
        grads = {
            "dense": emb.T @ grad_logits + 2 * weight_decay * self.dense,
            "lexical": np.asarray(lex_t @ grad_logits) + 2 * weight_decay * lexical,
            "bias": grad_logits.sum(axis=0),
            "scale": np.array([(grad_logits * prior).sum()], dtype=np.float32),
        }
        self.step_count += 1
        beta1, beta2 = ADAM_BETAS
        correction1 = 1 - beta1**self.step_count
        correction2 = 1 - beta2**self.step_count
        for name, grad in grads.items():
            first, second = self.moments[name]
            if name == "lexical":
                first, second = first[touched], second[touched]
            first = beta1 * first + (1 - beta1) * grad
            second = beta2 * second + (1 - beta2) * grad * grad
            update = (
                learning_rate * (first / correction1) / (np.sqrt(second / correction2) + ADAM_EPS)
            )
            if name == "lexical":
                self.moments[name][0][touched] = first
                self.moments[name][1][touched] = second
                self.lexical[touched] = lexical - update
            else:
                self.moments[name] = (first, second)
                setattr(self, name, (getattr(self, name) - update).astype(np.float32))
        return loss


def _compact(
    emb: np.ndarray, lex: sparse.csr_matrix
) -> tuple[np.ndarray, sparse.csr_matrix, sparse.csr_matrix, np.ndarray]:
    """Step inputs with the n-gram matrix cut down to the columns these texts use."""
    touched = np.unique(lex.indices)
    remap = np.zeros(lex.shape[1], dtype=np.int64)
    remap[touched] = np.arange(len(touched))
    compact = sparse.csr_matrix(
        (lex.data, remap[lex.indices], lex.indptr), shape=(lex.shape[0], len(touched))
    )
    return emb, compact, compact.T.tocsr(), touched


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
        self.dim, self.buckets = dim, buckets
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.seed = seed
        self.category = _Head(dim, buckets, n_categories)
        self.severity = _Head(dim, buckets, n_severities)
        self.idf = np.ones(buckets, dtype=np.float32)
        # Full weight until batch training sets it (`embedding_scale_for`).
        self.embedding_scale = np.array([FULL_EMBEDDING_SCALE], dtype=np.float32)
        self.trained_on = 0

    def fit_idf(self, batch: Batch) -> None:
        """Inverse document frequencies from a training set (smoothed as scikit-learn does).

        N-grams no training text had get the highest weight, so a later online update can
        still learn them."""
        n = len(batch.lexical)
        df = np.zeros(self.buckets, dtype=np.float64)
        for ids in batch.lexical:
            df[ids] += 1
        self.idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)

    def _weights(self, ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """TF-IDF of one text, unit length per block (word n-grams, character n-grams)."""
        weights = (1 + np.log(counts)) * self.idf[ids]
        chars = ids >= self.buckets // 2
        for block in (~chars, chars):
            norm = float(np.sqrt((weights[block] ** 2).sum()))
            if norm > 0:
                weights[block] /= norm
        return weights.astype(np.float32)

    def _embedding_matrix(self, batch: Batch) -> np.ndarray:
        return np.ascontiguousarray(batch.embeddings * self.embedding_scale[0], dtype=np.float32)

    def _lexical_matrix(self, batch: Batch) -> sparse.csr_matrix:
        lengths = [len(ids) for ids in batch.lexical]
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if indptr[-1]:
            indices = np.concatenate(batch.lexical).astype(np.int64)
            data = np.concatenate(
                [self._weights(i, c) for i, c in zip(batch.lexical, batch.counts, strict=True)]
            )
        else:
            indices, data = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return sparse.csr_matrix((data, indices, indptr), shape=(len(lengths), self.buckets))

    def predict(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        emb = self._embedding_matrix(batch)
        lex = self._lexical_matrix(batch)
        return (
            self.category.logits(emb, lex, batch.prior_category),
            self.severity.logits(emb, lex, batch.prior_severity),
        )

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
        self_trust: float = 0.0,
    ) -> float:
        """Adam steps from the current weights (warm start); returns the last loss.

        Each step replays the labels: all of them while they fit in `max_batch`, else the
        `focus` rows (the new labels) plus a fresh random sample of the rest, so an update
        costs the same at 200 labels and at 20,000 and old corrections stay learned. One
        Adam state lives as long as the heads: warm-started updates continue smoothly
        instead of restarting with cold moment estimates at every vote.
        """
        n = len(category_targets)
        rng = np.random.default_rng(seed + n)
        weight_all = np.ones(n, dtype=np.float32) if sample_weight is None else sample_weight
        focus = np.zeros(0, dtype=np.int64) if focus is None else focus
        rest = np.setdiff1d(np.arange(n), focus)
        emb_all = self._embedding_matrix(batch)
        lex_all = self._lexical_matrix(batch)
        rows = np.arange(n)
        loss = 0.0
        for step in range(steps):
            if n > max_batch:
                sample = rng.choice(rest, size=max(0, max_batch - len(focus)), replace=False)
                rows = np.concatenate([focus, sample]).astype(np.int64)
                inputs = _compact(emb_all[rows], lex_all[rows])
            elif step == 0:  # every row, every step: slice once
                inputs = _compact(emb_all, lex_all)
            weight = weight_all[rows].astype(np.float64)
            loss = self.category.step(
                *inputs,
                batch.prior_category[rows],
                category_targets[rows],
                weight,
                self.learning_rate,
                self.weight_decay,
                self_trust,
            )
            loss += self.severity.step(
                *inputs,
                batch.prior_severity[rows],
                severity_targets[rows],
                weight,
                self.learning_rate,
                self.weight_decay,
                self_trust,
            )
        self.trained_on = n
        return loss

    def _arrays(self) -> dict[str, np.ndarray]:
        """Every saved array by name: what a load must match."""
        arrays = {"idf": self.idf, "embedding_scale": self.embedding_scale}
        for name, head in (("category", self.category), ("severity", self.severity)):
            for param in _Head.PARAMS:
                arrays[f"{name}.{param}"] = getattr(head, param)
        return arrays

    def state_bytes(self) -> bytes:
        """Weights as an .npz archive: plain arrays, nothing executable on load."""
        arrays: dict[str, Any] = self._arrays()
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    def load_state_bytes(self, data: bytes) -> None:
        try:
            archive = np.load(io.BytesIO(data), allow_pickle=False)
            loaded = {key: archive[key] for key in archive.files}
            loaded.setdefault("embedding_scale", np.ones(1, dtype=np.float32))
        except (ValueError, OSError) as exc:
            raise ValueError(
                "saved with another feature set or damaged: retrain with `triage-bot train`"
            ) from exc
        for key, current in self._arrays().items():
            if key not in loaded or loaded[key].shape != current.shape:
                raise ValueError(
                    f"saved weights do not fit this model ({key}): retrain with `triage-bot train`"
                )
        self.idf = loaded["idf"].astype(np.float32)
        self.embedding_scale = loaded["embedding_scale"].astype(np.float32)
        for name, head in (("category", self.category), ("severity", self.severity)):
            for param in _Head.PARAMS:
                setattr(head, param, loaded[f"{name}.{param}"].astype(np.float32))
            head.reset_optimiser()  # moments of other weights would mislead the next step
