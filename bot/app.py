"""Composition root: the one place that knows which concrete classes a process uses."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from core.ports import Encoder, Store
from core.service import TriageService
from core.settings import Settings
from core.store import open_store
from core.taxonomy import Taxonomy, load_taxonomy
from core.triage import LearnReport, TriageEngine


@dataclass
class Components:
    settings: Settings
    taxonomy: Taxonomy
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
) -> Components:
    """Wire settings -> taxonomy -> store -> engine -> service, and relearn stored labels."""
    settings = settings or Settings.from_env()
    taxonomy = load_taxonomy(settings.config_path)
    store = open_store(store_url or settings.store_url)
    try:
        engine = TriageEngine(taxonomy, encoder or default_encoder())
        service = TriageService(store, engine, taxonomy, reviewers=settings.reviewers)
        report = service.warm_start() if warm_start else None
    except BaseException:
        store.close()
        raise
    return Components(settings, taxonomy, store, engine, service, report)
