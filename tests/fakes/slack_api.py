"""Local fakes of Slack's Web API and Socket Mode endpoint (tests and `triage-bot bench load`).

The real ``slack_sdk.WebClient`` / ``slack_bolt.App`` talk to these over real HTTP and
websockets, the way Slack's own SDK test suites do::

    with FakeSocketMode() as sock, FakeSlack(socket_mode=sock) as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        client.chat_postMessage(channel="C1", text="hi")
        assert slack.messages("C1")[0]["text"] == "hi"
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

__all__ = ["BOT_ID", "BOT_USER_ID", "TEAM_ID", "Call", "FakeSlack", "FakeSocketMode"]

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"

# Form fields that carry JSON documents (slack_sdk serialises them with json.dumps).
_JSON_FIELDS = frozenset(
    {"blocks", "attachments", "metadata", "view", "unfurls", "user_auth_blocks", "options"}
)
# Free-text fields that must never be JSON-decoded even if they look like JSON.
_STRING_FIELDS = frozenset(
    {
        "text",
        "markdown_text",
        "private_metadata",
        "query",
        "name",
        "topic",
        "purpose",
        "alt_text",
        "token",
        "cursor",
    }
)


def _maybe_json(key: str, value: Any) -> Any:
    if not isinstance(value, str) or key in _STRING_FIELDS:
        return value
    stripped = value.lstrip()
    if key in _JSON_FIELDS or stripped[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _ts_key(ts: Any) -> tuple[int, int]:
    sec, _, frac = str(ts).partition(".")
    return int(sec or 0), int((frac + "000000")[:6])


@dataclass
class Call:
    """One request received by :class:`FakeSlack`."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    failed: bool = False
    at: float = field(default_factory=time.monotonic)

    @property
    def token(self) -> str | None:
        auth = self.headers.get("Authorization") or self.headers.get("authorization") or ""
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :]
        tok = self.params.get("token")
        return tok if isinstance(tok, str) else None


