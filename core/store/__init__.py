"""Store adapters, chosen by URL: `sqlite:///path` (default) or `mongodb://...`."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from urllib.parse import unquote

from pymongo.errors import ConnectionFailure

from core.ports import Store

# What a store raises when it cannot be reached (server down, failover, network timeout,
# a locked SQLite file): an edge answers these with 503 "try again", never a silent drop.
# ConnectionFailure covers ServerSelectionTimeoutError, AutoReconnect and NetworkTimeout.
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (ConnectionFailure, sqlite3.OperationalError)


# Query options whose values are secrets (authMechanismProperties carries AWS session
# tokens; tlsCertificateKeyFilePassword, ...): their values are hidden too.
_SECRET_OPTION_RE = re.compile(
    r"(?i)([?&;][^=&;#]*(?:pass|secret|token|credential|authmechanismproperties)[^=&;#]*=)"
    r"[^&;#]*"
)


def _userinfo_span(url: str) -> tuple[int, int] | None:
    """Where a URL's credentials are: from after `://` to the last `@` (a malformed
    password may hold `/`, `@` or `?`), or None when it has none."""
    start = url.find("://") + 3 if "://" in url else 0
    at = url.rfind("@")
    if at >= start and not url.startswith("/", start):  # sqlite:////path has no user
        return start, at
    return None


def safe_url(url: str) -> str:
    """The URL with its credentials and secret options hidden, for messages, logs and reprs.

    Made for malformed URLs too, the ones error messages quote: a password with an
    unescaped `/`, `@` or `?` is hidden up to the last `@`, and a user name without a
    password (often a token) is hidden as well.
    """
    span = _userinfo_span(url)
    if span is not None:
        user, colon, _ = url[span[0] : span[1]].partition(":")
        plain_user = bool(colon and user) and not any(c in user for c in "/?#")
        url = url[: span[0]] + (f"{user}:***" if plain_user else "***") + url[span[1] :]
    return _SECRET_OPTION_RE.sub(r"\1***", url)


def hide_credentials(message: str, url: str) -> str:
    """A library's error `message` about `url` with the URL's credentials taken out, should
    it quote them (the URL itself is quoted through `safe_url`)."""
    span = _userinfo_span(url)
    if span is None:
        return message
    userinfo = url[span[0] : span[1]]
    _, colon, password = userinfo.partition(":")
    secret = password if colon else userinfo
    for shown in sorted({userinfo, secret, unquote(secret)}, key=len, reverse=True):
        if len(shown) >= 3:
            message = message.replace(shown, "***")
    return message


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
        from pymongo.errors import ConfigurationError

        from core.store.mongo import MongoStore

        try:
            return MongoStore(url)
        except (ConfigurationError, ValueError) as exc:  # pymongo's word on a malformed URL
            raise StoreURLError(
                f"TRIAGE_STORE_URL={safe_url(url)!r}: {hide_credentials(str(exc), url)}"
            ) from None
    raise StoreURLError(
        f"TRIAGE_STORE_URL={safe_url(url)!r} is not supported: use sqlite:////absolute/path.db, "
        "sqlite:///relative/path.db or mongodb://host:port/database"
    )
