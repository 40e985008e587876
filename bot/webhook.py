"""The website feedback form's webhook: authenticate, parse, and say exactly what is wrong.

Platform-neutral and pure: the HTTP server maps `WebhookError.status` to its response.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

MAX_BODY_BYTES = 64 * 1024
SIGNATURE_HEADER = "X-Triage-Signature"
FIELDS = {"type", "rating", "comment", "page", "metadata"}
MAX_METADATA_DEPTH = 8  # MongoDB refuses documents nested past 100 levels; forms need few


class WebhookError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class FormFeedback:
    comment: str
    form_type: str | None
    rating: float | None
    page: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    body_sha256: str = ""


def sign(body: bytes, secret: str) -> str:
    """The header value a sender puts in X-Triage-Signature."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str | None, secret: str) -> None:
    """Check the body's HMAC. `secret` may list several, comma-separated ("new,old"): any
    of them verifies, so a secret is rotated without refusing a single submission."""
    if not signature:
        raise WebhookError(401, f"missing {SIGNATURE_HEADER} header")
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    given = signature.strip().encode("utf-8", "surrogatepass")
    secrets = [s.strip() for s in secret.split(",") if s.strip()]
    matches = [hmac.compare_digest(given, sign(body, s).encode()) for s in secrets]
    if not any(matches):
        raise WebhookError(401, f"bad {SIGNATURE_HEADER}: HMAC-SHA256 of the body does not match")


def _check_metadata(value: Any, depth: int) -> None:
    """What every store can keep: bounded nesting, no NUL in keys (BSON refuses them)."""
    if depth > MAX_METADATA_DEPTH:
        raise WebhookError(400, f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, dict):
        for key, inner in value.items():
            if "\x00" in key:
                raise WebhookError(400, "metadata keys must not contain NUL characters")
            _check_metadata(inner, depth + 1)
    elif isinstance(value, list):
        for inner in value:
            _check_metadata(inner, depth + 1)


def parse(body: bytes, content_type: str | None) -> FormFeedback:
    """Validate a form submission: {"type", "rating", "comment", "page", "metadata"}."""
    if len(body) > MAX_BODY_BYTES:
        raise WebhookError(413, f"body is {len(body)} bytes, over the {MAX_BODY_BYTES}-byte limit")
    if (
        content_type is not None
        and content_type.split(";")[0].strip().lower() != "application/json"
    ):
        raise WebhookError(415, f"content type must be application/json, got {content_type!r}")
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise WebhookError(400, "body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise WebhookError(
            400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise WebhookError(400, "malformed JSON: nested too deeply") from None
    try:  # "\ud800" escapes decode to lone surrogates, which no store can encode
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookError(
            400, "malformed JSON: unpaired surrogate escape (\\uD800-\\uDFFF)"
        ) from None
    if not isinstance(data, dict):
        raise WebhookError(400, f"body must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise WebhookError(400, f"unknown field(s): {', '.join(unknown)}")
    comment = data.get("comment")
    if not isinstance(comment, str) or not comment.strip():
        raise WebhookError(400, "comment must be a non-empty string")
    form_type = data.get("type")
    if form_type is not None and not isinstance(form_type, str):
        raise WebhookError(400, "type must be a string")
    rating = data.get("rating")
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int | float)):
        raise WebhookError(400, "rating must be a number")
    if rating is not None and not 0 <= rating <= 10:
        raise WebhookError(400, "rating must be between 0 and 10")
    page = data.get("page")
    if page is not None and not isinstance(page, str):
        raise WebhookError(400, "page must be a string")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise WebhookError(400, "metadata must be an object")
    _check_metadata(metadata, 1)
    return FormFeedback(
        comment=comment,
        form_type=form_type,
        rating=float(rating) if rating is not None else None,
        page=page,
        metadata=metadata,
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
