"""Benchmarks: speed and memory figures as JSON, never asserted in timed tests."""

from __future__ import annotations

import platform
import resource
import statistics
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.ports import Encoder
    from core.settings import LLMSettings

SHORT_TEXTS = [
    "The signup button does nothing on Firefox",
    "Please add a dark mode to the docs",
    "How do I configure auth for the API? The guide is missing",
    "Love the new release, thanks!",
    "Checkout is down for everyone since 9am",
    "buy cheap backlinks now",
    "After upgrading to 4.2 the CLI crashes with a TypeError",
    "Typo on the pricing page: 'anual'",
]


def _peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024


def _encoder(encoder: Encoder | None) -> Encoder:
    """`encoder`, else the one the bot runs (`bot.app.default_encoder`: MiniLM on the CPU)."""
    if encoder is not None:
        return encoder
    from core.backends.embedded import MiniLMEncoder

    return MiniLMEncoder(device="cpu")


def latency(
    n_single: int = 200, n_batch: int = 512, *, encoder: Encoder | None = None
) -> dict[str, Any]:
    """Time the production engine: load, one short text at a time, then batches.

    Every text is unique (a counter is appended) so the embedding cache never answers.
    `encoder` defaults to the bot's (MiniLM on the CPU).
    """
    from core.governance import redact
    from core.models import FeedbackItem
    from core.taxonomy import load_taxonomy
    from core.triage import TriageEngine

    started = time.perf_counter()
    taxonomy = load_taxonomy()
    engine = TriageEngine(taxonomy, _encoder(encoder))
    load_seconds = time.perf_counter() - started

    def item(i: int) -> FeedbackItem:
        text = f"{SHORT_TEXTS[i % len(SHORT_TEXTS)]} (#{i})"
        return FeedbackItem(id=f"bench-{i}", text=text, redacted_text=redact(text).text)

    engine.triage(item(-1))  # warm-up: first call allocates
    timings = []
    for i in range(n_single):
        one = item(i)
        t0 = time.perf_counter()
        engine.triage(one)
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    batch = [item(n_single + i) for i in range(n_batch)]
    t0 = time.perf_counter()
    for start in range(0, n_batch, 64):
        engine.triage_many(batch[start : start + 64])
    batch_seconds = time.perf_counter() - t0
    return {
        "model": engine.encoder.name,
        "model_load_seconds": round(load_seconds, 3),
        "single_items": n_single,
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2),
        "batched_items": n_batch,
        "batched_items_per_s": round(n_batch / batch_seconds, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "targets": {"p50_ms": 15, "batched_items_per_s": 200},
    }


def llm_latency(
    settings: LLMSettings,
    n_single: int = 20,
    n_batch: int = 32,
    *,
    encoder: Encoder | None = None,
) -> dict[str, Any]:
    """Time the LLM backend per call, as the bot makes them, and count the fallbacks.

    Zero-shot (no store, so no validated look-alikes): a few-shot prompt is longer and
    slower. A call that fell back is timed too (it is what a user waits for), and the
    figures say how many did, so a dead endpoint cannot pass for a fast one.
    """
    from core.backends.llm import LLMTriageEngine
    from core.governance import redact
    from core.models import FeedbackItem
    from core.taxonomy import load_taxonomy

    started = time.perf_counter()
    engine = LLMTriageEngine(load_taxonomy(), _encoder(encoder), settings)
    load_seconds = time.perf_counter() - started

    def item(i: int) -> FeedbackItem:
        text = f"{SHORT_TEXTS[i % len(SHORT_TEXTS)]} (#{i})"
        return FeedbackItem(id=f"bench-{i}", text=text, redacted_text=redact(text).text)

    engine.triage(item(-1))  # warm-up: client, connection, the server's prompt cache
    timings, reasons = [], []
    for i in range(n_single):
        t0 = time.perf_counter()
        result = engine.triage(item(i))
        timings.append((time.perf_counter() - t0) * 1000)
        if result.fallback_reason:
            reasons.append(result.fallback_reason)
    timings.sort()
    batch = [item(n_single + i) for i in range(n_batch)]
    t0 = time.perf_counter()
    batched = [
        t for start in range(0, n_batch, 64) for t in engine.triage_many(batch[start : start + 64])
    ]
    batch_seconds = time.perf_counter() - t0
    return {
        "backend": "llm",
        "model": settings.model,
        "base_url": settings.base_url,
        "timeout_s": settings.timeout_s,
        "model_load_seconds": round(load_seconds, 3),
        "single_items": n_single,
        "p50_ms": round(statistics.median(timings), 1) if timings else None,
        "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 1)
        if timings
        else None,
        "fallbacks": len(reasons),
        "fallback_reasons": sorted(set(reasons))[:5],
        "batched_items": n_batch,
        "batched_items_per_s": round(n_batch / batch_seconds, 2) if n_batch else None,
        "batched_fallbacks": sum(1 for t in batched if t.fallback_reason),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }
