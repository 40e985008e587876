"""Process settings from the environment (secrets and deployment), validated at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from platformdirs import user_data_dir

from core.env import SettingsError, env_choice, env_list, env_number, env_str
from core.store import safe_url
from core.taxonomy import DEFAULT_CONFIG


def default_store_url() -> str:
    return f"sqlite:///{Path(user_data_dir('triage-bot')) / 'triage.db'}"


BACKENDS = ("embedded", "llm")
ANYONE = "*"  # TRIAGE_REVIEWERS=*: anyone who can see the channel may vote, said explicitly


def reviewers_from_env(env: Mapping[str, str]) -> tuple[frozenset[str] | None, bool]:
    """TRIAGE_REVIEWERS as (allowlist, declared): unset is (None, False), which local
    commands take as "anyone" and `serve` refuses; `*` is (None, True); ids are the list.
    A value that lists no one (",") or mixes `*` with ids is a mistake, named here."""
    raw = env_str(env, "TRIAGE_REVIEWERS")
    if raw is None:
        return None, False
    if raw == ANYONE:
        return None, True
    ids = env_list(env, "TRIAGE_REVIEWERS")
    if ANYONE in ids:
        raise SettingsError(
            f"TRIAGE_REVIEWERS is either {ANYONE} (anyone may vote) or user ids, not both"
        )
    if not ids:
        raise SettingsError(
            f"TRIAGE_REVIEWERS={raw!r} lists no one: give comma-separated user ids, "
            f"or {ANYONE} to let anyone who can see the channel vote"
        )
    return frozenset(ids), True


def _redacted_repr(settings: object, *url_fields: str) -> str:
    """The dataclass repr with the URLs in `url_fields` shown through `safe_url` (their
    passwords hidden); secret fields are `repr=False` and left out altogether."""
    parts = []
    for spec in fields(settings):  # type: ignore[arg-type]  # only dataclasses call it
        if not spec.repr:
            continue
        value = getattr(settings, spec.name)
        if spec.name in url_fields and isinstance(value, str):
            value = safe_url(value)
        parts.append(f"{spec.name}={value!r}")
    return f"{type(settings).__name__}({', '.join(parts)})"


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

    def __repr__(self) -> str:
        return _redacted_repr(self, "base_url")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LLMSettings:
        base_url = env_str(env, "OPENAI_BASE_URL")
        # A local server needs no key, but the client insists on one.
        api_key = env_str(env, "OPENAI_API_KEY") or ("unused" if base_url else "")
        return cls(
            model=env_str(env, "TRIAGE_LLM_MODEL") or "",
            base_url=base_url,
            api_key=api_key,
            timeout_s=env_number(env, "TRIAGE_LLM_TIMEOUT", 10.0, 0.1, 600.0),
            examples=int(env_number(env, "TRIAGE_LLM_EXAMPLES", 3, 0, 20)),
            concurrency=int(env_number(env, "TRIAGE_LLM_CONCURRENCY", 4, 1, 64)),
            cooldown_s=env_number(env, "TRIAGE_LLM_COOLDOWN", 30.0, 0.0, 3600.0),
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
    reviewers: frozenset[str] | None  # who may vote; None: anyone
    backend: str = "embedded"
    llm: LLMSettings = field(default_factory=LLMSettings)
    # Whether TRIAGE_REVIEWERS was set (to ids, or to * for anyone): the chat bots need it.
    reviewers_declared: bool = False

    def __repr__(self) -> str:  # the store URL may carry a password
        return _redacted_repr(self, "store_url")

    def require_reviewer_rule(self, role_variable: str | None = None) -> None:
        """Refuse a chat bot on which anyone may vote unless the team said so (`*`): votes
        train the model online, and a forgotten variable must not open that to every guest.
        `role_variable` names a platform's other way to set the rule (a role)."""
        if self.reviewers_declared:
            return
        how = f"{role_variable} (the role whose members may vote) or " if role_variable else ""
        raise SettingsError(
            f"no reviewer rule: set {how}TRIAGE_REVIEWERS (comma-separated user ids who may "
            f"vote), or TRIAGE_REVIEWERS={ANYONE} to let anyone who can see the channel vote"
        )

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
        store_url = env_str(env, "TRIAGE_STORE_URL") or default_store_url()
        if not store_url.startswith(("sqlite://", "mongodb://", "mongodb+srv://")):
            raise SettingsError(
                "TRIAGE_STORE_URL must start with sqlite:/// or mongodb://, "
                f"got {safe_url(store_url)!r}"
            )
        config = Path(env_str(env, "TRIAGE_CONFIG") or DEFAULT_CONFIG)
        if not config.is_file():
            raise SettingsError(f"TRIAGE_CONFIG={str(config)!r}: no such file")
        reviewers, reviewers_declared = reviewers_from_env(env)
        backend = env_choice(env, "TRIAGE_BACKEND", BACKENDS, "embedded")
        # The LLM endpoint is checked by `with_backend`, once `--backend` is known.
        return cls(
            store_url=store_url,
            config_path=config,
            reviewers=reviewers,
            backend=backend,
            llm=LLMSettings.from_env(env),
            reviewers_declared=reviewers_declared,
        )
