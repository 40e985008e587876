"""Discord settings from the environment; a missing or malformed one is named at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.env import SettingsError, check_id, env_ids, env_number, env_required, env_str

# Discord ids are 64-bit snowflakes written as 17-20 digits; catch names and typos early.
SNOWFLAKE = re.compile(r"^[0-9]{15,21}$")
SNOWFLAKE_WHAT = (
    "a Discord id (a number like 123456789012345678; turn on Developer Mode and use Copy ID)"
)
CLAIM_LEASE_DEFAULT = 120.0  # seconds; see `DiscordSettings.claim_lease`


def _snowflake(name: str, value: str) -> int:
    return int(check_id(name, value, SNOWFLAKE, SNOWFLAKE_WHAT))


@dataclass(frozen=True)
class DiscordSettings:
    token: str = field(repr=False)  # a secret: never in a repr or a log line
    channel: int  # where cards are posted
    intake_channels: frozenset[int]  # new messages here become feedback items
    reviewer_role: int | None  # only members with this role may vote (None: anyone)
    guild: int | None  # slash commands are synced here (None: globally, slow to appear)
    # How long a worker's claim on a card post lasts, as Slack's: a post claimed by a
    # process that died is retried once it runs out, so it must outlast one post attempt.
    claim_lease: float = CLAIM_LEASE_DEFAULT
    # Who an escalation pings: ("role", id) or ("user", id); None pings nobody.
    escalate_to: tuple[str, int] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DiscordSettings:
        env = os.environ if env is None else env
        token = env_required(env, "DISCORD_TOKEN", "the bot token from the Developer Portal")
        if any(c.isspace() for c in token) or token.lower().startswith("bot "):
            raise SettingsError(
                "DISCORD_TOKEN must be the bare bot token, without 'Bot ' or spaces"
            )
        channel = env_required(env, "TRIAGE_DISCORD_CHANNEL", "the channel id for cards")
        intake = env_ids(env, "TRIAGE_DISCORD_INTAKE_CHANNELS", SNOWFLAKE, SNOWFLAKE_WHAT)
        role = env_str(env, "TRIAGE_DISCORD_REVIEWER_ROLE")
        guild = env_str(env, "TRIAGE_DISCORD_GUILD")
        lease = env_number(
            env, "TRIAGE_DISCORD_CLAIM_LEASE", CLAIM_LEASE_DEFAULT, above=0, unit="seconds"
        )
        return cls(
            token=token,
            channel=_snowflake("TRIAGE_DISCORD_CHANNEL", channel),
            intake_channels=frozenset(map(int, intake)),
            reviewer_role=_snowflake("TRIAGE_DISCORD_REVIEWER_ROLE", role) if role else None,
            guild=_snowflake("TRIAGE_DISCORD_GUILD", guild) if guild else None,
            claim_lease=lease,
            escalate_to=_escalate_to(env),
        )


def _escalate_to(env: Mapping[str, str]) -> tuple[str, int] | None:
    """TRIAGE_DISCORD_ESCALATE_TO: `role:<id>` or `user:<id>`."""
    value = env_str(env, "TRIAGE_DISCORD_ESCALATE_TO")
    if value is None:
        return None
    kind, _, snowflake = value.partition(":")
    if kind not in ("role", "user") or not snowflake:
        raise SettingsError(
            f"TRIAGE_DISCORD_ESCALATE_TO must be role:<id> or user:<id>, got {value!r}"
        )
    return kind, _snowflake("TRIAGE_DISCORD_ESCALATE_TO", snowflake)
