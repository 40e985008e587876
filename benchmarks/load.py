"""`triage-bot bench load`: the real bot under a burst and under faults, every promise checked.

The bot runs as `triage-bot serve slack` in its own process (HTTP mode on loopback, the
real Starlette/Bolt server) against the fake Slack Web API (`tests/fakes/slack_api.py`). A
burst of signed website-form submissions (`POST /feedback`) is fired at it, then a burst of
signed `reaction_added` events on the cards it posted. Every claim is then checked against
the store and the fake: each acknowledged item is stored, each item is posted exactly once,
and each acknowledged vote is recorded.

Faults (`fault=`), injected when a third of a burst is answered:
- `kill`: `kill -9` of the bot, then a restart on the same store and port;
- `outage`: the MongoDB-compatible server (mongoeco, started here) stopped for
  `outage_seconds` (30 by default) and restarted on the same port and data; the bot
  itself is not restarted;
- `ratelimit`: Slack answers 429 + Retry-After for `storm_seconds`, to `chat.postMessage`
  in the submissions burst (posting slows down, then catches up) and to `chat.update` in
  the reactions burst (card rewrites are retried later).
The senders behave like Slack and a sane form backend: a 5xx or a refused connection is
retried (every second here) until it is answered 2xx or 4xx. Every attempt is counted.

The same pieces (`BotProcess`, `MongoServer`, `Sender`, `verify`) drive the fault tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from slack_sdk.signature import SignatureVerifier

from bot.webhook import SIGNATURE_HEADER, sign
from core.models import stable_id
from tests.fakes.slack_api import FakeSlack

REPO = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "bench-signing-secret"
WEBHOOK_SECRET = "bench-webhook-secret"
CHANNEL = "CBENCH"
TARGET = f"slack:{CHANNEL}"
FAULTS = ("kill", "outage", "ratelimit")
RETRY_EVERY = 1.0  # seconds between a sender's retries of a 5xx or a refused connection

Progress = Callable[[str, int, int], None]  # (phase, done, total)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quiet(phase: str, done: int, total: int) -> None:
    return None


# -- the processes under test ------------------------------------------------------------------
class BotProcess:
    """`triage-bot serve slack` in HTTP mode, configured from the environment as a user
    would; `kill()` is a `kill -9`, `start()` again is a restart on the same port."""

    def __init__(
        self,
        store_url: str,
        slack_api_url: str,
        log_path: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.store_url = store_url
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_"))},
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack_api_url,
            "TRIAGE_SLACK_CHANNEL": CHANNEL,
            "TRIAGE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "TRIAGE_SLACK_POST_INTERVAL": "0",
            "TRIAGE_SLACK_CLAIM_LEASE": "5",  # a post claimed by a killed process: retried soon
            "TRIAGE_STORE_URL": store_url,
            "TRIAGE_REVIEWERS": "*",  # the burst's voters are many made-up users
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 180.0) -> float:
        """Start and wait until /healthz answers; returns the seconds it took."""
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "slack", "--host", "127.0.0.1"]
                + ["--port", str(self.port)],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=log,
            )
        self.starts += 1
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the bot exited with {self.proc.returncode}: {self.log_tail()}")
            if self.health()[0] == 200:
                return time.monotonic() - started
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the bot did not answer /healthz in {timeout:.0f} s: {self.log_tail()}")

    def health(self) -> tuple[int, dict[str, Any]]:
        """(status, body) of GET /healthz; (0, {}) when nothing answers."""
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            return resp.status, json.loads(body) if body else {}
        except (OSError, http.client.HTTPException, ValueError):
            return 0, {}

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, in-flight work is simply gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def mongoeco_python() -> Path | None:
    """The Python 3.13 venv with mongoeco (`scripts/test` makes it), if there is one."""
    path = Path(os.environ.get("TRIAGE_MONGOECO_PYTHON") or REPO / ".venv-mongo" / "bin" / "python")
    return path if path.exists() else None


class MongoServer:
    """A MongoDB wire-protocol server (mongoeco, `tests/mongo_server.py`) on a fixed port
    with its data on disk, so it can be stopped and started again with the data intact."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        python = mongoeco_python()
        if python is None:
            raise RuntimeError("no mongoeco: create .venv-mongo (see scripts/test)")
        self.python = python
        self.data_dir = data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen(
            [str(self.python), str(REPO / "tests" / "mongo_server.py")]
            + ["--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        out = self.proc.stdout
        assert out is not None
        threading.Thread(target=lambda: lines.put(out.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"mongoeco did not start on port {self.port}: {line!r}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def with_database(url: str, database: str) -> str:
    """`url` naming `database`; credentials keep their authSource."""
    scheme, _, rest = url.partition("://")
    head, _, query = rest.partition("?")
    hosts, _, old_db = head.partition("/")
    options = parse_qsl(query.replace(";", "&"), keep_blank_values=True)
    if "@" in hosts and not any(k.lower() == "authsource" for k, _ in options):
        options.append(("authSource", old_db or "admin"))
    return f"{scheme}://{hosts}/{database}" + (f"?{urlencode(options)}" if options else "")


# -- senders -----------------------------------------------------------------------------------
@dataclass
class Attempt:
    status: int  # 0: no answer (connection refused or reset)
    seconds: float
    body: bytes = b""


@dataclass
class Outcome:
    """One request as a sender saw it: every attempt, the last one decisive."""

    key: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]

    @property
    def accepted(self) -> bool:
        return 200 <= self.final.status < 300

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.final.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


class Sender:
    """Signs and sends requests as the website form and Slack do, one keep-alive
    connection per thread, retrying a 5xx or a refused connection until `give_up_after`."""

    def __init__(self, port: int, give_up_after: float = 300.0) -> None:
        self.port = port
        self.give_up_after = give_up_after
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self._local.conn = conn
        return conn

    def _once(self, path: str, body: bytes, headers: dict[str, str]) -> Attempt:
        started = time.perf_counter()
        conn = self._conn()
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.getheader("connection", "").lower() == "close":
                conn.close()
            return Attempt(resp.status, time.perf_counter() - started, data)
        except (OSError, http.client.HTTPException):
            conn.close()
            self._local.conn = None
            return Attempt(0, time.perf_counter() - started)

    def send(
        self, key: str, path: str, body: bytes, headers: Callable[[], dict[str, str]]
    ) -> Outcome:
        outcome = Outcome(key)
        deadline = time.monotonic() + self.give_up_after
        while True:
            attempt = self._once(path, body, headers())
            outcome.attempts.append(attempt)
            if 0 < attempt.status < 500 or time.monotonic() > deadline:
                return outcome
            time.sleep(RETRY_EVERY)

    def feedback(self, key: str, body: bytes) -> Outcome:
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, WEBHOOK_SECRET)}
        return self.send(key, "/feedback", body, lambda: headers)

    def slack_event(self, key: str, payload: dict[str, Any]) -> Outcome:
        body = json.dumps(payload).encode()

        def headers() -> dict[str, str]:  # signed at each attempt: the timestamp is checked
            ts = str(int(time.time()))
            return {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": str(
                    SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
                ),
            }

        return self.send(key, "/slack/events", body, headers)


