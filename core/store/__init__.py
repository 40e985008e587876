"""Store adapters, chosen by URL: `sqlite:///path` (default) or `mongodb://...`."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from pymongo.errors import ConnectionFailure

from core.ports import Store

# What a store raises when it cannot be reached (server down, failover, network timeout,
# a locked SQLite file): an edge answers these with 503 "try again", never a silent drop.
# ConnectionFailure covers ServerSelectionTimeoutError, AutoReconnect and NetworkTimeout.
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (ConnectionFailure, sqlite3.OperationalError)


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", url)


class StoreURLError(ValueError):
    """A TRIAGE_STORE_URL that names no adapter we have."""


def open_store(url: str) -> Store:
    """Open the store a URL names; the only place that knows both adapters."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        from core.store.sqlite import SQLiteStore

        return SQLiteStore(":memory:")
    if url.startswith("sqlite:///"):
        from core.store.sqlite import SQLiteStore

        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute/path.db
        return SQLiteStore(Path(url.removeprefix("sqlite:///")).expanduser())
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from core.store.mongo import MongoStore

        return MongoStore(url)
    raise StoreURLError(
        f"TRIAGE_STORE_URL={safe_url(url)!r} is not supported: use sqlite:////absolute/path.db, "
        "sqlite:///relative/path.db or mongodb://host:port/database"
    )
