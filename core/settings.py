"""Process settings from the environment (secrets and deployment), validated at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from platformdirs import user_data_dir

from core.store import safe_url
from core.taxonomy import DEFAULT_CONFIG


class SettingsError(ValueError):
    """A missing or malformed environment variable; the message names it."""


def default_store_url() -> str:
    return f"sqlite:///{Path(user_data_dir('triage-bot')) / 'triage.db'}"


BACKENDS = ("embedded", "llm")


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class LLMSettings:
    """The OpenAI-compatible endpoint of the LLM backend (`TRIAGE_BACKEND=llm`).

    The timeout is short on purpose: a card that waits on a slow endpoint is worse than a
    card from the embedded model, which is what a timeout falls back to.
    """

    model: str = ""
    base_url: str | None = None
    api_key: str = field(default="", repr=False)
    timeout_s: float = 10.0
    examples: int = 3  # validated look-alikes sent as few-shot turns
    concurrency: int = 4  # parallel requests when triaging a batch
    cooldown_s: float = 30.0  # after a timeout or refused connection, skip the endpoint

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LLMSettings:
        base_url = env.get("OPENAI_BASE_URL", "").strip() or None
        # A local server needs no key, but the client insists on one.
        api_key = env.get("OPENAI_API_KEY", "").strip() or ("unused" if base_url else "")
        return cls(
            model=env.get("TRIAGE_LLM_MODEL", "").strip(),
            base_url=base_url,
            api_key=api_key,
            timeout_s=_number(env, "TRIAGE_LLM_TIMEOUT", 10.0, 0.1, 600.0),
            examples=int(_number(env, "TRIAGE_LLM_EXAMPLES", 3, 0, 20)),
            concurrency=int(_number(env, "TRIAGE_LLM_CONCURRENCY", 4, 1, 64)),
            cooldown_s=_number(env, "TRIAGE_LLM_COOLDOWN", 30.0, 0.0, 3600.0),
        )

    def check(self) -> None:
        """Fail at start-up, naming the variable, rather than fall back on every item."""
        if not self.model:
            raise SettingsError("TRIAGE_BACKEND=llm needs TRIAGE_LLM_MODEL (the model name)")
        if not self.api_key:
            raise SettingsError("TRIAGE_BACKEND=llm needs OPENAI_API_KEY (or OPENAI_BASE_URL)")


@dataclass(frozen=True)
class Settings:
    store_url: str
    config_path: Path
    reviewers: frozenset[str] | None
    backend: str = "embedded"
    llm: LLMSettings = field(default_factory=LLMSettings)

    def with_backend(self, backend: str | None) -> Settings:
        """These settings with `--backend` applied (None keeps $TRIAGE_BACKEND), checked."""
        chosen = (backend or self.backend).strip().lower()
        if chosen not in BACKENDS:
            raise SettingsError(f"backend must be one of {', '.join(BACKENDS)}, got {chosen!r}")
        if chosen == "llm":
            self.llm.check()
        return replace(self, backend=chosen)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        store_url = env.get("TRIAGE_STORE_URL", "").strip() or default_store_url()
        if not store_url.startswith(("sqlite://", "mongodb://", "mongodb+srv://")):
            raise SettingsError(
                "TRIAGE_STORE_URL must start with sqlite:/// or mongodb://, "
                f"got {safe_url(store_url)!r}"
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
        backend = env.get("TRIAGE_BACKEND", "").strip().lower() or "embedded"
        if backend not in BACKENDS:
            raise SettingsError(
                f"TRIAGE_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}"
            )
        # The LLM endpoint is checked by `with_backend`, once `--backend` is known.
        return cls(
            store_url=store_url,
            config_path=config,
            reviewers=reviewers,
            backend=backend,
            llm=LLMSettings.from_env(env),
        )
