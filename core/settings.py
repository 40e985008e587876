"""Process settings from the environment (secrets and deployment), validated at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from core.taxonomy import DEFAULT_CONFIG


class SettingsError(ValueError):
    """A missing or malformed environment variable; the message names it."""


def default_store_url() -> str:
    return f"sqlite:///{Path(user_data_dir('triage-bot')) / 'triage.db'}"


@dataclass(frozen=True)
class Settings:
    store_url: str
    config_path: Path
    reviewers: frozenset[str] | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        store_url = env.get("TRIAGE_STORE_URL", "").strip() or default_store_url()
        if not store_url.startswith(("sqlite://", "mongodb://", "mongodb+srv://")):
            raise SettingsError(
                f"TRIAGE_STORE_URL must start with sqlite:/// or mongodb://, got {store_url!r}"
            )
        config = Path(env.get("TRIAGE_CONFIG", "").strip() or DEFAULT_CONFIG)
        if not config.is_file():
            raise SettingsError(f"TRIAGE_CONFIG={str(config)!r}: no such file")
        raw_reviewers = env.get("TRIAGE_REVIEWERS", "").strip()
        reviewers = (
            frozenset(r.strip() for r in raw_reviewers.split(",") if r.strip())
            if raw_reviewers
            else None
        )
        return cls(store_url=store_url, config_path=config, reviewers=reviewers)
