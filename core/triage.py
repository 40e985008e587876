"""The triage engine: feedback in, category / severity / action / confidence out.

Embedding + cold-start prior + learned heads. The engine holds no store and no client:
the service (`core.service`) gives it items and labels and stores what it returns.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from core.actions import suggest_action
from core.backends import bundle
from core.backends.heads import Batch, LinearHeads
from core.features import ColdStartPrior, encoder_view, lexical_counts, softmax
from core.models import FeedbackItem, FieldConfidence, Label, Triage
from core.ports import CachingEncoder, Encoder, TunableEncoder
from core.runtime import RuntimeSettings
from core.taxonomy import Taxonomy

FEATURE_CACHE_SIZE = 100_000


def margin(probabilities: np.ndarray) -> np.ndarray:
    ordered = np.sort(probabilities, axis=-1)
    return ordered[..., -1] - ordered[..., -2]


def model_text(item: FeedbackItem, runtime: RuntimeSettings) -> str:
    """The part of an item the model reads (n-grams and cues see it raw)."""
    return item.redacted_text[: runtime.triage.model_text_chars]


def encoder_text(item: FeedbackItem, runtime: RuntimeSettings) -> str:
    """What the sentence encoder reads for an item; fine-tuning trains on exactly this."""
    return encoder_view(model_text(item, runtime))


@dataclass(frozen=True)
class _Features:
    embedding: np.ndarray
    lexical: np.ndarray
    counts: np.ndarray
    prior_category: np.ndarray
    prior_severity: np.ndarray
    evidence: list[str]


@dataclass(frozen=True)
class LearnReport:
    """What one learning step did, so callers can show and check it."""

    labels: int
    loss: float
    accuracy_before: float  # on the labels known before this step (nan when none)
    accuracy_after: float  # on those same labels, after the step
    steps: int
    model_version: str


class TriageEngine:
    def __init__(
        self,
        taxonomy: Taxonomy,
        encoder: Encoder,
        seed: int = 0,
        runtime: RuntimeSettings | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.runtime = runtime or RuntimeSettings()
        learning = self.runtime.learning
        self.encoder = encoder
        self.prior = ColdStartPrior(taxonomy, encoder)
        self.heads = LinearHeads(
            dim=encoder.dim,
            n_categories=len(taxonomy.categories),
            n_severities=len(taxonomy.severities),
            buckets=learning.lexical_buckets,
            learning_rate=learning.learning_rate,
            weight_decay=learning.weight_decay,
            seed=seed,
        )
        self._lock = threading.RLock()
        self._features: OrderedDict[tuple[str, str | None], _Features] = OrderedDict()
        # Which feature key each item id had, so a deleted item's features can be dropped
        # by its id alone (`forget`); bounded like the cache.
        self._feature_keys: dict[str, tuple[str, str | None]] = {}
        self._generation = 0  # bumped when the encoder's weights change: older features are stale
        self._base_version = f"embedded-{taxonomy.fingerprint()}"

    @property
    def model_version(self) -> str:
        return f"{self._base_version}.{self.heads.trained_on}"

    @property
    def encoder_generation(self) -> int:
        """Bumped whenever the encoder's weights change: embeddings from before are stale."""
        return self._generation

    @property
    def base_version(self) -> str:
        return self._base_version

    def load(self, version: str, weights: bytes) -> None:
        """Adopt a registry model's weights; online learning continues from them.

        A model with a fine-tuned encoder swaps the encoder's weights too (a heads-only one
        restores the stock weights its heads were fitted on); every cached feature and the
        cold-start prior's prototypes came from the old encoder, so they are rebuilt.
        """
        heads, encoder_state = bundle.unpack(weights)
        tunable = self.encoder if isinstance(self.encoder, TunableEncoder) else None
        if encoder_state is not None and tunable is None:
            raise ValueError(
                f"model {version} carries fine-tuned encoder weights, which "
                f"{type(self.encoder).__name__} cannot load"
            )
        with self._lock:
            self.heads.load_state_bytes(heads)
            self.heads.trained_on = 0
            self._base_version = version
            if tunable is not None and (
                encoder_state is not None or tunable.tuned_weights is not None
            ):
                self._generation += 1
                tunable.load_weights(encoder_state)
                self._features.clear()
                self.prior = ColdStartPrior(self.taxonomy, tunable)

    def weights(self) -> bytes:
        """Registry bytes: the heads, plus the encoder's weights when they are fine-tuned."""
        with self._lock:
            tuned = self.encoder.tuned_weights if isinstance(self.encoder, TunableEncoder) else None
            return bundle.pack(self.heads.state_bytes(), tuned)

    def embed(self, items: Sequence[FeedbackItem]) -> np.ndarray:
        return self.encoder.encode([encoder_text(item, self.runtime) for item in items])

    def batch(self, items: Sequence[FeedbackItem]) -> tuple[Batch, list[list[str]]]:
        """Model inputs for items, from the feature cache where possible.

        Features depend only on the text and form type, never on learned weights, so an
        item's features are computed once: learning replays every label at every vote
        and the review queue rescores every open item, both from this cache. (They do
        depend on the encoder's weights: `load` empties the cache when those change.)
        """
        keys = [(model_text(item, self.runtime), item.form_type) for item in items]
        with self._lock:
            for item, key in zip(items, keys, strict=True):
                self._feature_keys[item.id] = key
            while len(self._feature_keys) > FEATURE_CACHE_SIZE:
                del self._feature_keys[next(iter(self._feature_keys))]
            generation, prior_model = self._generation, self.prior
            missing = [i for i, key in enumerate(keys) if key not in self._features]
        if missing:
            texts = [keys[i][0] for i in missing]
            embeddings = self.encoder.encode([encoder_view(text) for text in texts])
            prior = prior_model.score(texts, embeddings, [keys[i][1] for i in missing])
            buckets = self.runtime.learning.lexical_buckets
            with self._lock:
                stale = generation != self._generation  # the encoder changed meanwhile
                for row, i in enumerate([] if stale else missing):
                    ids, counts = lexical_counts(texts[row], buckets)
                    self._features[keys[i]] = _Features(
                        embeddings[row],
                        ids,
                        counts,
                        prior.category_logits[row].astype(np.float32),
                        prior.severity_logits[row].astype(np.float32),
                        prior.evidence[row],
                    )
                while len(self._features) > FEATURE_CACHE_SIZE:
                    self._features.popitem(last=False)
            if stale:
                return self.batch(items)
        with self._lock:
            feats = [self._features.get(key) for key in keys]
        if any(f is None for f in feats):  # evicted between the two steps: compute directly
            self._features.clear()
            return self.batch(items)
        rows = [f for f in feats if f is not None]
        batch = Batch(
            embeddings=np.stack([f.embedding for f in rows]),
            lexical=[f.lexical for f in rows],
            counts=[f.counts for f in rows],
            prior_category=np.stack([f.prior_category for f in rows]),
            prior_severity=np.stack([f.prior_severity for f in rows]),
        )
        return batch, [f.evidence for f in rows]

    def forget(self, item_ids: Iterable[str]) -> None:
        """Drop what this engine keeps of deleted items: their cached features (n-grams,
        evidence words, embeddings) and the encoder's cached embeddings of their text."""
        with self._lock:
            keys = [self._feature_keys.pop(i) for i in item_ids if i in self._feature_keys]
            for key in keys:
                self._features.pop(key, None)
        if keys and isinstance(self.encoder, CachingEncoder):
            self.encoder.forget([encoder_view(text) for text, _ in keys])

    def reset_heads(self, weights: bytes | None) -> None:
        """Back to the base model's heads before a replay without some labels, so what
        they taught online is undone: the registry model's `weights` (its heads; the
        encoder stays), or untrained heads when there is none."""
        with self._lock:
            if weights is None:
                old = self.heads
                self.heads = LinearHeads(
                    dim=old.dim,
                    n_categories=len(self.taxonomy.categories),
                    n_severities=len(self.taxonomy.severities),
                    buckets=old.buckets,
                    learning_rate=old.learning_rate,
                    weight_decay=old.weight_decay,
                    seed=old.seed,
                )
            else:
                self.heads.load_state_bytes(bundle.unpack(weights)[0])
            self.heads.trained_on = 0

    def category_margin(self, items: Sequence[FeedbackItem]) -> np.ndarray:
        """Top-1 minus top-2 category probability per item: small means torn between two
        labels, the items whose validation teaches most (the review queue ranks by it)."""
        if not items:
            return np.zeros(0)
        batch, _ = self.batch(items)
        with self._lock:
            cat_logits, _ = self.heads.predict(batch)
        return margin(softmax(cat_logits))

    def triage(self, item: FeedbackItem) -> Triage:
        return self.triage_many([item])[0]

    def triage_many(self, items: Sequence[FeedbackItem]) -> list[Triage]:
        if not items:
            return []
        batch, evidence = self.batch(items)
        with self._lock:
            cat_logits, sev_logits = self.heads.predict(batch)
            version = self.model_version
        cat_probs, sev_probs = softmax(cat_logits), softmax(sev_logits)
        names_c, names_s = self.taxonomy.category_names, self.taxonomy.severity_names
        threshold = self.runtime.triage.needs_human_below
        out = []
        for i, item in enumerate(items):
            c, s = int(cat_probs[i].argmax()), int(sev_probs[i].argmax())
            spec = self.taxonomy.categories[c]
            out.append(
                Triage(
                    item_id=item.id,
                    category=spec.name,
                    severity=names_s[s],
                    action=suggest_action(spec, item.redacted_text, item.page),
                    confidence=FieldConfidence(
                        category=float(cat_probs[i, c]), severity=float(sev_probs[i, s])
                    ),
                    probabilities={
                        "category": {
                            n: round(float(p), 4)
                            for n, p in zip(names_c, cat_probs[i], strict=True)
                        },
                        "severity": {
                            n: round(float(p), 4)
                            for n, p in zip(names_s, sev_probs[i], strict=True)
                        },
                    },
                    model_version=version,
                    needs_human=float(cat_probs[i, c]) < threshold,
                    evidence=evidence[i],
                )
            )
        return out

    def _targets(self, labels: Sequence[Label]) -> tuple[np.ndarray, np.ndarray]:
        cats, sevs = self.taxonomy.category_names, self.taxonomy.severity_names
        return (
            np.array([cats.index(lab.category) for lab in labels], dtype=np.int64),
            np.array([sevs.index(lab.severity) for lab in labels], dtype=np.int64),
        )

    def _accuracy(self, batch: Batch, y_cat: np.ndarray, y_sev: np.ndarray, upto: int) -> float:
        if upto == 0:
            return float("nan")
        cat, sev = self.heads.predict(batch)
        hits = (cat.argmax(1) == y_cat)[:upto] & (sev.argmax(1) == y_sev)[:upto]
        return float(hits.mean())

    def learn(
        self,
        examples: Sequence[tuple[FeedbackItem, Label]],
        steps: int | None = None,
        previous: int | None = None,
    ) -> LearnReport:
        """Refit the heads on every label (replay), warm-started from the current weights.

        `previous` is how many of `examples` (at the front) were learned before; the model
        must not get worse on those. If it would, it trains longer (while the update stays
        within `[learning] online_seconds`), and if it still would, the old weights are kept
        and the report says so.
        """
        examples = [(item, label) for item, label in examples if self._known(label)]
        if not examples:
            return LearnReport(0, 0.0, float("nan"), float("nan"), 0, self.model_version)
        steps = steps or self.runtime.learning.online_steps
        batch, _ = self.batch([item for item, _ in examples])
        y_cat, y_sev = self._targets([label for _, label in examples])
        previous = len(examples) - 1 if previous is None else min(previous, len(examples))
        with self._lock:
            snapshot = self.heads.state_bytes()
            trained_before = self.heads.trained_on
            before = self._accuracy(batch, y_cat, y_sev, previous)
            focus = np.arange(previous, len(examples))
            trust = self.runtime.learning.online_self_trust
            started = time.perf_counter()
            loss = self.heads.fit(batch, y_cat, y_sev, steps, focus=focus, self_trust=trust)
            after = self._accuracy(batch, y_cat, y_sev, previous)
            used = steps
            for _ in range(3):
                if not after < before:
                    break
                took = time.perf_counter() - started
                if took * (used + steps) / used > self.runtime.learning.online_seconds:
                    break  # another round would end past the budget: roll back instead
                loss = self.heads.fit(batch, y_cat, y_sev, steps, focus=focus, self_trust=trust)
                after = self._accuracy(batch, y_cat, y_sev, previous)
                used += steps
            if after < before:
                self.heads.load_state_bytes(snapshot)
                self.heads.trained_on = trained_before
                after = before
            return LearnReport(len(examples), loss, before, after, used, self.model_version)

    def _known(self, label: Label) -> bool:
        return (
            label.category in self.taxonomy.category_names
            and label.severity in self.taxonomy.severity_names
        )