def fire(
    jobs: Sequence[Callable[[], Outcome]],
    concurrency: int,
    on_done: Callable[[int], None] | None = None,
) -> tuple[list[Outcome], float]:
    """Run every job on `concurrency` threads; returns the outcomes and the wall time."""
    done = 0
    lock = threading.Lock()

    def run(job: Callable[[], Outcome]) -> Outcome:
        nonlocal done
        outcome = job()
        with lock:
            done += 1
            count = done
        if on_done is not None:
            on_done(count)
        return outcome

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sender") as pool:
        outcomes = list(pool.map(run, jobs))
    return outcomes, time.perf_counter() - started


# -- payloads ----------------------------------------------------------------------------------
def _texts() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (REPO / "examples" / "feedback.jsonl").open()]
    return [r for r in rows if r.get("text")]


def feedback_bodies(n: int, run: str) -> list[bytes]:
    """n distinct website-form submissions (the bundled examples, numbered)."""
    rows = _texts()
    out = []
    for i in range(n):
        row = rows[i % len(rows)]
        form = {
            "type": row.get("form_type") or "general",
            "comment": f"{row['text']} (report {run}-{i})",
            "page": row.get("page") or "/",
        }
        if row.get("rating") is not None:
            form["rating"] = row["rating"]
        out.append(json.dumps(form).encode())
    return out