@dataclass
class _Failure:
    remaining: int
    status: int
    retry_after: float | int | None
    error: str


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        if urlsplit(self.path).path.startswith("/upload/"):
            self._upload()
            return
        try:
            path = urlsplit(self.path)
            params: dict[str, Any] = dict(parse_qsl(path.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            params.update(self._parse_body(body))
            headers = {k: v for k, v in self.headers.items()}
            fake = self.server.fake
            route = path.path
            if route.startswith("/api/"):
                method = route[len("/api/") :].strip("/")
                params = {k: _maybe_json(k, v) for k, v in params.items()}
                status, extra_headers, payload = fake._handle_api(method, params, headers)
            elif route.startswith("/response/"):
                name = route[len("/response/") :].strip("/")
                status, extra_headers, payload = fake._handle_response_url(name, params, headers)
            else:
                status, extra_headers, payload = 404, {}, {"ok": False, "error": "unknown_path"}
        except Exception as exc:  # pragma: no cover - surfaces fake bugs as a 500
            status, extra_headers, payload = 500, {}, {"ok": False, "error": f"fake_error: {exc!r}"}
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for k, v in extra_headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _upload(self) -> None:
        """Step 2 of the v2 file upload: the file's bytes, POSTed to its upload URL."""
        file_id = urlsplit(self.path).path[len("/upload/") :].strip("/")
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        fake = self.server.fake
        with fake._lock:
            known = file_id in fake._uploads
            if known:
                fake._uploads[file_id]["data"] = data
        reply = f"OK - {len(data)}".encode() if known else b"unknown upload"
        self.send_response(200 if known else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply)
        self.close_connection = True

    def _parse_body(self, body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        ctype = (self.headers.get("Content-Type") or "").lower()
        if ctype.startswith("application/json"):
            parsed = json.loads(body.decode("utf-8"))
            return parsed if isinstance(parsed, dict) else {"_json": parsed}
        if ctype.startswith("multipart/form-data"):
            raw = b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
            msg = BytesParser(policy=HTTP).parsebytes(raw)
            out: dict[str, Any] = {}
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if not name:
                    continue
                payload = part.get_payload(decode=True)
                content = payload if isinstance(payload, bytes) else b""
                if part.get_filename():
                    out[str(name)] = content
                else:
                    out[str(name)] = content.decode("utf-8", "replace")
            return out
        # application/x-www-form-urlencoded (slack_sdk's default)
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeSlack

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # never print tracebacks to stderr (e.g. client hung up mid-response)


class FakeSlack:
    """A local, in-memory fake of the Slack Web API served over real HTTP."""

    def __init__(self, socket_mode: FakeSocketMode | None = None) -> None:
        self._lock = threading.RLock()
        self._calls: list[Call] = []
        self._responses: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self._history: dict[str, list[dict[str, Any]]] = {}
        self._failures: dict[str, _Failure] = {}
        self._latency: dict[str, float] = {}
        self._storms: dict[str, tuple[float, float]] = {}  # method -> (until, Retry-After)
        self._ts_us = int(time.time() * 1_000_000)  # real-time ts, as Slack gives
        self._view_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        # Files uploaded the v2 way: getUploadURLExternal, a POST of the bytes, complete.
        self._uploads: dict[str, dict[str, Any]] = {}
        self._socket_mode = socket_mode
        self._socket_url: str | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeSlack:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Pass to ``WebClient(base_url=...)``."""
        return f"{self.root_url}/api/"

    def response_url(self, name: str) -> str:
        """An absolute ``response_url`` whose POSTs are recorded (see :meth:`responses`)."""
        return f"{self.root_url}/response/{name}"

    @property
    def socket_url(self) -> str | None:
        if self._socket_url is not None:
            return self._socket_url
        return self._socket_mode.url if self._socket_mode is not None else None

    @socket_url.setter
    def socket_url(self, url: str | None) -> None:
        self._socket_url = url

    # ------------------------------------------------------------------ test controls
    def fail_next(
        self,
        method: str,
        times: int = 1,
        status: int = 429,
        retry_after: float | int | None = 1,
        error: str = "ratelimited",
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with HTTP ``status``."""
        with self._lock:
            self._failures[method] = _Failure(times, status, retry_after, error)

    def rate_limit(self, method: str, seconds: float, retry_after: float = 1) -> None:
        """A 429 storm: every call of ``method`` for the next ``seconds`` gets HTTP 429 with
        ``Retry-After``, however often the client retries (Slack's per-method limits)."""
        with self._lock:
            self._storms[method] = (time.monotonic() + seconds, retry_after)

    def set_latency(self, method: str, seconds: float) -> None:
        """Delay answers to ``method`` (use ``"response"`` for response_url POSTs)."""
        with self._lock:
            if seconds > 0:
                self._latency[method] = seconds
            else:
                self._latency.pop(method, None)

    def reset(self) -> None:
        """Forget calls, messages, responses, failures and latencies (ts keeps increasing)."""
        with self._lock:
            self._calls.clear()
            self._responses.clear()
            self._history.clear()
            self._failures.clear()
            self._latency.clear()
            self._storms.clear()

    def add_message(
        self, channel: str, text: str, user: str = "U1", **extra: Any
    ) -> dict[str, Any]:
        """Seed a message from a (human) user into ``channel``'s history; returns it."""
        with self._lock:
            msg: dict[str, Any] = {
                "type": "message",
                "ts": extra.pop("ts", None) or self._next_ts(),
                "channel": channel,
                "user": user,
                "text": text,
            }
            msg.update(extra)
            self._store(channel, msg)
            return dict(msg)

    # ------------------------------------------------------------------ inspection
    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def responses(self, name: str | None = None) -> list[dict[str, Any]]:
        """JSON bodies POSTed to :meth:`response_url` (``name`` filters)."""
        with self._lock:
            return [dict(b) for n, b, _ in self._responses if name is None or n == name]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Messages currently in ``channel`` (incl. thread replies), oldest first."""
        with self._lock:
            return [dict(m) for m in self._history.get(channel, [])]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    # ------------------------------------------------------------------ internals
    def _next_ts(self) -> str:
        with self._lock:
            self._ts_us += 100
            sec, frac = divmod(self._ts_us, 1_000_000)
            return f"{sec}.{frac:06d}"

    def _store(self, channel: str, msg: dict[str, Any]) -> None:
        hist = self._history.setdefault(channel, [])
        hist.append(msg)
        hist.sort(key=lambda m: _ts_key(m["ts"]))

    def _find(self, channel: Any, ts: Any) -> dict[str, Any] | None:
        for m in self._history.get(str(channel), []):
            if m["ts"] == ts:
                return m
        return None

    def _handle_response_url(
        self, name: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self._responses.append((name, params, headers))
            delay = self._latency.get("response", 0.0)
        if delay:
            time.sleep(delay)
        return 200, {}, {"ok": True}

    def _handle_api(
        self, method: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            delay = self._latency.get(method, 0.0)
            failure = self._failures.get(method)
            storm = self._storms.get(method)
            if storm is not None and time.monotonic() < storm[0]:
                failure = _Failure(1, 429, storm[1], "ratelimited")
                self._calls.append(Call(method, params, headers, failed=True))
            elif failure is not None and failure.remaining > 0:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    del self._failures[method]
                self._calls.append(Call(method, params, headers, failed=True))
            else:
                failure = None
                self._calls.append(Call(method, params, headers))
        if delay:
            time.sleep(delay)
        if failure is not None:
            extra: dict[str, str] = {}
            if failure.status == 429 and failure.retry_after is not None:
                extra["Retry-After"] = str(failure.retry_after)
            return failure.status, extra, {"ok": False, "error": failure.error}
        with self._lock:
            body = self._api(method, params)
        return 200, {}, body

    def _api(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": True}
        result: dict[str, Any] = handler(p)
        return result

    # --- methods (called with self._lock held)
    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "team_id": TEAM_ID,
            "team": "Fake Team",
            "user": "triage-bot",
            "url": "https://fake.slack.com/",
        }

    def _m_apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        url = self.socket_url
        if url is None:
            return {"ok": False, "error": "no_socket_mode_fake"}
        return {"ok": True, "url": url}

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("text") and not p.get("blocks") and not p.get("attachments"):
            return {"ok": False, "error": "no_text"}
        msg: dict[str, Any] = {
            "type": "message",
            "ts": self._next_ts(),
            "channel": channel,
            "text": p.get("text", ""),
            "blocks": p.get("blocks"),
            "metadata": p.get("metadata"),
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
        }
        if p.get("attachments"):
            msg["attachments"] = p["attachments"]
        if p.get("thread_ts"):
            msg["thread_ts"] = p["thread_ts"]
        self._store(channel, msg)
        return {"ok": True, "channel": channel, "ts": msg["ts"], "message": _public(msg, True)}

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not str(p.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._file_ids):08d}"
        self._uploads[file_id] = {"filename": p["filename"], "length": int(p["length"])}
        return {"ok": True, "upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        files = p.get("files") or []
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        shared = []
        for entry in files:
            upload = self._uploads.get(str(entry.get("id")))
            if upload is None or "data" not in upload:
                return {"ok": False, "error": "file_not_found"}
            shared.append(
                {"id": entry["id"], "name": upload["filename"], "title": entry.get("title")}
            )
        channel = p.get("channel_id")
        if channel:
            msg = {
                "type": "message",
                "ts": self._next_ts(),
                "text": p.get("initial_comment") or "",
                "files": shared,
                "user": BOT_USER_ID,
            }
            if p.get("thread_ts"):
                msg["thread_ts"] = p["thread_ts"]
            self._store(str(channel), msg)
        return {"ok": True, "files": shared}

    def upload(self, file_id: str) -> bytes:
        """The bytes of a file uploaded the v2 way."""
        with self._lock:
            return bytes(self._uploads[file_id].get("data", b""))

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(p.get("channel"), p.get("ts"))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if "text" in p:
            msg["text"] = p["text"]
        if "blocks" in p:
            msg["blocks"] = p["blocks"]
        if "metadata" in p:
            msg["metadata"] = p["metadata"]
        if "attachments" in p:
            msg["attachments"] = p["attachments"]
        msg["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return {
            "ok": True,
            "channel": msg["channel"],
            "ts": msg["ts"],
            "text": msg["text"],
            "message": _public(msg, True),
        }

    def _m_chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        hist = self._history.get(str(p.get("channel")), [])
        self._history[str(p.get("channel"))] = [m for m in hist if m["ts"] != p.get("ts")]
        return {"ok": True, "channel": p.get("channel"), "ts": p.get("ts")}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_chat_getPermalink(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = p.get("channel"), str(p.get("message_ts", ""))
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}",
        }

    def _m_conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        msgs = [
            m
            for m in self._history.get(str(p.get("channel")), [])
            if not m.get("thread_ts") or m["thread_ts"] == m["ts"]
        ]
        return self._page(list(reversed(msgs)), p)

    def _m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        root = p.get("ts")
        msgs = [
            m
            for m in self._history.get(str(p.get("channel")), [])
            if m["ts"] == root or m.get("thread_ts") == root
        ]
        if not msgs:
            return {"ok": False, "error": "thread_not_found"}
        return self._page(msgs, p)

    def _page(self, msgs: list[dict[str, Any]], p: dict[str, Any]) -> dict[str, Any]:
        inclusive = _truthy(p.get("inclusive", False))
        if p.get("oldest") not in (None, ""):
            lo = _ts_key(p["oldest"])
            msgs = [m for m in msgs if _in_bound(lo, _ts_key(m["ts"]), inclusive)]
        if p.get("latest") not in (None, ""):
            hi = _ts_key(p["latest"])
            msgs = [m for m in msgs if _in_bound(_ts_key(m["ts"]), hi, inclusive)]
        limit = int(p.get("limit") or 100)
        cursor = str(p.get("cursor") or "")
        offset = int(cursor[len("off_") :]) if cursor.startswith("off_") else 0
        page = msgs[offset : offset + limit]
        has_more = offset + limit < len(msgs)
        with_meta = _truthy(p.get("include_all_metadata", False))
        return {
            "ok": True,
            "messages": [_public(m, with_meta) for m in page],
            "has_more": has_more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": f"off_{offset + limit}" if has_more else ""},
        }

    def _view(self, p: dict[str, Any], view_id: str | None) -> dict[str, Any]:
        view = p.get("view")
        view = dict(view) if isinstance(view, dict) else {}
        view["id"] = view_id or f"V{next(self._view_ids):06d}"
        view.setdefault("team_id", TEAM_ID)
        return {"ok": True, "view": view}

    def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._view(p, None)

    def _m_views_push(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._view(p, None)

    def _m_views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._view(p, p.get("view_id"))

    def _m_views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._view(p, None)


def _in_bound(lower: tuple[int, int], upper: tuple[int, int], inclusive: bool) -> bool:
    return lower < upper or (inclusive and lower == upper)


def _public(msg: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    """A message as Slack's API returns it (no None fields, metadata on request)."""
    out = {k: v for k, v in msg.items() if v is not None and k != "channel"}
    if not with_metadata:
        out.pop("metadata", None)
    return out


# ---------------------------------------------------------------------- Socket Mode


def _silent_logger(name: str) -> logging.Logger:
    log = logging.getLogger(name)
    log.propagate = False
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    return log


class FakeSocketMode:
    """A local fake of Slack's Socket Mode websocket endpoint (``apps.connections.open``)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._conns: list[ServerConnection] = []
        self._received: list[dict[str, Any]] = []
        self._sent: list[dict[str, Any]] = []
        self._connection_count = 0
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeSocketMode:
        if self._server is not None:
            return self
        self._server = serve(
            self._handle,
            "127.0.0.1",
            0,
            compression=None,
            ping_interval=None,
            logger=_silent_logger("tests.fakes.socket_mode"),
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
        if server is not None:
            server.shutdown()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSocketMode is not started")
        return int(self._server.socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    @property
    def connected(self) -> bool:
        with self._cond:
            return bool(self._conns)

    @property
    def connection_count(self) -> int:
        """Number of connections accepted so far (reconnects increase it)."""
        with self._cond:
            return self._connection_count

    def wait_connected(self, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._conns), timeout=timeout)

    def received(self) -> list[dict[str, Any]]:
        """Every JSON message received from clients (acks), in order."""
        with self._cond:
            return [dict(m) for m in self._received]

    def sent(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(m) for m in self._sent]

    def send(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        accepts_response_payload: bool = False,
        timeout: float = 10.0,
    ) -> str:
        """Send an envelope to the latest connected client; returns its envelope_id."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        self.send_raw(envelope, timeout=timeout)
        return envelope_id

    def send_raw(self, message: dict[str, Any], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                if not self._cond.wait_for(
                    lambda: bool(self._conns), timeout=max(0.0, deadline - time.monotonic())
                ):
                    raise TimeoutError("no Socket Mode client connected")
                conn = self._conns[-1]
            try:
                conn.send(json.dumps(message))
            except ConnectionClosed:
                with self._cond:
                    if conn in self._conns:
                        self._conns.remove(conn)
                if time.monotonic() >= deadline:
                    raise
                continue
            with self._cond:
                self._sent.append(message)
            return

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The client's acknowledgement of ``envelope_id``; raises TimeoutError."""

        def find() -> dict[str, Any] | None:
            for m in self._received:
                if m.get("envelope_id") == envelope_id:
                    return m
            return None

        with self._cond:
            if not self._cond.wait_for(lambda: find() is not None, timeout=timeout):
                raise TimeoutError(f"no ack for envelope {envelope_id}")
            ack = find()
            assert ack is not None
            return dict(ack)

    def disconnect_all(self) -> None:
        """Close every client connection (the SDK reconnects via apps.connections.open)."""
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()

    def close_client(self, handler: Any) -> None:
        """Close a ``SocketModeHandler`` / ``SocketModeClient`` quickly.

        The builtin client blocks up to 3 s in ``recv`` on close; dropping the connection from
        this side first (with auto-reconnect off) makes ``close()`` take about 1 s instead.
        """
        client = getattr(handler, "client", handler)
        client.auto_reconnect_enabled = False
        self.disconnect_all()
        handler.close()

    def _handle(self, conn: ServerConnection) -> None:
        hello = {
            "type": "hello",
            "num_connections": 1,
            "connection_info": {"app_id": "A1"},
            "debug_info": {},
        }
        try:
            conn.send(json.dumps(hello))
            with self._cond:
                self._conns.append(conn)
                self._connection_count += 1
                self._cond.notify_all()
            for raw in conn:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    msg = {"_raw": raw}
                if not isinstance(msg, dict):
                    msg = {"_raw": msg}
                with self._cond:
                    self._received.append(msg)
                    self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                if conn in self._conns:
                    self._conns.remove(conn)
                self._cond.notify_all()
