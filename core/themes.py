"""Themes: what a period's feedback is about, in a few named clusters, against the period
before.

The period's items are clustered on their sentence embeddings (average-linkage
agglomerative clustering on cosine distance: no number of clusters to guess, and a theme
is as tight as `SIMILARITY` says). A grouped duplicate counts for its canonical's theme,
so twenty reports of one outage are one theme of twenty, not twenty themes. Each theme is
named by its most distinctive words (class-based TF-IDF: words frequent in this theme
and rare in the others), unless a reviewer named it: a `ThemeName` keeps the name with
the theme's centre, and a theme of a later period whose centre lies near it takes the
name. Two themes a reviewer merged carry one name, and are shown as one.

The previous period's items are placed on this period's themes (the nearest centre, when
near enough): a theme with none before is new, one with more now than then is growing.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from core.governance import InputError, clean_text, redact
from core.models import FeedbackItem, ThemeName
from core.ports import Store

SIMILARITY = 0.5  # items of one theme are at least this alike on average (cosine)
NAMED_SIMILARITY = 0.8  # a theme takes a reviewer's name when its centre is this near
# A fixed text whose embedding says which encoder made a centre: a promoted fine-tuned
# encoder moves it far more than this; the same weights on another batch do not.
SPACE_PROBE = "Checkout fails with an error when I pay by card"
SAME_SPACE = 0.999
NAME_MEMBERS = 50  # the reports a name keeps, to find its centre again under a new encoder
MIN_SIZE = 2  # fewer reports than this are no theme ("other")
MAX_ITEMS = 4000  # the newest of a period that are clustered (the distances are n²)
NAME_WORDS = 3
NAME_BYTES = 400  # what a reviewer may type as a theme's name (80 characters are kept)
EXAMPLES = 3
_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_STOPWORDS = """about after again all also and any are because been before being but can cannot
    could did does doing don't down each even every for from get gets getting got had has
    have having her here him his how i'm into its it's just like made make many more most
    much must not now off once only other our out over own please same she should some
    still such than that the their them then there these they this those though through
    too under until very was wasn't way were what when where which while who why will
    with won't would you your yours i've can't doesn't isn't there's let's really thing
    things one two new use used using want wants trying tried try work works working"""
STOPWORDS = frozenset(_STOPWORDS.split())


@dataclass
class Theme:
    key: str  # names the theme in `triage-bot themes rename/merge` (its most central item)
    name: str
    named_by: str | None  # the reviewer who named it; None: named by its words
    count: int  # reports in the period (a group's duplicates included)
    previous: int  # reports of the period before that lie on it
    item_ids: list[str]
    examples: list[FeedbackItem]
    centroid: np.ndarray = field(repr=False)
    space: np.ndarray | None = field(default=None, repr=False)  # the encoder's probe

    @property
    def trend(self) -> str:
        if self.previous == 0:
            return "new"
        if self.count > self.previous:
            return "growing"
        return "shrinking" if self.count < self.previous else "steady"

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "named_by": self.named_by,
            "count": self.count,
            "previous": self.previous,
            "trend": self.trend,
            "item_ids": self.item_ids,
            "examples": [" ".join(item.redacted_text.split())[:200] for item in self.examples],
        }


@dataclass
class Themes:
    since: datetime
    until: datetime
    themes: list[Theme]
    other: int  # reports in no theme (too few alike)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "themes": [t.as_dict() for t in self.themes],
            "other": self.other,
        }

    def find(self, key: str) -> Theme:
        for theme in self.themes:
            if theme.key == key or theme.name.lower() == key.lower():
                return theme
        raise KeyError(f"no theme {key!r} in this period (`triage-bot themes` lists them)")


Embed = Callable[[Sequence[FeedbackItem]], np.ndarray]


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def _clusters(vectors: np.ndarray) -> np.ndarray:
    """A cluster label per row (average linkage, cosine distance under 1 - SIMILARITY)."""
    if len(vectors) == 1:
        return np.zeros(1, dtype=int)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(
        n_clusters=None,
        metric="cosine",
        linkage="average",
        distance_threshold=1.0 - SIMILARITY,
    )
    return np.asarray(model.fit_predict(vectors))


def _names(docs: list[list[str]]) -> list[str]:
    """Each cluster's most distinctive words and word pairs (class-based TF-IDF)."""
    counts = [
        Counter(words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)])
        for words in docs
    ]
    df: Counter[str] = Counter()
    for c in counts:
        df.update(set(c))
    names = []
    for c in counts:
        total = sum(c.values()) or 1
        scored = sorted(c, key=lambda t: (-(c[t] / total) * math.log(1 + len(counts) / df[t]), t))
        picked: list[str] = []
        for term in scored:
            if c[term] < 2 and len(picked) >= 1:
                break  # a word said once is no theme's name (the first one aside)
            if any(term in p or p in term for p in picked):
                continue
            picked.append(term)
            if len(picked) == NAME_WORDS:
                break
        names.append(" · ".join(picked) or "(no words)")
    return names


