"""Two bot processes (`triage-bot serve slack`, HTTP mode) on one MongoDB store, as behind a
load balancer: submissions and votes alternate between them, Slack's redeliveries land on
the other one, and both outbox posters race for the same posts. Each item is posted exactly
once and each vote counted once: claims are atomic updates, ids are unique indexes."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from benchmarks.github import cards_linked, issue_submission, issues_by_item, send_interaction
from benchmarks.load import (
    CHANNEL,
    TARGET,
    BotProcess,
    Outcome,
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
from tests.fakes.github import FakeGitHub
from tests.fakes.slack import FakeSlack
from tests.reports import report

pytestmark = pytest.mark.slow
ITEMS = 24
ISSUE_CARDS = 12
GITHUB_REPO = "acme/web"


@contextlib.contextmanager
def workers(
    mongo_url: str, fake: FakeSlack, tmp_path: Path, tag: str, github: FakeGitHub | None = None
) -> Iterator[tuple[list[BotProcess], MongoStore]]:
    """Two `serve slack` processes on a scratch MongoDB database, started together and
    healthy; stopped, and the database dropped, however the test ends. Different bot tokens
    only so the fake can tell which worker made each call."""
    database = f"{url_database(mongo_url)}_{tag}_{uuid.uuid4().hex[:6]}"
    store_url = with_database(mongo_url, database)
    if github is not None:
        github.add_repo(GITHUB_REPO)
    extra = (
        {
            "TRIAGE_GITHUB_REPO": GITHUB_REPO,
            "GITHUB_TOKEN": "ghp-two",
            "GITHUB_API_URL": github.base_url,
        }
        if github is not None
        else {}
    )
    bots = [
        BotProcess(
            store_url,
            fake.base_url,
            tmp_path / f"bot{n}.log",
            env={"SLACK_BOT_TOKEN": f"xoxb-worker{n}", **extra},
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
        yield bots, store
    finally:
        for bot in bots:
            bot.stop()
        store.close()
        client: MongoClient[dict[str, Any]] = MongoClient(store_url)
        client.drop_database(database)
        client.close()


def test_two_workers_share_one_store_without_double_posts_or_double_votes(
    mongo_url: str, tmp_path: Path
) -> None:
    with FakeSlack() as fake, workers(mongo_url, fake, tmp_path, "two") as (bots, store):
        senders = [Sender(bot.port, give_up_after=30) for bot in bots]

        # Submissions alternate between the workers; a third arrive at both (a form
        # backend retrying on the other node): the same item, accepted once.
        bodies = feedback_bodies(ITEMS, uuid.uuid4().hex[:6])
        ids = [item_id_of(body) for body in bodies]
        jobs = [
            (lambda i=i, b=b, s=senders[i % 2]: s.feedback(ids[i], b)) for i, b in enumerate(bodies)
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
            [(lambda p=p, s=senders[n % 2]: s.slack_event("c", p)) for n, p in enumerate(later)],
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


def released(barrier: threading.Barrier, sender: Sender, payload: dict[str, Any]) -> Outcome:
    """Send once every sender of the same card is ready: the copies race."""
    barrier.wait(timeout=30)
    return send_interaction(sender, str(payload["user"]["id"]), payload)


def test_two_workers_open_one_github_issue_per_card_when_both_get_the_submission(
    mongo_url: str, tmp_path: Path
) -> None:
    """Each card's Create issue submission reaches both workers at once, and once more
    (redelivered) the first: one issue per card, its post `posted` with the issue's URL,
    the clicker's confirmation counted once."""
    with (
        FakeSlack() as fake,
        FakeGitHub(token="ghp-two") as gh,
        workers(mongo_url, fake, tmp_path, "gh", github=gh) as (bots, store),
    ):
        senders = [Sender(bot.port, give_up_after=30) for bot in bots]
        bodies = feedback_bodies(ISSUE_CARDS, uuid.uuid4().hex[:6])
        ids = [item_id_of(body) for body in bodies]
        feed: list[Callable[[], Outcome]] = [
            functools.partial(senders[i % 2].feedback, ids[i], b) for i, b in enumerate(bodies)
        ]
        outcomes, _ = fire(feed, concurrency=4)
        assert all(o.accepted for o in outcomes), [o.final for o in outcomes]
        assert wait_until(lambda: set(ids) <= set(cards_by_item(fake)), timeout=60)
        cards = {i: ts[0] for i, ts in cards_by_item(fake).items()}

        # Per card: worker 1, worker 2, and worker 1 again, released together.
        clicker = {item_id: f"UC{i:02d}" for i, item_id in enumerate(ids)}
        jobs: list[Callable[[], Outcome]] = []
        for i, item_id in enumerate(ids):
            payload = issue_submission(
                item_id,
                cards[item_id],
                user=clicker[item_id],
                title=f"Issue {i}",
                labels="triage-bot, bug",
            )
            together = threading.Barrier(3)
            first = i % 2
            for s in (senders[first], senders[1 - first], senders[first]):
                jobs.append(functools.partial(released, together, s, payload))
        outcomes, _ = fire(jobs, concurrency=len(jobs))
        assert all(o.accepted and b"errors" not in o.final.body for o in outcomes), [
            (o.key, o.final) for o in outcomes
        ]

        urls: dict[str, str] = {}

        def linked() -> bool:
            urls.update(
                {i: str(f[0]["html_url"]) for i, f in issues_by_item(gh, GITHUB_REPO).items()}
            )
            return set(ids) <= cards_linked(fake, urls)

        assert wait_until(linked, timeout=90), [b.log_tail() for b in bots]
        # Whatever a losing worker might still send would land now.
        wait_until(lambda: store.count_unposted(f"github:{GITHUB_REPO}") == 0, timeout=10)
        time.sleep(2.0)

        by_item = issues_by_item(gh, GITHUB_REPO)
        assert {i: len(found) for i, found in by_item.items()} == {i: 1 for i in ids}
        assert len(gh.issues(GITHUB_REPO)) == ISSUE_CARDS
        creates = gh.calls_to("POST", f"/repos/{GITHUB_REPO}/issues")
        assert [c.status for c in creates] == [201] * ISSUE_CARDS, [c.status for c in creates]
        for item_id in ids:
            url = by_item[item_id][0]["html_url"]
            post = store.get_post(item_id, f"github:{GITHUB_REPO}")
            assert post is not None and (post.status, post.ref) == ("posted", url), post
            votes = store.current_votes(item_id)
            assert [(v.reviewer, v.kind.value) for v in votes] == [(clicker[item_id], "confirm")], (
                votes
            )
            counted = [v for v in store.events(item_id) if v.reviewer == clicker[item_id]]
            assert len(counted) == 1, counted

        # Each submission is answered privately; only the one that queued says "Opened".
        def answers(user: str) -> list[str]:
            calls = fake.calls("chat.postEphemeral")
            return [str(c.params.get("text")) for c in calls if c.params.get("user") == user]

        assert wait_until(lambda: all(len(answers(u)) == 3 for u in clicker.values()), 30)
        for user in clicker.values():
            assert sum(t.startswith("Opened") for t in answers(user)) <= 1, answers(user)
        assert all(bot.alive for bot in bots)


