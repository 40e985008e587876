"""Run by the core venv (Python 3.11, torch): a real SQLite store with items and votes made
through TriageService, for the RL tests in the 3.12 venv to export and train on.

Usage: .venv/bin/python tests/rl/make_store.py sqlite:///path/to/store.db
Prints one JSON object: the ids of the validated items, of those that must not export, and
the `export labels` records.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.app import build  # noqa: E402
from core.models import ValidationKind  # noqa: E402

EMAIL = "jane.doe@example.com"
# (text, page, form type, votes as (reviewer, kind, category, severity))
ITEMS: list[tuple[str, str | None, str | None, list[tuple[str, str, str | None, str | None]]]] = [
    (
        "The checkout page returns a 500 error when I pay",
        "/checkout",
        "bug",
        [("alice", "confirm", None, None)],
    ),
    (
        "Please add a dark mode to the documentation site",
        "/docs",
        "feature",
        [("alice", "correct", "feature-request", "low")],
    ),
    (
        "Login fails with a blank page on Safari",
        "/login",
        "bug",
        [
            ("alice", "correct", "website-bug", "high"),
            ("bob", "correct", "website-bug", "critical"),
        ],
    ),
    ("asdf qwer zxcv buy cheap watches now", None, None, [("bob", "noise", None, None)]),
    (
        f"The caching guide is missing, mail me at {EMAIL} when it exists",
        "/docs/caching",
        None,
        [("carol", "correct", "content-gap", "medium")],
    ),
    (
        "Great product, the new search is really fast",
        "/search",
        "general",
        [("alice", "correct", "positive", "low")],
    ),
    ("The API reference has no page for webhooks", "/docs/api", None, []),  # not validated
    (
        "Export to CSV drops the last row",
        "/reports",
        "bug",
        [("bob", "reject", None, None)],
    ),  # a reject makes no label
]


def main(store_url: str) -> None:
    c = build(store_url=store_url, warm_start=False)
    try:
        items = [
            c.service.make_item(text, source="webhook", page=page, form_type=form)
            for text, page, form, _ in ITEMS
        ]
        c.service.submit_many(items)
        validated, unexported = [], []
        for item, (_, _, _, votes) in zip(items, ITEMS, strict=True):
            for reviewer, kind, category, severity in votes:
                c.service.vote(
                    item.id,
                    reviewer,
                    ValidationKind(kind),
                    category=category,
                    severity=severity,
                    learn=False,
                )
            labelled = c.store.get_label(item.id) is not None
            (validated if labelled else unexported).append(item.id)
        labels = list(c.service.export_labels())  # what `triage-bot export labels` prints
    finally:
        c.close()
    print(
        json.dumps(
            {"validated": validated, "unexported": unexported, "email": EMAIL, "labels": labels}
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
