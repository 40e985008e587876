"""One problem reported by several visitors, each in their own words: what duplicate
detection groups (the Slack, Discord and two-worker tests post them)."""

from __future__ import annotations

REPORTS = [
    "The checkout page crashes with a 500 error when I click Pay",
    "checkout page crashes with a 500 error when I click pay (again)",
    "Checkout crashes: 500 error after clicking Pay",
    "the checkout page crashed with error 500 when i pressed pay",
    "Checkout page gives a 500 error when I click Pay!!",
]


def report(i: int, run: str = "") -> str:
    """The i-th visitor's report (numbered, so each is an item of its own)."""
    return f"{REPORTS[i % len(REPORTS)]} (order {run}{1000 + i})"
