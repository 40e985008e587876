"""Intake: every source's feedback becomes a stored item here, and only here.

A Slack message, `/triage <text>`, the Slack submit modal, a Discord message or command,
the website form's webhook, a file row and a MongoDB document all arrive as a
`Submission` (what the source said, unchecked) and leave as a stored `FeedbackItem`:
- every field is type-checked, and a bad one is named in the error;
- every user-derived field (text, page, form type, metadata strings and keys) is redacted
  before it is stored, shown or sent to a model; facts the platform itself supplies
  (`origin`: channel and message ids) are kept as they are;
- the id is namespaced by source (`stable_id("fb", source, ref or text)`): two import files
  that both have `id: 1` are two items, a redelivered event is the same one;
- the item and its outbox entries are written together, before any side effect; nothing is
  triaged here, so an ack never waits for a model (the outbox triages in micro-batches);
- a second submitter of the same item is recorded, not dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.governance import InputError, clean_text, redact
from core.models import FeedbackItem, stable_id, utcnow
from core.ports import Store
from core.runtime import TriageSettings

MAX_TEXT_BYTES = TriageSettings().max_text_bytes  # `[triage] max_text_bytes`
FORM_TYPE_CHARS = 64  # a form type is a short name; anything longer is clipped
PAGE_CHARS = 2048  # browsers' practical URL limit


@dataclass(frozen=True)
class Submission:
    """What a source says about one piece of feedback, before anything is checked.

    Fields are typed `Any` on purpose: sources hand over whatever they parsed, and
    `to_item` is where types are checked and a bad field is named.
    """

    text: Any
    source: str  # slack, slack-command, discord, discord-command, webhook, file, mongodb, cli
    ref: str | None = None  # the source's own id of this submission (channel:ts, file:id, ...)
    submitter: str | None = None  # who sent it, as "<platform>:<user id>", when known
    form_type: Any = None
    page: Any = None
    rating: Any = None
    metadata: Any = None  # user-derived (a form's free-form fields): redacted
    origin: Mapping[str, Any] | None = None  # platform-built facts (ids): kept as they are
    received_at: datetime | None = None


@dataclass(frozen=True)
class Accepted:
    """A stored submission: the item (as stored) and whether it was new."""

    item: FeedbackItem
    is_new: bool

    @property
    def item_id(self) -> str:
        return self.item.id


def _optional_text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(f"{name} must be text, got {type(value).__name__}")
    text = str(value).strip()
    return text or None


def _rating(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"rating must be a number, got {type(value).__name__}")
    rating = float(value)
    if not math.isfinite(rating):
        raise InputError("rating must be a finite number")
    return rating


def safe_key(key: Any) -> str:
    """A metadata key any store can hold: no NUL, no leading `$`, no `.` (MongoDB reads
    those as operators and paths). The webhook refuses such keys; other sources (files,
    MongoDB documents) keep the value under a safe key instead of losing the item."""
    text = str(key).replace("\x00", "").replace(".", "_")
    return "_" + text[1:] if text.startswith("$") else text


def redact_value(value: Any) -> Any:
    """Every string in a JSON-like value, keys included, with its PII redacted."""
    if isinstance(value, str):
        return redact(value).text
    if isinstance(value, Mapping):
        return {safe_key(redact(str(k)).text): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def to_item(submission: Submission, max_text_bytes: int = MAX_TEXT_BYTES) -> FeedbackItem:
    """Check and redact a submission; raises `InputError` naming what is wrong.

    Pure (no store): offline evaluation builds items exactly as the bot does."""
    raw = submission.text
    if not isinstance(raw, str | bytes):
        raise InputError(f"text must be text, got {type(raw).__name__}")
    text = clean_text(raw, max_text_bytes)
    redaction = redact(text)
    form_type = _optional_text("form type", submission.form_type)
    page = _optional_text("page", submission.page)
    metadata = submission.metadata
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InputError(f"metadata must be an object, got {type(metadata).__name__}")
    facts: dict[str, Any] = dict(redact_value(metadata)) if metadata else {}
    facts.update(submission.origin or {})
    if submission.submitter:
        facts["submitters"] = [submission.submitter]
    return FeedbackItem(
        id=stable_id("fb", submission.source, submission.ref or text),
        text=text,
        redacted_text=redaction.text,
        pii_kinds=redaction.kinds,
        source=submission.source,
        external_ref=submission.ref,
        form_type=redact(form_type[:FORM_TYPE_CHARS]).text.lower() if form_type else None,
        page=redact(page[:PAGE_CHARS]).text if page else None,
        rating=_rating(submission.rating),
        metadata=facts,
        received_at=submission.received_at or utcnow(),
    )


class Intake:
    """Stores submissions with their outbox entries and wakes whoever posts them."""

    def __init__(self, store: Store, max_text_bytes: int = MAX_TEXT_BYTES) -> None:
        self.store = store
        self.max_text_bytes = max_text_bytes
        self._wakers: list[Callable[[], None]] = []

    def on_accept(self, wake: Callable[[], None]) -> None:
        """Call `wake` after every accepted item (an outbox worker waiting for work)."""
        self._wakers.append(wake)

    def accept(self, submission: Submission, post_to: Sequence[str] = ()) -> Accepted:
        """Check, redact and store one submission, queued for `post_to`; never triages."""
        item = to_item(submission, self.max_text_bytes)
        if post_to:
            # Kept with the item: a restart's recovery re-queues what a crash left unqueued.
            item.metadata["post_to"] = list(post_to)
        is_new = self.store.add_item(item, post_to)
        if not is_new:
            if submission.submitter:
                self.store.add_submitter(item.id, submission.submitter)
            item = self.store.get_item(item.id) or item
        for wake in self._wakers:
            wake()
        return Accepted(item, is_new)
