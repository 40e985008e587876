"""The embedding's weight in the heads: by label count, and saved with the weights."""

import io

import numpy as np
import pytest

from core.backends.heads import (
    MANY_LABELS,
    MANY_LABELS_EMBEDDING_SCALE,
    Batch,
    LinearHeads,
    embedding_scale_for,
)


def _batch(n: int = 12, dim: int = 8, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    lexical = [np.unique(rng.integers(0, 64, size=5)) for _ in range(n)]
    return Batch(
        embeddings=emb,
        lexical=lexical,
        counts=[np.ones(len(ids), dtype=np.float32) for ids in lexical],
        prior_category=np.zeros((n, 3), dtype=np.float32),
        prior_severity=np.zeros((n, 2), dtype=np.float32),
    )


def _trained(scale: float) -> LinearHeads:
    heads = LinearHeads(dim=8, n_categories=3, n_severities=2, buckets=64)
    heads.embedding_scale[0] = scale
    batch = _batch()
    heads.fit_idf(batch)
    heads.fit(batch, np.arange(12) % 3, np.arange(12) % 2, steps=20)
    return heads


def test_embedding_weight_is_saved_and_restored() -> None:
    heads = _trained(MANY_LABELS_EMBEDDING_SCALE)
    loaded = LinearHeads(dim=8, n_categories=3, n_severities=2, buckets=64)
    loaded.embedding_scale[0] = 0.25  # must be overwritten by the saved value
    loaded.load_state_bytes(heads.state_bytes())
    assert loaded.embedding_scale[0] == pytest.approx(MANY_LABELS_EMBEDDING_SCALE)
    probe = _batch(seed=1)
    np.testing.assert_allclose(loaded.predict(probe)[0], heads.predict(probe)[0], rtol=1e-5)


def test_a_model_saved_before_the_weight_existed_keeps_full_weight() -> None:
    old = _trained(1.0)
    archive = np.load(io.BytesIO(old.state_bytes()))
    arrays = {k: archive[k] for k in archive.files if k != "embedding_scale"}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    loaded = LinearHeads(dim=8, n_categories=3, n_severities=2, buckets=64)
    loaded.load_state_bytes(buffer.getvalue())
    assert loaded.embedding_scale[0] == 1.0
    probe = _batch(seed=2)
    np.testing.assert_allclose(loaded.predict(probe)[0], old.predict(probe)[0], rtol=1e-5)
    half = _trained(MANY_LABELS_EMBEDDING_SCALE)
    assert not np.allclose(half.predict(probe)[0], old.predict(probe)[0])


def test_the_embedding_weighs_less_once_labels_are_many() -> None:
    assert LinearHeads(dim=8, n_categories=3, n_severities=2, buckets=64).embedding_scale[0] == 1.0
    assert embedding_scale_for(0) == embedding_scale_for(MANY_LABELS - 1) == 1.0
    assert embedding_scale_for(MANY_LABELS) == MANY_LABELS_EMBEDDING_SCALE < 1.0
