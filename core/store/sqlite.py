"""SQLite store: the zero-set-up default. One file, WAL, fsync on commit.

Each record is kept as its model's JSON next to the few columns we query on, so the
schema follows `core.models` without migrations for every new optional field.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.models import (
    Assignment,
    AuditEvent,
    DuplicateLink,
    DuplicateVote,
    FeedbackItem,
    Label,
    ModelRecord,
    PostRecord,
    Reward,
    ThemeName,
    Triage,
    Validation,
    ValidationKind,
    utcnow,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS triages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS triages_item ON triages(item_id, seq);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    item_id TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_item ON events(item_id, seq);
CREATE TABLE IF NOT EXISTS votes (
    item_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retracted INTEGER NOT NULL DEFAULT 0,
    doc TEXT NOT NULL,
    PRIMARY KEY (item_id, reviewer)
);
CREATE TABLE IF NOT EXISTS labels (
    item_id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    item_id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS duplicates (
    item_id TEXT PRIMARY KEY,
    canonical_id TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS duplicates_canonical ON duplicates(canonical_id);
CREATE TABLE IF NOT EXISTS duplicate_votes (
    id TEXT PRIMARY KEY,
    item_id TEXT NOT NULL,
    other_id TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS duplicate_votes_item ON duplicate_votes(item_id);
CREATE INDEX IF NOT EXISTS duplicate_votes_other ON duplicate_votes(other_id);
CREATE TABLE IF NOT EXISTS theme_names (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS posts (
    item_id TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL,
    ref TEXT,
    claimed_by TEXT,
    claimed_until TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL DEFAULT '',
    stale INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (item_id, target)
);
CREATE INDEX IF NOT EXISTS posts_pending ON posts(target, status, created_at);
CREATE INDEX IF NOT EXISTS posts_ref ON posts(target, ref);
CREATE TABLE IF NOT EXISTS seen_events (
    key TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS intake_cursors (
    source TEXT PRIMARY KEY,
    position TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rewards (
    item_id TEXT NOT NULL,
    model_version TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'human-validation',
    doc TEXT NOT NULL,
    PRIMARY KEY (item_id, model_version, source)
);
CREATE TABLE IF NOT EXISTS models (
    version TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    promoted_at TEXT,
    doc TEXT NOT NULL,
    weights BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS models_created ON models(created_at, version);
CREATE INDEX IF NOT EXISTS models_promoted ON models(promoted_at);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_received ON items(received_at, id);
CREATE INDEX IF NOT EXISTS seen_events_at ON seen_events(seen_at);
CREATE INDEX IF NOT EXISTS posts_finished ON posts(status, updated_at);
"""


# What an item's id keys, besides the item: (what the audit counts, table, id columns). A
# row goes when any of its columns names a forgotten item: a duplicate link when either its
# item or its canonical does (the members stand alone again), a vote when either item does.
_DERIVED: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("triages", "triages", ("item_id",)),
    ("votes", "events", ("item_id",)),
    ("labels", "labels", ("item_id",)),
    ("assignments", "assignments", ("item_id",)),
    ("duplicates", "duplicates", ("item_id", "canonical_id")),
    ("duplicate_votes", "duplicate_votes", ("item_id", "other_id")),
    ("rewards", "rewards", ("item_id",)),
    ("posts", "posts", ("item_id",)),
)

_POST_UPGRADES = (
    ("next_attempt_at", "TEXT NOT NULL DEFAULT ''"),
    ("stale", "INTEGER NOT NULL DEFAULT 0"),
    ("last_error", "TEXT"),
    ("detail", "TEXT NOT NULL DEFAULT '{}'"),
)


def _persisted(item: FeedbackItem) -> str:
    """Raw text never reaches the disk: the stored copy carries the redacted text only."""
    return item.model_copy(update={"text": item.redacted_text}).model_dump_json()


