"""The vocabulary of triage-bot: every layer speaks these models and nothing else.

Platform adapters translate their payloads into these at the edge; the trainer reads
them from the store. Category and severity are plain strings because the taxonomy is
configurable; `core.taxonomy.Taxonomy` validates them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive times are taken as UTC; every stored time is UTC, so adapters compare them as-is."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UTCDateTime = Annotated[datetime, AfterValidator(as_utc)]


def stable_id(prefix: str, *parts: str) -> str:
    """Same inputs, same id: re-importing a file or a redelivered event cannot duplicate."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:20]
    return f"{prefix}_{digest}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class FeedbackItem(_Model):
    """One piece of feedback as received. Only `redacted_text` is ever persisted."""

    id: str
    text: str = Field(description="Text as received; held in memory only.")
    redacted_text: str = Field(description="Text with PII replaced; what is stored and modelled.")
    pii_kinds: list[str] = Field(default_factory=list)
    source: str = Field(default="cli", description="cli, slack, discord, webhook, mongodb, file")
    external_ref: str | None = Field(
        default=None, description="Platform id/permalink of the origin"
    )
    page: str | None = None
    form_type: str | None = None
    rating: float | None = None
    received_at: UTCDateTime = Field(default_factory=utcnow)
    metadata: dict[str, Any] = Field(default_factory=dict)


class FieldConfidence(_Model):
    category: float
    severity: float


class Triage(_Model):
    """A model's prediction for one item, with enough context to explain and to reward it."""

    item_id: str
    category: str
    severity: str
    action: str
    confidence: FieldConfidence
    probabilities: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="{'category': {...}, 'severity': {...}}"
    )
    model_version: str
    needs_human: bool = False
    evidence: list[str] = Field(default_factory=list)
    backend: str = Field(default="embedded", description="Which backend answered: embedded, llm")
    fallback_reason: str | None = Field(
        default=None, description="Why the LLM backend's answer was not used (card shows it)"
    )
    created_at: UTCDateTime = Field(default_factory=utcnow)

    def public(self) -> dict[str, Any]:
        """The stable JSON shape the CLI prints, one object per item."""
        return {
            "id": self.item_id,
            "category": self.category,
            "severity": self.severity,
            "action": self.action,
            "confidence": {
                "category": round(self.confidence.category, 4),
                "severity": round(self.confidence.severity, 4),
            },
            "model_version": self.model_version,
            "needs_human": self.needs_human,
            "backend": self.backend,
            "fallback_reason": self.fallback_reason,
        }


class ValidationKind(StrEnum):
    CONFIRM = "confirm"
    CORRECT = "correct"
    NOISE = "noise"
    REJECT = "reject"  # "this is wrong" without saying what is right: queues it for a human
    RETRACT = "retract"


class Validation(_Model):
    """One reviewer's vote on one item: an event, never deleted.

    `category`/`severity` hold what the reviewer asserts (resolved at vote time, so a
    confirm records the prediction the reviewer actually saw). `predicted_*` and
    `model_version` name that prediction, so the reward can be computed later.
    """

    id: str = Field(default_factory=lambda: f"val_{uuid.uuid4().hex[:20]}")
    item_id: str
    reviewer: str
    platform: str = "cli"
    kind: ValidationKind
    category: str | None = None
    severity: str | None = None
    action: str | None = None
    predicted_category: str | None = None
    predicted_severity: str | None = None
    model_version: str | None = None
    created_at: UTCDateTime = Field(default_factory=utcnow)
    note: str | None = None


class Label(_Model):
    """The consensus of an item's reviewers' latest votes: what the model learns from."""

    item_id: str
    category: str
    severity: str
    action: str | None = None
    reviewers: list[str]
    agreement: float = Field(ge=0.0, le=1.0, description="Weighted share behind the consensus")
    disagreement: bool = False
    updated_at: UTCDateTime = Field(default_factory=utcnow)


class Assignment(_Model):
    """Who owns an item, as a reviewer set it (the Assign menu): a label of its own, which
    the owner model learns from as the heads learn from category labels."""

    item_id: str
    owner: str
    by: str
    platform: str = "cli"
    created_at: UTCDateTime = Field(default_factory=utcnow)


