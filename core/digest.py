"""The digest: a period at a glance, against the period before it.

Counts by category and severity (each with its change), what waits for a human (and the
oldest critical item among it), escalations and GitHub issues, and the model's own health:
its accuracy against this period's validations, how far reviewers agreed, the share of
"needs a human" cards, and how far its predictions drifted from the period before. Read
from the store only, so every process (the CLI, a bot's schedule) computes the same digest;
with the engine's encoder, the new and growing themes of the period too (`core.themes`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.escalation import is_escalation_target
from core.issues import is_issue_target
from core.models import FeedbackItem, Label, Triage, utcnow
from core.ports import Store
from core.runtime import WEEKDAYS, DigestSettings
from core.taxonomy import Taxonomy
from core.themes import Embed, Themes, build_themes, theme_lines

_PERIOD = re.compile(r"^(\d{1,4})([hdw])$")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}
MAX_PERIOD = timedelta(days=366)


def parse_period(text: str) -> timedelta:
    """`1d`, `7d`, `12h`, `2w`: a period the digest covers; ValueError names what is wrong."""
    match = _PERIOD.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"period {text!r}: expected a number and h, d or w, like 1d or 7d")
    period = timedelta(hours=int(match.group(1)) * _UNIT_HOURS[match.group(2)])
    if period > MAX_PERIOD:
        raise ValueError(f"period {text!r}: at most 366 days")
    return period


@dataclass(frozen=True)
class Change:
    now: int
    before: int

    @property
    def delta(self) -> int:
        return self.now - self.before


@dataclass
class Digest:
    since: datetime
    until: datetime
    items: Change
    by_category: dict[str, Change]
    by_severity: dict[str, Change]
    awaiting_review: int
    oldest_critical: dict[str, Any] | None
    escalations: int
    issues_opened: int
    validated: int
    accuracy: float  # predicted category against this period's labels (nan: none)
    agreement: float  # mean agreement of this period's labels (nan: none)
    needs_human_share: float  # of this period's predictions (nan: none)
    drift: float  # total variation between the two periods' predicted categories (nan)
    notes: list[str] = field(default_factory=list)
    themes: Themes | None = None  # with an encoder at hand (`core.themes`)

    @property
    def empty(self) -> bool:
        return self.items.now == 0 and self.validated == 0

    def as_dict(self) -> dict[str, Any]:
        def number(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 4)

        def changes(rows: dict[str, Change]) -> dict[str, dict[str, int]]:
            return {
                k: {"now": v.now, "before": v.before, "delta": v.delta} for k, v in rows.items()
            }

        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "empty": self.empty,
            "items": {
                "now": self.items.now,
                "before": self.items.before,
                "delta": self.items.delta,
            },
            "by_category": changes(self.by_category),
            "by_severity": changes(self.by_severity),
            "awaiting_review": self.awaiting_review,
            "oldest_critical": self.oldest_critical,
            "escalations": self.escalations,
            "issues_opened": self.issues_opened,
            "model": {
                "validated": self.validated,
                "accuracy": number(self.accuracy),
                "agreement": number(self.agreement),
                "needs_human_share": number(self.needs_human_share),
                "drift": number(self.drift),
            },
            "notes": self.notes,
            "themes": self.themes.as_dict() if self.themes is not None else None,
        }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _total_variation(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return math.nan
    na, nb = sum(a.values()), sum(b.values())
    return 0.5 * sum(abs(a[k] / na - b[k] / nb) for k in set(a) | set(b))


def build_digest(
    store: Store,
    taxonomy: Taxonomy,
    period: timedelta,
    now: datetime | None = None,
    embed: Embed | None = None,
) -> Digest:
    """The digest of the `period` up to `now`, each count against the period before;
    with `embed` (the engine's encoder), its themes too."""
    until = now or utcnow()
    since, before = until - period, until - 2 * period
    current: list[tuple[FeedbackItem, Triage | None]] = []
    previous: list[tuple[FeedbackItem, Triage | None]] = []
    for item in store.iter_items():
        if since <= item.received_at < until:
            current.append((item, store.latest_triage(item.id)))
        elif before <= item.received_at < since:
            previous.append((item, store.latest_triage(item.id)))

    def shown(pairs: list[tuple[FeedbackItem, Triage | None]]) -> tuple[Counter[str], Counter[str]]:
        """Category and severity as they stand: the label's (a grouped duplicate's is its
        group's), else the prediction's."""
        cats: Counter[str] = Counter()
        sevs: Counter[str] = Counter()
        for item, triage in pairs:
            link = store.get_duplicate(item.id)
            label = store.get_label(link.canonical_id if link is not None else item.id)
            if label is not None:
                cats[label.category] += 1
                sevs[label.severity] += 1
            elif triage is not None:
                cats[triage.category] += 1
                sevs[triage.severity] += 1
        return cats, sevs

    cats_now, sevs_now = shown(current)
    cats_then, sevs_then = shown(previous)
    labels: list[tuple[Label, Triage | None]] = [
        (label, store.latest_triage(label.item_id))
        for label in store.iter_labels()
        if since <= label.updated_at < until
    ]
    judged = [(lab, tri) for lab, tri in labels if tri is not None]
    waiting = [
        (item, triage)
        for item, triage in current
        if triage is not None
        and store.get_label(item.id) is None
        and store.get_duplicate(item.id) is None  # reviewed on its group's card
    ]
    most_severe = taxonomy.severity_names[0]
    critical = sorted(
        (p for p in waiting if p[1] is not None and p[1].severity == most_severe),
        key=lambda p: p[0].received_at,
    )
    oldest = None
    if critical:
        item, triage = critical[0]
        oldest = {
            "id": item.id,
            "received_at": item.received_at.isoformat(),
            "category": triage.category if triage else None,
            "text": " ".join(item.redacted_text.split())[:140],
        }
    posts = [p for p in store.posts() if since <= p.created_at < until]
    predicted_now = Counter(t.category for _, t in current if t is not None)
    predicted_then = Counter(t.category for _, t in previous if t is not None)
    digest = Digest(
        since=since,
        until=until,
        items=Change(len(current), len(previous)),
        by_category={
            name: Change(cats_now[name], cats_then[name]) for name in taxonomy.category_names
        },
        by_severity={
            name: Change(sevs_now[name], sevs_then[name]) for name in taxonomy.severity_names
        },
        awaiting_review=len(waiting),
        oldest_critical=oldest,
        escalations=sum(1 for p in posts if is_escalation_target(p.target)),
        issues_opened=sum(1 for p in posts if is_issue_target(p.target) and p.ref is not None),
        validated=len(labels),
        accuracy=_mean([float(tri.category == lab.category) for lab, tri in judged if tri]),
        agreement=_mean([lab.agreement for lab, _ in labels]),
        needs_human_share=_mean([float(t.needs_human) for _, t in current if t is not None]),
        drift=_total_variation(predicted_now, predicted_then),
    )
    if digest.empty:
        digest.notes.append("Nothing arrived and nothing was validated in this period.")
    elif embed is not None:
        digest.themes = build_themes(store, embed, period, until)
    return digest


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%}"