def _probe(embed: Embed) -> np.ndarray:
    """The encoder's embedding of `SPACE_PROBE`: which space this period's centres are in."""
    item = FeedbackItem(
        id="theme-space-probe", text=SPACE_PROBE, redacted_text=SPACE_PROBE, source="themes"
    )
    return _unit(np.asarray(embed([item])[0], dtype=np.float32))


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) or 1.0)


def _names_in_space(store: Store, embed: Embed, probe: np.ndarray) -> list[ThemeName]:
    """The reviewers' names, each with a centre this encoder's themes can be compared with.

    A name kept under another encoder (a fine-tuned one promoted since) gets its centre
    again from the reports it was given to, and is stored so: once per encoder. A name
    whose reports are all gone (forgotten, or past retention) cannot be placed in the new
    space and is left out; a name kept before names recorded their space is taken as is.
    """
    out = []
    for kept in store.theme_names():
        space = np.asarray(kept.space, dtype=np.float32)
        if not kept.space or float(space @ probe) >= SAME_SPACE:
            out.append(kept)
            continue
        items = [item for item in map(store.get_item, kept.item_ids) if item is not None]
        if not items:
            continue
        centre = _unit(np.asarray(embed(items), dtype=np.float32).mean(axis=0))
        moved = kept.model_copy(
            update={"centroid": [float(x) for x in centre], "space": [float(x) for x in probe]}
        )
        store.put_theme_name(moved)
        out.append(moved)
    return out


def _key(item_id: str) -> str:
    return "t" + hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:6]


def build_themes(
    store: Store, embed: Embed, period: timedelta, now: datetime | None = None
) -> Themes:
    """The themes of the `period` up to `now`, with their counts in the period before."""
    from core.models import utcnow

    until = now or utcnow()
    since, before = until - period, until - 2 * period
    current: list[FeedbackItem] = []
    previous: list[FeedbackItem] = []
    for item in store.iter_items():
        if since <= item.received_at < until:
            current.append(item)
        elif before <= item.received_at < since:
            previous.append(item)
    weight = Counter[str]()
    canon: list[FeedbackItem] = []
    by_id = {item.id: item for item in current}
    for item in current:
        link = store.get_duplicate(item.id)
        if link is not None and link.canonical_id in by_id:
            weight[link.canonical_id] += 1  # a duplicate counts for its canonical's theme
        else:
            canon.append(item)
            weight[item.id] += 1
    canon.sort(key=lambda item: item.received_at)
    canon = canon[-MAX_ITEMS:]
    if not canon:
        return Themes(since, until, [], 0)
    vectors = embed(canon)
    labels = _clusters(vectors)
    groups: dict[int, list[int]] = {}
    for row, label in enumerate(labels):
        groups.setdefault(int(label), []).append(row)
    probe = _probe(embed)
    named = _names_in_space(store, embed, probe)
    named_vectors = np.array([t.centroid for t in named], dtype=np.float32) if named else None
    themes: dict[str, Theme] = {}
    other = 0
    pending: list[tuple[list[int], np.ndarray]] = []
    for rows in groups.values():
        count = sum(weight[canon[r].id] for r in rows)
        if count < MIN_SIZE:
            other += count
            continue
        centre = _unit(vectors[rows].mean(axis=0))
        pending.append((rows, centre))
    names = _names(
        [[w for r in rows for w in _words(canon[r].redacted_text)] for rows, _ in pending]
    )
    for (rows, centre), auto in zip(pending, names, strict=True):
        name, by = auto, None
        if named_vectors is not None:
            sims = named_vectors @ centre
            best = int(np.argmax(sims))
            if sims[best] >= NAMED_SIMILARITY:
                name, by = named[best].name, named[best].by
        central = sorted(rows, key=lambda r: -float(vectors[r] @ centre))
        ids = [canon[r].id for r in rows]
        found = themes.get(name.lower()) if by is not None else None
        if found is not None:  # a reviewer merged these: one theme
            found.count += sum(weight[i] for i in ids)
            found.item_ids += ids
            found.examples = (found.examples + [canon[r] for r in central])[:EXAMPLES]
            continue
        themes[name.lower() if by is not None else f"auto:{len(themes)}"] = Theme(
            key=_key(canon[central[0]].id),
            name=name,
            named_by=by,
            count=sum(weight[i] for i in ids),
            previous=0,
            item_ids=ids,
            examples=[canon[r] for r in central[:EXAMPLES]],
            centroid=centre,
            space=probe,
        )
    out = sorted(themes.values(), key=lambda t: (-t.count, t.name))
    if out and previous:
        centres = np.array([t.centroid for t in out], dtype=np.float32)
        for vector in embed(previous[-MAX_ITEMS:]):
            sims = centres @ vector
            best = int(np.argmax(sims))
            if sims[best] >= SIMILARITY:
                out[best].previous += 1
    return Themes(since, until, out, other)