class DuplicateLink(_Model):
    """An item grouped under an earlier, similar one (its canonical): it gets no card of its
    own but a reply in the canonical card's thread, and the canonical's label stands for
    the group. Set by the duplicate detector when the item is posted (`by` is
    `DETECTOR`), or by a reviewer's "Duplicate of..."; a "Not a duplicate" removes it."""

    item_id: str
    canonical_id: str
    similarity: float = Field(ge=-1.0, le=1.0)
    by: str
    platform: str = "cli"
    created_at: UTCDateTime = Field(default_factory=utcnow)


class DuplicateVote(_Model):
    """A reviewer's merge ("Duplicate of...": `same`) or split ("Not a duplicate") of two
    items, with their similarity then: what the duplicate threshold learns from."""

    id: str = Field(default_factory=lambda: f"dup_{uuid.uuid4().hex[:20]}")
    item_id: str
    other_id: str
    same: bool
    similarity: float = Field(ge=-1.0, le=1.0)
    reviewer: str
    platform: str = "cli"
    created_at: UTCDateTime = Field(default_factory=utcnow)


class ThemeName(_Model):
    """A reviewer's name for a theme (`core.themes`), kept with the theme's centre (the
    mean embedding of its items, which no text can be read back from): a theme of a later
    period whose centre sits close to it takes the name, and two themes a reviewer merged
    carry one name.

    A centre is only comparable with embeddings of the same encoder, and a newly promoted
    fine-tuned encoder moves every embedding: `space` is the encoder's embedding of a fixed
    probe text, and `item_ids` the theme's reports when it was named, so the centre can be
    worked out again under a new encoder (`core.themes`)."""

    id: str = Field(default_factory=lambda: f"thm_{uuid.uuid4().hex[:20]}")
    name: str = Field(min_length=1, max_length=80)
    centroid: list[float]
    by: str
    space: list[float] = Field(default_factory=list)  # empty: named before it was kept
    item_ids: list[str] = Field(default_factory=list)
    created_at: UTCDateTime = Field(default_factory=utcnow)


class RewardData(_Model):
    """Agent Lightning's RewardData shape: what an RL trainer receives."""

    value: float = Field(ge=-1.0, le=1.0)
    source: str
    reason: str


class Reward(_Model):
    """A reward for one model prediction, scored against the item's consensus label."""

    item_id: str
    model_version: str
    value: float = Field(ge=-1.0, le=1.0)
    source: str
    reason: str
    created_at: UTCDateTime = Field(default_factory=utcnow)

    def as_reward_data(self) -> RewardData:
        return RewardData(value=self.value, source=self.source, reason=self.reason)


class PostRecord(_Model):
    """The outbox entry of one item for one destination (e.g. "slack:C123").

    An item is stored first and posted after; the outbox is how a crash or an outage
    between the two ends with the item posted exactly once. `ref` is the platform's id
    of the posted card (Slack's message ts), which reactions and updates look up.
    A post that fails waits `next_attempt_at` (its own backoff: the posts behind it go on);
    one the platform refuses for good ends `dead`. A vote marks a posted card `stale`,
    and the same queue rewrites it.
    """

    item_id: str
    target: str
    status: Literal["pending", "claimed", "posted", "dead"] = "pending"
    ref: str | None = None
    claimed_by: str | None = None
    claimed_until: UTCDateTime | None = None
    attempts: int = 0
    next_attempt_at: UTCDateTime | None = Field(
        default=None, description="Not retried before this (backoff after a failure)"
    )
    stale: bool = Field(default=False, description="The posted card needs a rewrite")
    last_error: str | None = None
    detail: dict[str, Any] = Field(
        default_factory=dict,
        description="What a destination keeps besides its ref (a GitHub issue: the draft, "
        "who asked for it, its state on GitHub)",
    )
    created_at: UTCDateTime = Field(default_factory=utcnow)
    updated_at: UTCDateTime = Field(default_factory=utcnow)


