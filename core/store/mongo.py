"""MongoDB store: same contract and orderings as `SQLiteStore`, for teams that run Mongo.

Each document is its model's JSON (`model_dump(mode="json")`) plus a few underscore-prefixed
query fields (`_key`, `_seq`, `_retracted`). Datetimes therefore stay ISO strings inside the
model fields, so they round-trip exactly (offset and microseconds) as they do in SQLite; the
query fields hold fixed-width UTC strings that sort by time. The outbox (`posts`) is the
exception: its times are BSON dates, so the server itself compares claim leases with "now".

Nothing here needs transactions (a standalone mongod refuses them) or change streams: every
write is a single-document atomic operation, ordered so that a crash between two of them is
healed by the redelivery that follows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from bson.binary import Binary
from pydantic import BaseModel
from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

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

DEFAULT_DATABASE = "triage_bot"

# Fail fast when the server is down (pymongo waits 30 s to select one and never times out a
# socket read by default): 2 s, so a request that needs the store gets its 503 inside Slack's
# 3-second window instead of hanging. Options given in the URL win.
_DEFAULT_OPTIONS: dict[str, Any] = {
    "serverSelectionTimeoutMS": 2000,
    "connectTimeoutMS": 2000,
    "socketTimeoutMS": 30000,
}

# BSON documents stop at 16 MiB, and a model with a fine-tuned encoder is ~45 MB: weights up
# to one chunk live inside the model's document, bigger ones in `model_chunks` (no GridFS),
# WEIGHTS_CHUNK_BYTES per document.
WEIGHTS_CHUNK_BYTES = 8 * 1024 * 1024

_M = TypeVar("_M", bound=BaseModel)
Doc = dict[str, Any]


def _utc_key(stamp: datetime) -> str:
    """Fixed-width UTC timestamp (naive = UTC, as in SQLite), so string order is time order."""
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _load(model: type[_M], doc: Mapping[str, Any]) -> _M:
    """Drop `_id` and the query fields; models forbid extra keys."""
    return model.model_validate({k: v for k, v in doc.items() if not k.startswith("_")})


class MongoStore:
    """`Store` over pymongo. Safe to share across threads: `MongoClient` is a thread-safe pool
    and the store keeps no client-side state between calls."""

    def __init__(self, url: str, database: str | None = None) -> None:
        # Parsed by hand: pymongo's parse_uri would resolve mongodb+srv:// DNS records here.
        query = url.partition("?")[2]
        given = {name.lower() for name, _ in parse_qsl(query.replace(";", "&"))}
        options = {k: v for k, v in _DEFAULT_OPTIONS.items() if k.lower() not in given}
        self.url = url
        self._client: MongoClient[Doc] = MongoClient(url, tz_aware=True, **options)
        self._db = (
            self._client[database]
            if database
            else self._client.get_default_database(default=DEFAULT_DATABASE)
        )
        self._items: Collection[Doc] = self._db["items"]
        self._triages: Collection[Doc] = self._db["triages"]
        self._events: Collection[Doc] = self._db["events"]
        self._votes: Collection[Doc] = self._db["votes"]
        self._labels: Collection[Doc] = self._db["labels"]
        self._rewards: Collection[Doc] = self._db["rewards"]
        self._assignments: Collection[Doc] = self._db["assignments"]  # _id = item id
        self._duplicates: Collection[Doc] = self._db["duplicates"]  # _id = item id
        self._duplicate_votes: Collection[Doc] = self._db["duplicate_votes"]  # _id = vote id
        self._theme_names: Collection[Doc] = self._db["theme_names"]  # _id = theme id
        self._counters: Collection[Doc] = self._db["counters"]  # the `_seq` counter
        self._posts: Collection[Doc] = self._db["posts"]
        self._seen: Collection[Doc] = self._db["seen_events"]
        self._models: Collection[Doc] = self._db["models"]
        self._chunks: Collection[Doc] = self._db["model_chunks"]  # blob, n, data
        self._cursors: Collection[Doc] = self._db["intake_cursors"]  # _id = source
        self._audit: Collection[Doc] = self._db["audit"]  # _id = event id, `seq` orders
        try:
            self._ensure_indexes()  # also the first round trip: an unreachable server fails here
        except BaseException:
            self._client.close()
            raise

    @property
    def database_name(self) -> str:
        return self._db.name

    def _ensure_indexes(self) -> None:
        """Idempotent; uniqueness lives in the server so concurrent writers cannot duplicate."""
        # items: _id = item id. events: _id = validation id. labels: _id = item id.
        self._items.create_index([("_key", ASCENDING), ("_id", ASCENDING)])
        self._triages.create_index([("item_id", ASCENDING), ("_seq", DESCENDING)])
        self._events.create_index([("_seq", ASCENDING)])
        self._events.create_index([("item_id", ASCENDING), ("_seq", ASCENDING)])
        self._votes.create_index([("item_id", ASCENDING), ("reviewer", ASCENDING)], unique=True)
        self._votes.create_index([("item_id", ASCENDING), ("_key", ASCENDING)])
        self._labels.create_index([("_seq", ASCENDING)])
        # duplicates: a canonical's members oldest first; votes by either item (forgetting).
        self._duplicates.create_index([("_seq", ASCENDING)])
        self._duplicates.create_index([("canonical_id", ASCENDING), ("_seq", ASCENDING)])
        self._duplicate_votes.create_index([("_seq", ASCENDING)])
        self._duplicate_votes.create_index([("item_id", ASCENDING)])
        self._duplicate_votes.create_index([("other_id", ASCENDING)])
        self._theme_names.create_index([("_seq", ASCENDING)])
        # One reward per (item, model version, source): a vote's and a GitHub outcome's.
        # Stores made before rewards had a source in their key drop the older index.
        if "item_id_1_model_version_1" in self._rewards.index_information():
            self._rewards.drop_index("item_id_1_model_version_1")
        self._rewards.create_index(
            [("item_id", ASCENDING), ("model_version", ASCENDING), ("source", ASCENDING)],
            unique=True,
        )
        self._rewards.create_index([("_seq", ASCENDING)])
        # posts: the claim scans (target, status) oldest first; `_key` is created_at to the µs
        # (BSON dates keep only ms, and SQLite orders by the µs).
        self._posts.create_index([("item_id", ASCENDING), ("target", ASCENDING)], unique=True)
        self._posts.create_index(
            [("target", ASCENDING), ("status", ASCENDING), ("_key", ASCENDING)]
        )
        self._posts.create_index([("target", ASCENDING), ("ref", ASCENDING)])
        # seen_events: _id = key, so the default unique _id index is the dedupe.
        # models: _id = version; listed newest first; `_promoted_key` finds the promoted one.
        self._models.create_index([("_key", DESCENDING), ("_id", DESCENDING)])
        self._models.create_index([("_promoted_key", DESCENDING), ("_id", DESCENDING)])
        self._chunks.create_index([("blob", ASCENDING), ("n", ASCENDING)], unique=True)
        # Forgetting and retention: the audit trail by seq, old seen keys, finished posts.
        self._audit.create_index([("seq", ASCENDING)], unique=True)
        self._seen.create_index([("seen_at", ASCENDING)])
        self._posts.create_index([("status", ASCENDING), ("updated_at", ASCENDING)])

    def _next_seq(self) -> int:
        """A server-side counter: insertion order that holds across processes and within
        one millisecond (client ObjectIds only order within one process)."""
        for _ in range(3):
            try:
                doc = self._counters.find_one_and_update(
                    {"_id": "seq"},
                    {"$inc": {"n": 1}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:  # two first-ever upserts raced; the counter exists now
                continue
            assert doc is not None  # upsert + AFTER always returns the document
            return int(doc["n"])
        raise RuntimeError("could not allocate a sequence number")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Each write is durable on its own (the server's write concern) and idempotent, so
        a request retried after a failure completes what the first attempt began; a
        multi-document transaction would add round trips per vote for no promise kept."""
        yield

    # -- items ---------------------------------------------------------------------------
    def add_item(self, item: FeedbackItem, post_to: Sequence[str] = ()) -> bool:
        doc = item.model_dump(mode="json")
        doc["text"] = item.redacted_text  # raw text never leaves the process
        doc["_key"] = _utc_key(item.received_at)
        doc["_id"] = item.id
        # insert_one, not update_one($setOnInsert, upsert): equally atomic, and servers before
        # 5.0 reject dotted keys (free-form `metadata`) inside update operators, not inserts.
        try:
            self._items.insert_one(doc)
            is_new = True
        except DuplicateKeyError:
            is_new = False
        # After the item, never before: a crash in between leaves an item whose posts a
        # redelivery (this call again) or the outbox's recovery queues.
        for target in post_to:
            self.enqueue_post(item.id, target)
        return is_new

    def add_submitter(self, item_id: str, submitter: str) -> bool:
        result = self._items.update_one(
            {"_id": item_id, "metadata.submitters": {"$ne": submitter}},
            {"$push": {"metadata.submitters": submitter}},
        )
        return result.modified_count == 1

    def get_item(self, item_id: str) -> FeedbackItem | None:
        doc = self._items.find_one({"_id": item_id})
        return _load(FeedbackItem, doc) if doc else None

    def iter_items(self) -> Iterator[FeedbackItem]:
        # Materialised like SQLite does, so no cursor outlives a caller that stops early.
        docs = list(self._items.find().sort([("_key", ASCENDING), ("_id", ASCENDING)]))
        for doc in docs:
            yield _load(FeedbackItem, doc)

    def count_items(self) -> int:
        return self._items.count_documents({})

    # -- predictions ---------------------------------------------------------------------
    def save_triage(self, triage: Triage) -> None:
        if self._items.find_one({"_id": triage.item_id}, {"_id": 1}) is None:
            return  # forgotten while it was being triaged: nothing of it may stay
        doc = triage.model_dump(mode="json")
        doc["_seq"] = self._next_seq()
        self._triages.insert_one(doc)

    def latest_triage(self, item_id: str) -> Triage | None:
        doc = self._triages.find_one({"item_id": item_id}, sort=[("_seq", DESCENDING)])
        return _load(Triage, doc) if doc else None

    # -- votes ---------------------------------------------------------------------------
    def add_validation(self, validation: Validation) -> bool:
        doc = validation.model_dump(mode="json")
        key = _utc_key(validation.created_at)
        event = {**doc, "_id": validation.id, "_seq": self._next_seq()}
        try:
            self._events.insert_one(event)
        except DuplicateKeyError:
            # Redelivered. Re-apply its vote in case we crashed between the two writes; the
            # filter only lets it replace an older vote or itself, so nothing newer is lost.
            self._apply_vote(doc, key, {"$or": [{"_key": {"$lt": key}}, {"id": validation.id}]})
            return False
        self._apply_vote(doc, key, {"_key": {"$lte": key}})
        return True

    def _apply_vote(self, doc: Doc, key: str, newer: Doc) -> None:
        """Latest wins, atomically: the replace matches only an older current vote.

        No match means either no vote yet (the upsert inserts) or a newer vote exists (the
        upsert collides with the unique (item_id, reviewer) index: DuplicateKeyError). The
        first collision can also be a concurrent first insert, so we retry once the vote
        document exists (votes are never deleted); then a collision is conclusive.
        """
        vote = {**doc, "_key": key, "_retracted": doc["kind"] == ValidationKind.RETRACT.value}
        query = {"item_id": doc["item_id"], "reviewer": doc["reviewer"], **newer}
        for _ in range(2):
            try:
                self._votes.replace_one(query, vote, upsert=True)
                return
            except DuplicateKeyError:
                continue

    def current_votes(self, item_id: str) -> list[Validation]:
        docs = self._votes.find({"item_id": item_id, "_retracted": False}).sort(
            [("_key", ASCENDING), ("reviewer", ASCENDING)]
        )
        return [_load(Validation, doc) for doc in docs]

    def events(self, item_id: str | None = None) -> list[Validation]:
        query = {} if item_id is None else {"item_id": item_id}
        docs = self._events.find(query).sort("_seq", ASCENDING)
        return [_load(Validation, doc) for doc in docs]

    # -- labels and rewards --------------------------------------------------------------
    # A fresh `_seq` on every put mirrors SQLite's INSERT OR REPLACE, which moves the row to
    # the end of rowid order.
    def put_label(self, label: Label) -> None:
        doc = {**label.model_dump(mode="json"), "_seq": self._next_seq()}
        self._upsert(self._labels, {"_id": label.item_id}, doc)

    def get_label(self, item_id: str) -> Label | None:
        doc = self._labels.find_one({"_id": item_id})
        return _load(Label, doc) if doc else None

    def delete_label(self, item_id: str) -> None:
        self._labels.delete_one({"_id": item_id})

    def iter_labels(self) -> Iterator[Label]:
        docs = list(self._labels.find().sort("_seq", ASCENDING))
        for doc in docs:
            yield _load(Label, doc)

    def put_assignment(self, assignment: Assignment) -> None:
        doc = {**assignment.model_dump(mode="json"), "_seq": self._next_seq()}
        self._upsert(self._assignments, {"_id": assignment.item_id}, doc)

    def get_assignment(self, item_id: str) -> Assignment | None:
        doc = self._assignments.find_one({"_id": item_id})
        return _load(Assignment, doc) if doc else None

    def iter_assignments(self) -> Iterator[Assignment]:
        for doc in list(self._assignments.find().sort("_seq", ASCENDING)):
            yield _load(Assignment, doc)

    # -- duplicates ----------------------------------------------------------------------
    def put_duplicate(self, link: DuplicateLink) -> None:
        doc = {**link.model_dump(mode="json"), "_seq": self._next_seq()}
        self._upsert(self._duplicates, {"_id": link.item_id}, doc)

    def get_duplicate(self, item_id: str) -> DuplicateLink | None:
        doc = self._duplicates.find_one({"_id": item_id})
        return _load(DuplicateLink, doc) if doc else None

    def delete_duplicate(self, item_id: str) -> bool:
        return self._duplicates.delete_one({"_id": item_id}).deleted_count == 1

    def duplicates_of(self, canonical_id: str) -> list[DuplicateLink]:
        docs = self._duplicates.find({"canonical_id": canonical_id}).sort("_seq", ASCENDING)
        return [_load(DuplicateLink, doc) for doc in docs]

    def iter_duplicates(self) -> Iterator[DuplicateLink]:
        for doc in list(self._duplicates.find().sort("_seq", ASCENDING)):
            yield _load(DuplicateLink, doc)

    def add_duplicate_vote(self, vote: DuplicateVote) -> bool:
        doc = {**vote.model_dump(mode="json"), "_id": vote.id, "_seq": self._next_seq()}
        try:
            self._duplicate_votes.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    def duplicate_votes(self) -> list[DuplicateVote]:
        docs = self._duplicate_votes.find().sort("_seq", ASCENDING)
        return [_load(DuplicateVote, doc) for doc in docs]

    # -- theme names ---------------------------------------------------------------------
    # Not forgotten with items (a name keys none); a fresh `_seq` on every put, as SQLite's
    # INSERT OR REPLACE moves a renamed theme to the end.
    def put_theme_name(self, theme: ThemeName) -> None:
        doc = {**theme.model_dump(mode="json"), "_seq": self._next_seq()}
        self._upsert(self._theme_names, {"_id": theme.id}, doc)

    def theme_names(self) -> list[ThemeName]:
        docs = self._theme_names.find().sort("_seq", ASCENDING)
        return [_load(ThemeName, doc) for doc in docs]

    def delete_theme_name(self, theme_id: str) -> bool:
        return self._theme_names.delete_one({"_id": theme_id}).deleted_count == 1

    def put_reward(self, reward: Reward) -> None:
        doc = {**reward.model_dump(mode="json"), "_seq": self._next_seq()}
        key = {
            "item_id": reward.item_id,
            "model_version": reward.model_version,
            "source": reward.source,
        }
        self._upsert(self._rewards, key, doc)

    def rewards(self, item_id: str | None = None) -> list[Reward]:
        query = {} if item_id is None else {"item_id": item_id}
        docs = self._rewards.find(query).sort("_seq", ASCENDING)
        return [_load(Reward, doc) for doc in docs]

    @staticmethod
    def _upsert(collection: Collection[Doc], key: Doc, doc: Doc) -> None:
        """Replace-or-insert; a collision means a concurrent first insert, so retry once as
        a plain replace (servers >= 4.2 already retry this themselves)."""
        try:
            collection.replace_one(key, doc, upsert=True)
        except DuplicateKeyError:
            collection.replace_one(key, doc, upsert=True)

    # -- model registry ------------------------------------------------------------------
    # The record is its JSON (created_at an ISO string, `_key` its µs sort key) except
    # `promoted_at`, a BSON date like the outbox times, with `_promoted_key` its µs string:
    # it orders promotions and restores `promoted_at` exactly. Weights are `_weights`, Binary,
    # or, above one chunk, `_chunks` ({blob, count, bytes}) naming their `model_chunks` docs.
    _NO_WEIGHTS: Doc = {"_weights": False, "_chunks": False}

    @staticmethod
    def _model(doc: Mapping[str, Any]) -> ModelRecord:
        fields = {k: v for k, v in doc.items() if not k.startswith("_")}
        key = doc.get("_promoted_key")
        fields["promoted_at"] = datetime.fromisoformat(key).replace(tzinfo=UTC) if key else None
        return ModelRecord.model_validate(fields)

    def put_model(self, record: ModelRecord, weights: bytes) -> bool:
        """Chunks first, under a fresh blob id, then the model document that names them: a
        crash or a lost race leaves only chunks nothing names, never a model short of its
        weights (and the loser of a race deletes its own chunks)."""
        if self._models.find_one({"_id": record.version}, {"_id": 1}) is not None:
            return False
        doc = record.model_dump(mode="json")
        doc["promoted_at"] = record.promoted_at
        doc["_id"] = record.version
        doc["_key"] = _utc_key(record.created_at)
        doc["_promoted_key"] = _utc_key(record.promoted_at) if record.promoted_at else None
        blob: str | None = None
        if len(weights) <= WEIGHTS_CHUNK_BYTES:
            doc["_weights"] = Binary(bytes(weights))
        else:
            blob = uuid.uuid4().hex
            starts = range(0, len(weights), WEIGHTS_CHUNK_BYTES)
            for n, start in enumerate(starts):
                piece = bytes(weights[start : start + WEIGHTS_CHUNK_BYTES])
                self._chunks.insert_one({"blob": blob, "n": n, "data": Binary(piece)})
            doc["_chunks"] = {"blob": blob, "count": len(starts), "bytes": len(weights)}
        try:
            self._models.insert_one(doc)
        except DuplicateKeyError:
            if blob is not None:
                self._chunks.delete_many({"blob": blob})
            return False
        return True

    def get_model(self, version: str) -> tuple[ModelRecord, bytes] | None:
        doc = self._models.find_one({"_id": version})
        if doc is None:
            return None
        if "_chunks" not in doc:
            return self._model(doc), bytes(doc["_weights"])
        meta = doc["_chunks"]
        pieces = [
            bytes(chunk["data"])
            for chunk in self._chunks.find({"blob": meta["blob"]}).sort("n", ASCENDING)
        ]
        weights = b"".join(pieces)
        if len(pieces) != meta["count"] or len(weights) != meta["bytes"]:
            raise RuntimeError(
                f"model {version!r}: {len(pieces)} of {meta['count']} weight chunks "
                f"({len(weights)} of {meta['bytes']} bytes) in model_chunks"
            )
        return self._model(doc), weights

    def list_models(self) -> list[ModelRecord]:
        docs = self._models.find({}, self._NO_WEIGHTS).sort(
            [("_key", DESCENDING), ("_id", DESCENDING)]
        )
        return [self._model(doc) for doc in docs]

    def _latest_promoted(self) -> Doc | None:
        return self._models.find_one(
            {"_promoted_key": {"$gt": ""}},
            self._NO_WEIGHTS,
            sort=[("_promoted_key", DESCENDING), ("_id", DESCENDING)],
        )

    def promote_model(self, version: str) -> ModelRecord:
        now = utcnow()
        # Strictly after the current promotion, so the latest call wins even within one
        # clock tick (across processes a same-µs tie falls back to the version order).
        latest = self._latest_promoted()
        if latest is not None and _utc_key(now) <= latest["_promoted_key"]:
            previous = datetime.fromisoformat(latest["_promoted_key"]).replace(tzinfo=UTC)
            now = previous + timedelta(microseconds=1)
        doc = self._models.find_one_and_update(
            {"_id": version},
            {"$set": {"promoted_at": now, "_promoted_key": _utc_key(now)}},
            projection=self._NO_WEIGHTS,
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise KeyError(f"unknown model version {version!r}")
        return self._model(doc)

    def promoted_model(self) -> ModelRecord | None:
        doc = self._latest_promoted()
        return self._model(doc) if doc else None

    # -- outbox --------------------------------------------------------------------------
    # Outbox times are BSON dates (so the server compares leases as times) plus `_key`, the
    # µs creation stamp that orders claims as SQLite does and restores `created_at` exactly.
    @staticmethod
    def _post(doc: Mapping[str, Any]) -> PostRecord:
        fields = {k: v for k, v in doc.items() if not k.startswith("_")}
        fields["created_at"] = datetime.fromisoformat(doc["_key"]).replace(tzinfo=UTC)
        return PostRecord.model_validate(fields)

    def enqueue_post(
        self, item_id: str, target: str, detail: Mapping[str, Any] | None = None
    ) -> bool:
        now = utcnow()
        doc = PostRecord(
            item_id=item_id,
            target=target,
            created_at=now,
            updated_at=now,
            detail=dict(detail or {}),
        )
        try:
            self._posts.insert_one({**doc.model_dump(), "_key": _utc_key(now)})
        except DuplicateKeyError:
            return False
        return True

    def requeue_post(self, item_id: str, target: str) -> bool:
        result = self._posts.update_one(
            {"item_id": item_id, "target": target, "status": "dead"},
            {
                "$set": {
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": None,
                    "last_error": None,
                    "updated_at": utcnow(),
                }
            },
        )
        return result.matched_count == 1

    def set_post_detail(self, item_id: str, target: str, detail: Mapping[str, Any]) -> bool:
        # Key by key, so two writers setting different keys both land.
        fields = {f"detail.{key}": value for key, value in detail.items()}
        result = self._posts.update_one(
            {"item_id": item_id, "target": target},
            {"$set": {**fields, "updated_at": utcnow()}},
        )
        return result.matched_count == 1

    def claim_post(self, target: str, worker: str, lease_seconds: float) -> PostRecord | None:
        # One find_one_and_update: the server matches and claims in a single atomic write,
        # so two workers (threads or processes) can never both win the same post. Due: a new
        # post, a posted card to rewrite, or a claim whose worker died; a post waiting out
        # its backoff is passed over. The stale mark is taken with the claim.
        now = utcnow()
        due = {"$or": [{"next_attempt_at": None}, {"next_attempt_at": {"$lte": now}}]}
        doc = self._posts.find_one_and_update(
            {
                "target": target,
                "$or": [
                    {"status": "pending", **due},
                    {"status": "posted", "stale": True, **due},
                    {"status": "claimed", "claimed_until": {"$lt": now}},
                ],
            },
            {
                "$set": {
                    "status": "claimed",
                    "claimed_by": worker,
                    "claimed_until": now + timedelta(seconds=lease_seconds),
                    "stale": False,
                    "updated_at": now,
                },
                "$inc": {"attempts": 1},
            },
            sort=[("_key", ASCENDING), ("item_id", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        return self._post(doc) if doc else None

    def mark_posted(self, item_id: str, target: str, ref: str, worker: str | None = None) -> bool:
        holder = {"status": "claimed", "claimed_by": worker} if worker is not None else {}
        result = self._posts.update_one(
            {"item_id": item_id, "target": target, **holder},
            {
                "$set": {
                    "status": "posted",
                    "ref": ref,
                    "claimed_by": None,
                    "claimed_until": None,
                    "next_attempt_at": None,
                    "last_error": None,
                    "updated_at": utcnow(),
                }
            },
        )
        return result.matched_count == 1

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
        held = {"item_id": item_id, "target": target, "status": "claimed", "claimed_by": worker}
        uncount = {} if attempted else {"$inc": {"attempts": -1}}
        retry = {
            "claimed_by": None,
            "claimed_until": None,
            "next_attempt_at": now + timedelta(seconds=max(0.0, delay_seconds)),
            "last_error": error,
            "updated_at": now,
        }
        # Never posted: pending again. A rewrite: posted, still stale.
        self._posts.update_one(
            {**held, "ref": None},
            {"$set": {**retry, "status": "pending", "stale": False}, **uncount},
        )
        self._posts.update_one(
            {**held, "ref": {"$ne": None}},
            {"$set": {**retry, "status": "posted", "stale": True}, **uncount},
        )

    def dead_post(self, item_id: str, target: str, worker: str, error: str) -> None:
        self._posts.update_one(
            {"item_id": item_id, "target": target, "status": "claimed", "claimed_by": worker},
            {
                "$set": {
                    "status": "dead",
                    "claimed_by": None,
                    "claimed_until": None,
                    "last_error": error,
                    "updated_at": utcnow(),
                }
            },
        )

    def request_update(self, item_id: str, target: str) -> bool:
        result = self._posts.update_one(
            {
                "item_id": item_id,
                "target": target,
                "ref": {"$ne": None},
                "status": {"$in": ["posted", "claimed"]},
            },
            {"$set": {"stale": True, "updated_at": utcnow()}},
        )
        return result.matched_count == 1

    def get_post(self, item_id: str, target: str) -> PostRecord | None:
        doc = self._posts.find_one({"item_id": item_id, "target": target})
        return self._post(doc) if doc else None

    def find_post(self, target: str, ref: str) -> PostRecord | None:
        doc = self._posts.find_one({"target": target, "ref": ref})
        return self._post(doc) if doc else None

    def posts(
        self, target: str | None = None, status: str | None = None, item_id: str | None = None
    ) -> list[PostRecord]:
        given = {"target": target, "status": status, "item_id": item_id}
        query: Doc = {key: value for key, value in given.items() if value is not None}
        cursor = self._posts.find(query).sort([("_key", ASCENDING), ("item_id", ASCENDING)])
        return [self._post(doc) for doc in cursor]

    def outbox_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for doc in self._posts.find({}, {"target": 1, "status": 1, "stale": 1}):
            bucket = counts.setdefault(doc["target"], {})
            bucket[doc["status"]] = bucket.get(doc["status"], 0) + 1
            if doc.get("stale"):
                bucket["stale"] = bucket.get("stale", 0) + 1
        return counts

    def count_unposted(self, target: str) -> int:
        return self._posts.count_documents({"target": target, "status": {"$ne": "posted"}})

    def mark_event_seen(self, key: str) -> bool:
        try:
            self._seen.insert_one({"_id": key, "seen_at": utcnow()})
        except DuplicateKeyError:
            return False
        return True

    # -- forgetting and retention --------------------------------------------------------
    def _delete_derived(self, ids: list[str], counts: dict[str, int]) -> None:
        """A record goes when any of its keys names a forgotten item: a duplicate link when
        its item or its canonical does (the members stand alone again), a vote either item."""
        named = {"$in": ids}
        for kind, collection, keys in (
            ("triages", self._triages, ("item_id",)),
            ("votes", self._events, ("item_id",)),
            ("labels", self._labels, ("_id",)),
            ("assignments", self._assignments, ("_id",)),
            ("duplicates", self._duplicates, ("_id", "canonical_id")),
            ("duplicate_votes", self._duplicate_votes, ("item_id", "other_id")),
            ("rewards", self._rewards, ("item_id",)),
            ("posts", self._posts, ("item_id",)),
        ):
            query: Doc = (
                {"$or": [{key: named} for key in keys]} if len(keys) > 1 else {keys[0]: named}
            )
            deleted = collection.delete_many(query).deleted_count
            counts[kind] = counts.get(kind, 0) + deleted
        self._votes.delete_many({"item_id": {"$in": ids}})

    def forget_items(self, event: AuditEvent) -> AuditEvent:
        ids = list(dict.fromkeys(event.item_ids))
        posts = self._posts.find({"item_id": {"$in": ids}, "ref": {"$ne": None}})
        cards = [f"{p['target']} {p['ref']}" for p in posts.sort("_key", ASCENDING)]
        stored = event.model_copy(update={"seq": self._next_seq(), "item_ids": ids, "cards": cards})
        # The event first: a crash after it leaves items a rerun finds again, and a bot
        # that sees the event before the deletes are done only drops its caches early.
        self._audit.insert_one({**stored.model_dump(mode="json"), "_id": stored.id})
        counts = dict(event.counts)
        self._delete_derived(ids, counts)
        deleted = self._items.delete_many({"_id": {"$in": ids}}).deleted_count
        counts["items"] = counts.get("items", 0) + deleted
        self._delete_derived(ids, counts)  # what a vote racing the delete wrote meanwhile
        self._audit.update_one({"_id": stored.id}, {"$set": {"counts": counts}})
        stored.counts = counts
        return stored

    def audit_events(self, after: int = 0) -> list[AuditEvent]:
        docs = self._audit.find({"seq": {"$gt": after}}).sort("seq", ASCENDING)
        return [_load(AuditEvent, doc) for doc in docs]

    def last_audit_seq(self) -> int:
        doc = self._audit.find_one({}, {"seq": 1}, sort=[("seq", DESCENDING)])
        return int(doc["seq"]) if doc else 0

    def items_received_before(self, cutoff: datetime) -> list[str]:
        docs = self._items.find({"_key": {"$lt": _utc_key(cutoff)}}, {"_id": 1}).sort(
            [("_key", ASCENDING), ("_id", ASCENDING)]
        )
        return [str(doc["_id"]) for doc in docs]

    def prune_seen_events(self, before: datetime, *, dry_run: bool = False) -> int:
        old = {"seen_at": {"$lt": before}}
        if dry_run:
            return self._seen.count_documents(old)
        return self._seen.delete_many(old).deleted_count

    def prune_posts(self, before: datetime, *, dry_run: bool = False) -> int:
        finished = list(
            self._posts.find(
                {"status": {"$in": ["posted", "dead"]}, "updated_at": {"$lt": before}},
                {"item_id": 1, "target": 1},
            )
        )
        ids = list({doc["item_id"] for doc in finished})
        received = {
            doc["_id"]: doc["_key"] for doc in self._items.find({"_id": {"$in": ids}}, {"_key": 1})
        }
        cutoff = _utc_key(before)
        gone = [
            doc
            for doc in finished
            if doc["item_id"] not in received or received[doc["item_id"]] < cutoff
        ]
        if dry_run:
            return len(gone)
        for doc in gone:
            # The item forgets the target before its post goes: a crash in between leaves
            # a post the next prune deletes, never an item that recovery would post again.
            self._items.update_one(
                {"_id": doc["item_id"], "metadata.post_to": {"$elemMatch": {"$eq": doc["target"]}}},
                {"$pull": {"metadata.post_to": doc["target"]}},
            )
            self._posts.delete_one({"_id": doc["_id"]})
        return len(gone)

    # -- intake cursors ------------------------------------------------------------------
    def get_intake_cursor(self, source: str) -> str | None:
        doc = self._cursors.find_one({"_id": source})
        return str(doc["position"]) if doc else None

    def set_intake_cursor(self, source: str, position: str) -> None:
        doc = {"position": position, "updated_at": utcnow()}
        self._upsert(self._cursors, {"_id": source}, doc)

    def close(self) -> None:
        self._client.close()
