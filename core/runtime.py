"""How the bot runs (triage thresholds, learning, intake, outbox, retention), from the
config file.

Separate from the taxonomy (`core.taxonomy`): the same labels can be run with other
tuning, and the defaults here are the checked-in `config/default.toml`'s (a test
keeps them equal), so code that builds an engine without a file behaves as the bot does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.taxonomy import RUNTIME_SECTIONS, ConfigError, format_error, read_config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TriageSettings(_Strict):
    needs_human_below: float = Field(default=0.55, ge=0.0, le=1.0)
    max_text_bytes: int = Field(default=65536, ge=16)
    model_text_chars: int = Field(default=2000, ge=50)


class LearningSettings(_Strict):
    online_steps: int = Field(default=25, ge=1, le=10000)
    learning_rate: float = Field(default=0.01, gt=0.0, le=10.0)
    weight_decay: float = Field(default=1e-3, ge=0.0)
    online_self_trust: float = Field(default=0.2, ge=0.0, lt=1.0)
    online_seconds: float = Field(default=1.0, gt=0.0)
    batch_learning_rate: float = Field(default=0.05, gt=0.0, le=10.0)
    batch_weight_decay: float = Field(default=1e-4, ge=0.0)
    lexical_buckets: int = Field(default=131072, ge=1024)
    finetune_min_examples: int = Field(default=300, ge=0)
    finetune_minutes: float = Field(default=10.0, gt=0.0)


FieldPaths = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class MongoIntakeSettings(_Strict):
    """Which fields of a watched MongoDB document hold what: the first present one wins.

    Paths may be dotted (`form.comment`) for nested documents. Lists, so one mapping fits
    collections written by different versions of a website form.
    """

    text: FieldPaths = ["text", "comment", "message", "body", "feedback"]
    type: FieldPaths = ["type", "form_type"]
    rating: FieldPaths = ["rating"]
    page: FieldPaths = ["page", "url"]
    # Polling (servers without change streams): seconds between queries for new documents.
    poll_seconds: float = Field(default=1.0, gt=0.0, le=300.0)
    # First start on a collection: "now" triages only documents that arrive from then on,
    # "beginning" also every document already there (each gets a card).
    start_at: Literal["now", "beginning"] = "now"

    @field_validator("text", "type", "rating", "page", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class IntakeSettings(_Strict):
    mongo: MongoIntakeSettings = MongoIntakeSettings()


class OutboxSettings(_Strict):
    """How cards are posted: micro-batches, and each post's own retry schedule."""

    batch: int = Field(default=16, ge=1, le=256)
    retry_base_seconds: float = Field(default=1.0, gt=0.0, le=3600.0)
    retry_max_seconds: float = Field(default=300.0, gt=0.0, le=86400.0)


class RetentionSettings(_Strict):
    """How long what the bot stores is kept, in days (0: forever); `triage-bot prune` and
    every running bot (at start, then daily) delete what is older."""

    items_days: int = Field(default=0, ge=0)
    seen_events_days: int = Field(default=7, ge=0)
    finished_outbox_days: int = Field(default=0, ge=0)


LabelName = Annotated[str, Field(min_length=1, max_length=50)]


class GitHubSettings(_Strict):
    """What a card's "Create issue" makes on GitHub, and how GitHub's answers count.

    The repository and token come from the environment (TRIAGE_GITHUB_REPO, GITHUB_TOKEN);
    these are the team's conventions. Label maps name taxonomy categories and severities
    (checked against the taxonomy at start) and GitHub label names; a label a maintainer
    sets on GitHub maps back the same way, so a relabel is a correction.
    """

    labels: list[LabelName] = ["triage-bot"]  # on every issue the bot opens
    category_labels: dict[str, LabelName] = {
        "website-bug": "bug",
        "framework-issue": "bug",
        "content-gap": "documentation",
        "feature-request": "enhancement",
    }
    severity_labels: dict[str, LabelName] = {
        "critical": "priority: critical",
        "high": "priority: high",
    }
    # Without a webhook (no public URL, Socket Mode, Discord): how often linked issues are
    # read back. 0 turns polling off (the webhook alone then).
    poll_seconds: float = Field(default=300.0, ge=0.0, le=86400.0)
    # An issue's outcome counts in an item's label at this weight (a reviewer weighs 1.0,
    # 0 to 2.0 by track record): completed confirms the card as it was when the issue was
    # opened. Closed as not planned or duplicate gives the prediction this reward.
    outcome_weight: float = Field(default=0.5, ge=0.0, le=2.0)
    not_planned_reward: float = Field(default=-0.3, ge=-1.0, le=0.0)


