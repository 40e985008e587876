"""GitHub settings from the environment: without the repository and the token, cards show
no "Create issue" button; a malformed one is named at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.env import SettingsError, env_number, env_str

REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
DEFAULT_API_URL = "https://api.github.com"


@dataclass(frozen=True)
class GitHubSettings:
    repo: str  # owner/name
    token: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    # POST /github verifies deliveries with it (comma-separated: any of them, for rotation).
    webhook_secret: str | None = field(default=None, repr=False)
    timeout_s: float = 15.0  # one API call; a timed-out create is looked up before a retry

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GitHubSettings | None:
        """None without TRIAGE_GITHUB_REPO (GitHub is off: a GITHUB_TOKEN that other tools
        use alone turns nothing on); a repository without a token is named here."""
        env = os.environ if env is None else env
        repo = env_str(env, "TRIAGE_GITHUB_REPO")
        token = env_str(env, "GITHUB_TOKEN")
        if repo is None:
            return None
        if token is None:
            raise SettingsError(
                f"TRIAGE_GITHUB_REPO={repo!r} needs GITHUB_TOKEN (a fine-grained token with "
                "Issues: read and write on that repository)"
            )
        if not REPO.fullmatch(repo):
            raise SettingsError(f"TRIAGE_GITHUB_REPO must be owner/name, got {repo!r}")
        api_url = (env_str(env, "GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        if not api_url.startswith(("http://", "https://")):
            raise SettingsError(f"GITHUB_API_URL must be an http(s) URL, got {api_url!r}")
        return cls(
            repo=repo,
            token=token,
            api_url=api_url,
            webhook_secret=env_str(env, "TRIAGE_GITHUB_WEBHOOK_SECRET"),
            timeout_s=env_number(env, "TRIAGE_GITHUB_TIMEOUT", 15.0, 0.1, 300.0),
        )
