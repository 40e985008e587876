"""Intake from MongoDB and files, end to end.

The watcher follows a real collection over TCP (real pymongo against the mongoeco server of
conftest, which has no change streams, so it polls), with the real engine, a real store and
the real Slack edge posting to the fake Slack Web API. `triage-bot import` runs through the
real CLI; one test runs `triage-bot serve slack --watch` as a real process.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection
from typer.testing import CliRunner

from bot.app import default_encoder
from bot.cli import app
from bot.intake import MongoWatcher, parse_watch_url
from bot.slack.edge import SlackEdge, make_client
from bot.slack.settings import SlackSettings
from core.intake import Accepted, Intake, Submission
from core.ports import Store
from core.runtime import MongoIntakeSettings
from core.service import TriageService
from core.store.sqlite import SQLiteStore
from core.taxonomy import load_taxonomy
from core.triage import TriageEngine
from tests.fakes.slack import FakeSlack

REPO = Path(__file__).resolve().parents[2]
CHANNEL = "CTRIAGE"
TARGET = f"slack:{CHANNEL}"
FAST = MongoIntakeSettings(poll_seconds=0.1)


def make_service(store: Store) -> TriageService:
    taxonomy = load_taxonomy()
    return TriageService(store, TriageEngine(taxonomy, default_encoder()), taxonomy)


def slack_settings(fake: FakeSlack | None) -> SlackSettings:
    return SlackSettings.from_env(
        {
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": "secret",
            "SLACK_API_URL": fake.base_url if fake else "http://127.0.0.1:9/api/",
            "TRIAGE_SLACK_CHANNEL": CHANNEL,
            "TRIAGE_SLACK_POST_INTERVAL": "0",
        }
    )


def watch_url(mongo_url: str, database: str, collection: str = "feedback") -> str:
    """mongo_url (conftest) with `database.collection` as its path, options kept."""
    scheme, _, rest = mongo_url.partition("://")
    head, _, query = rest.partition("?")
    hosts = head.partition("/")[0]
    return f"{scheme}://{hosts}/{database}.{collection}" + (f"?{query}" if query else "")


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def settle(watcher: MongoWatcher, rounds: int = 3) -> None:
    """Wait until the watcher has polled a few more times (so it has seen all there is)."""
    start = watcher.rounds
    assert wait_for(lambda: watcher.rounds >= start + rounds), "watcher is not polling"


@dataclass
class Source:
    url: str
    collection: Collection[dict[str, Any]]


@pytest.fixture
def source(mongo_url: str) -> Iterator[Source]:
    """A fresh collection in the MongoDB test server, the website's feedback store."""
    database = f"site_{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    try:
        yield Source(watch_url(mongo_url, database), client[database]["feedback"])
    finally:
        client.drop_database(database)
        client.close()


@dataclass
class Bot:
    """What `serve slack --watch` runs: the Slack edge's outbox, and a watcher feeding it."""

    fake: FakeSlack
    store: SQLiteStore
    service: TriageService
    edge: SlackEdge

    def watcher(self, url: str, settings: MongoIntakeSettings = FAST) -> MongoWatcher:
        watcher = MongoWatcher(self.service, url, self.edge.accept, settings)
        watcher.start()
        return watcher

    def cards(self) -> list[dict[str, Any]]:
        return self.fake.messages(CHANNEL)

    def card_ids(self) -> list[str]:
        return [m["metadata"]["event_payload"]["item_id"] for m in self.cards()]


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    with FakeSlack() as fake:
        store = SQLiteStore(tmp_path / "bot.db")
        service = make_service(store)
        settings = slack_settings(fake)
        edge = SlackEdge(service, settings, make_client(settings))
        edge.start()
        try:
            yield Bot(fake, store, service, edge)
        finally:
            edge.stop()
            store.close()


# -- the watcher ----------------------------------------------------------------------------
def test_watch_url_names_database_and_collection() -> None:
    parsed = parse_watch_url("mongodb://u:p@h1:27017,h2/site.feed.back?replicaSet=rs0")
    assert (parsed.database, parsed.collection) == ("site", "feed.back")
    assert parsed.client_url == "mongodb://u:p@h1:27017,h2/site?replicaSet=rs0"
    for bad in ("mongodb://host/site", "mongodb://host/", "http://host/a.b", "site.feedback"):
        with pytest.raises(ValueError, match="database.collection"):
            parse_watch_url(bad)