def test_two_workers_group_one_problems_reports_each_posted_once(
    mongo_url: str, tmp_path: Path
) -> None:
    """Reports of one problem alternate between two workers on one MongoDB store: each
    report is posted exactly once, at most one card per worker, every other report a reply
    in the thread of one of those cards; a distinct report gets its own card."""
    import json

    run = uuid.uuid4().hex[:6]
    bodies = [
        json.dumps({"type": "bug", "comment": report(i, f"{run}-"), "page": "/checkout"}).encode()
        for i in range(12)
    ]
    distinct = json.dumps({"type": "feature", "comment": f"Please add a dark mode {run}"}).encode()
    with FakeSlack() as fake, workers(mongo_url, fake, tmp_path, "dup") as (bots, store):
        senders = [Sender(bot.port, give_up_after=30) for bot in bots]
        ids = [item_id_of(body) for body in bodies]
        first = senders[0].feedback(ids[0], bodies[0])
        assert first.accepted
        assert wait_until(lambda: ids[0] in cards_by_item(fake), timeout=60)
        jobs: list[Callable[[], Outcome]] = [
            functools.partial(senders[i % 2].feedback, ids[i], bodies[i])
            for i in range(1, len(bodies))
        ]
        jobs.append(functools.partial(senders[1].feedback, item_id_of(distinct), distinct))
        outcomes, _ = fire(jobs, concurrency=4)
        assert all(o.accepted for o in outcomes), [o.final for o in outcomes]
        every = [*ids, item_id_of(distinct)]
        assert wait_until(lambda: set(every) <= set(cards_by_item(fake)), timeout=90)
        wait_until(lambda: store.count_unposted(TARGET) == 0, timeout=20)
        cards = cards_by_item(fake)
        assert {i: len(cards[i]) for i in every} == {i: 1 for i in every}  # each once
        by_ts = {m["ts"]: m for m in fake.messages(CHANNEL)}
        top = [i for i in ids if "thread_ts" not in by_ts[cards[i][0]]]
        assert 1 <= len(top) <= 2 and ids[0] in top, top
        threads = {cards[i][0] for i in top}
        for item_id in ids:
            message = by_ts[cards[item_id][0]]
            assert "thread_ts" not in message or message["thread_ts"] in threads
        assert "thread_ts" not in by_ts[cards[item_id_of(distinct)][0]]
        assert all(bot.alive for bot in bots)
