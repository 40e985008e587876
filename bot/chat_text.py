"""Text bound for a chat platform: what Slack's and Discord's renderers share.

Both renderers show untrusted text (feedback, pages, form types, reviewers' actions), so
each piece goes through the same three steps: `printable` (no control characters, no lone
surrogates, one kind of line break), the platform's escaping, and `clip` to the platform's
limit measured after formatting. Links come only from `web_url`, which rebuilds an http(s)
URL from its parsed parts or refuses it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import SplitResult, quote, urlsplit

ELLIPSIS = "…"
URL_CHARS = 1000  # longer pages are shown as text, never linked

_BREAKS = re.compile("\r\n|[\r\v\f\x85\u2028\u2029]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1, except tab and newline
_SURROGATE = re.compile("[\ud800-\udfff]")
# Refused anywhere in a URL: whitespace, controls, and the characters chat markup reads.
_NOT_IN_URL = re.compile(r"[\s\x00-\x1f\x7f-\x9f|<>\\\"`{}^]")
_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
# A last label a browser reads as a number makes the whole host an IPv4 address (WHATWG
# URL: "ends in a number"): `127.1`, `2130706433`, `0x7f.1`, `0177.0.0.1`.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 3986 pchar less ( ) * [ ] and ' , which Markdown and mrkdwn links give meaning to.
_PATH_SAFE = "-._~!$&+;=:@/%"


def printable(text: str) -> str:
    """Text a chat client shows as written: line breaks as "\\n", other control characters
    removed, lone surrogates (which no JSON encoder should send) as U+FFFD."""
    text = _BREAKS.sub("\n", text)
    text = _CONTROL.sub("", text)
    return _SURROGATE.sub("\ufffd", text)


def width(text: str) -> int:
    """Length in UTF-16 code units: what JavaScript counts, never less than the code points
    Python counts, so a text within a limit by this measure is within it either way."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def prefix_within(text: str, units: int) -> int:
    """The largest index `i` with `width(text[:i]) <= units` (never inside a character)."""
    if units <= 0:
        return 0
    if len(text) <= units and width(text) <= units:
        return len(text)
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            return index
    return len(text)


def clip(text: str, limit: int, boundary: Callable[[str, int], int] | None = None) -> str:
    """`text` within `limit` units, or its longest fitting prefix and an ellipsis.

    `boundary(text, end)` moves a cut back out of an escape sequence (a platform's `&amp;`
    or `\\*`), so the prefix is still well-formed markup."""
    if width(text) <= limit:
        return text
    end = prefix_within(text, limit - width(ELLIPSIS))
    if boundary is not None:
        end = boundary(text, end)
    return text[:end] + ELLIPSIS


def one_line(text: str) -> str:
    """Printable text on one line (a notification, an excerpt, a list entry)."""
    return " ".join(printable(text).split("\n"))


def join_within(
    parts: list[str],
    limit: int,
    sep: str,
    head: str | None = None,
    boundary: Callable[[str, int], int] | None = None,
) -> str:
    """`head` and as many whole parts as fit in `limit`, then how many were left out (a
    list of votes or similar items keeps whole entries rather than a cut one)."""
    out = [] if head is None else [head]
    used = width(head or "")
    for index, part in enumerate(parts):
        left = len(parts) - index - 1
        tail = width(f"{sep}… and {left} more") if left else 0
        if used + (width(sep) if out else 0) + width(part) + tail > limit:
            out.append(f"… and {len(parts) - index} more")
            break
        used += (width(sep) if out else 0) + width(part)
        out.append(part)
    return clip(sep.join(out), limit, boundary)


def web_url(value: object) -> str | None:
    """An http(s) URL rebuilt from its parsed parts, or None.

    Refused: anything but a string, whitespace or control characters anywhere, the
    characters chat markup gives meaning to (`|`, `<`, `>`, backslash, quotes), other
    schemes, user info, IP-literal hosts, bad ports, hosts that are not DNS names. The
    path, query and fragment are percent-encoded where needed (non-ASCII, brackets,
    parentheses, stray `%`), so the result can sit inside a Slack `<url|text>` or a
    Markdown `[text](url)` without ending it."""
    if not isinstance(value, str) or not value or len(value) > URL_CHARS:
        return None
    if _NOT_IN_URL.search(value) or _SURROGATE.search(value):
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        return None
    if "@" in parts.netloc or "[" in parts.netloc or parts.hostname is None:
        return None
    try:
        host = parts.hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    if not _HOST.fullmatch(host.rstrip(".")) or is_ip_literal(host):
        return None
    netloc = host if port is None else f"{host}:{port}"
    url = SplitResult(
        scheme,
        netloc,
        _encode(parts.path, ""),
        _encode(parts.query, "?/"),
        _encode(parts.fragment, "?/"),
    ).geturl()
    return url if len(url) <= URL_CHARS else None


def is_ip_literal(host: str) -> bool:
    """Whether a browser would read `host` as an IP address in any spelling: IPv6 in
    brackets, dotted IPv4, or a last label that is a decimal, octal or hex number (what
    turns `2130706433` and `0x7f.1` into 127.0.0.1)."""
    bare = host.lower().rstrip(".")
    try:
        ipaddress.ip_address(bare.strip("[]"))
    except ValueError:
        return bool(_NUMERIC_LABEL.fullmatch(bare.rsplit(".", 1)[-1]))
    return True


def _encode(part: str, extra_safe: str) -> str:
    return quote(_STRAY_PERCENT.sub("%25", part), safe=_PATH_SAFE + extra_safe)
