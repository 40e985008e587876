"""Composition root: the one place that knows which concrete classes a process uses."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, partial

from core.backends.llm import LLMTriageEngine
from core.ports import Encoder, Store
from core.runtime import RuntimeSettings, load_runtime_settings
from core.service import TriageService
from core.settings import Settings
from core.store import open_store
from core.taxonomy import Taxonomy, load_taxonomy
from core.triage import LearnReport, TriageEngine


@dataclass
class Components:
    settings: Settings
    taxonomy: Taxonomy
    runtime: RuntimeSettings
    store: Store
    engine: TriageEngine
    service: TriageService
    warm_start: LearnReport | None

    def close(self) -> None:
        self.store.close()


@cache
def default_encoder() -> Encoder:
    """One encoder per process: it is ~90 MB of weights and its cache is shared."""
    from core.backends.embedded import MiniLMEncoder

    return MiniLMEncoder(device="cpu")


def build(
    settings: Settings | None = None,
    *,
    store_url: str | None = None,
    encoder: Encoder | None = None,
    warm_start: bool = True,
    backend: str | None = None,
) -> Components:
    """Wire settings -> taxonomy -> store -> engine -> service, and relearn stored labels.

    `backend` ("embedded" or "llm") overrides $TRIAGE_BACKEND, as `--backend` does.
    """
    settings = (settings or Settings.from_env()).with_backend(backend)
    taxonomy = load_taxonomy(settings.config_path)
    runtime = load_runtime_settings(settings.config_path)
    store = open_store(store_url or settings.store_url)
    try:
        engine = make_engine(settings, taxonomy, runtime, encoder or default_encoder())
        service = TriageService(store, engine, taxonomy, reviewers=settings.reviewers)
        if isinstance(engine, LLMTriageEngine):
            # Few-shot from what people validated: a correction changes the next prompt.
            engine.few_shot = partial(service.similar_validated, k=settings.llm.examples)
        report = service.warm_start() if warm_start else None
    except BaseException:
        store.close()
        raise
    return Components(settings, taxonomy, runtime, store, engine, service, report)


def make_engine(
    settings: Settings, taxonomy: Taxonomy, runtime: RuntimeSettings, encoder: Encoder
) -> TriageEngine:
    """The embedded engine, or the LLM one that falls back to it."""
    if settings.backend == "llm":
        return LLMTriageEngine(taxonomy, encoder, settings.llm, runtime=runtime)
    return TriageEngine(taxonomy, encoder, runtime=runtime)