def test_new_documents_become_cards_once_and_a_restart_resumes(bot: Bot, source: Source) -> None:
    source.collection.insert_one({"comment": "Old feedback from before the bot was started"})
    watcher = bot.watcher(source.url)
    try:
        settle(watcher)
        assert watcher.mode == "poll"  # mongoeco has no change streams
        assert bot.store.count_items() == 0  # start_at = "now": history is not carded
        first = bot.store.get_intake_cursor(parse_watch_url(source.url).cursor_key)
        inserted = source.collection.insert_many(
            [
                {"comment": "The checkout page crashes with a 500 error", "page": "/checkout"},
                {"type": "bug", "rating": 2},  # no text: skipped, the watcher goes on
                {"text": "Please add a dark mode to the dashboard", "type": "feature"},
            ]
        )
        assert bot.fake.wait_for(lambda: len(bot.cards()) == 2, timeout=30), bot.cards()
        assert wait_for(lambda: (watcher.triaged, watcher.skipped) == (2, 1))
    finally:
        watcher.stop()

    items = {item.redacted_text: item for item in bot.store.iter_items()}
    crash = items["The checkout page crashes with a 500 error"]
    assert crash.source == "mongodb" and crash.page == "/checkout"
    namespace = parse_watch_url(source.url).namespace
    assert crash.external_ref == f"{namespace}/{inserted.inserted_ids[0]}"
    ident = str(inserted.inserted_ids[0])
    assert crash.metadata["mongodb"] == {"collection": namespace, "_id": ident}
    assert crash.metadata["post_to"] == [TARGET]  # a restart's recovery would queue it
    assert items["Please add a dark mode to the dashboard"].form_type == "feature"
    assert sorted(bot.card_ids()) == sorted(i.id for i in items.values())

    # Arrives while the bot is down: the next start picks it up from the stored cursor.
    source.collection.insert_one({"comment": "Search returns nothing for 'pricing'"})
    again = bot.watcher(source.url)
    try:
        assert bot.fake.wait_for(lambda: len(bot.cards()) == 3, timeout=30), bot.cards()
        settle(again)
        assert (again.triaged, again.duplicates) == (1, 0)
    finally:
        again.stop()

    # A crash after triaging but before saving the cursor: the documents come round again,
    # map to the same items, and nothing is triaged or posted a second time.
    assert first is not None
    bot.store.set_intake_cursor(parse_watch_url(source.url).cursor_key, first)
    replay = bot.watcher(source.url)
    try:
        assert wait_for(lambda: replay.duplicates == 3)
        settle(replay)
    finally:
        replay.stop()
    assert replay.triaged == 0
    assert bot.store.count_items() == 3 and len(bot.cards()) == 3
    assert len(set(bot.card_ids())) == 3


def test_field_mapping_and_bad_documents(
    store: Store, source: Source, caplog: pytest.LogCaptureFixture
) -> None:
    """A team's own field names (nested too); documents that cannot be feedback are logged
    and skipped. Runs on both stores: the cursor lives in ours."""
    mapping = MongoIntakeSettings(
        text=["form.message", "note"],
        type="kind",
        rating=["stars"],
        page=["meta.url"],
        poll_seconds=0.1,
        start_at="beginning",
    )
    source.collection.insert_many(
        [
            {
                "_id": 1,
                "form": {"message": "Login button does nothing on Safari"},
                "kind": "Bug",
                "stars": "2",
                "meta": {"url": "/login"},
            },
            {"_id": 2, "comment": "not in the mapping, so no text"},
            {"_id": 3, "note": 42},
            {"_id": 4, "note": "   "},
            {"_id": 5, "note": "The docs for caching are missing", "stars": "five"},
        ]
    )
    service = make_service(store)
    caplog.set_level(logging.INFO, logger="triage_bot.intake")
    intake = Intake(store)

    def accept(submission: Submission) -> Accepted:  # no bot: store, then triage at once
        accepted = intake.accept(submission)
        service.triage_items([accepted.item])
        return accepted

    watcher = MongoWatcher(service, source.url, accept, mapping)
    watcher.start()
    try:
        assert wait_for(lambda: watcher.triaged + watcher.skipped == 5)
        source.collection.insert_one({"_id": 6, "note": "Add an export to CSV"})
        assert wait_for(lambda: watcher.triaged == 3)
    finally:
        watcher.stop()
    by_text = {item.redacted_text: item for item in store.iter_items()}
    assert set(by_text) == {
        "Login button does nothing on Safari",
        "The docs for caching are missing",
        "Add an export to CSV",
    }
    login = by_text["Login button does nothing on Safari"]
    assert (login.form_type, login.rating, login.page) == ("bug", 2.0, "/login")
    assert by_text["The docs for caching are missing"].rating is None  # bad rating dropped
    assert all(store.latest_triage(item.id) is not None for item in by_text.values())
    logged = caplog.text
    assert "skipped document 2: no text field (looked for: form.message, note)" in logged
    assert "skipped document 3: field 'note' is int, not text" in logged
    assert "skipped document 4: empty feedback text" in logged
    assert "ignoring rating 'five'" in logged


