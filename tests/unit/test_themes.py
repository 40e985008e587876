"""Themes of a period: clusters, names (their words, or a reviewer's), trends, on a real
store and encoder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import default_encoder
from core.digest import build_digest, digest_lines
from core.models import DuplicateLink, FeedbackItem, utcnow
from core.runtime import RuntimeSettings
from core.service import make_item
from core.store.sqlite import SQLiteStore
from core.taxonomy import load_taxonomy
from core.themes import build_themes, merge, rename
from core.triage import encoder_text

CHECKOUT = [
    "Checkout fails with a card declined error even though my card works",
    "Payment at checkout declined, the card is fine elsewhere",
    "Checkout payment keeps failing, card declined every time",
    "My card is declined at checkout but works in other shops",
]
DARK = [
    "Please add a dark mode to the dashboard",
    "A dark theme for the dashboard would be great",
    "Dark mode please, the white dashboard hurts my eyes at night",
]
SEARCH = ["Search finds nothing when I type a product name", "The search box returns no results"]


def embed(items: list[FeedbackItem]):  # the engine's embedding, as the bot's digest uses
    runtime = RuntimeSettings()
    return default_encoder().encode([encoder_text(item, runtime) for item in items])


def add(store: SQLiteStore, text: str, days_ago: float) -> FeedbackItem:
    item = make_item(text, received_at=utcnow() - timedelta(days=days_ago))
    store.add_item(item)
    return item


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    made = SQLiteStore(tmp_path / "t.db")
    for i, text in enumerate(CHECKOUT):
        add(made, text, 1 + i * 0.1)
    for i, text in enumerate(DARK):
        add(made, text, 2 + i * 0.1)
    add(made, "The export button crashes the app", 3)  # alone: no theme
    add(made, DARK[0] + " (last week)", 9)  # the period before: dark mode was asked then
    return made


def test_alike_reports_make_named_themes_with_counts_and_trends(store: SQLiteStore) -> None:
    made = build_themes(store, embed, timedelta(days=7))
    by_size = [(t.count, t.trend) for t in made.themes]
    assert by_size == [(4, "new"), (3, "growing")]
    checkout, dark = made.themes
    assert "declined" in checkout.name or "checkout" in checkout.name
    assert "dark" in dark.name and dark.previous == 1
    assert made.other == 1  # the lone export crash
    assert len(checkout.examples) == 3 and checkout.examples[0].redacted_text in CHECKOUT


def test_a_duplicate_counts_for_its_canonicals_theme(store: SQLiteStore) -> None:
    a = add(store, SEARCH[0], 1)
    b = add(store, SEARCH[1], 1)
    store.put_duplicate(DuplicateLink(item_id=b.id, canonical_id=a.id, similarity=0.8, by="x"))
    made = build_themes(store, embed, timedelta(days=7))
    # One canonical is too few to cluster with itself, but it carries two reports: a theme.
    (search,) = [t for t in made.themes if a.id in t.item_ids]
    assert search.count == 2 and b.id not in search.item_ids


def test_names_a_reviewer_gives_are_kept_and_merged_themes_show_as_one(
    store: SQLiteStore,
) -> None:
    made = build_themes(store, embed, timedelta(days=7))
    checkout, dark = made.themes
    rename(store, checkout, "Card payments <@U1>", by="ann")
    add(store, "Checkout says my card was declined again", 0.5)
    again = build_themes(store, embed, timedelta(days=7))
    named = again.find("Card payments <@U1>")
    assert named.named_by == "ann" and named.count == 5
    merge(store, [named, again.find(dark.key)], by="bob", name="Shop")
    merged = build_themes(store, embed, timedelta(days=7))
    (shop,) = [t for t in merged.themes if t.name == "Shop"]
    assert shop.count == 8 and len(merged.themes) == 1
    with pytest.raises(KeyError):
        merged.find("nothing like this")
    with pytest.raises(ValueError):
        rename(store, shop, "   ", by="ann")


def test_the_digest_lists_new_and_growing_themes_escaped_by_the_platform(
    store: SQLiteStore,
) -> None:
    made = build_digest(store, load_taxonomy(), timedelta(days=7), embed=embed)
    assert made.themes is not None and len(made.themes.themes) == 2
    assert made.as_dict()["themes"]["themes"][0]["count"] == 4
    lines = digest_lines(made, "*", lambda text: f"“{text.upper()}”")
    themes = next(line for line in lines if line.startswith("*New and growing themes*"))
    assert "report(s), new" in themes and "up from 1" in themes and "“" in themes
    without = build_digest(store, load_taxonomy(), timedelta(days=7))
    assert without.themes is None
    from bot.charts import digest_png

    wide, narrow = digest_png(made), digest_png(without)  # a third panel: the themes
    width = int.from_bytes(wide[16:20], "big")
    assert wide[:8] == b"\x89PNG\r\n\x1a\n" and width > int.from_bytes(narrow[16:20], "big")


def rotated(seed: int):
    """Another encoder's space: the same reports, every embedding turned by one rotation (a
    newly promoted fine-tuned encoder moves them all, and a kept centre with them)."""
    import numpy as np

    turn, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(384, 384)))

    def turned(items: list[FeedbackItem]):
        return (embed(items) @ turn).astype(np.float32)

    return turned


def test_a_name_follows_its_theme_into_a_new_encoders_space(store: SQLiteStore) -> None:
    checkout = build_themes(store, embed, timedelta(days=7)).themes[0]
    kept = rename(store, checkout, "Card payments", by="ann")
    assert len(kept.item_ids) == 4 and len(kept.space) == 384
    new_encoder = rotated(1)
    again = build_themes(store, new_encoder, timedelta(days=7))
    assert again.find("Card payments").count == 4  # its centre was found again, in this space
    (moved,) = store.theme_names()
    assert moved.id == kept.id and moved.centroid != kept.centroid
    assert build_themes(store, new_encoder, timedelta(days=7)).find("Card payments")
    assert store.theme_names() == [moved]  # moved once per encoder, not at every build


def test_a_name_whose_reports_are_gone_is_not_put_on_a_new_encoders_themes(
    store: SQLiteStore,
) -> None:
    checkout = build_themes(store, embed, timedelta(days=7)).themes[0]
    kept = rename(store, checkout, "Card payments", by="ann")
    store.put_theme_name(kept.model_copy(update={"item_ids": ["gone-1", "gone-2"]}))
    names = [t.name for t in build_themes(store, rotated(2), timedelta(days=7)).themes]
    assert "Card payments" not in names and len(names) == 2  # named by their words instead
    assert build_themes(store, embed, timedelta(days=7)).find("Card payments")  # old space: kept


def test_forgetting_a_report_takes_its_id_out_of_the_names_that_kept_it(
    store: SQLiteStore,
) -> None:
    from core.lifecycle import forget

    checkout = build_themes(store, embed, timedelta(days=7)).themes[0]
    kept = rename(store, checkout, "Card payments", by="ann")
    gone = kept.item_ids[0]
    forget(store, [gone], action="forget", selector={"id": [gone]}, by="cli:test")
    (left,) = store.theme_names()
    assert left.item_ids == kept.item_ids[1:] and left.name == "Card payments"
    assert store.get_item(gone) is None
