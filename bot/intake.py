"""Intake from outside the chat platforms: a MongoDB collection watched live, files in bulk.

Both end in `core.intake`, with the same ids every time, so nothing is stored twice:
- `MongoWatcher` follows a collection (a change stream where the server has them, else
  polling by `_id`) and hands each new document to the edge's `accept`, which stores it
  with its card queued (the outbox triages and posts it). How far it got is kept in our store (an
  intake cursor), so a restart resumes there; a document seen again after a crash maps to
  the same item id and is not triaged or posted a second time.
- `import_file` reads a JSONL/CSV history file (`bot.files`) and stores and triages every
  good row in batches; with targets it also queues the cards, which the running bot's
  outbox posts at the pace each platform allows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from bson import json_util
from bson.objectid import ObjectId
from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.errors import ConfigurationError, OperationFailure
from pymongo.uri_parser import parse_uri

from bot.files import BadRow, Row, read_rows
from core.governance import InputError
from core.intake import Accepted, Intake, Submission
from core.models import FeedbackItem
from core.runtime import MongoIntakeSettings
from core.service import TriageService
from core.store import hide_credentials, safe_url

log = logging.getLogger("triage_bot.intake")

Accept = Callable[[Submission], Accepted]
Doc = dict[str, Any]

BATCH = 100  # documents per polling query
STREAM_AWAIT_MS = 1000  # a change stream's getMore waits this long for news, then we check stop
TOKEN_SAVE_SECONDS = 10.0  # an idle stream's advancing resume token is saved this often
_CANONICAL = json_util.CANONICAL_JSON_OPTIONS  # exact round trip of ObjectId, int64, dates
# Fail fast when the source is down, so the watcher logs and backs off instead of hanging;
# options given in the URL win.
_CLIENT_DEFAULTS: dict[str, Any] = {
    "serverSelectionTimeoutMS": 5000,
    "connectTimeoutMS": 5000,
    "socketTimeoutMS": 30000,
}
WATCH_URL_HELP = "mongodb://host:port/database.collection"


# -- the source ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WatchSource:
    """A parsed `--watch` URL: where to connect, and which collection to follow."""

    # The URL with only the database in its path (what pymongo expects); it may hold a
    # password, so it is left out of the repr.
    client_url: str = field(repr=False)
    database: str
    collection: str

    @property
    def namespace(self) -> str:
        return f"{self.database}.{self.collection}"

    @property
    def cursor_key(self) -> str:
        """The intake cursor's name in our store; the host is left out on purpose, so a
        moved or re-addressed server keeps its position and its item ids."""
        return f"mongodb:{self.namespace}"


def parse_watch_url(url: str) -> WatchSource:
    """`mongodb[+srv]://[user:pw@]host[:port][,host2]/database.collection[?options]`.

    Database names cannot contain dots and collection names can, so the first dot splits.
    Errors quote the URL with its credentials hidden (`safe_url`).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("mongodb", "mongodb+srv"):
        raise ValueError(f"--watch {safe_url(url)!r}: expected {WATCH_URL_HELP}")
    hosts, _, path_query = rest.partition("/")
    path, _, query = path_query.partition("?")
    database, _, collection = path.partition(".")
    if not hosts or not database or not collection:
        raise ValueError(
            f"--watch {safe_url(url)!r}: expected {WATCH_URL_HELP} (name the database and "
            "the collection, e.g. mongodb://localhost:27017/website.feedback)"
        )
    suffix = f"?{query}" if query else ""
    client_url = f"{scheme}://{hosts}/{database}{suffix}"
    if scheme == "mongodb":  # pymongo's own checks, here rather than in the watcher's log
        try:  # (not for mongodb+srv://, whose parsing looks the hosts up in DNS)
            parse_uri(client_url)
        except (ConfigurationError, ValueError) as exc:
            raise ValueError(
                f"--watch {safe_url(url)!r}: {hide_credentials(str(exc), url)}"
            ) from None
    return WatchSource(client_url, database, collection)