def item_id_of(body: bytes) -> str:
    """The id the bot gives a webhook body (it is the body's hash)."""
    return stable_id("fb", "webhook", hashlib.sha256(body).hexdigest())


def reaction_event(event_id: str, user: str, reaction: str, card_ts: str) -> dict[str, Any]:
    return {
        "token": "x",
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": {
            "type": "reaction_added",
            "user": user,
            "reaction": reaction,
            "event_ts": f"{time.time():.6f}",
            "item": {"type": "message", "channel": CHANNEL, "ts": card_ts},
        },
    }


def vote_reactions() -> list[str]:
    """Confirm, every category and every severity emoji of the configured taxonomy."""
    from core.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    return (
        [taxonomy.emoji.confirm]
        + [c.emoji for c in taxonomy.categories if c.emoji]
        + [s.emoji for s in taxonomy.severities if s.emoji]
    )


# -- checks ------------------------------------------------------------------------------------
def cards_by_item(fake: FakeSlack) -> dict[str, list[str]]:
    """item id -> ts of every card Slack (the fake) holds for it."""
    out: dict[str, list[str]] = {}
    for message in fake.messages(CHANNEL):
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        if "item_id" in payload:
            out.setdefault(str(payload["item_id"]), []).append(str(message["ts"]))
    return out


def wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


