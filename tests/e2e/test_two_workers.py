"""Two bot processes (`triage-bot serve slack`, HTTP mode) on one MongoDB store, as behind a
load balancer: submissions and votes alternate between them, Slack's redeliveries land on
the other one, and both outbox posters race for the same posts. Each item is posted exactly
once and each vote counted once: claims are atomic updates, ids are unique indexes."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from benchmarks.load import (
    TARGET,
    BotProcess,
    Sender,
    cards_by_item,
    feedback_bodies,
    fire,
    item_id_of,
    reaction_event,
    wait_until,
    with_database,
)
from core.store.mongo import MongoStore
from tests.conftest import url_database
from tests.fakes.slack import FakeSlack

pytestmark = pytest.mark.slow
ITEMS = 24


def test_two_workers_share_one_store_without_double_posts_or_double_votes(
    mongo_url: str, tmp_path: Path
) -> None:
    database = f"{url_database(mongo_url)}_two_{uuid.uuid4().hex[:6]}"
    store_url = with_database(mongo_url, database)
    with FakeSlack() as fake:
        # Different bot tokens only so the fake can tell which worker made each call.
        bots = [
            BotProcess(
                store_url,
                fake.base_url,
                tmp_path / f"bot{n}.log",
                env={"SLACK_BOT_TOKEN": f"xoxb-worker{n}"},
            )
            for n in (1, 2)
        ]
        starting = [threading.Thread(target=bot.start) for bot in bots]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        store = MongoStore(store_url)
        try:
            assert all(bot.health()[0] == 200 for bot in bots), [b.log_tail() for b in bots]
            senders = [Sender(bot.port, give_up_after=30) for bot in bots]

            # Submissions alternate between the workers; a third arrive at both (a form
            # backend retrying on the other node): the same item, accepted once.
            bodies = feedback_bodies(ITEMS, uuid.uuid4().hex[:6])
            ids = [item_id_of(body) for body in bodies]
            jobs = [
                (lambda i=i, b=b, s=senders[i % 2]: s.feedback(ids[i], b))
                for i, b in enumerate(bodies)
            ]
            jobs += [
                (lambda i=i, b=b, s=senders[(i + 1) % 2]: s.feedback(ids[i], b))
                for i, b in enumerate(bodies)
                if i % 3 == 0
            ]
            outcomes, _ = fire(jobs, concurrency=8)
            assert all(o.accepted for o in outcomes), [o.final for o in outcomes]
            statuses = Counter((o.key, o.json()["status"]) for o in outcomes)
            for item_id in ids:  # exactly one "accepted" per item, whichever worker won
                assert statuses[(item_id, "accepted")] == 1, item_id

            assert wait_until(lambda: set(ids) <= set(cards_by_item(fake)), timeout=60)
            wait_until(lambda: store.count_unposted(TARGET) == 0, timeout=20)
            cards = cards_by_item(fake)
            assert {i: len(ts) for i, ts in cards.items()} == {i: 1 for i in ids}
            posters = Counter(c.token for c in fake.calls("chat.postMessage") if not c.failed)
            assert set(posters) == {"xoxb-worker1", "xoxb-worker2"}, posters  # both posted
            assert sum(posters.values()) == ITEMS

            # Votes: a reaction per card, alternating workers; half of them redelivered by
            # Slack to the other worker (same event id); and UBOB changes his mind on a few
            # cards through the other worker (a newer event): latest wins, one current vote.
            jobs = []
            for i, item_id in enumerate(ids):
                ts = cards[item_id][0]
                first = reaction_event(f"EvA{i}", "UANN", "white_check_mark", ts)
                jobs.append(lambda p=first, s=senders[i % 2]: s.slack_event("a", p))
                if i % 2 == 0:
                    jobs.append(lambda p=first, s=senders[(i + 1) % 2]: s.slack_event("a", p))
                if i % 4 == 0:
                    bob = reaction_event(f"EvB{i}", "UBOB", "bug", ts)
                    jobs.append(lambda p=bob, s=senders[i % 2]: s.slack_event("b", p))
            outcomes, _ = fire(jobs, concurrency=8)
            assert all(o.accepted for o in outcomes), [o.final for o in outcomes]
            later = [
                reaction_event(f"EvC{i}", "UBOB", "memo", cards[item_id][0])
                for i, item_id in enumerate(ids)
                if i % 4 == 0
            ]
            outcomes, _ = fire(
                [
                    (lambda p=p, s=senders[n % 2]: s.slack_event("c", p))
                    for n, p in enumerate(later)
                ],
                concurrency=4,
            )
            assert all(o.accepted for o in outcomes)

            events = store.events()
            counted = Counter(v.id for v in events)
            assert all(n == 1 for n in counted.values()), counted
            expected = {f"slack:EvA{i}" for i in range(ITEMS)}
            expected |= {f"slack:Ev{k}{i}" for i in range(0, ITEMS, 4) for k in "BC"}
            assert set(counted) == expected
            for i, item_id in enumerate(ids):
                current = {v.reviewer: v for v in store.current_votes(item_id)}
                assert set(current) == ({"UANN", "UBOB"} if i % 4 == 0 else {"UANN"})
                if i % 4 == 0:
                    assert current["UBOB"].category == "content-gap"  # :memo:, the newer one
                label = store.get_label(item_id)
                assert label is not None and sorted(label.reviewers) == sorted(current)
            assert all(bot.alive for bot in bots)
        finally:
            for bot in bots:
                bot.stop()
            store.close()
            client: MongoClient[dict[str, Any]] = MongoClient(store_url)
            client.drop_database(database)
            client.close()
