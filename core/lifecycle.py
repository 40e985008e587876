"""Forgetting and retention: an item's text and everything derived from it, deleted.

On request (`triage-bot forget`: by item id, by the reporter's id, by date) or by age
(`[retention]`: `triage-bot prune`, and every running bot at start and once a day), through
one path, `forget`: the store deletes the items with their predictions, votes, labels,
rewards and outbox rows, and records an audit event without the content (ids, counts, the
chat cards left in their channels). Running bots read the new audit events
(`TriageService.sync_forgotten`), drop the items from their caches and relearn without
them; `triage-bot train` only ever reads the labels left.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from core.models import AuditEvent, FeedbackItem, utcnow
from core.ports import Store
from core.runtime import RetentionSettings

CHUNK = 500  # items per store call: one SQLite transaction and one audit event each

# A reporter as the platforms name them: "slack:U0123ABC", "discord:80351110224678912".
SUBMITTER = re.compile(r"^(slack|discord):[A-Za-z0-9]+$")


def submitters_of(item: FeedbackItem) -> set[str]:
    """Everyone who reported `item`, as "<platform>:<user id>": the submitters intake
    recorded, and the user in the platform's own facts (`slack.user`, `discord.user`,
    `submitted_by` of a command or modal)."""
    metadata = item.metadata
    found = {s for s in metadata.get("submitters", []) or [] if isinstance(s, str)}
    for platform in ("slack", "discord"):
        origin = metadata.get(platform)
        if isinstance(origin, Mapping) and origin.get("user") not in (None, ""):
            found.add(f"{platform}:{origin['user']}")
    by = metadata.get("submitted_by")
    platform = item.source.partition("-")[0]  # slack-modal, slack-command, discord-command
    if by not in (None, "") and platform in ("slack", "discord"):
        found.add(f"{platform}:{by}")
    return found


def parse_before(value: str) -> datetime:
    """`--before 2026-06-01` (midnight UTC) or an ISO time; a time without zone is UTC."""
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"--before {value!r} is not a date: use YYYY-MM-DD or an ISO 8601 time"
        ) from None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


@dataclass(frozen=True)
class Selection:
    """Which items to forget: those matching every selector given (any of `item_ids`)."""

    item_ids: tuple[str, ...] = ()
    submitter: str | None = None
    before: datetime | None = None

    def __post_init__(self) -> None:
        if not (self.item_ids or self.submitter or self.before):
            raise ValueError("say what to forget: --item ID, --submitter PLATFORM:ID or --before")
        if self.submitter is not None and not SUBMITTER.match(self.submitter):
            raise ValueError(
                f"--submitter {self.submitter!r}: use slack:USER_ID or discord:USER_ID"
            )

    def matches(self, item: FeedbackItem) -> bool:
        return (
            (not self.item_ids or item.id in self.item_ids)
            and (self.submitter is None or self.submitter in submitters_of(item))
            and (self.before is None or item.received_at < self.before)
        )

    def describe(self) -> dict[str, Any]:
        """The audit event's `selector`: what was asked for."""
        given: dict[str, Any] = {}
        if self.item_ids:
            given["item"] = list(self.item_ids)
        if self.submitter is not None:
            given["submitter"] = self.submitter
        if self.before is not None:
            given["before"] = self.before.isoformat()
        return given


def select(store: Store, selection: Selection) -> tuple[list[FeedbackItem], list[str]]:
    """The stored items `selection` names, oldest first, and the ids it names that the
    store lacks (never stored, or forgotten already). A submitter is found by reading
    every item (a rare, offline command); ids and dates use the store's indexes."""
    missing: list[str] = []
    if selection.item_ids:
        found = []
        for item_id in dict.fromkeys(selection.item_ids):
            item = store.get_item(item_id)
            if item is None:
                missing.append(item_id)
            else:
                found.append(item)
        candidates: Iterable[FeedbackItem] = sorted(found, key=lambda i: (i.received_at, i.id))
    elif selection.submitter is None and selection.before is not None:
        ids = store.items_received_before(selection.before)
        candidates = [item for item in map(store.get_item, ids) if item is not None]
    else:
        candidates = store.iter_items()
    return [item for item in candidates if selection.matches(item)], missing


def forget(
    store: Store,
    item_ids: Sequence[str],
    *,
    action: Literal["forget", "prune"],
    selector: Mapping[str, Any],
    by: str,
    reason: str | None = None,
    counts: Mapping[str, int] | None = None,
) -> list[AuditEvent]:
    """Delete these items and everything derived from them; one audit event per CHUNK
    items (`counts` from the caller, e.g. a prune's other deletions, go on the first).
    With no ids but some `counts`, one event records those alone."""
    ids = list(dict.fromkeys(item_ids))
    chunks = [ids[start : start + CHUNK] for start in range(0, len(ids), CHUNK)] or [[]]
    events = []
    for n, chunk in enumerate(chunks):
        event = AuditEvent(
            action=action,
            by=by,
            selector=dict(selector),
            reason=reason,
            item_ids=chunk,
            counts=dict(counts or {}) if n == 0 else {},
        )
        events.append(store.forget_items(event))
    _drop_from_theme_names(store, set(ids))
    return events


def _drop_from_theme_names(store: Store, gone: set[str]) -> None:
    """A theme's name keeps the ids of the reports it was given to (`core.themes`): the
    forgotten ones leave it too. The name and its centre stay; they hold no item."""
    if not gone:
        return
    for kept in store.theme_names():
        left = [i for i in kept.item_ids if i not in gone]
        if len(left) < len(kept.item_ids):
            store.put_theme_name(kept.model_copy(update={"item_ids": left}))


@dataclass
class PruneReport:
    """What one retention run deleted (or, dry, would delete)."""

    items: list[str]
    seen_events: int
    finished_posts: int
    events: list[AuditEvent] = field(default_factory=list)
    dry_run: bool = False

    @property
    def deleted_anything(self) -> bool:
        return bool(self.items or self.seen_events or self.finished_posts)

    def as_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for event in self.events:
            for kind, n in event.counts.items():
                counts[kind] = counts.get(kind, 0) + n
        return {
            "dry_run": self.dry_run,
            "items": len(self.items),
            "seen_events": self.seen_events,
            "finished_posts": self.finished_posts,
            "counts": counts,
            "cards": [card for event in self.events for card in event.cards],
            "audit": [event.seq for event in self.events],
        }


def prune(
    store: Store,
    retention: RetentionSettings,
    *,
    by: str,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Delete what `retention` no longer keeps: seen-event ids, finished outbox rows, then
    old items through `forget`; one audit event per run (per CHUNK items), none when
    nothing went."""
    now = now or utcnow()

    def cutoff(days: int) -> datetime:
        return now - timedelta(days=days)

    seen = (
        store.prune_seen_events(cutoff(retention.seen_events_days), dry_run=dry_run)
        if retention.seen_events_days
        else 0
    )
    posts = (
        store.prune_posts(cutoff(retention.finished_outbox_days), dry_run=dry_run)
        if retention.finished_outbox_days
        else 0
    )
    items = (
        store.items_received_before(cutoff(retention.items_days)) if retention.items_days else []
    )
    report = PruneReport(items, seen, posts, dry_run=dry_run)
    if dry_run or not report.deleted_anything:
        return report
    selector: dict[str, Any] = retention.model_dump()
    if retention.items_days:
        selector["before"] = cutoff(retention.items_days).isoformat()
    other = {"seen_events": seen, "finished_posts": posts}
    report.events = forget(
        store,
        items,
        action="prune",
        selector=selector,
        by=by,
        counts={kind: n for kind, n in other.items() if n},
    )
    return report