def test_the_source_going_away_is_survived(tmp_path: Path) -> None:
    """A MongoDB of our own that we stop and restart: the watcher logs, backs off, resumes."""
    python = Path(os.environ.get("TRIAGE_MONGOECO_PYTHON") or REPO / ".venv-mongo/bin/python")
    if not python.exists():
        pytest.skip("no mongoeco venv")
    port = free_port()
    data = tmp_path / "source-data"

    def launch() -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [str(python), str(REPO / "tests/mongo_server.py"), "--port", str(port)]
            + ["--data-dir", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        assert lines.get(timeout=30).startswith("READY"), "mongoeco did not start"
        return proc

    # Options in the URL win over the watcher's defaults: notice the outage within 1 s.
    url = f"mongodb://127.0.0.1:{port}/site.feedback?directConnection=true"
    url += "&serverSelectionTimeoutMS=1000"
    server = launch()
    client: MongoClient[dict[str, Any]] = MongoClient(f"mongodb://127.0.0.1:{port}/")
    store = SQLiteStore(tmp_path / "store.db")
    service = make_service(store)
    intake = Intake(store)
    watcher = MongoWatcher(
        service, url, intake.accept, FAST, retry_seconds=0.2, max_retry_seconds=1.0
    )
    watcher.start()
    try:
        settle(watcher)
        client.site.feedback.insert_one({"comment": "Images on the blog do not load"})
        assert wait_for(lambda: store.count_items() == 1)
        server.terminate()
        server.wait(timeout=20)
        assert wait_for(lambda: watcher.failures >= 2), "the outage went unnoticed"
        server = launch()
        client.site.feedback.insert_one({"comment": "The contact form gives a 500 error"})
        assert wait_for(lambda: watcher.triaged == 2, timeout=60)
        assert watcher.failures == 0 and watcher.duplicates == 0 and store.count_items() == 2
    finally:
        watcher.stop()
        client.close()
        server.terminate()
        server.wait(timeout=20)
        store.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.asyncio
async def test_discord_posts_watched_documents_at_once(
    tmp_path: Path, source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve discord --watch`: the watcher thread wakes the bot's outbox on its event loop
    (the card comes now, not at the next 30-second sweep). Real discord.py over sockets."""
    import asyncio

    from bot.discord.edge import TriageBot
    from bot.discord.settings import DiscordSettings
    from tests.fakes.discord import FakeDiscord

    fake = FakeDiscord()
    cards = 833333333333333331
    fake.channels = {cards: "triage"}
    await fake.start()
    fake.patch(monkeypatch)
    store = SQLiteStore(tmp_path / "discord.db")
    service = make_service(store)
    bot = TriageBot(
        service,
        DiscordSettings("fake-token", cards, frozenset(), None, fake.guild_id),
        guild_ready_timeout=0.1,
    )
    watcher = MongoWatcher(service, source.url, bot.accept, FAST)
    task: asyncio.Task[None] | None = None
    try:
        await bot.login("fake-token")
        task = asyncio.create_task(bot.connect(reconnect=False))
        await asyncio.wait_for(bot.wait_until_ready(), 60)
        watcher.start()
        await asyncio.to_thread(settle, watcher)
        source.collection.insert_one({"comment": "Broken link on the pricing page"})
        await fake.wait_for(lambda: len(fake.messages.get(cards, [])) == 1, timeout=20)
        (card,) = fake.messages[cards]
        (item,) = list(store.iter_items())
        assert card["embeds"][0]["footer"]["text"].startswith(f"item {item.id} ")
        assert item.metadata["post_to"] == [f"discord:{cards}"]
    finally:
        await asyncio.to_thread(watcher.stop)
        await bot.close()
        await fake.stop()
        store.close()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)


# -- triage-bot import ----------------------------------------------------------------------
@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRIAGE_STORE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    for name in ("TRIAGE_REVIEWERS", "TRIAGE_SLACK_CHANNEL", "TRIAGE_DISCORD_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def summary(output: str) -> dict[str, Any]:
    return json.loads(output.strip().splitlines()[-1])


HISTORY = (
    '{"id": "h1", "text": "Please add dark mode", "type": "feature"}\n'
    "{broken\n"
    '{"id": "h3", "text": ""}\n'
    '{"id": "h4", "comment": "Docs for caching are missing", "page": "/docs/cache"}\n'
    '{"id": "h5", "rating": 3}\n'
    '{"id": "h1", "text": "Please add dark mode", "type": "feature"}\n'
    '{"text": "The search box does nothing", "rating": "1"}\n'
)


def test_import_reports_bad_rows_and_is_idempotent(run, tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(HISTORY)
    result = run("import", str(path))
    assert result.exit_code == 1  # some rows were skipped
    assert summary(result.stdout) == {
        "file": str(path),
        "rows": 7,
        "imported": 3,
        "duplicates": 1,  # h1 twice in the file
        "bad": 3,
        "queued": 0,
        "targets": [],
    }
    assert f"{path}:2: skipped: invalid JSON" in result.stderr
    assert f"{path}:3: skipped: empty feedback text" in result.stderr
    assert f"{path}:5: skipped: no text field" in result.stderr
    assert "3 imported, 1 duplicate(s), 3 bad" in result.stderr

    again = run("import", str(path), "--json")
    assert summary(again.stdout)["imported"] == 0 and summary(again.stdout)["duplicates"] == 4
    store = SQLiteStore(tmp_path / "cli.db")
    try:
        assert store.count_items() == 3
        assert all(store.latest_triage(item.id) for item in store.iter_items())
        # `triage --file` on the same file finds the same items: no duplicates either way.
        assert run("triage", "--file", str(path)).exit_code == 1
        assert store.count_items() == 3
        # Not posted now, and a bot that starts later does not post them either.
        settings = slack_settings(None)
        edge = SlackEdge(make_service(store), settings, make_client(settings))
        assert edge.outbox.recover() == 0 and store.count_unposted(TARGET) == 0
    finally:
        store.close()


def test_import_csv(run) -> None:
    result = run("import", str(REPO / "examples" / "feedback.csv"))
    assert result.exit_code == 0, result.stderr
    assert summary(result.stdout)["imported"] == 5 and summary(result.stdout)["bad"] == 0


def test_import_post_queues_cards_that_the_bot_posts_once(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(HISTORY)
    refused = run("import", str(path), "--post")
    assert refused.exit_code == 2 and "--post needs TRIAGE_SLACK_CHANNEL" in refused.stderr
    assert refused.stdout == ""

    monkeypatch.setenv("TRIAGE_SLACK_CHANNEL", CHANNEL)
    result = run("import", str(path), "--post")
    assert result.exit_code == 1
    figures = summary(result.stdout)
    assert (figures["imported"], figures["queued"], figures["targets"]) == (3, 3, [TARGET])
    assert summary(run("import", str(path), "--post").stdout)["queued"] == 0  # queued once

    store = SQLiteStore(tmp_path / "cli.db")
    with FakeSlack() as fake:
        settings = slack_settings(fake)
        edge = SlackEdge(make_service(store), settings, make_client(settings))
        edge.start()  # a running bot: its outbox posts what the import queued
        try:
            assert fake.wait_for(lambda: store.count_unposted(TARGET) == 0, timeout=30)
            time.sleep(0.3)
            cards = fake.messages(CHANNEL)
        finally:
            edge.stop()
            store.close()
    assert len(cards) == 3
    assert len({m["metadata"]["event_payload"]["item_id"] for m in cards}) == 3


def test_import_missing_file_and_bad_watch_url_are_one_line(
    run, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = run("import", "/nonexistent/items.jsonl")
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret",
        "TRIAGE_SLACK_CHANNEL": CHANNEL,
        "TRIAGE_REVIEWERS": "U0ANN",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    bad = run("serve", "slack", "--watch", "mongodb://localhost/website")
    assert bad.exit_code == 2 and "database.collection" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


# -- as a user runs it ----------------------------------------------------------------------
def test_serve_slack_watch_as_a_real_process(tmp_path: Path, source: Source) -> None:
    with FakeSlack() as fake:
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": "secret",
            "SLACK_API_URL": fake.base_url,
            "TRIAGE_SLACK_CHANNEL": CHANNEL,
            "TRIAGE_SLACK_POST_INTERVAL": "0",
            "TRIAGE_STORE_URL": f"sqlite:///{tmp_path / 'served.db'}",
            "TRIAGE_REVIEWERS": "*",
        }
        env.pop("SLACK_APP_TOKEN", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "slack", "--host", "127.0.0.1"]
            + ["--port", str(free_port()), "--watch", source.url],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Documents that arrive once the bot watches: keep adding until it is up.
            deadline = time.monotonic() + 90
            while not fake.messages(CHANNEL) and time.monotonic() < deadline:
                source.collection.insert_one({"comment": "The search box does nothing"})
                fake.wait_for(lambda: bool(fake.messages(CHANNEL)), timeout=3)
            assert fake.messages(CHANNEL), "no card from the watched collection"
            card = fake.messages(CHANNEL)[0]
            assert "search box" in card["text"]
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=30)
        assert "watching" in stderr and "polling every 1 s" in stderr