def _delta(change: Change) -> str:
    return f"{change.now} ({change.delta:+d})"


def digest_lines(digest: Digest, bold: str, literal: Callable[[str], str]) -> list[str]:
    """The digest as a chat message on any platform: `bold` is the platform's bold marker,
    `literal` shows an item's text as written (the platform's escaping)."""
    head = f"{bold}Digest{bold} {digest.since:%Y-%m-%d %H:%M} to {digest.until:%Y-%m-%d %H:%M} UTC"
    if digest.empty:
        return [head, digest.notes[0]]
    cats = ", ".join(f"{n} {_delta(c)}" for n, c in digest.by_category.items() if c.now or c.before)
    sevs = ", ".join(f"{n} {_delta(c)}" for n, c in digest.by_severity.items() if c.now or c.before)
    lines = [
        head,
        f"{bold}{digest.items.now}{bold} items ({digest.items.delta:+d} on the period before)",
        f"By category: {cats}",
        f"By severity: {sevs}",
        f"Awaiting review: {digest.awaiting_review} · escalations: {digest.escalations} · "
        f"GitHub issues opened: {digest.issues_opened}",
    ]
    if digest.oldest_critical:
        oldest = digest.oldest_critical
        lines.append(
            f"Oldest critical waiting: {literal(oldest['text'])} "
            f"(since {oldest['received_at'][:16]})"
        )
    lines.append(
        f"Model: {_pct(digest.accuracy)} right on {digest.validated} validation(s) · reviewers "
        f"agree {_pct(digest.agreement)} · needs a human {_pct(digest.needs_human_share)} · "
        f"drift {_pct(digest.drift)}"
    )
    moving = theme_lines(digest.themes, literal) if digest.themes is not None else []
    if moving:
        lines.append(f"{bold}New and growing themes{bold}: " + " · ".join(moving))
    return lines


GRACE = timedelta(hours=2)  # a slot missed by longer (the bot was down) is skipped


class DigestSchedule:
    """Which scheduled digest is due: the latest slot at or before now, if it is recent."""

    def __init__(self, settings: DigestSettings) -> None:
        self.settings = settings

    @property
    def period(self) -> str:
        """What a scheduled digest covers: the day, or the week, before its slot."""
        return "7d" if self.settings.every == "weekly" else "1d"

    def latest_slot(self, now: datetime) -> datetime | None:
        """The most recent scheduled time at or before `now` (UTC), None when off."""
        if self.settings.every == "off":
            return None
        zone = ZoneInfo(self.settings.timezone)
        local = now.astimezone(zone)
        hour, minute = (int(part) for part in self.settings.at.split(":"))
        slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if self.settings.every == "weekly":
            target = WEEKDAYS.index(self.settings.weekday)
            slot -= timedelta(days=(slot.weekday() - target) % 7)
            if slot > local:
                slot -= timedelta(days=7)
        elif slot > local:
            slot -= timedelta(days=1)
        return slot.astimezone(UTC)

    def due(self, now: datetime | None = None) -> datetime | None:
        """The slot to post now, if one is within the grace period."""
        now = now or utcnow()
        slot = self.latest_slot(now)
        return slot if slot is not None and now - slot <= GRACE else None


def claim_due(
    store: Store, schedule: DigestSchedule, target: str, now: datetime | None = None
) -> str | None:
    """The period of the digest this worker should post now for `target`, or None. The
    slot is marked seen in the store first, so of several workers one posts it, once."""
    slot = schedule.due(now)
    if slot is None or not store.mark_event_seen(f"digest:{target}:{slot.isoformat()}"):
        return None
    return schedule.period
