"""Running the Slack edge: HTTP mode (Starlette on uvicorn) or Socket Mode.

HTTP mode serves, on one concurrent server:
  POST /slack/events  events, interactivity and slash commands (Bolt verifies signatures)
  POST /feedback      the website form webhook (HMAC-SHA256, see bot/webhook.py)
  POST /github        GitHub's issues webhook (X-Hub-Signature-256, see bot/github/edge.py)
  GET  /healthz       liveness and outbox depth
Bolt's dispatch and our store writes are blocking, so they run in a thread pool and the
event loop stays free to accept the next request. When the store cannot be reached every
route answers 503 with the reason (Slack and a well-behaved form sender retry later):
nothing is acknowledged that is not stored.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import webhook
from bot.github.edge import MAX_DELIVERY_BYTES as MAX_GITHUB_DELIVERY
from bot.github.settings import GitHubSettings
from bot.slack.edge import SlackEdge, make_client
from bot.slack.settings import SlackSettings
from core.governance import InputError
from core.service import TriageService
from core.store import STORE_UNAVAILABLE

log = logging.getLogger("triage_bot.slack")


def store_unavailable(exc: Exception) -> JSONResponse:
    log.warning("store unavailable, answering 503: %s", exc)
    return JSONResponse(
        {"error": f"store unavailable ({type(exc).__name__}); nothing was stored, retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def create_bolt_app(edge: SlackEdge, settings: SlackSettings) -> App:
    app = App(
        signing_secret=settings.signing_secret or "",
        client=edge.client,
        request_verification_enabled=not settings.socket_mode,
        # Listeners store before they ack and leave the slow work to threads (the outbox,
        # the learner, `after_ack`): Slack's 200 means "stored", and a 503 means "retry".
        process_before_response=True,
        logger=logging.getLogger("triage_bot.bolt"),
    )
    edge.register(app)
    return app


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds `limit` (we never buffer a huge upload)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_asgi(bolt: App, edge: SlackEdge, settings: SlackSettings) -> Starlette:
    async def slack_events(request: Request) -> Response:
        body = await _read_limited(request, 1024 * 1024)
        if body is None:
            return Response("payload too large", status_code=413)
        try:
            bolt_request = to_bolt_request(request, body)  # decodes the body as UTF-8
        except UnicodeDecodeError:
            return JSONResponse({"error": "body is not UTF-8"}, status_code=400)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # Bolt reads ids out of the payload while building the request, before it checks
            # the signature: a payload shaped unlike Slack's must be a 400, not a 500.
            return JSONResponse(
                {"error": f"malformed Slack payload ({type(exc).__name__})"}, status_code=400
            )
        bolt_response = await run_in_threadpool(bolt.dispatch, bolt_request)
        return to_starlette_response(bolt_response)

    async def feedback(request: Request) -> Response:
        if not settings.webhook_secret:
            return JSONResponse(
                {"error": "webhook disabled: TRIAGE_WEBHOOK_SECRET is not set"}, status_code=503
            )
        body = await _read_limited(request, webhook.MAX_BODY_BYTES)
        if body is None:
            return JSONResponse(
                {"error": f"body over the {webhook.MAX_BODY_BYTES}-byte limit"}, status_code=413
            )
        try:
            webhook.verify(
                body,
                request.headers.get(webhook.SIGNATURE_HEADER),
                settings.webhook_secret,
                timestamp=request.headers.get(webhook.TIMESTAMP_HEADER),
            )
            form = webhook.parse(body, request.headers.get("content-type"))
            accepted = await run_in_threadpool(edge.accept_form, form)
        except webhook.WebhookError as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        except InputError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except STORE_UNAVAILABLE as exc:
            return store_unavailable(exc)
        return JSONResponse(
            {"id": accepted.item_id, "status": "accepted" if accepted.is_new else "duplicate"},
            status_code=202,
        )

    async def github(request: Request) -> Response:
        if edge.github is None:
            return JSONResponse(
                {"error": "GitHub is not set up (TRIAGE_GITHUB_REPO, GITHUB_TOKEN)"},
                status_code=404,
            )
        body = await _read_limited(request, MAX_GITHUB_DELIVERY)
        if body is None:
            return JSONResponse({"error": "delivery too large"}, status_code=413)
        try:
            status, answer = await run_in_threadpool(edge.github.receive, request.headers, body)
        except STORE_UNAVAILABLE as exc:
            return store_unavailable(exc)
        return JSONResponse(answer, status_code=status)

    async def healthz(request: Request) -> Response:
        try:
            unposted = await run_in_threadpool(edge.store.count_unposted, edge.target)
        except STORE_UNAVAILABLE as exc:
            return store_unavailable(exc)
        return JSONResponse(
            {"ok": True, "unposted": unposted, "model": edge.service.engine.model_version}
        )

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/feedback", feedback, methods=["POST"]),
            Route("/github", github, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def build_slack(
    service: TriageService, settings: SlackSettings, github: GitHubSettings | None = None
) -> tuple[SlackEdge, App]:
    edge = SlackEdge(service, settings, make_client(settings), github=github)
    return edge, create_bolt_app(edge, settings)


def serve(
    service: TriageService,
    settings: SlackSettings,
    host: str,
    port: int,
    watch: str | None = None,
    github: GitHubSettings | None = None,
) -> None:
    """Run until interrupted: Socket Mode when SLACK_APP_TOKEN is set, else HTTP. With
    `watch` (a mongodb://host/db.collection URL), new documents there become cards too;
    with `github`, cards offer "Create issue" there."""
    edge, bolt = build_slack(service, settings, github)
    edge.start()
    watcher = None
    if watch:
        from bot.intake import MongoWatcher

        watcher = MongoWatcher(service, watch, edge.accept)
        watcher.start()
    try:
        if settings.socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            handler: Any = SocketModeHandler(
                bolt, app_token=settings.app_token, web_client=edge.client
            )
            log.info("Slack Socket Mode: connecting")
            handler.start()
        else:
            import uvicorn

            log.info("Slack HTTP mode on http://%s:%d (POST /slack/events, /feedback)", host, port)
            uvicorn.run(
                create_asgi(bolt, edge, settings), host=host, port=port, log_level="warning"
            )
    finally:
        if watcher is not None:
            watcher.stop()
        edge.stop()