class ModelRecord(_Model):
    """A trained model in the registry: what it is, what it was trained on, how it scored.

    The weights travel next to it as bytes (the heads as an .npz archive, plus fp16 encoder
    weights when fine-tuned), so every process on the store (bots, trainer) sees the same
    models and the same promoted one.
    """

    version: str
    created_at: UTCDateTime = Field(default_factory=utcnow)
    taxonomy_fingerprint: str
    config: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    train_count: int = 0
    eval_count: int = 0
    promoted_at: UTCDateTime | None = None


class AuditEvent(_Model):
    """A record that items were deleted (`forget`, `prune`), without their content.

    It says which items went (their ids), when, why (`selector`, `reason`) and how much
    (`counts` per kind: items, triages, votes, labels, rewards, posts); `cards` are the
    chat messages left in their channels (`target ref`) for a human to delete. `seq` is
    given by the store, increasing: a running bot reads the events after the last it saw.
    """

    seq: int = 0
    id: str = Field(default_factory=lambda: f"aud_{uuid.uuid4().hex[:20]}")
    at: UTCDateTime = Field(default_factory=utcnow)
    action: Literal["forget", "prune"]
    by: str = Field(default="cli", description="Who ran it: the CLI's user, or the bot")
    selector: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None
    item_ids: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    cards: list[str] = Field(default_factory=list)


def _code_span(value: str) -> str:
    return f"`{value}`"


def submitter_on(item: FeedbackItem, platform: str) -> str | None:
    """The id of the first person who sent the item from `platform` (`slack`, `discord`):
    intake records them as `platform:id`. The renderer checks the id's shape."""
    for submitter in item.metadata.get("submitters") or []:
        kind, _, who = str(submitter).partition(":")
        if kind == platform and who:
            return who
    return None


def item_facts(item: FeedbackItem, literal: Callable[[str], str] = _code_span) -> list[str]:
    """Where an item came from, as short phrases (every platform's card shows them).

    The page and form type are whatever the sender wrote: `literal` shows each as a
    literal (a platform's renderer escapes and clips it there)."""
    facts = []
    if item.page:
        facts.append(f"page {literal(item.page[:200])}")
    if item.form_type:
        facts.append(f"form {literal(item.form_type)}")
    if item.rating is not None:
        facts.append(f"rating {item.rating:g}")
    if item.pii_kinds:
        facts.append("redacted: " + ", ".join(item.pii_kinds))
    return facts


@dataclass
class CardView:
    """Everything a card shows, read from the store: what each platform's pure renderer
    turns into Block Kit or an embed. `minimal` asks for the fallback card (the item id,
    the prediction and a short excerpt) after the platform refused the full one."""

    item: FeedbackItem
    triage: Triage
    votes: list[Validation] = field(default_factory=list)
    label: Label | None = None
    similar: list[tuple[FeedbackItem, Label, float]] = field(default_factory=list)
    # The item's GitHub issues (`core.issues.IssueLink`), and the repository a "Create
    # issue" button opens one in (None: the button is not shown).
    issues: list[Any] = field(default_factory=list)
    issue_repo: str | None = None
    # Who owns the item (`core.owners.OwnerChoice`, None: nobody), and the owners the Assign
    # menu offers (empty: no menu).
    owner: Any = None
    owners: list[str] = field(default_factory=list)
    # Duplicates (`core.duplicates`): the items grouped under this one, oldest first; or,
    # for a grouped item, its canonical and the ref of the canonical's card on this target
    # (the thread its reply goes in; None: it has a card of its own). `candidates` is what
    # "Duplicate of..." offers (the most similar other open cards, with their scores);
    # `grouping` is False when duplicates are turned off (no menu, no button).
    group: list[FeedbackItem] = field(default_factory=list)
    duplicate_of: FeedbackItem | None = None
    duplicate_score: float | None = None
    thread_ref: str | None = None
    candidates: list[tuple[FeedbackItem, float]] = field(default_factory=list)
    grouping: bool = False
    # A rewrite of a message already posted (an edit notifies nobody of a mention in it).
    edit: bool = False

    @property
    def current(self) -> tuple[str, str]:
        """Category and severity as they stand: the label's, else the prediction's."""
        if self.label is not None:
            return self.label.category, self.label.severity
        return self.triage.category, self.triage.severity