def _client(source: WatchSource) -> MongoClient[Doc]:
    given = {name.lower() for name, _ in parse_qsl(source.client_url.partition("?")[2])}
    options = {k: v for k, v in _CLIENT_DEFAULTS.items() if k.lower() not in given}
    return MongoClient(source.client_url, tz_aware=True, **options)


# -- documents to items -------------------------------------------------------------------
class SkipDocument(ValueError):
    """A document that cannot become feedback (no text); logged and passed over."""


_MISSING = object()


def lookup(doc: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or _MISSING."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _first(doc: Mapping[str, Any], paths: Sequence[str]) -> tuple[str, Any] | None:
    for path in paths:
        value = lookup(doc, path)
        if value is not _MISSING and value is not None:
            return path, value
    return None


def id_text(value: Any) -> str:
    """A document `_id` as stable text: ObjectIds and strings as themselves, anything else
    (numbers, dates, sub-documents) as canonical Extended JSON, so 1 and "1" stay apart."""
    if isinstance(value, ObjectId | str):
        return str(value)
    return json_util.dumps(value, json_options=_CANONICAL)


@dataclass(frozen=True)
class DocumentFields:
    text: str
    form_type: str | None
    page: str | None
    rating: float | None


def map_document(doc: Mapping[str, Any], mapping: MongoIntakeSettings) -> DocumentFields:
    """Pick text, type, page and rating by the configured field paths.

    Only a missing or non-string text skips the document: a malformed rating or type is
    dropped with a warning, because losing the feedback itself would be worse.
    """
    found = _first(doc, mapping.text)
    if found is None:
        raise SkipDocument(f"no text field (looked for: {', '.join(mapping.text)})")
    path, text = found
    if not isinstance(text, str):
        raise SkipDocument(f"field {path!r} is {type(text).__name__}, not text")

    def scalar(paths: Sequence[str], what: str) -> str | None:
        hit = _first(doc, paths)
        if hit is None:
            return None
        if isinstance(hit[1], str | int | float) and not isinstance(hit[1], bool):
            return str(hit[1]).strip() or None
        log.warning("document %s: ignoring %s %r (not text)", doc.get("_id"), what, hit[1])
        return None

    rating: float | None = None
    hit = _first(doc, mapping.rating)
    if hit is not None:
        try:
            rating = float(hit[1])
        except (TypeError, ValueError):
            log.warning("document %s: ignoring rating %r (not a number)", doc.get("_id"), hit[1])
    return DocumentFields(
        text=text,
        form_type=scalar(mapping.type, "type"),
        page=scalar(mapping.page, "page"),
        rating=rating,
    )


# -- the watcher --------------------------------------------------------------------------
@dataclass
class _Position:
    """What the intake cursor holds: the last `_id` handled (polling; also the catch-up
    point when a change stream cannot resume) and the change stream's resume token."""

    after: Any = None  # None: from the first document
    token: Mapping[str, Any] | None = None

    def dump(self) -> str:
        return json_util.dumps({"after": self.after, "token": self.token}, json_options=_CANONICAL)

    @classmethod
    def load(cls, raw: str) -> _Position:
        data = json_util.loads(raw, json_options=_CANONICAL)
        return cls(after=data.get("after"), token=data.get("token"))


class MongoWatcher:
    """Follows one collection in a background thread and takes in every new document once.

    `accept` is the edge's intake (Slack's `SlackEdge.accept`, Discord's
    `TriageBot.accept`, both thread-safe): it stores the item with its card queued; the
    edge's outbox triages and posts it.
    The source being unreachable (or our store) is logged and retried with backoff; the
    cursor only moves past a document once `accept` returned.
    """

    def __init__(
        self,
        service: TriageService,
        url: str,
        accept: Accept,
        settings: MongoIntakeSettings | None = None,
        *,
        retry_seconds: float = 1.0,
        max_retry_seconds: float = 30.0,
    ) -> None:
        self.service = service
        self.store = service.store
        self.source = parse_watch_url(url)
        self.accept = accept
        self.settings = settings or service.runtime.intake.mongo
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.mode: str | None = None  # "stream" or "poll", once known
        self.triaged = self.duplicates = self.skipped = self.failures = 0
        self.rounds = 0  # completed polls / stream waits: lets a caller see it is idle
        self._streams: bool | None = None  # None: not tried yet
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: MongoClient[Doc] = _client(self.source)
        self._collection: Collection[Doc] = self._client[self.source.database][
            self.source.collection
        ]

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mongo-intake", daemon=True)
        self._thread.start()
        log.info("watching %s for new feedback", self.source.namespace)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except Exception as exc:  # source or store down, a failover: back off, retry
                self.failures += 1
                delay = min(
                    self.retry_seconds * 2 ** min(self.failures - 1, 16), self.max_retry_seconds
                )
                log.warning(
                    "intake %s: %s: %s; retrying in %.1f s",
                    self.source.namespace,
                    type(exc).__name__,
                    str(exc).partition(", Timeout:")[0][:300],  # not pymongo's topology dump
                    delay,
                )
                self._stop.wait(delay)

    def _healthy(self) -> None:
        if self.failures:
            log.info("intake %s: reachable again", self.source.namespace)
            self.failures = 0

    # -- position -----------------------------------------------------------------------
    def _load(self) -> _Position:
        raw = self.store.get_intake_cursor(self.source.cursor_key)
        if raw is not None:
            return _Position.load(raw)
        position = _Position()
        if self.settings.start_at == "now":
            last = self._collection.find_one({}, {"_id": 1}, sort=[("_id", -1)])
            position.after = last["_id"] if last else None
        self._save(position)
        log.info(
            "intake %s: first start, from %s",
            self.source.namespace,
            "the first document" if position.after is None else f"after _id {position.after}",
        )
        return position

    def _save(self, position: _Position) -> None:
        self.store.set_intake_cursor(self.source.cursor_key, position.dump())

    # -- one connected session ----------------------------------------------------------
    def _session(self) -> None:
        position = self._load()
        if self._streams is not False and self._follow(position):
            return
        self.mode = "poll"
        while not self._stop.is_set():
            handled = self._poll(position)
            self.rounds += 1
            if handled < BATCH:
                self._stop.wait(self.settings.poll_seconds)

    def _poll(self, position: _Position) -> int:
        """Handle the next batch of documents after the cursor, in `_id` order."""
        query = {} if position.after is None else {"_id": {"$gt": position.after}}
        docs = list(self._collection.find(query).sort("_id", ASCENDING).limit(BATCH))
        self._healthy()
        for doc in docs:
            if self._stop.is_set():
                break
            self._handle(doc)
            position.after = doc["_id"]
            self._save(position)
        return len(docs)

    def _open_stream(self, position: _Position) -> Any | None:
        pipeline = [{"$match": {"operationType": "insert"}}]
        try:
            return self._collection.watch(
                pipeline, resume_after=position.token, max_await_time_ms=STREAM_AWAIT_MS
            )
        except OperationFailure as exc:
            if position.token is not None:
                log.warning(
                    "intake %s: cannot resume the change stream (%s); catching up by _id",
                    self.source.namespace,
                    exc,
                )
                position.token = None
                self._save(position)
                return self._open_stream(position)
            log.info(
                "intake %s: no change streams on this server (%s); polling every %g s",
                self.source.namespace,
                exc,
                self.settings.poll_seconds,
            )
            self._streams = False
            return None

    def _follow(self, position: _Position) -> bool:
        """Follow a change stream until stopped; False when the server has none."""
        stream = self._open_stream(position)
        if stream is None:
            return False
        self._streams = True
        self.mode = "stream"
        with stream:
            if position.token is None:
                # A new stream only sees what happens after it opened: first take in what
                # arrived since the cursor (duplicates of what the stream also reports are
                # harmless: same item id), then remember where the stream starts.
                while not self._stop.is_set() and self._poll(position) == BATCH:
                    pass
                position.token = stream.resume_token
                self._save(position)
            saved_at = 0.0
            while not self._stop.is_set():
                if not stream.alive:  # invalidated (collection dropped or renamed): reopen
                    raise RuntimeError("the change stream was closed by the server")
                change = stream.try_next()
                self._healthy()
                self.rounds += 1
                if change is not None:
                    doc = change.get("fullDocument")
                    if doc is not None:
                        self._handle(doc)
                        position.after = _later(position.after, doc.get("_id"))
                    position.token = stream.resume_token
                    self._save(position)
                    continue
                token = stream.resume_token
                now = time.monotonic()
                advanced = token is not None and token != position.token
                if advanced and now - saved_at > TOKEN_SAVE_SECONDS:
                    position.token, saved_at = token, now
                    self._save(position)
        return True

    def _handle(self, doc: Mapping[str, Any]) -> None:
        """One document: map its fields and hand it to the edge's intake (stable id)."""
        ident = id_text(doc.get("_id"))
        try:
            fields = map_document(doc, self.settings)
            accepted = self.accept(
                Submission(
                    text=fields.text,
                    source="mongodb",
                    ref=f"{self.source.namespace}/{ident}",
                    form_type=fields.form_type,
                    page=fields.page,
                    rating=fields.rating,
                    origin={"mongodb": {"collection": self.source.namespace, "_id": ident}},
                )
            )
        except (SkipDocument, InputError) as exc:
            self.skipped += 1
            log.warning(
                "intake %s: skipped document %s: %s", self.source.namespace, doc.get("_id"), exc
            )
            return
        if accepted.is_new:
            self.triaged += 1
        else:
            self.duplicates += 1


def _later(current: Any, candidate: Any) -> Any:
    """The larger `_id` (a change stream reports in commit order, not `_id` order)."""
    if candidate is None:
        return current
    try:
        return candidate if current is None or candidate > current else current
    except TypeError:  # mixed _id types: keep the last one seen
        return candidate


# -- files --------------------------------------------------------------------------------
@dataclass
class ImportSummary:
    file: str
    targets: list[str] = field(default_factory=list)
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    bad: int = 0
    queued: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "bad": self.bad,
            "queued": self.queued,
            "targets": self.targets,
        }