def _iso(stamp: datetime) -> str:
    """Fixed-width UTC timestamp, so SQL string comparison orders records by time."""
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _from_iso(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _model(doc: str, promoted_at: str | None) -> ModelRecord:
    """The `promoted_at` column is the truth; the JSON copy keeps the rest of the record."""
    record = ModelRecord.model_validate_json(doc)
    record.promoted_at = _from_iso(promoted_at) if promoted_at else None
    return record


class SQLiteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0  # transactions open on this connection (nested ones are savepoints)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=10000")
        # A deleted row is overwritten with zeros, not left in a free page (`forget_items`).
        self._db.execute("PRAGMA secure_delete=ON")
        self._add_missing_post_columns()
        self._key_rewards_by_source()
        self._db.executescript(_SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside commit together: one transaction, one fsync, and this process's
        other threads wait at the lock rather than at each of several commits. Nested: a
        savepoint, so a failing inner write rolls back alone."""
        with self._lock:
            outer = self._depth == 0
            savepoint = f"sp{self._depth}"
            self._db.execute("BEGIN IMMEDIATE" if outer else f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield
                self._db.execute("COMMIT" if outer else f"RELEASE {savepoint}")
            except BaseException:
                if self._db.in_transaction:  # a failed COMMIT may have ended it already
                    self._db.execute("ROLLBACK" if outer else f"ROLLBACK TO {savepoint}")
                    if not outer:
                        self._db.execute(f"RELEASE {savepoint}")
                raise
            finally:
                self._depth -= 1

    def _add_missing_post_columns(self) -> None:
        """Stores made before per-post backoff: add its columns (new ones get them above)."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(posts)")}
        if not have:
            return
        for column, kind in _POST_UPGRADES:
            if column not in have:
                self._db.execute(f"ALTER TABLE posts ADD COLUMN {column} {kind}")

    def _key_rewards_by_source(self) -> None:
        """Stores made when an item had one reward per model version: key them by source
        too (a vote's reward and a GitHub outcome's live side by side)."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(rewards)")}
        if not have or "source" in have:
            return
        with self.transaction():
            self._db.execute("ALTER TABLE rewards RENAME TO rewards_by_version")
            self._db.execute(
                "CREATE TABLE rewards (item_id TEXT NOT NULL, model_version TEXT NOT NULL, "
                "source TEXT NOT NULL DEFAULT 'human-validation', doc TEXT NOT NULL, "
                "PRIMARY KEY (item_id, model_version, source))"
            )
            self._db.execute(
                "INSERT INTO rewards(item_id, model_version, source, doc) SELECT item_id, "
                "model_version, COALESCE(json_extract(doc, '$.source'), 'human-validation'), "
                "doc FROM rewards_by_version ORDER BY rowid"
            )
            self._db.execute("DROP TABLE rewards_by_version")

    # -- items ---------------------------------------------------------------------------
    def add_item(self, item: FeedbackItem, post_to: Sequence[str] = ()) -> bool:
        now = _iso(utcnow())
        with self.transaction():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO items(id, received_at, doc) VALUES (?, ?, ?)",
                (item.id, _iso(item.received_at), _persisted(item)),
            )
            for target in post_to:
                self._db.execute(
                    "INSERT OR IGNORE INTO posts(item_id, target, status, created_at, "
                    "updated_at) VALUES (?, ?, 'pending', ?, ?)",
                    (item.id, target, now, now),
                )
            return cur.rowcount == 1

    def add_submitter(self, item_id: str, submitter: str) -> bool:
        with self.transaction():
            row = self._db.execute("SELECT doc FROM items WHERE id = ?", (item_id,)).fetchone()
            added = False
            if row is not None:
                item = FeedbackItem.model_validate_json(row[0])
                known = item.metadata.setdefault("submitters", [])
                if submitter not in known:
                    known.append(submitter)
                    added = True
                    self._db.execute(
                        "UPDATE items SET doc = ? WHERE id = ?",
                        (item.model_dump_json(), item_id),
                    )
        return added

    def get_item(self, item_id: str) -> FeedbackItem | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM items WHERE id = ?", (item_id,)).fetchone()
        return FeedbackItem.model_validate_json(row[0]) if row else None

    def iter_items(self) -> Iterator[FeedbackItem]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM items ORDER BY received_at, id").fetchall()
        for (doc,) in rows:
            yield FeedbackItem.model_validate_json(doc)

    def count_items(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    # -- predictions ---------------------------------------------------------------------
    def save_triage(self, triage: Triage) -> None:
        with self._lock:
            # Not for an item forgotten while it was being triaged: nothing of it may stay.
            self._db.execute(
                "INSERT INTO triages(item_id, doc) SELECT ?, ? "
                "WHERE EXISTS (SELECT 1 FROM items WHERE id = ?)",
                (triage.item_id, triage.model_dump_json(), triage.item_id),
            )

    def latest_triage(self, item_id: str) -> Triage | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc FROM triages WHERE item_id = ? ORDER BY seq DESC LIMIT 1", (item_id,)
            ).fetchone()
        return Triage.model_validate_json(row[0]) if row else None

    # -- votes ---------------------------------------------------------------------------
    def add_validation(self, validation: Validation) -> bool:
        doc = validation.model_dump_json()
        retracted = 1 if validation.kind == ValidationKind.RETRACT else 0
        with self.transaction():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO events(id, item_id, doc) VALUES (?, ?, ?)",
                (validation.id, validation.item_id, doc),
            )
            if cur.rowcount == 0:
                return False
            # Latest wins: replace only when this vote is not older than the current one.
            self._db.execute(
                """INSERT INTO votes(item_id, reviewer, created_at, retracted, doc)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(item_id, reviewer) DO UPDATE SET
                     created_at = excluded.created_at,
                     retracted = excluded.retracted,
                     doc = excluded.doc
                   WHERE excluded.created_at >= votes.created_at""",
                (
                    validation.item_id,
                    validation.reviewer,
                    _iso(validation.created_at),
                    retracted,
                    doc,
                ),
            )
        return True

    def current_votes(self, item_id: str) -> list[Validation]:
        with self._lock:
            rows = self._db.execute(
                "SELECT doc FROM votes WHERE item_id = ? AND retracted = 0 ORDER BY created_at",
                (item_id,),
            ).fetchall()
        return [Validation.model_validate_json(doc) for (doc,) in rows]

    def events(self, item_id: str | None = None) -> list[Validation]:
        with self._lock:
            if item_id is None:
                rows = self._db.execute("SELECT doc FROM events ORDER BY seq").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT doc FROM events WHERE item_id = ? ORDER BY seq", (item_id,)
                ).fetchall()
        return [Validation.model_validate_json(doc) for (doc,) in rows]

    # -- labels and rewards --------------------------------------------------------------
    def put_label(self, label: Label) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO labels(item_id, doc) VALUES (?, ?)",
                (label.item_id, label.model_dump_json()),
            )

    def get_label(self, item_id: str) -> Label | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc FROM labels WHERE item_id = ?", (item_id,)
            ).fetchone()
        return Label.model_validate_json(row[0]) if row else None

    def delete_label(self, item_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM labels WHERE item_id = ?", (item_id,))

    def iter_labels(self) -> Iterator[Label]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM labels ORDER BY rowid").fetchall()
        for (doc,) in rows:
            yield Label.model_validate_json(doc)

    def put_assignment(self, assignment: Assignment) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO assignments(item_id, doc) VALUES (?, ?)",
                (assignment.item_id, assignment.model_dump_json()),
            )

    def get_assignment(self, item_id: str) -> Assignment | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc FROM assignments WHERE item_id = ?", (item_id,)
            ).fetchone()
        return Assignment.model_validate_json(row[0]) if row else None

    def iter_assignments(self) -> Iterator[Assignment]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM assignments ORDER BY rowid").fetchall()
        for (doc,) in rows:
            yield Assignment.model_validate_json(doc)

    # -- duplicates ----------------------------------------------------------------------
    # INSERT OR REPLACE moves a replaced link to the end of rowid order, as Mongo's fresh
    # `_seq` does: "oldest first" means oldest put.
    def put_duplicate(self, link: DuplicateLink) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO duplicates(item_id, canonical_id, doc) VALUES (?, ?, ?)",
                (link.item_id, link.canonical_id, link.model_dump_json()),
            )

    def get_duplicate(self, item_id: str) -> DuplicateLink | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc FROM duplicates WHERE item_id = ?", (item_id,)
            ).fetchone()
        return DuplicateLink.model_validate_json(row[0]) if row else None

    def delete_duplicate(self, item_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM duplicates WHERE item_id = ?", (item_id,))
            return cur.rowcount == 1

    def duplicates_of(self, canonical_id: str) -> list[DuplicateLink]:
        with self._lock:
            rows = self._db.execute(
                "SELECT doc FROM duplicates WHERE canonical_id = ? ORDER BY rowid",
                (canonical_id,),
            ).fetchall()
        return [DuplicateLink.model_validate_json(doc) for (doc,) in rows]

    def iter_duplicates(self) -> Iterator[DuplicateLink]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM duplicates ORDER BY rowid").fetchall()
        for (doc,) in rows:
            yield DuplicateLink.model_validate_json(doc)

    def add_duplicate_vote(self, vote: DuplicateVote) -> bool:
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO duplicate_votes(id, item_id, other_id, doc) "
                "VALUES (?, ?, ?, ?)",
                (vote.id, vote.item_id, vote.other_id, vote.model_dump_json()),
            )
            return cur.rowcount == 1

    def duplicate_votes(self) -> list[DuplicateVote]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM duplicate_votes ORDER BY rowid").fetchall()
        return [DuplicateVote.model_validate_json(doc) for (doc,) in rows]

    # -- theme names ---------------------------------------------------------------------
    # Not in `_DERIVED`: a name keys no item. INSERT OR REPLACE moves a renamed theme to the
    # end of rowid order, as Mongo's fresh `_seq` does (and as duplicate links do).
    def put_theme_name(self, theme: ThemeName) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO theme_names(id, doc) VALUES (?, ?)",
                (theme.id, theme.model_dump_json()),
            )

    def theme_names(self) -> list[ThemeName]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM theme_names ORDER BY rowid").fetchall()
        return [ThemeName.model_validate_json(doc) for (doc,) in rows]

    def delete_theme_name(self, theme_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM theme_names WHERE id = ?", (theme_id,))
            return cur.rowcount == 1

    def put_reward(self, reward: Reward) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO rewards(item_id, model_version, source, doc) "
                "VALUES (?, ?, ?, ?)",
                (reward.item_id, reward.model_version, reward.source, reward.model_dump_json()),
            )

    def rewards(self, item_id: str | None = None) -> list[Reward]:
        with self._lock:
            if item_id is None:
                rows = self._db.execute("SELECT doc FROM rewards ORDER BY rowid").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT doc FROM rewards WHERE item_id = ? ORDER BY rowid", (item_id,)
                ).fetchall()
        return [Reward.model_validate_json(doc) for (doc,) in rows]

    # -- model registry ------------------------------------------------------------------
    def put_model(self, record: ModelRecord, weights: bytes) -> bool:
        promoted = _iso(record.promoted_at) if record.promoted_at else None
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO models(version, created_at, promoted_at, doc, weights) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    record.version,
                    _iso(record.created_at),
                    promoted,
                    record.model_dump_json(),
                    sqlite3.Binary(bytes(weights)),
                ),
            )
            return cur.rowcount == 1

    def get_model(self, version: str) -> tuple[ModelRecord, bytes] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc, promoted_at, weights FROM models WHERE version = ?", (version,)
            ).fetchone()
        return (_model(row[0], row[1]), bytes(row[2])) if row else None

    def list_models(self) -> list[ModelRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT doc, promoted_at FROM models ORDER BY created_at DESC, version DESC"
            ).fetchall()
        return [_model(doc, promoted) for doc, promoted in rows]

    def promote_model(self, version: str) -> ModelRecord:
        now = utcnow()
        with self.transaction():
            # Strictly after the current promotion, so the latest call always wins even
            # when two promotions land within one clock tick.
            latest = self._db.execute("SELECT MAX(promoted_at) FROM models").fetchone()[0]
            if latest is not None and _iso(now) <= latest:
                now = _from_iso(latest) + timedelta(microseconds=1)
            cur = self._db.execute(
                "UPDATE models SET promoted_at = ? WHERE version = ?", (_iso(now), version)
            )
            row = self._db.execute(
                "SELECT doc, promoted_at FROM models WHERE version = ?", (version,)
            ).fetchone()
        if cur.rowcount == 0 or row is None:
            raise KeyError(f"unknown model version {version!r}")
        return _model(row[0], row[1])

    def promoted_model(self) -> ModelRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc, promoted_at FROM models WHERE promoted_at IS NOT NULL "
                "ORDER BY promoted_at DESC, version DESC LIMIT 1"
            ).fetchone()
        return _model(row[0], row[1]) if row else None

    # -- outbox --------------------------------------------------------------------------
    _POST_COLUMNS = (
        "item_id, target, status, ref, claimed_by, claimed_until, attempts, created_at, "
        "updated_at, next_attempt_at, stale, last_error, detail"
    )

    @staticmethod
    def _post(row: tuple) -> PostRecord:  # type: ignore[type-arg]
        item_id, target, status, ref, by, until, attempts, created, updated = row[:9]
        next_at, stale, error, detail = row[9:]

        def when(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None

        return PostRecord(
            item_id=item_id,
            target=target,
            status=status,
            ref=ref,
            claimed_by=by,
            claimed_until=when(until),
            attempts=attempts,
            created_at=datetime.fromisoformat(created).replace(tzinfo=UTC),
            updated_at=datetime.fromisoformat(updated).replace(tzinfo=UTC),
            next_attempt_at=when(next_at),
            stale=bool(stale),
            last_error=error,
            detail=json.loads(detail or "{}"),
        )

    def enqueue_post(
        self, item_id: str, target: str, detail: Mapping[str, Any] | None = None
    ) -> bool:
        now = _iso(utcnow())
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO posts(item_id, target, status, created_at, updated_at, "
                "detail) VALUES (?, ?, 'pending', ?, ?, ?)",
                (item_id, target, now, now, json.dumps(dict(detail or {}))),
            )
            return cur.rowcount == 1

    def requeue_post(self, item_id: str, target: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE posts SET status = 'pending', attempts = 0, next_attempt_at = '', "
                "last_error = NULL, updated_at = ? "
                "WHERE item_id = ? AND target = ? AND status = 'dead'",
                (_iso(utcnow()), item_id, target),
            )
            return cursor.rowcount == 1

    def set_post_detail(self, item_id: str, target: str, detail: Mapping[str, Any]) -> bool:
        with self.transaction():
            row = self._db.execute(
                "SELECT detail FROM posts WHERE item_id = ? AND target = ?", (item_id, target)
            ).fetchone()
            if row is None:
                return False
            merged = json.loads(row[0] or "{}") | dict(detail)
            self._db.execute(
                "UPDATE posts SET detail = ?, updated_at = ? WHERE item_id = ? AND target = ?",
                (json.dumps(merged), _iso(utcnow()), item_id, target),
            )
            return True

    def claim_post(self, target: str, worker: str, lease_seconds: float) -> PostRecord | None:
        now = utcnow()
        with self.transaction():
            # Due: a new post, a posted card to rewrite, or a claim whose worker died.
            # A post waiting out its backoff is passed over, so it blocks nothing.
            row = self._db.execute(
                "SELECT item_id FROM posts WHERE target = ? AND ("
                "(status = 'pending' AND next_attempt_at <= ?) OR "
                "(status = 'posted' AND stale = 1 AND next_attempt_at <= ?) OR "
                "(status = 'claimed' AND claimed_until < ?)) "
                "ORDER BY created_at, item_id LIMIT 1",
                (target, _iso(now), _iso(now), _iso(now)),
            ).fetchone()
            if row is None:
                return None
            # The stale mark is taken with the claim, so a vote that lands during the
            # rewrite marks the card again.
            self._db.execute(
                "UPDATE posts SET status = 'claimed', claimed_by = ?, claimed_until = ?, "
                "attempts = attempts + 1, stale = 0, updated_at = ? "
                "WHERE item_id = ? AND target = ?",
                (
                    worker,
                    _iso(now + timedelta(seconds=lease_seconds)),
                    _iso(now),
                    row[0],
                    target,
                ),
            )
            record = self._db.execute(
                f"SELECT {self._POST_COLUMNS} FROM posts WHERE item_id = ? AND target = ?",
                (row[0], target),
            ).fetchone()
        return self._post(record)

    def mark_posted(self, item_id: str, target: str, ref: str, worker: str | None = None) -> bool:
        holder = " AND status = 'claimed' AND claimed_by = ?" if worker is not None else ""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE posts SET status = 'posted', ref = ?, claimed_by = NULL, "
                "claimed_until = NULL, next_attempt_at = '', last_error = NULL, updated_at = ? "
                "WHERE item_id = ? AND target = ?" + holder,
                (ref, _iso(utcnow()), item_id, target, *([worker] if worker is not None else [])),
            )
            return cursor.rowcount == 1

    def release_post(
        self,
        item_id: str,
        target: str,
        worker: str,
        *,
        delay_seconds: float = 0.0,
        error: str | None = None,
        attempted: bool = True,
    ) -> None:
        now = utcnow()
        with self._lock:
            self._db.execute(
                "UPDATE posts SET status = CASE WHEN ref IS NULL THEN 'pending' ELSE 'posted' END, "
                "stale = CASE WHEN ref IS NULL THEN 0 ELSE 1 END, claimed_by = NULL, "
                "claimed_until = NULL, next_attempt_at = ?, last_error = ?, updated_at = ?, "
                "attempts = attempts - ? "
                "WHERE item_id = ? AND target = ? AND status = 'claimed' AND claimed_by = ?",
                (
                    _iso(now + timedelta(seconds=max(0.0, delay_seconds))),
                    error,
                    _iso(now),
                    0 if attempted else 1,
                    item_id,
                    target,
                    worker,
                ),
            )

    def dead_post(self, item_id: str, target: str, worker: str, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE posts SET status = 'dead', claimed_by = NULL, claimed_until = NULL, "
                "last_error = ?, updated_at = ? "
                "WHERE item_id = ? AND target = ? AND status = 'claimed' AND claimed_by = ?",
                (error, _iso(utcnow()), item_id, target, worker),
            )

    def request_update(self, item_id: str, target: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE posts SET stale = 1, updated_at = ? WHERE item_id = ? AND target = ? "
                "AND ref IS NOT NULL AND status IN ('posted', 'claimed')",
                (_iso(utcnow()), item_id, target),
            )
            return cursor.rowcount == 1

    def get_post(self, item_id: str, target: str) -> PostRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._POST_COLUMNS} FROM posts WHERE item_id = ? AND target = ?",
                (item_id, target),
            ).fetchone()
        return self._post(row) if row else None

    def find_post(self, target: str, ref: str) -> PostRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._POST_COLUMNS} FROM posts WHERE target = ? AND ref = ?",
                (target, ref),
            ).fetchone()
        return self._post(row) if row else None

    def posts(
        self, target: str | None = None, status: str | None = None, item_id: str | None = None
    ) -> list[PostRecord]:
        where, args = [], []
        for column, value in (("target", target), ("status", status), ("item_id", item_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {self._POST_COLUMNS} FROM posts{clause} ORDER BY created_at, item_id",
                args,
            ).fetchall()
        return [self._post(row) for row in rows]

    def outbox_counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT target, status, COUNT(*), SUM(stale) FROM posts GROUP BY target, status"
            ).fetchall()
        counts: dict[str, dict[str, int]] = {}
        for target, status, n, stale in rows:
            bucket = counts.setdefault(target, {})
            bucket[status] = int(n)
            if stale:
                bucket["stale"] = bucket.get("stale", 0) + int(stale)
        return counts

    def count_unposted(self, target: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM posts WHERE target = ? AND status != 'posted'", (target,)
            ).fetchone()
        return int(row[0])

    def mark_event_seen(self, key: str) -> bool:
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO seen_events(key, seen_at) VALUES (?, ?)",
                (key, _iso(utcnow())),
            )
            return cur.rowcount == 1

    # -- forgetting and retention --------------------------------------------------------
    def forget_items(self, event: AuditEvent) -> AuditEvent:
        ids = list(dict.fromkeys(event.item_ids))
        rows = [(item_id,) for item_id in ids]
        counts = dict(event.counts)
        with self.transaction():
            cards = [
                f"{target} {ref}"
                for item_id in ids
                for target, ref in self._db.execute(
                    "SELECT target, ref FROM posts WHERE item_id = ? AND ref IS NOT NULL "
                    "ORDER BY created_at, target",
                    (item_id,),
                )
            ]
            for kind, table, columns in _DERIVED:
                where = " OR ".join(f"{column} = ?" for column in columns)
                deleted = self._db.executemany(
                    f"DELETE FROM {table} WHERE {where}", [row * len(columns) for row in rows]
                ).rowcount
                counts[kind] = counts.get(kind, 0) + max(deleted, 0)
            self._db.executemany("DELETE FROM votes WHERE item_id = ?", rows)
            deleted = self._db.executemany("DELETE FROM items WHERE id = ?", rows).rowcount
            counts["items"] = counts.get("items", 0) + max(deleted, 0)
            stored = event.model_copy(update={"item_ids": ids, "counts": counts, "cards": cards})
            cur = self._db.execute(
                "INSERT INTO audit(doc) VALUES (?)",
                (stored.model_copy(update={"seq": 0}).model_dump_json(),),
            )
            stored.seq = int(cur.lastrowid or 0)
        self._checkpoint()
        return stored

    def _checkpoint(self) -> None:
        """Copy the write-ahead log into the database and empty it: until then the log
        still holds the pages as they were before a delete. Inside an open transaction
        (the caller's), the next forget's checkpoint does it."""
        with self._lock:
            if self._depth == 0 and self.path != ":memory:":
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def audit_events(self, after: int = 0) -> list[AuditEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, doc FROM audit WHERE seq > ? ORDER BY seq", (after,)
            ).fetchall()
        out = []
        for seq, doc in rows:
            event = AuditEvent.model_validate_json(doc)
            event.seq = int(seq)
            out.append(event)
        return out

    def last_audit_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) FROM audit").fetchone()
        return int(row[0] or 0)

    def items_received_before(self, cutoff: datetime) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM items WHERE received_at < ? ORDER BY received_at, id",
                (_iso(cutoff),),
            ).fetchall()
        return [item_id for (item_id,) in rows]

    def prune_seen_events(self, before: datetime, *, dry_run: bool = False) -> int:
        verb = "SELECT COUNT(*)" if dry_run else "DELETE"
        with self._lock:
            cur = self._db.execute(f"{verb} FROM seen_events WHERE seen_at < ?", (_iso(before),))
            return int(cur.fetchone()[0]) if dry_run else cur.rowcount

    def prune_posts(self, before: datetime, *, dry_run: bool = False) -> int:
        cutoff = _iso(before)
        with self.transaction():
            rows = self._db.execute(
                "SELECT p.item_id, p.target, i.doc FROM posts p LEFT JOIN items i "
                "ON i.id = p.item_id WHERE p.status IN ('posted', 'dead') "
                "AND p.updated_at < ? AND (i.id IS NULL OR i.received_at < ?)",
                (cutoff, cutoff),
            ).fetchall()
            if dry_run:
                return len(rows)
            for item_id, target, doc in rows:
                if doc is not None:
                    item = FeedbackItem.model_validate_json(doc)
                    wanted = item.metadata.get("post_to")
                    if isinstance(wanted, list) and target in wanted:
                        item.metadata["post_to"] = [t for t in wanted if t != target]
                        self._db.execute(
                            "UPDATE items SET doc = ? WHERE id = ?",
                            (item.model_dump_json(), item_id),
                        )
                self._db.execute(
                    "DELETE FROM posts WHERE item_id = ? AND target = ?", (item_id, target)
                )
        return len(rows)

    # -- intake cursors ------------------------------------------------------------------
    def get_intake_cursor(self, source: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT position FROM intake_cursors WHERE source = ?", (source,)
            ).fetchone()
        return str(row[0]) if row else None

    def set_intake_cursor(self, source: str, position: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO intake_cursors(source, position, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(source) DO UPDATE SET position = excluded.position, "
                "updated_at = excluded.updated_at",
                (source, position, _iso(utcnow())),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