def wait_updates(fake: FakeSlack, expected: int, quiet: float, timeout: float) -> float:
    """Wait until Slack has `expected` card updates (one per stored vote), or none came for
    `quiet` seconds (a follow-up lost in a kill -9); returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        calls = fake.calls("chat.update")
        if len([c for c in calls if not c.failed]) >= expected:
            break
        last = calls[-1].at if calls else started
        if time.monotonic() - last >= quiet:
            break
        time.sleep(0.25)
    return time.monotonic() - started


def verify(
    store_url: str,
    fake: FakeSlack,
    acked_items: set[str],
    sent_items: set[str],
    acked_votes: set[str],
) -> dict[str, Any]:
    """Every acknowledged item stored and posted exactly once (no item, acknowledged or
    not, posted twice); every acknowledged vote recorded."""
    from core.store import open_store

    store = open_store(store_url)
    try:
        stored = {i for i in sent_items if store.get_item(i) is not None}
        event_ids = {v.id for v in store.events()}
        unposted = store.count_unposted(TARGET)
    finally:
        store.close()
    cards = cards_by_item(fake)
    missing_items = sorted(acked_items - stored)
    not_posted = sorted(i for i in acked_items if i not in cards)
    twice = sorted(i for i, ts in cards.items() if len(ts) > 1)
    missing_votes = sorted(acked_votes - event_ids)
    return {
        "items_stored": not missing_items,
        "items_posted_exactly_once": not not_posted and not twice,
        "votes_recorded": not missing_votes,
        "missing_items": missing_items[:5],
        "not_posted": not_posted[:5],
        "posted_twice": twice[:5],
        "missing_votes": missing_votes[:5],
        "stored_not_acked": len(stored - acked_items),
        "outbox_unposted": unposted,
    }


def _ms(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered) * 1000, 1),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max": round(ordered[-1] * 1000, 1),
    }


def burst_figures(outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    accepted = [o for o in outcomes if o.accepted]
    statuses = Counter(str(a.status or "no-answer") for o in outcomes for a in o.attempts)
    return {
        "sent": len(outcomes),
        "accepted": len(accepted),
        "seconds": round(seconds, 2),
        "accepted_per_s": round(len(accepted) / seconds, 1) if seconds else None,
        "ack_ms": _ms([o.final.seconds for o in accepted]),
        "attempts_by_status": dict(sorted(statuses.items())),
    }


# -- the run -----------------------------------------------------------------------------------
@dataclass
class _Fault:
    """Injects one fault once a burst is a third answered, from its own thread."""

    kind: str | None
    bot: BotProcess
    fake: FakeSlack
    mongo: MongoServer | None
    outage_seconds: float
    storm_seconds: float
    log: list[dict[str, Any]] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def trigger(self, phase: str) -> None:
        thread = threading.Thread(target=self._inject, args=(phase,), daemon=True)
        self._threads.append(thread)
        thread.start()

    def _inject(self, phase: str) -> None:
        at = time.monotonic()
        if self.kind == "kill":
            pid = self.bot.pid
            self.bot.kill()
            restart = self.bot.start()
            self.log.append(
                {
                    "phase": phase,
                    "fault": "kill -9",
                    "pid": pid,
                    "restart_seconds": round(restart, 1),
                }
            )
        elif self.kind == "outage" and self.mongo is not None:
            self.mongo.stop()
            time.sleep(self.outage_seconds)
            self.mongo.start()
            back = time.monotonic()
            recovered = wait_until(lambda: self.bot.health()[0] == 200, timeout=120)
            self.log.append(
                {
                    "phase": phase,
                    "fault": f"store down {self.outage_seconds:.0f} s",
                    "bot_pid_unchanged": self.bot.starts == 1 and self.bot.alive,
                    "healthy_again_after_s": round(time.monotonic() - back, 1)
                    if recovered
                    else None,
                }
            )
        elif self.kind == "ratelimit":
            method = "chat.postMessage" if phase == "submissions" else "chat.update"
            self.fake.rate_limit(method, self.storm_seconds, retry_after=1)
            self.log.append(
                {"phase": phase, "fault": f"429 storm on {method} for {self.storm_seconds:.0f} s"}
            )
        if self.log:
            self.log[-1].setdefault("took_s", round(time.monotonic() - at, 1))

    def join(self) -> None:
        for thread in self._threads:
            thread.join()


@contextlib.contextmanager
def _scratch_store(store: str | None, workdir: Path) -> Iterator[tuple[str, MongoServer | None]]:
    """A store nobody else uses: a fresh SQLite file, a fresh database on a given MongoDB
    (dropped after), or a mongoeco server started here (`mongoeco`)."""
    if store is None or store.startswith("sqlite"):
        path = store.removeprefix("sqlite:///") if store else str(workdir / "bench.db")
        yield f"sqlite:///{path}", None
        return
    if store == "mongoeco":
        server = MongoServer(workdir / "mongo")
        server.start()
        try:
            yield f"{server.url}/triage_bench", server
        finally:
            server.stop()
        return
    if not store.startswith(("mongodb://", "mongodb+srv://")):
        raise ValueError(
            f"--store must be sqlite:///path, mongodb://... or mongoeco, got {store!r}"
        )
    from pymongo import MongoClient

    database = f"triage_bench_{uuid.uuid4().hex[:8]}"
    try:
        yield with_database(store, database), None
    finally:
        client: MongoClient[dict[str, Any]] = MongoClient(store, serverSelectionTimeoutMS=5000)
        with contextlib.suppress(Exception):
            client.drop_database(database)
        client.close()


def run_load(
    items: int = 2000,
    votes: int = 2000,
    *,
    store: str | None = None,
    concurrency: int = 16,
    fault: str | None = None,
    outage_seconds: float = 30.0,
    storm_seconds: float = 10.0,
    fault_in: tuple[str, ...] = ("submissions", "reactions"),
    settle_quiet: float = 15.0,
    progress: Progress = _quiet,
    workdir: Path | None = None,
    config: Path | None = None,
) -> dict[str, Any]:
    """The whole benchmark; returns its figures and checks (see the module docstring).

    `config`: the bot's config file (`TRIAGE_CONFIG`), e.g. one with `[duplicates]` off, so
    the burst's numbered look-alikes get cards of their own.

    `fault_in` names the bursts the fault hits. After the votes, the card rewrites are
    awaited until there is one per vote, or none came for `settle_quiet` seconds (a kill
    drops the rewrites still queued in the killed process).
    """
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
    if fault == "outage" and store != "mongoeco":
        raise ValueError("the outage fault stops the store server: use --store mongoeco")
    if items < 1 or votes < 0:
        raise ValueError("need at least one item and no negative votes")
    own_dir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="triage-load-")) if workdir is None else workdir
    run = uuid.uuid4().hex[:6]
    try:
        with (
            FakeSlack() as fake,
            _scratch_store(store, work) as (store_url, mongo),
            contextlib.ExitStack() as cleanup,
        ):
            bot = BotProcess(
                store_url,
                fake.base_url,
                work / "bot.log",
                env={"TRIAGE_CONFIG": str(config.resolve())} if config is not None else None,
            )
            cleanup.callback(bot.stop)  # whatever happens, no bot process is left behind
            progress("starting the bot", 0, 1)
            start_seconds = bot.start()
            progress("starting the bot", 1, 1)
            sender = Sender(bot.port, give_up_after=max(300.0, outage_seconds * 4))
            injector = _Fault(fault, bot, fake, mongo, outage_seconds, storm_seconds)
            cleanup.callback(injector.join)  # runs first: a restart in flight, then the stop

            def tracker(phase: str, total: int) -> Callable[[int], None]:
                trigger_at = max(1, total // 3)

                def on_done(count: int) -> None:
                    progress(phase, count, total)
                    if fault is not None and phase in fault_in and count == trigger_at:
                        injector.trigger(phase)

                return on_done

            # 1. the submissions burst
            bodies = feedback_bodies(items, run)
            ids = [item_id_of(b) for b in bodies]
            jobs = [(lambda i=i, b=b: sender.feedback(ids[i], b)) for i, b in enumerate(bodies)]
            item_outcomes, item_seconds = fire(jobs, concurrency, tracker("submissions", items))
            acked_items = {o.key for o in item_outcomes if o.accepted}

            # 2. posting (the outbox): every accepted item becomes one card
            post_started = time.monotonic()

            def posted() -> bool:
                count = len(acked_items & set(cards_by_item(fake)))
                progress("posting cards", count, len(acked_items))
                return count >= len(acked_items)

            all_posted = wait_until(posted, timeout=max(120.0, items * 0.5), every=0.5)
            injector.join()
            post_seconds = time.monotonic() - post_started
            failed_posts = len([c for c in fake.calls("chat.postMessage") if c.failed])

            # 3. the reactions burst, on the cards
            cards = cards_by_item(fake)
            card_ts = [cards[i][0] for i in ids if i in cards]
            reactions = vote_reactions()
            vote_jobs = []
            for j in range(votes if card_ts else 0):
                event_id = f"Ev{run}{j:06d}"
                payload = reaction_event(
                    event_id,
                    f"UR{j // len(card_ts):04d}",
                    reactions[j % len(reactions)],
                    card_ts[j % len(card_ts)],
                )
                vote_jobs.append(lambda e=event_id, p=payload: sender.slack_event(f"slack:{e}", p))
            vote_outcomes, vote_seconds = fire(
                vote_jobs, concurrency, tracker("reactions", len(vote_jobs))
            )
            injector.join()
            acked_votes = {o.key for o in vote_outcomes if o.accepted}

            # 4. after the acks: learning and card updates catch up
            progress("learning and card updates", 0, 1)
            settle = wait_updates(
                fake, len(acked_votes), quiet=settle_quiet, timeout=max(120.0, votes * 0.5)
            )
            progress("learning and card updates", 1, 1)
            checks = verify(store_url, fake, acked_items, set(ids), acked_votes)
            health = bot.health()
            bot_alive = bot.alive
            bot.stop()
        figures: dict[str, Any] = {
            "store": "sqlite"
            if store_url.startswith("sqlite")
            else ("mongoeco" if store == "mongoeco" else "mongodb"),
            "items": items,
            "votes": votes,
            "concurrency": concurrency,
            "fault": fault,
            "bot_start_seconds": round(start_seconds, 1),
            "submissions": burst_figures(item_outcomes, item_seconds),
            "posting": {
                "posted": len(acked_items & set(cards)),
                "all_posted": all_posted,
                "seconds_after_burst": round(post_seconds, 2),
                "refused_by_slack_429": failed_posts,
            },
            "reactions": burst_figures(vote_outcomes, vote_seconds),
            "card_updates": len([c for c in fake.calls("chat.update") if not c.failed]),
            "card_updates_refused_429": len([c for c in fake.calls("chat.update") if c.failed]),
            "votes_settled_after_s": round(settle, 1),
            "faults": injector.log,
            "bot_alive_at_end": bot_alive and health[0] == 200,
            "checks": checks,
        }
        figures["ok"] = bool(
            all_posted
            and checks["items_stored"]
            and checks["items_posted_exactly_once"]
            and checks["votes_recorded"]
            and figures["bot_alive_at_end"]
        )
        return figures
    finally:
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)
