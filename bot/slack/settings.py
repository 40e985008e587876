"""Slack settings from the environment; a missing or malformed one is named at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.env import (
    SettingsError,
    check_id,
    env_ids,
    env_number,
    env_required,
    env_str,
)

CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
CHANNEL_WHAT = "a Slack channel id (like C0123ABCD)"
PINGABLE = re.compile(r"^[US][A-Z0-9]{2,}$")
PINGABLE_WHAT = "a Slack user id (U…) or user group id (S…)"
DEFAULT_API_URL = "https://slack.com/api/"
CLAIM_LEASE_DEFAULT = 120.0  # seconds; see `SlackSettings.claim_lease`


@dataclass(frozen=True)
class SlackSettings:
    # Secrets are left out of the repr, so a logged or printed settings object leaks none.
    bot_token: str = field(repr=False)
    signing_secret: str | None = field(repr=False)
    app_token: str | None = field(repr=False)
    api_url: str
    channel: str
    intake_channels: frozenset[str]
    webhook_secret: str | None = field(repr=False)
    post_interval: float  # seconds between posts to one channel (Slack allows ~1/s)
    # How long a worker's claim on a post lasts; a post claimed by a process that died is
    # retried (after a search of the channel) once it runs out. It must outlast one post
    # attempt, 429 waits included, or a slow live worker may see its post taken over.
    claim_lease: float = CLAIM_LEASE_DEFAULT
    # Who an escalation pings: a user (U…) or a user group (S…); None pings nobody.
    escalate_to: str | None = None

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlackSettings:
        env = os.environ if env is None else env
        bot_token = env_required(env, "SLACK_BOT_TOKEN", "the xoxb- token of the Slack app")
        if not bot_token.startswith("xoxb-"):
            raise SettingsError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
        app_token = env_str(env, "SLACK_APP_TOKEN")
        if app_token is not None and not app_token.startswith("xapp-"):
            raise SettingsError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
        signing_secret = env_str(env, "SLACK_SIGNING_SECRET")
        if app_token is None and signing_secret is None:
            raise SettingsError(
                "SLACK_SIGNING_SECRET is not set (needed in HTTP mode; set SLACK_APP_TOKEN "
                "for Socket Mode instead)"
            )
        channel = env_required(env, "TRIAGE_SLACK_CHANNEL", "the channel id for cards")
        intake = env_ids(env, "TRIAGE_SLACK_INTAKE_CHANNELS", CHANNEL_ID, CHANNEL_WHAT)
        api_url = env_str(env, "SLACK_API_URL") or DEFAULT_API_URL
        if not api_url.startswith(("http://", "https://")):
            raise SettingsError(f"SLACK_API_URL must be an http(s) URL, got {api_url!r}")
        interval = env_number(env, "TRIAGE_SLACK_POST_INTERVAL", 1.0, unit="seconds")
        lease = env_number(
            env, "TRIAGE_SLACK_CLAIM_LEASE", CLAIM_LEASE_DEFAULT, above=0, unit="seconds"
        )
        return cls(
            bot_token=bot_token,
            signing_secret=signing_secret,
            app_token=app_token,
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            channel=check_id("TRIAGE_SLACK_CHANNEL", channel, CHANNEL_ID, CHANNEL_WHAT),
            intake_channels=intake,
            webhook_secret=env_str(env, "TRIAGE_WEBHOOK_SECRET"),
            post_interval=max(0.0, interval),
            claim_lease=lease,
            escalate_to=_pingable(env),
        )


def _pingable(env: Mapping[str, str]) -> str | None:
    value = env_str(env, "TRIAGE_SLACK_ESCALATE_TO")
    return check_id("TRIAGE_SLACK_ESCALATE_TO", value, PINGABLE, PINGABLE_WHAT) if value else None
