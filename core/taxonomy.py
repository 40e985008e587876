"""Taxonomy and settings from checked-in TOML, validated at start-up.

A team replaces `config/default.toml` with its own file (TRIAGE_CONFIG); any mistake
is reported once, naming the bad key, before the bot touches a store or a platform.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config" / "default.toml"

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=40)]


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategorySpec(_Strict):
    name: Name
    description: str = Field(min_length=1)
    examples: list[str] = Field(default_factory=list)
    cues: list[str] = Field(default_factory=list)
    emoji: str = Field(min_length=1)
    action: str = Field(min_length=1, description="Template with {subject} and {where}")


class SeveritySpec(_Strict):
    name: Name
    description: str = Field(min_length=1)
    examples: list[str] = Field(default_factory=list)
    cues: list[str] = Field(default_factory=list)
    emoji: str = Field(min_length=1)
    color: str = Field(default="#9e9e9e", pattern=r"^#[0-9a-fA-F]{6}$")


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
    minimal_text_chars: int = Field(default=300, ge=20, le=2000)


class EmojiSettings(_Strict):
    confirm: str = "white_check_mark"
    reject: str = "x"


class Taxonomy(_Strict):
    """Categories and severities (severities ordered most to least severe) plus settings."""

    triage: TriageSettings = TriageSettings()
    learning: LearningSettings = LearningSettings()
    emoji: EmojiSettings = EmojiSettings()
    intake: IntakeSettings = IntakeSettings()
    outbox: OutboxSettings = OutboxSettings()
    categories: list[CategorySpec] = Field(min_length=2)
    severities: list[SeveritySpec] = Field(min_length=2)
    form_types: dict[str, dict[str, float]] = Field(default_factory=dict)

    @field_validator("categories", "severities")
    @classmethod
    def _unique_names(cls, specs: list[CategorySpec] | list[SeveritySpec]) -> list:  # type: ignore[type-arg]
        names = [s.name for s in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate names: {', '.join(dupes)}")
        return specs

    @model_validator(mode="after")
    def _form_types_name_categories(self) -> Taxonomy:
        known = set(self.category_names)
        for form, priors in self.form_types.items():
            for name, weight in priors.items():
                if name not in known:
                    raise ValueError(f"form_types.{form}: unknown category {name!r}")
                if not 0.0 <= weight <= 1.0:
                    raise ValueError(f"form_types.{form}.{name}: weight must be in [0, 1]")
        emoji = [c.emoji for c in self.categories] + [s.emoji for s in self.severities]
        emoji += [self.emoji.confirm, self.emoji.reject]
        dupes = sorted({e for e in emoji if emoji.count(e) > 1})
        if dupes:
            raise ValueError(f"emoji used twice: {', '.join(dupes)}")
        return self

    @property
    def category_names(self) -> list[str]:
        return [c.name for c in self.categories]

    @property
    def severity_names(self) -> list[str]:
        return [s.name for s in self.severities]

    def category(self, name: str) -> CategorySpec:
        for spec in self.categories:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def severity(self, name: str) -> SeveritySpec:
        for spec in self.severities:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def check_category(self, name: str) -> str:
        """Reject a correction naming a category this team does not use."""
        if name not in self.category_names:
            raise ValueError(
                f"unknown category {name!r}; expected one of: {', '.join(self.category_names)}"
            )
        return name

    def check_severity(self, name: str) -> str:
        if name not in self.severity_names:
            raise ValueError(
                f"unknown severity {name!r}; expected one of: {', '.join(self.severity_names)}"
            )
        return name

    @property
    def noise_category(self) -> str | None:
        return "noise" if "noise" in self.category_names else None

    @property
    def lowest_severity(self) -> str:
        return self.severities[-1].name

    def fingerprint(self) -> str:
        """Short hash of the label space: a model trained on another taxonomy is not reused."""
        space = {"categories": self.category_names, "severities": self.severity_names}
        return hashlib.sha256(json.dumps(space).encode()).hexdigest()[:8]


def _format_error(path: Path, error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{path}: {key}: {first['msg']}"


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load and validate a taxonomy TOML; raises ConfigError naming the bad key."""
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    try:
        return Taxonomy.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(path, exc)) from exc
