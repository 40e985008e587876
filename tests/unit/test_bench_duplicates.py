"""`bench duplicates` on small sets: the pair set's negatives, the figures, the chart."""

from __future__ import annotations

from benchmarks.duplicates import PairSet, Scorer, cost, quality, with_negatives
from bot.app import default_encoder
from bot.charts import duplicates_png
from core.runtime import DuplicateSettings

TEXTS = [
    "The checkout page crashes with a 500 error when I click Pay",
    "Checkout crashes: 500 error after clicking Pay",
    "Please add a dark mode to the dashboard",
    "please add a dark mode to the dashboard (again)",
    "The login page crashes with a 500 error when I click Sign in",
    "Exporting a report as CSV times out",
    "Search finds nothing when I type a product name",
]
PAIRS = PairSet("tiny", TEXTS, [(0, 1, True, "same"), (2, 3, True, "same")])


def test_each_report_in_a_pair_gets_its_hardest_negative_and_loners_their_nearest() -> None:
    scorer = Scorer(TEXTS, default_encoder(), DuplicateSettings())
    rows = with_negatives(PAIRS, scorer)
    negatives = [r for r in rows if not r[2]]
    # Never a duplicate as a negative: 0's hardest negative is the login crash, not 1.
    assert {(a, b) for a, b, _, kind, _ in negatives if kind == "hardest negative"} >= {(0, 4)}
    assert all({a, b} not in ({0, 1}, {2, 3}) for a, b, *_ in negatives)
    assert sum(1 for r in negatives if r[3] == "nearest to a distinct report") == 3


def test_figures_and_chart() -> None:
    encoder = default_encoder()
    figures = quality([PAIRS], encoder)
    (one,) = figures["sets"]
    assert one["at_default"]["pairs"] == 2 and one["at_default"]["recall"] == 1.0
    assert [r["votes"] for r in one["after_votes"]] == [0, 5, 10, 20, 50]
    assert duplicates_png(figures)[:8] == b"\x89PNG\r\n\x1a\n"
    spent = cost(encoder, open_cards=40, checks=10, texts=TEXTS * 3)
    assert spent["open_cards"] == 40 and spent["checks"] == 10
    assert 0 < spent["p50_ms"] <= spent["p99_ms"] <= spent["max_ms"]
