"""Owners: who an item goes to, by rule first and by what the team's reassignments taught.

`[[routes]]` name an owner by page glob and/or category (first match wins). A reviewer's
pick in a card's Assign menu is an `Assignment`, a label of its own: it wins for that item,
and the owner model learns from all of them (a nearest-centroid classifier over the item
embeddings the category heads read). The model takes over from the rules once it is at
least `[routing] learned_above` sure, and only for owners it has `min_assignments` of.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import numpy as np

from core.models import Assignment, FeedbackItem, Triage, utcnow
from core.runtime import OwnerSpec, RouteSpec, RoutingSettings
from core.service import TriageService, UnknownItemError
from core.taxonomy import ConfigError

SHARPNESS = 20.0  # cosine similarity to confidence: how peaked the centroid softmax is

Source = Literal["assigned", "learned", "rule"]


@dataclass(frozen=True)
class OwnerChoice:
    """Who owns an item, and why (a card shows both)."""

    owner: OwnerSpec
    source: Source
    confidence: float = 1.0
    by: str | None = None  # who assigned it

    @property
    def why(self) -> str:
        if self.source == "assigned":
            return f"assigned by {self.by}" if self.by else "assigned"
        if self.source == "learned":
            return f"learned from reassignments, {self.confidence:.0%}"
        return "by rule"


def _page_forms(page: str) -> list[str]:
    """The page as written, and its path when it is a URL: a glob may name either."""
    forms = [page]
    if "://" in page:
        path = urlsplit(page).path
        if path:
            forms.append(path)
    return forms


def route_matches(route: RouteSpec, page: str | None, category: str) -> bool:
    if route.categories and category not in route.categories:
        return False
    if not route.pages:
        return True
    if not page:
        return False
    return any(
        fnmatch.fnmatchcase(form, glob) for form in _page_forms(page) for glob in route.pages
    )


class OwnerModel:
    """Nearest centroid over item embeddings: one mean vector per owner."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.centroids = np.zeros((0, 0), dtype=np.float32)

    def fit(self, embeddings: np.ndarray, owners: list[str], min_each: int) -> None:
        names = sorted({o for o in owners if owners.count(o) >= min_each})
        if len(names) < 2:  # one owner is no choice to learn
            self.names, self.centroids = [], np.zeros((0, 0), dtype=np.float32)
            return
        rows = []
        for name in names:
            mean = embeddings[[i for i, o in enumerate(owners) if o == name]].mean(axis=0)
            rows.append(mean / (np.linalg.norm(mean) or 1.0))
        self.names, self.centroids = names, np.stack(rows).astype(np.float32)

    def predict(self, embedding: np.ndarray) -> tuple[str, float] | None:
        if not self.names:
            return None
        scores = SHARPNESS * (self.centroids @ embedding)
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        best = int(probs.argmax())
        return self.names[best], float(probs[best])


class Router:
    """Who owns what; assignments are stored, the model relearns from them."""

    def __init__(self, service: TriageService) -> None:
        runtime = service.runtime
        self.service = service
        self.store = service.store
        self.owners = {owner.name: owner for owner in runtime.owners}
        self.routes = runtime.routes
        self.settings: RoutingSettings = runtime.routing
        categories = service.taxonomy.category_names
        for i, route in enumerate(self.routes):
            for name in route.categories:
                if name not in categories:
                    raise ConfigError(
                        f"routes[{i}].categories names {name!r}, which is not in the taxonomy"
                    )
        self.model = OwnerModel()
        self._lock = threading.Lock()
        self._fitted = False

    @property
    def enabled(self) -> bool:
        return bool(self.owners)

    def relearn(self) -> int:
        """Fit the owner model on every stored assignment; returns how many it read."""
        assignments = [a for a in self.store.iter_assignments() if a.owner in self.owners]
        items = [self.store.get_item(a.item_id) for a in assignments]
        pairs = [(i, a.owner) for i, a in zip(items, assignments, strict=True) if i is not None]
        model = OwnerModel()
        if pairs:
            embeddings = self.service.engine.embed([item for item, _ in pairs])
            model.fit(embeddings, [owner for _, owner in pairs], self.settings.min_assignments)
        with self._lock:
            self.model, self._fitted = model, True
        return len(pairs)

    def choose(self, item: FeedbackItem, category: str) -> OwnerChoice | None:
        """The assignment, else the learned owner where it is sure enough, else the rule."""
        if not self.enabled:
            return None
        assigned = self.store.get_assignment(item.id)
        if assigned is not None and assigned.owner in self.owners:
            return OwnerChoice(self.owners[assigned.owner], "assigned", by=assigned.by)
        if not self._fitted:
            self.relearn()
        with self._lock:
            model = self.model
        guess = model.predict(self.service.engine.embed([item])[0]) if model.names else None
        if guess is not None and guess[1] >= self.settings.learned_above:
            return OwnerChoice(self.owners[guess[0]], "learned", guess[1])
        for route in self.routes:
            if route_matches(route, item.page, category):
                return OwnerChoice(self.owners[route.owner], "rule")
        return None

    def assign(self, item_id: str, owner: str, by: str, platform: str) -> Assignment:
        """A reviewer's pick (the caller checked the reviewer rule): stored, then learned."""
        if owner not in self.owners:
            raise ValueError(f"unknown owner {owner!r}")
        if self.store.get_item(item_id) is None:
            raise UnknownItemError(f"unknown item id {item_id!r}")
        assignment = Assignment(
            item_id=item_id, owner=owner, by=by, platform=platform, created_at=utcnow()
        )
        self.store.put_assignment(assignment)
        self.relearn()
        return assignment

    def only_owned(
        self, queue: list[tuple[FeedbackItem, Triage, str]], owners: set[str], limit: int = 10
    ) -> list[tuple[FeedbackItem, Triage, str]]:
        """The rows of a review queue whose items these owners own (`/triage queue mine`)."""
        mine = []
        for item, triage, reason in queue:
            choice = self.choose(item, triage.category)
            if choice is not None and choice.owner.name in owners:
                mine.append((item, triage, reason))
        return mine[:limit]

    def owned_by(self, user: str, roles: frozenset[str] = frozenset()) -> set[str]:
        """The owners a chat user is (by their Slack id, Discord id or Discord roles)."""
        mine = set()
        for owner in self.owners.values():
            reaches = {owner.slack, owner.discord}
            ways = {user, f"user:{user}", *(f"role:{role}" for role in roles)}
            if not reaches.isdisjoint(ways):
                mine.add(owner.name)
        return mine
