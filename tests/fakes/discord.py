"""A small local fake of Discord's REST API and gateway, served over real sockets (aiohttp).

Just enough of Discord for discord.py to log in, identify, receive READY and GUILD_CREATE,
sync application commands, post/edit/list messages and answer interactions; the test
pushes gateway events (`dispatch`) and reads what the bot did (`calls`, `messages`).
Point discord.py at it with `fake.patch(monkeypatch)`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord
import pytest
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

DISCORD_EPOCH_MS = 1420070400000


def snowflake_now(counter: int) -> int:
    ms = int(datetime.now(UTC).timestamp() * 1000) - DISCORD_EPOCH_MS
    return (ms << 22) | (counter & 0x3FFFFF)


@dataclass
class Call:
    method: str
    path: str
    body: Any
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (filename, bytes)


@dataclass
class FakeDiscord:
    guild_id: int = 811111111111111111
    app_id: int = 822222222222222222
    bot_id: int = 822222222222222222
    channels: dict[int, str] = field(default_factory=dict)  # id -> name
    roles: dict[int, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    messages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    identifies: int = 0

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    def patch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(discord.http.Route, "BASE", f"{self.base_url}/api/v10")
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket,
            "DEFAULT_GATEWAY",
            yarl.URL(f"ws://{self.base_url.split('://', 1)[1]}/gateway/"),
        )

    def new_id(self) -> int:
        return snowflake_now(next(self._ids))

    # -- waiting on the bot ------------------------------------------------------------------
    async def _note(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
        """Until `predicate()` holds; the timeout only guards against a hung test."""

        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(wait(), timeout)

    def requests(self, method: str, prefix: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.startswith(prefix)]

    # -- payloads ----------------------------------------------------------------------------
    def user(self, user_id: int, name: str, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": bot,
        }

    def member(self, user_id: int, name: str, roles: list[int]) -> dict[str, Any]:
        return {
            "user": self.user(user_id, name),
            "roles": [str(r) for r in roles],
            "joined_at": "2026-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str(discord.Permissions.all().value),
        }

    def guild_payload(self) -> dict[str, Any]:
        everyone = {
            "id": str(self.guild_id),
            "name": "@everyone",
            "permissions": str(discord.Permissions.all().value),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
        }
        roles = [everyone] + [
            {**everyone, "id": str(rid), "name": name, "position": 1}
            for rid, name in self.roles.items()
        ]
        channels = [self.channel_payload(cid) for cid in self.channels]
        return {
            "id": str(self.guild_id),
            "name": "Acme",
            "icon": None,
            "owner_id": "1",
            "roles": roles,
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": channels,
            "threads": [],
            "members": [self.member(self.bot_id, "triage-bot", [])],
            "member_count": 1,
            "voice_states": [],
            "presences": [],
            "large": False,
            "unavailable": False,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "system_channel_flags": 0,
            "nsfw_level": 0,
            "joined_at": "2026-01-01T00:00:00+00:00",
        }

    def channel_payload(self, channel_id: int) -> dict[str, Any]:
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": self.channels[channel_id],
            "position": list(self.channels).index(channel_id),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }

    def message(
        self, channel_id: int, author: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "id": str(self.new_id()),
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id),
            "author": author,
            "content": body.get("content") or "",
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "type": 0,
            "flags": body.get("flags") or 0,
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
        }

    # -- the gateway ---------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if data["op"] == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif data["op"] == 2:
                    self.identifies += 1
                    await self._send(
                        ws,
                        "READY",
                        {
                            "v": 10,
                            "user": self.user(self.bot_id, "triage-bot", bot=True),
                            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                            "session_id": f"session-{self.identifies}",
                            "resume_gateway_url": str(
                                discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
                            ),
                            "application": {"id": str(self.app_id), "flags": 0},
                        },
                    )
                    await self._send(ws, "GUILD_CREATE", self.guild_payload())
        finally:
            self._sockets.remove(ws)
        return ws

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data}))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send one gateway event to every connected bot."""
        for ws in list(self._sockets):
            await self._send(ws, event, data)

    # -- REST ----------------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        body: Any = None
        files: list[tuple[str, bytes]] = []
        if request.content_type.startswith("multipart/"):  # a message with attachments
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                assert isinstance(part, BodyPartReader)
                if part.name == "payload_json":
                    body = json.loads(await part.read())
                else:
                    files.append((part.filename or "", bytes(await part.read())))
        elif request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        self.calls.append(Call(request.method, path, body, files))
        reply = self._answer(request.method, path, body, request.query)
        await self._note()
        if reply is None:
            return web.Response(status=204)
        status, payload = reply
        # discord.py parses JSON only when the Content-Type is exactly application/json
        return web.Response(
            status=status,
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )

    def _answer(self, method: str, path: str, body: Any, query: Any) -> tuple[int, Any] | None:
        parts = path.strip("/").split("/")
        bot_author = self.user(self.bot_id, "triage-bot", bot=True)
        if (method, path) == ("GET", "/users/@me"):
            return 200, self.user(self.bot_id, "triage-bot", bot=True)
        if (method, path) == ("GET", "/oauth2/applications/@me"):
            return 200, {
                "id": str(self.app_id),
                "name": "triage-bot",
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": self.user(1, "owner"),
                "verify_key": "0" * 64,
                "flags": 0,
            }
        if method == "PUT" and parts[0] == "applications" and parts[-1] == "commands":
            return 200, [
                {
                    **cmd,
                    "id": str(self.new_id()),
                    "application_id": str(self.app_id),
                    "version": "1",
                    "guild_id": parts[3] if parts[2] == "guilds" else None,
                }
                for cmd in body
            ]
        if (method, parts[0], len(parts)) == ("GET", "channels", 2):
            channel_id = int(parts[1])
            if channel_id not in self.channels:
                return 404, {"message": "Unknown Channel", "code": 10003}
            return 200, self.channel_payload(channel_id)
        if parts[0] == "channels" and len(parts) >= 3 and parts[2] == "messages":
            channel_id = int(parts[1])
            inbox = self.messages.setdefault(channel_id, [])
            if method == "POST" and len(parts) == 3:
                message = self.message(channel_id, bot_author, body)
                inbox.append(message)
                return 200, message
            if method == "GET" and len(parts) == 3:
                limit = int(query.get("limit", 50))
                before = int(query["before"]) if "before" in query else None
                newest = [m for m in reversed(inbox) if before is None or int(m["id"]) < before]
                return 200, newest[:limit]
            if method == "PATCH" and len(parts) == 4:
                message = next(m for m in inbox if m["id"] == parts[3])
                message.update(
                    {k: v for k, v in body.items() if k in ("content", "embeds", "components")}
                )
                message["edited_timestamp"] = datetime.now(UTC).isoformat()
                return 200, message
            if method in ("PUT", "DELETE") and "reactions" in parts:
                return None
        if parts[0] == "interactions" and parts[-1] == "callback":
            return 200, {"interaction": {"id": parts[1], "type": body["type"]}}
        if parts[0] == "webhooks":
            message = self.message(0, bot_author, body or {})
            self.messages.setdefault(0, []).append(message)  # channel 0: followups
            return 200, message
        return 404, {"message": f"fake Discord has no {method} {path}", "code": 0}