def rename(store: Store, theme: Theme, name: str, by: str) -> ThemeName:
    """A reviewer's name for a theme: kept with its centre, so later periods keep it.
    What they typed is cleaned and redacted like any input (it is shown in chat)."""
    try:
        name = redact(clean_text(name, NAME_BYTES)).text
    except InputError as exc:
        raise ValueError(f"a theme's name: {exc}") from None
    name = " ".join(name.split())
    if not name:
        raise ValueError("a theme's name cannot be empty")
    for old in store.theme_names():  # the name it had before goes
        near = float(np.dot(np.asarray(old.centroid, dtype=np.float32), theme.centroid))
        if near >= NAMED_SIMILARITY:
            store.delete_theme_name(old.id)
    kept = ThemeName(
        name=name[:80],
        centroid=[float(x) for x in theme.centroid],
        by=by,
        space=[] if theme.space is None else [float(x) for x in theme.space],
        item_ids=theme.item_ids[:NAME_MEMBERS],
    )
    store.put_theme_name(kept)
    return kept


def rename_by_key(
    store: Store, embed: Embed, period: timedelta, key: str, name: str, by: str
) -> tuple[Theme, ThemeName]:
    """`rename KEY NAME` from the CLI or chat: the period's theme by its key (or name).
    KeyError when the period has no such theme, ValueError for a name that is no name."""
    theme = build_themes(store, embed, period).find(key)
    return theme, rename(store, theme, name, by)


def merge_by_keys(
    store: Store,
    embed: Embed,
    period: timedelta,
    keys: Sequence[str],
    by: str,
    name: str | None = None,
) -> str:
    """`merge KEY KEY... [NAME]` from the CLI or chat; returns the merged theme's name."""
    made = build_themes(store, embed, period)
    return merge(store, [made.find(key) for key in keys], by, name)


def merge(store: Store, themes: Sequence[Theme], by: str, name: str | None = None) -> str:
    """Two or more themes a reviewer says are one: each centre keeps the same name (the
    given one, else the first theme's)."""
    if len(themes) < 2:
        raise ValueError("merging takes two themes or more")
    chosen = name or themes[0].name
    for theme in themes:
        rename(store, theme, chosen, by)
    return chosen


def themes_text_lines(
    themes: Themes, bold: str, literal: Callable[[str], str], limit: int = 10
) -> list[str]:
    """`/triage themes` on any platform: each theme with its count, trend and an example;
    `literal` shows what people typed as written (the platform escapes it)."""
    head = f"{bold}Themes{bold} {themes.since:%Y-%m-%d %H:%M} to {themes.until:%Y-%m-%d %H:%M} UTC"
    if not themes.themes:
        return [head, f"No themes: {themes.other} report(s), too few alike."]
    lines = [head]
    for theme in themes.themes[:limit]:
        trend = {"new": "new", "growing": f"up from {theme.previous}"}.get(
            theme.trend, f"{theme.trend} ({theme.previous} before)"
        )
        example = theme.examples[0].redacted_text if theme.examples else ""
        lines.append(
            f"{bold}{literal(theme.name)}{bold} · {theme.count} report(s), {trend} · "
            f"`{theme.key}` · e.g. {literal(example)}"
        )
    more = len(themes.themes) - limit
    if more > 0:
        lines.append(f"…and {more} more (`triage-bot themes`)")
    lines.append(f"{themes.other} report(s) in no theme.")
    return lines


def theme_lines(themes: Themes, literal: Callable[[str], str], limit: int = 5) -> list[str]:
    """New and growing themes, for the digest on any platform; `literal` shows a name
    as written (a name is made of what people typed: the platform escapes it)."""
    moving = [t for t in themes.themes if t.trend in ("new", "growing")][:limit]
    return [
        f"{literal(t.name)}: {t.count} report(s), "
        + ("new" if t.trend == "new" else f"up from {t.previous}")
        for t in moving
    ]
