"""Discord settings from the environment; a missing or malformed one is named at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from core.settings import SettingsError

SNOWFLAKE = re.compile(r"^[0-9]{15,21}$")


def _snowflake(name: str, value: str) -> int:
    """Discord ids are 64-bit snowflakes written as 17-20 digits; catch names and typos early."""
    if not SNOWFLAKE.match(value):
        raise SettingsError(
            f"{name}: {value!r} is not a Discord id (a number like 123456789012345678; "
            "turn on Developer Mode and use Copy ID)"
        )
    return int(value)


@dataclass(frozen=True)
class DiscordSettings:
    token: str
    channel: int  # where cards are posted
    intake_channels: frozenset[int]  # new messages here become feedback items
    reviewer_role: int | None  # only members with this role may vote (None: anyone)
    guild: int | None  # slash commands are synced here (None: globally, slow to appear)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DiscordSettings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        token = get("DISCORD_TOKEN")
        if token is None:
            raise SettingsError(
                "DISCORD_TOKEN is not set (the bot token from the Developer Portal)"
            )
        if any(c.isspace() for c in token) or token.lower().startswith("bot "):
            raise SettingsError(
                "DISCORD_TOKEN must be the bare bot token, without 'Bot ' or spaces"
            )
        channel = get("TRIAGE_DISCORD_CHANNEL")
        if channel is None:
            raise SettingsError("TRIAGE_DISCORD_CHANNEL is not set (the channel id for cards)")
        intake = frozenset(
            _snowflake("TRIAGE_DISCORD_INTAKE_CHANNELS", c.strip())
            for c in (get("TRIAGE_DISCORD_INTAKE_CHANNELS") or "").split(",")
            if c.strip()
        )
        role = get("TRIAGE_DISCORD_REVIEWER_ROLE")
        guild = get("TRIAGE_DISCORD_GUILD")
        return cls(
            token=token,
            channel=_snowflake("TRIAGE_DISCORD_CHANNEL", channel),
            intake_channels=intake,
            reviewer_role=_snowflake("TRIAGE_DISCORD_REVIEWER_ROLE", role) if role else None,
            guild=_snowflake("TRIAGE_DISCORD_GUILD", guild) if guild else None,
        )
