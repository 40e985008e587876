"""SimilarIndex: the nearest validated items, as rows of one matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.models import FeedbackItem
from core.similar import SimilarIndex

AXES = {"login": 0, "pricing": 1, "docs": 2, "dark": 3}


class Encoder:
    """One axis per topic word: items about the same topic are the most similar."""

    def __init__(self) -> None:
        self.generation = 0
        self.calls: list[int] = []

    def embed(self, items: Sequence[FeedbackItem]) -> np.ndarray:
        self.calls.append(len(items))
        out = np.zeros((len(items), len(AXES) + 1), dtype=np.float32)
        for row, item in enumerate(items):
            for word in item.redacted_text.lower().split():
                if word in AXES:
                    out[row, AXES[word]] += 1.0
            out[row, -1] = 0.1 * (1 + self.generation)  # every vector differs per encoder
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def item(item_id: str, text: str) -> FeedbackItem:
    return FeedbackItem(id=item_id, text=text, redacted_text=text)


def test_nearest_ranks_by_similarity_and_never_returns_the_item_itself() -> None:
    enc = Encoder()
    index = SimilarIndex(enc.embed, lambda: enc.generation)
    assert index.nearest(item("q", "login"), 2) == []
    for n, text in enumerate(["login broken", "pricing typo", "login login slow", "docs gap"]):
        index.put(item(f"e{n}", text))
    found = index.nearest(item("e0", "login broken"), 2)
    assert found[0][0] == "e2" and found[1][0] in {"e1", "e3"}  # never e0 itself
    assert found[0][1] > found[1][1]
    # Four new examples were embedded in one batch; a second look-up embeds only the query.
    before = list(enc.calls)
    index.nearest(item("q", "docs"), 1)
    assert enc.calls[len(before) :] == [1]


def test_dropped_examples_are_skipped_and_come_back_when_put_again() -> None:
    enc = Encoder()
    index = SimilarIndex(enc.embed, lambda: enc.generation)
    index.put(item("a", "dark mode"))
    index.put(item("b", "pricing page"))
    assert [i for i, _ in index.nearest(item("q", "dark"), 1)] == ["a"]
    index.drop("a")
    assert [i for i, _ in index.nearest(item("q", "dark"), 2)] == ["b"]
    index.put(item("a", "dark mode"))
    assert [i for i, _ in index.nearest(item("q", "dark"), 1)] == ["a"]
    index.drop("b")
    index.drop("a")
    assert index.nearest(item("q", "dark"), 2) == []


def test_many_examples_grow_the_matrix_and_a_new_encoder_re_embeds_them() -> None:
    enc = Encoder()
    index = SimilarIndex(enc.embed, lambda: enc.generation)
    for n in range(300):
        index.put(item(f"p{n}", "pricing"))
    index.put(item("d", "docs"))
    assert [i for i, _ in index.nearest(item("q", "docs"), 1)] == ["d"]
    enc.generation += 1
    index.drop("p0")
    calls = len(enc.calls)
    assert [i for i, _ in index.nearest(item("q", "docs"), 1)] == ["d"]
    assert enc.calls[calls:] == [300, 1]  # every live example again, then the query
    index.reset([item("x", "login")])
    assert [i for i, _ in index.nearest(item("q", "docs"), 5)] == ["x"]


def test_forget_removes_rows_for_good_and_keeps_the_rest() -> None:
    enc = Encoder()
    index = SimilarIndex(enc.embed, lambda: enc.generation)
    for item_id, text in [("a", "login"), ("b", "pricing"), ("c", "docs"), ("d", "login docs")]:
        index.put(item(item_id, text))
    assert index.nearest(item("q", "login"), 1)[0][0] == "a"  # embedded now
    index.put(item("e", "login"))  # wanted, not embedded yet
    index.forget(["a", "e", "never-there"])
    found = [i for i, _ in index.nearest(item("q", "login"), 4)]
    assert found[0] == "d" and sorted(found) == ["b", "c", "d"]  # b and c: a tie
    assert index._ids == ["b", "c", "d"] and [it.id for it in index._items] == ["b", "c", "d"]
    assert index._matrix is not None and not index._matrix[3:4].any()  # no copy left behind
    index.put(item("a", "login"))  # a new example with an old id is a new row
    assert index.nearest(item("q", "login"), 1)[0][0] == "a"
    enc.generation += 1  # a new encoder re-embeds only what is left
    found = [i for i, _ in index.nearest(item("q", "login"), 4)]
    assert found[:2] == ["a", "d"] and sorted(found) == ["a", "b", "c", "d"]