def submission_from_row(path: Path, row: Row) -> Submission:
    """What a file row says, as `triage --file` and `import` both read it: the row's `id`
    (namespaced by the file's name) is its identity when it has one, else its text."""
    return Submission(
        text=row.text,
        source="file",
        ref=f"{path.name}:{row.id}" if row.id else None,
        form_type=row.form_type,
        page=row.page,
        rating=row.rating,
    )


def import_file(
    service: TriageService,
    path: Path,
    *,
    targets: Sequence[str] = (),
    chunk: int = 64,
    progress: Callable[[int, int], None] | None = None,
    on_bad: Callable[[int, str], None] | None = None,
) -> ImportSummary:
    """Store every good row (with its cards queued for `targets`), triage them in
    batches, and report each bad row with its line.

    Without targets nothing is queued and no bot will ever post these items. Idempotent:
    a row already stored counts as a duplicate.
    """
    summary = ImportSummary(file=str(path), targets=list(targets))
    intake = Intake(service.store, service.runtime.triage.max_text_bytes)
    rows = list(read_rows(path))
    summary.rows = len(rows)
    done = 0
    pending: list[FeedbackItem] = []

    def bad(line: int, reason: str) -> None:
        summary.bad += 1
        if on_bad is not None:
            on_bad(line, reason)

    def flush() -> None:
        nonlocal done
        service.triage_items(pending)
        done += len(pending)
        pending.clear()
        if progress is not None:
            progress(done, summary.rows)

    for row in rows:
        if isinstance(row, BadRow):
            bad(row.line, row.reason)
            done += 1
            continue
        try:
            accepted = intake.accept(submission_from_row(path, row), targets)
        except InputError as exc:
            bad(row.line, str(exc))
            done += 1
            continue
        summary.imported += int(accepted.is_new)
        summary.duplicates += int(not accepted.is_new)
        summary.queued += len(targets) if accepted.is_new else 0
        pending.append(accepted.item)
        if len(pending) >= chunk:
            flush()
    flush()
    return summary
