"""Slack settings from the environment; a missing or malformed one is named at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from core.settings import SettingsError

CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
DEFAULT_API_URL = "https://slack.com/api/"


def _channel(name: str, value: str) -> str:
    if not CHANNEL_ID.match(value):
        raise SettingsError(f"{name}: {value!r} is not a Slack channel id (like C0123ABCD)")
    return value


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str
    signing_secret: str | None
    app_token: str | None
    api_url: str
    channel: str
    intake_channels: frozenset[str]
    webhook_secret: str | None
    post_interval: float  # seconds between posts to one channel (Slack allows ~1/s)
    # How long a worker's claim on a post lasts; a post claimed by a process that died is
    # retried (after a search of the channel) once it runs out. It must outlast one post
    # attempt, 429 waits included, or a slow live worker may see its post taken over.
    claim_lease: float = 120.0

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlackSettings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        bot_token = get("SLACK_BOT_TOKEN")
        if bot_token is None:
            raise SettingsError("SLACK_BOT_TOKEN is not set (the xoxb- token of the Slack app)")
        if not bot_token.startswith("xoxb-"):
            raise SettingsError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
        app_token = get("SLACK_APP_TOKEN")
        if app_token is not None and not app_token.startswith("xapp-"):
            raise SettingsError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
        signing_secret = get("SLACK_SIGNING_SECRET")
        if app_token is None and signing_secret is None:
            raise SettingsError(
                "SLACK_SIGNING_SECRET is not set (needed in HTTP mode; set SLACK_APP_TOKEN "
                "for Socket Mode instead)"
            )
        channel = get("TRIAGE_SLACK_CHANNEL")
        if channel is None:
            raise SettingsError("TRIAGE_SLACK_CHANNEL is not set (the channel id for cards)")
        intake = frozenset(
            _channel("TRIAGE_SLACK_INTAKE_CHANNELS", c.strip())
            for c in (get("TRIAGE_SLACK_INTAKE_CHANNELS") or "").split(",")
            if c.strip()
        )
        api_url = get("SLACK_API_URL") or DEFAULT_API_URL
        if not api_url.startswith(("http://", "https://")):
            raise SettingsError(f"SLACK_API_URL must be an http(s) URL, got {api_url!r}")
        interval_raw = get("TRIAGE_SLACK_POST_INTERVAL") or "1.0"
        try:
            interval = float(interval_raw)
        except ValueError:
            raise SettingsError(
                f"TRIAGE_SLACK_POST_INTERVAL must be a number of seconds, got {interval_raw!r}"
            ) from None
        lease_raw = get("TRIAGE_SLACK_CLAIM_LEASE") or "120"
        try:
            lease = float(lease_raw)
        except ValueError:
            raise SettingsError(
                f"TRIAGE_SLACK_CLAIM_LEASE must be a number of seconds, got {lease_raw!r}"
            ) from None
        if lease <= 0:
            raise SettingsError(f"TRIAGE_SLACK_CLAIM_LEASE must be above 0, got {lease_raw!r}")
        return cls(
            bot_token=bot_token,
            signing_secret=signing_secret,
            app_token=app_token,
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            channel=_channel("TRIAGE_SLACK_CHANNEL", channel),
            intake_channels=intake,
            webhook_secret=get("TRIAGE_WEBHOOK_SECRET"),
            post_interval=max(0.0, interval),
            claim_lease=lease,
        )
