"""Faults, end to end: the real bot (`triage-bot serve slack`, its own process) under a burst of
signed submissions and reactions (benchmarks/load.py, as `triage-bot bench load` runs it),
against the fake Slack Web API and a real store over its real protocol.

- `kill -9` mid-burst, then a restart: nothing acknowledged is lost, nothing posted twice.
- The MongoDB-compatible server stopped mid-burst and started again (5 s here; the bench
  runs 30 s): clear 503s meanwhile, every acknowledged request stored, and the same bot
  process recovers by itself.
- A Slack 429 storm: posting slows down and catches up, each card posted once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.load import mongoeco_python, run_load
from tests.e2e.test_slack import CHANNEL, Stack, stack, webhook_item  # noqa: F401

pytestmark = pytest.mark.slow


def assert_all_kept(figures: dict[str, Any]) -> None:
    checks = figures["checks"]
    assert checks["items_stored"], checks
    assert checks["items_posted_exactly_once"], checks
    assert checks["votes_recorded"], checks
    assert checks["outbox_unposted"] == 0, checks
    assert figures["ok"], json.dumps(figures)


def test_kill_9_mid_burst_then_restart_loses_nothing_and_posts_nothing_twice(
    tmp_path: Path,
) -> None:
    figures = run_load(20, 20, concurrency=6, fault="kill", settle_quiet=3, workdir=tmp_path)
    kills = [f for f in figures["faults"] if f["fault"] == "kill -9"]
    assert [k["phase"] for k in kills] == ["submissions", "reactions"]
    # The kills really hit the bursts: senders saw connections refused and retried.
    for burst in ("submissions", "reactions"):
        assert figures[burst]["attempts_by_status"].get("no-answer", 0) > 0, figures[burst]
        assert figures[burst]["accepted"] == 20
    assert_all_kept(figures)


@pytest.mark.skipif(mongoeco_python() is None, reason="no .venv-mongo with mongoeco")
def test_store_outage_gets_503s_and_the_bot_recovers_by_itself(tmp_path: Path) -> None:
    figures = run_load(
        20, 20, store="mongoeco", concurrency=6, fault="outage", outage_seconds=5, workdir=tmp_path
    )
    for burst in ("submissions", "reactions"):
        statuses = figures[burst]["attempts_by_status"]
        assert statuses.get("503", 0) > 0, statuses  # a clear "retry later", not a hang
        assert set(statuses) <= {"200", "202", "503"}, statuses  # no 500, nothing unanswered
        assert figures[burst]["accepted"] == 20
    assert len(figures["faults"]) == 2
    for fault in figures["faults"]:
        assert fault["bot_pid_unchanged"] and fault["healthy_again_after_s"] is not None
    assert_all_kept(figures)


def test_a_429_storm_slows_posting_down_and_every_card_arrives_once(stack: Stack) -> None:  # noqa: F811
    stack.fake.rate_limit("chat.postMessage", seconds=3, retry_after=1)
    started = time.monotonic()
    ids = [webhook_item(stack, f"The changelog link number {i} is broken") for i in range(6)]
    posts = stack.wait_posts(6)
    took = time.monotonic() - started
    assert sorted(p["metadata"]["event_payload"]["item_id"] for p in posts) == sorted(ids)
    refused = [c for c in stack.fake.calls("chat.postMessage") if c.failed]
    assert len(refused) >= 2 and took >= 2.5  # it waited the storm out, then caught up
    assert stack.store.count_unposted(f"slack:{CHANNEL}") == 0
