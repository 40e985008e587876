"""The taxonomy from checked-in TOML, validated at start-up.

A team replaces `config/default.toml` with its own file (TRIAGE_CONFIG); any mistake
is reported once, naming the bad key, before the bot touches a store or a platform.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

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


class EmojiSettings(_Strict):
    confirm: str = "white_check_mark"
    reject: str = "x"


class Taxonomy(_Strict):
    """What a team sorts feedback into: categories and severities (most to least severe),
    the emoji that vote for them, and what each form type suggests.

    How the bot runs (learning, intake, outbox) is `core.runtime.RuntimeSettings`, read
    from the same file: a model is tied to its label space, not to its tuning."""

    emoji: EmojiSettings = EmojiSettings()
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


# Sections of the config file that are runtime settings (core.runtime), not taxonomy.
RUNTIME_SECTIONS = (
    "triage",
    "learning",
    "intake",
    "outbox",
    "retention",
    "github",
    "escalation",
    "owners",
    "routes",
    "routing",
    "digest",
    "duplicates",
)


def format_error(path: Path, error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{path}: {key}: {first['msg']}"


def read_config(path: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The parsed TOML of a config file (the default one without `path`)."""
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        return path, tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """Load and validate a config file's taxonomy; raises ConfigError naming the bad key."""
    path, raw = read_config(path)
    labels = {key: value for key, value in raw.items() if key not in RUNTIME_SECTIONS}
    try:
        return Taxonomy.model_validate(labels)
    except ValidationError as exc:
        raise ConfigError(format_error(path, exc)) from exc