class EscalationSettings(_Strict):
    """An item of these severities that nobody has voted on or opened an issue for this
    many minutes after its card was posted is escalated once: a reply to its card that
    pings whoever TRIAGE_SLACK_ESCALATE_TO / TRIAGE_DISCORD_ESCALATE_TO name."""

    after_minutes: float = Field(default=30.0, ge=0.0, le=10080.0)  # 0: never
    severities: list[Annotated[str, Field(min_length=1)]] = ["critical"]


class OwnerSpec(_Strict):
    """A team or person items are routed to, and how each platform reaches them."""

    name: Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9][\w .-]*$")]
    slack: str | None = Field(default=None, pattern=r"^[US][A-Z0-9]{2,}$")  # user or group
    discord: str | None = Field(default=None, pattern=r"^(role|user):[0-9]{15,21}$")
    github: str | None = Field(default=None, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")


class RouteSpec(_Strict):
    """Items on these pages (globs on the page's path or URL) and/or of these categories go
    to `owner`; the first route that matches wins. An empty list matches anything."""

    owner: str
    pages: list[Annotated[str, Field(min_length=1)]] = []
    categories: list[str] = []


class RoutingSettings(_Strict):
    """The rules win until the owner model, learned from the team's reassignments, is at
    least this sure, with at least `min_assignments` of each owner to learn from."""

    learned_above: float = Field(default=0.8, ge=0.0, le=1.0)
    min_assignments: int = Field(default=3, ge=1)


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class DigestSettings(_Strict):
    """When a running bot posts the digest to its card channel on its own."""

    every: Literal["off", "daily", "weekly"] = "off"
    at: str = Field(default="09:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")  # local time
    timezone: str = "UTC"
    weekday: Literal[WEEKDAYS] = "monday"  # type: ignore[valid-type]  # for `weekly`

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {name!r} (an IANA name, like Europe/Paris)"
            ) from exc
        return name


class DuplicateSettings(_Strict):
    """Duplicates grouped at posting (`core.duplicates`): a new item as similar as
    `threshold` to an open card of the `window_days` before it gets no card of its own but
    a reply in that card's thread. Reviewers' merges and splits move the threshold once
    there are `learn_after` of them."""

    enabled: bool = True
    window_days: float = Field(default=7.0, gt=0.0, le=365.0)
    threshold: float = Field(default=0.75, gt=0.0, lt=1.0)
    embedding_weight: float = Field(default=0.8, ge=0.0, le=1.0)  # the rest: n-gram overlap
    learn_after: int = Field(default=3, ge=1, le=10000)
    candidates: int = Field(default=5, ge=1, le=25)  # what "Duplicate of..." offers
    max_open: int = Field(default=20000, ge=10, le=1_000_000)  # newest kept in memory


class RuntimeSettings(_Strict):
    triage: TriageSettings = TriageSettings()
    learning: LearningSettings = LearningSettings()
    intake: IntakeSettings = IntakeSettings()
    outbox: OutboxSettings = OutboxSettings()
    retention: RetentionSettings = RetentionSettings()
    github: GitHubSettings = GitHubSettings()
    escalation: EscalationSettings = EscalationSettings()
    owners: list[OwnerSpec] = []
    routes: list[RouteSpec] = []
    routing: RoutingSettings = RoutingSettings()
    digest: DigestSettings = DigestSettings()
    duplicates: DuplicateSettings = DuplicateSettings()

    @model_validator(mode="after")
    def _routes_name_owners(self) -> RuntimeSettings:
        names = [owner.name for owner in self.owners]
        if len(set(names)) != len(names):
            raise ValueError("owners: each name once")
        for i, route in enumerate(self.routes):
            if route.owner not in names:
                raise ValueError(f"routes[{i}].owner {route.owner!r} is not among [[owners]]")
        return self


def load_runtime_settings(path: str | Path | None = None) -> RuntimeSettings:
    """Load and validate a config file's runtime sections; ConfigError names the bad key."""
    path, raw = read_config(path)
    sections = {key: value for key, value in raw.items() if key in RUNTIME_SECTIONS}
    try:
        return RuntimeSettings.model_validate(sections)
    except ValidationError as exc:
        raise ConfigError(format_error(path, exc)) from exc
