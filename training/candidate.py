"""The candidate model: fresh heads fitted on labelled examples from the cold-start prior.

Shared by `train` (what it gates and promotes), `finetune` (heads on the tuned encoder),
`evaluate` and `simulate` (what they measure), so the published figures are the product's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from core.backends.heads import embedding_scale_for
from core.models import FeedbackItem, Label
from core.ports import Encoder
from core.runtime import RuntimeSettings
from core.taxonomy import Taxonomy
from core.triage import TriageEngine

CHUNK = 10  # steps between progress updates
BATCH_ROWS = 4096  # labels per step in batch training (online updates sample fewer)


def fit_candidate(
    training: Sequence[tuple[FeedbackItem, Label]],
    taxonomy: Taxonomy,
    encoder: Encoder,
    *,
    steps: int = 300,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    runtime: RuntimeSettings | None = None,
) -> TriageEngine:
    """A fresh model trained on `training` from the cold-start prior: what `train` promotes
    and what `triage-bot eval` measures, so the published figures are the product's."""
    candidate = TriageEngine(taxonomy, encoder, seed=seed, runtime=runtime)
    candidate.heads.embedding_scale[0] = embedding_scale_for(len(training))
    batch, _ = candidate.batch([item for item, _ in training])
    candidate.heads.fit_idf(batch)
    learning = candidate.runtime.learning
    candidate.heads.learning_rate = learning.batch_learning_rate
    candidate.heads.weight_decay = learning.batch_weight_decay
    cats, sevs = taxonomy.category_names, taxonomy.severity_names
    y_cat = np.array([cats.index(label.category) for _, label in training])
    y_sev = np.array([sevs.index(label.severity) for _, label in training])
    done = 0
    while done < steps:
        chunk = min(CHUNK, steps - done)
        candidate.heads.fit(batch, y_cat, y_sev, chunk, seed=seed + done, max_batch=BATCH_ROWS)
        done += chunk
        if progress:
            progress(done, steps)
    # Later online updates (in a bot that loads this model) take small steps again.
    candidate.heads.learning_rate = learning.learning_rate
    candidate.heads.weight_decay = learning.weight_decay
    return candidate
