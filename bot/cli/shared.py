"""What several command groups share: the stderr console, JSON output, the common options
and the process's components."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from bot.app import Components
    from core.ports import Store

# Progress, spinners and errors go to stderr, so stdout stays JSON lines for scripts.
err = Console(stderr=True, soft_wrap=True)

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Store URL (default: $TRIAGE_STORE_URL or a SQLite file)."),
]
BackendOption = Annotated[
    str | None,
    typer.Option("--backend", help="embedded or llm (default: $TRIAGE_BACKEND, else embedded)."),
]


def emit(record: dict[str, Any]) -> None:
    """One JSON object per line on stdout, flushed: a pipe sees each as it is made."""
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@contextmanager
def components(
    store: str | None, warm_start: bool = True, backend: str | None = None
) -> Iterator[Components]:
    """The process's components, built behind a spinner and closed however the command ends."""
    from bot.app import build

    with err.status("loading model…", spinner="dots"):
        built = build(store_url=store, warm_start=warm_start, backend=backend)
    try:
        yield built
    finally:
        built.close()


@contextmanager
def opened_store(url: str | None) -> Iterator[Store]:
    """The store alone (no model): for commands that only read or delete records."""
    from core.settings import Settings
    from core.store import open_store

    store = open_store(url or Settings.from_env().store_url)
    try:
        yield store
    finally:
        store.close()
