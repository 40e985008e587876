"""The website feedback form's webhook: authenticate, parse, and say exactly what is wrong.

Platform-neutral and pure: the HTTP server maps `WebhookError.status` to its response.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

MAX_BODY_BYTES = 64 * 1024
SIGNATURE_HEADER = "X-Triage-Signature"
TIMESTAMP_HEADER = "X-Triage-Timestamp"
TIMESTAMP_TOLERANCE_S = 5 * 60  # a timestamped request older (or newer) than this is refused
FIELDS = {"type", "rating", "comment", "page", "metadata"}
MAX_METADATA_DEPTH = 8  # MongoDB refuses documents nested past 100 levels; forms need few
# Integers must fit BSON's int64 (MongoDB refuses bigger ones); checking the digit count
# first keeps Python's int-digit limit (a ValueError on 4,300+ digits) from ever being hit.
MAX_INT_DIGITS = 19
INT_BOUND = 2**63


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


def signed_message(body: bytes, timestamp: str | None) -> bytes:
    """What the HMAC covers: the raw body, or `<timestamp>.<body>` when the sender puts a
    timestamp in X-Triage-Timestamp. A timestamp is digits only, so no plain body (a JSON
    object starts with `{`) can pass for a timestamped one or the other way round."""
    return body if timestamp is None else timestamp.encode() + b"." + body


def sign(body: bytes, secret: str, timestamp: str | int | None = None) -> str:
    """The header value a sender puts in X-Triage-Signature (with `timestamp`: the value it
    also sends in X-Triage-Timestamp, Unix seconds)."""
    message = signed_message(body, None if timestamp is None else str(timestamp))
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    body: bytes,
    signature: str | None,
    secret: str,
    *,
    timestamp: str | None = None,
    now: float | None = None,
) -> None:
    """Check the body's HMAC, and with a timestamp that it is recent (replay protection).

    `secret` may list several, comma-separated ("new,old"): any of them verifies, so a
    secret is rotated without refusing a single submission.
    """
    if not signature:
        raise WebhookError(401, f"missing {SIGNATURE_HEADER} header")
    if timestamp is not None:
        timestamp = timestamp.strip()
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            raise WebhookError(401, f"bad {TIMESTAMP_HEADER}: expected Unix seconds (digits only)")
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    given = signature.strip().encode("utf-8", "surrogatepass")
    secrets = [s.strip() for s in secret.split(",") if s.strip()]
    matches = [hmac.compare_digest(given, sign(body, s, timestamp).encode()) for s in secrets]
    if not any(matches):
        covered = "the body" if timestamp is None else f"<{TIMESTAMP_HEADER}>.<body>"
        raise WebhookError(401, f"bad {SIGNATURE_HEADER}: HMAC-SHA256 of {covered} does not match")
    # Checked once the signature holds: "stale" then means authentic but old.
    if timestamp is not None and abs((time.time() if now is None else now) - int(timestamp)) > (
        TIMESTAMP_TOLERANCE_S
    ):
        raise WebhookError(
            401,
            f"stale {TIMESTAMP_HEADER}: more than {TIMESTAMP_TOLERANCE_S // 60} minutes "
            "from the server's clock (a replay, or a clock to fix)",
        )


class _OutOfBounds(ValueError):
    """A JSON number no store can keep; raised from inside the decoder."""


def _parse_int(literal: str) -> int:
    digits = literal.lstrip("-")
    if len(digits) > MAX_INT_DIGITS or not -INT_BOUND <= int(literal) < INT_BOUND:
        shown = literal if len(literal) <= 24 else f"{literal[:12]}… ({len(digits)} digits)"
        raise _OutOfBounds(f"integer {shown} is out of range (it must fit in 64 bits)")
    return int(literal)


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        shown = literal if len(literal) <= 24 else f"{literal[:12]}…"
        raise _OutOfBounds(f"number {shown} is out of range (too large for a 64-bit float)")
    return value


def _parse_constant(name: str) -> Any:
    raise _OutOfBounds(f"{name} is not a JSON number (only finite numbers are accepted)")


def _shown_key(key: str) -> str:
    return repr(key if len(key) <= 40 else key[:40] + "…")


def _check_metadata(value: Any, depth: int) -> None:
    """What every store can keep, as it is: bounded nesting, and keys that are plain
    names. MongoDB reads a key starting with `$` as an operator (`$where`) and one with a
    `.` as a path, and BSON cannot hold a NUL in a key; such keys are refused at any depth,
    inside lists too, rather than stored as something they are not."""
    if depth > MAX_METADATA_DEPTH:
        raise WebhookError(400, f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, dict):
        for key, inner in value.items():
            if "\x00" in key:
                raise WebhookError(400, "metadata keys must not contain NUL characters")
            if key.startswith("$"):
                raise WebhookError(400, f"metadata key {_shown_key(key)} must not start with $")
            if "." in key:
                raise WebhookError(400, f"metadata key {_shown_key(key)} must not contain '.'")
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
        data = json.loads(
            body.decode("utf-8"),
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except UnicodeDecodeError:
        raise WebhookError(400, "body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise WebhookError(
            400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except _OutOfBounds as exc:
        raise WebhookError(400, f"bad number: {exc}") from None
    except RecursionError:
        raise WebhookError(400, "malformed JSON: nested too deeply") from None
    except ValueError as exc:  # anything else the decoder refuses is still the body's fault
        raise WebhookError(400, f"malformed JSON: {exc}") from None
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
