"""Input governance: the gate every inbound text passes, and PII redaction.

Feedback arrives from chat platforms where people paste logs, configs and contact
details. Nothing a user typed may be shown, stored for training or sent to a model
until `redact` has run, and nothing reaches `redact` until `clean_text` has accepted it.
Everything here is stdlib-only and regex-based so it is cheap enough to run on every
message; the patterns are precompiled and anchored so 1 MB redacts in well under a second.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["InputError", "Redaction", "clean_text", "noise_signals", "redact"]


class InputError(ValueError):
    """Inbound text was refused; the message is one line, safe to show the user."""


@dataclass(frozen=True)
class Redaction:
    """Redacted text plus which PII kinds were found (sorted, unique) for auditing."""

    text: str
    kinds: list[str]


# Performance idiom used below: every pattern starts with a plain character class (e.g.
# `[0-9]`) and only then asserts its left context with a lookbehind that includes that
# character. CPython's `re` can then skip quickly to candidate characters instead of
# trying the whole pattern at every position; this is what keeps 1 MB well under 1 s.

# --------------------------------------------------------------------------- secrets
# High-precision token prefixes, dispatched on their first character.
_TOKEN_RE = re.compile(
    r"[xgsAe](?<![A-Za-z_-].)(?:"
    r"(?<=x)(?:ox[abprs]|app)-[A-Za-z0-9-]{10,}"  # Slack xoxb-/xoxp-/..., xapp-
    r"|(?<=g)(?:h[pousr]_[A-Za-z0-9]{20,}|ithub_pat_[A-Za-z0-9_]{20,})"  # GitHub
    r"|(?<=s)k-[A-Za-z0-9_-]{20,}"  # OpenAI-style sk-...
    r"|(?<=A)(?:(?:KIA|SIA)[0-9A-Z]{16}(?![A-Za-z0-9])"  # AWS access key id
    r"|Iza[0-9A-Za-z_-]{35})"  # Google API key
    r"|(?<=e)yJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"  # JWT
    r")"
)

_BEARER_RE = re.compile(r"([Bb](?<![A-Za-z_].)(?i:earer)[ \t]+)[A-Za-z0-9._~+/=-]{8,}")

# `key = value`, `key: value`, `"key": "value"`; the key name stays, the value goes.
_KEYWORD = (
    r"[AaCcPpSsTt](?i:(?<=a)(?:pi[_-]?key|ccess[_-]?key|uth)|(?<=s)ecret|(?<=t)oken"
    r"|(?<=p)(?:assw(?:or)?d|wd|rivate[_-]?key)|(?<=c)redentials?)"
)
_ASSIGN_RE = re.compile(
    r"(" + _KEYWORD + r"[A-Za-z0-9_-]{0,40}[\"']?[ \t]*(=>?|:)[ \t]*([\"']?))"
    r"([^\s\"'`,;&<>\[\](){}=][^\s\"'`,;&<>\[\](){}]{5,})"
)
_ASSIGN_NEEDLES = ("key", "secret", "token", "pass", "pwd", "auth", "credential")
# Bare (unquoted) values must look like a credential, not like code such as
# `token = get_token()` or prose such as `token: expired`.
_CREDENTIAL_HINT_RE = re.compile(r"[0-9+/=@!#$%^*~-]")

# ---------------------------------------------------------------------------- emails
# A match may start only at the beginning of a local-part run (keeps scanning linear), so
# emails glued together (`a@b.cc0@d.ee`) are taken as one chain; otherwise the second
# would hide behind the first and survive.
_DOMAIN = r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9._%+-](?<![A-Za-z0-9._%+-].)[A-Za-z0-9._%+-]*"
    + _DOMAIN
    + r"(?:[A-Za-z0-9._%+-]*+"
    + _DOMAIN
    + r")*"
)

# ------------------------------------------------------------------------------- IPs
# Candidates only; `ipaddress` decides. Requiring two colons keeps times like 12:30 out,
# the lookbehind keeps C++ `std::vector` out, and a digit is required (see _sub_ipv6).
_IPV6_CANDIDATE_RE = re.compile(
    r"[0-9A-Fa-f:](?<![\w:].)(?:(?<=:)|[0-9A-Fa-f]{0,3}:)(?:[0-9A-Fa-f]{0,4}:){1,6}"
    r"(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?"
    r"(?![\w:]|\.[0-9])"
)
# Exactly four dotted parts: `1.2.3` (a version) never qualifies; octets checked in code.
_IPV4_CANDIDATE_RE = re.compile(r"[0-9](?<![\w.].)[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?![\w]|\.[0-9])")

_V6_HEAD_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,6}$")

# ----------------------------------------------------------------------------- cards
# 13-19 digits, single spaces or dashes allowed between digits, not part of a longer run.
_CARD_CANDIDATE_RE = re.compile(
    r"[0-9](?<![\w.+].)(?<![0-9][ -].)(?:[ -]?[0-9]){12,18}"
    r"(?![\w])(?![ -][0-9])(?![.,][0-9])"
)

# ---------------------------------------------------------------------------- phones
# Shapes only; digit counts and date look-alikes are checked in _sub_phone. Dotted
# versions, ISO dates, times, status codes, issue numbers and ports do not fit a shape.
_PHONE_RE = re.compile(
    r"[0-9+(](?<![\w.+-][0-9])(?<![^\W\d]\+|\+\+)(?:"
    r"(?<=\+)[0-9]{1,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}"  # +CC international
    r"|(?<=\()[0-9]{3}\)[ ]?[0-9]{3}[ .-][0-9]{4}(?![0-9])"  # (555) 123-4567
    r"|(?<=1)[ .-]?(?:\([0-9]{3}\)[ ]?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}(?![0-9])"  # 1-555-...
    r"|(?<=[0-9])[0-9]{2}[ .-][0-9]{3}[ .-][0-9]{4}(?![0-9])"  # 555-123-4567, 555.123.4567
    r"|(?<=0)[0-9]{1,4}(?:[ -][0-9]{2,8}){1,5}(?![0-9])"  # national: 020 7946 0958
    r"|(?<=[0-9])(?P<bare>[0-9]{8,14})(?![0-9])"  # bare run: only with phone context
    r")"
)
# A bare digit run is a phone only right after words like "phone:" or "call me at".
_PHONE_CONTEXT_RE = re.compile(
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|whatsapp|fax|sms|call(?:[ \t]+me)?"
    r"|text[ \t]+me)\b(?:[ \t]*(?:number|no\.?|\#))?[ \t]*[:=]?[ \t]*(?:(?:at|on|is)[ \t]+)?$"
)
_DATE_RE = re.compile(
    r"(?:19|20)[0-9]{2}[-/.][0-9]{1,2}[-/.][0-9]{1,2}"
    r"|[0-9]{1,2}[-/.][0-9]{1,2}[-/.](?:19|20)[0-9]{2}(?![0-9])"
)


def _luhn_ok(digits: str) -> bool:
    """Luhn checksum: separates real card numbers from arbitrary long ids."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _sub_assign(m: re.Match[str]) -> str:
    sep, quote, value = m.group(2), m.group(3), m.group(4)
    if quote:
        return m.group(1) + "[secret]"
    # In prose (`password: hunter2.`) trailing punctuation is not part of the value.
    bare = value.rstrip(".!?:") if sep == ":" else value
    if len(bare) < 6 or not _CREDENTIAL_HINT_RE.search(bare):
        return m.group(0)
    return m.group(1) + "[secret]" + value[len(bare) :]


def _sub_ipv6(m: re.Match[str]) -> str:
    cand = m.group(0)
    if not any(c.isdigit() for c in cand):  # `abc::def` is code, not an address
        return cand
    try:
        ipaddress.IPv6Address(cand)
    except ValueError:
        return cand
    return "[ip]"


def _sub_ipv4(m: re.Match[str]) -> str:
    cand = m.group(0)
    parts = cand.split(".")
    if not all(int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in parts):
        return cand
    start = m.start()
    if start and m.string[start - 1] == ":":
        # `::ffff:192.0.2.1`: leave it whole for the IPv6 stage rather than split it.
        head = _V6_HEAD_RE.search(m.string, max(0, start - 40), start)
        if head is not None:
            try:
                ipaddress.IPv6Address(head.group(0) + cand)
            except ValueError:
                pass
            else:
                return cand
    return "[ip]"


def _sub_card(m: re.Match[str]) -> str:
    digits = m.group(0).replace(" ", "").replace("-", "")
    return "[card]" if _luhn_ok(digits) else m.group(0)


def _sub_phone(m: re.Match[str]) -> str:
    whole = m.group(0)
    bare = m.group("bare") is not None
    if bare and not _PHONE_CONTEXT_RE.search(m.string, max(0, m.start() - 40), m.start()):
        return whole
    if whole.startswith("+") and m.end() < len(m.string) and m.string[m.end()].isdigit():
        return whole  # the +CC run continues past what the shape allows: not a phone
    n = sum(c.isdigit() for c in whole)
    low = 8 if whole.startswith("+") else 9
    if not low <= n <= 15 or _DATE_RE.search(whole):
        return whole
    return "[phone]"


_Repl = Callable[[re.Match[str]], str] | str
_Stage = tuple[str, re.Pattern[str], _Repl, str]

# Order matters: secrets and emails contain digit runs that later stages would misread,
# and cards/IPv4 must go before phones, whose rules are the loosest. IPv6 goes last: no
# other rule uses ':' and its digits-only groups must not hide a phone or card.
_STAGES: tuple[_Stage, ...] = (
    ("secret", _TOKEN_RE, "[secret]", ""),
    ("secret", _BEARER_RE, r"\1[secret]", ""),
    ("secret", _ASSIGN_RE, _sub_assign, ""),
    ("email", _EMAIL_RE, "[email]", "@"),
    ("card", _CARD_CANDIDATE_RE, _sub_card, ""),
    ("ip", _IPV4_CANDIDATE_RE, _sub_ipv4, "."),
    ("phone", _PHONE_RE, _sub_phone, ""),
    ("ip", _IPV6_CANDIDATE_RE, _sub_ipv6, ":"),
)
# A placeholder can change the left context of a neighbouring candidate (`5551234567`
# glued to a card, say), so redaction repeats until nothing changes; two passes in
# practice, bounded in case of pathological input.
_MAX_PASSES = 6


def _redact_once(text: str) -> tuple[str, set[str]]:
    found: set[str] = set()
    lowered = text.lower()
    for kind, pattern, repl, needle in _STAGES:
        if needle and needle not in text:
            continue  # cheap skip: no '@' means no email, and so on
        if pattern is _ASSIGN_RE and not any(w in lowered for w in _ASSIGN_NEEDLES):
            continue
        new, count = pattern.subn(repl, text)
        if count and new != text:
            found.add(kind)
            text = new
    return text, found


def redact(text: str) -> Redaction:
    """Replace PII with `[kind]` placeholders so the text is safe to show, store or model.

    Placeholders never match any rule and passes repeat to a fixed point, so redacting
    already-redacted text is a no-op.
    """
    found: set[str] = set()
    for _ in range(_MAX_PASSES):
        new, kinds = _redact_once(text)
        if new == text:
            break
        found |= kinds
        text = new
    return Redaction(text=text, kinds=sorted(found))


# ---------------------------------------------------------------------------- clean_text
_CONTROL_RE = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_EDGE_SPACE_RE = re.compile(r"^[\s\u200b-\u200d\u2060\ufeff]+|[\s\u200b-\u200d\u2060\ufeff]+$")


def clean_text(raw: str | bytes, max_bytes: int) -> str:
    """Decode, vet and normalise inbound text; refuse anything that is not real text.

    Raises InputError with a one-line, user-facing reason.
    """
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("binary content: not valid UTF-8 text") from None
    else:
        text = raw
    if "\x00" in text:
        raise InputError("binary content: text contains NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from a JSON "\ud800" escape
        raise InputError("invalid text: unpaired surrogate characters") from None
    if text:
        controls = len(_CONTROL_RE.findall(text))
        if controls * 10 > len(text):
            raise InputError("binary content: too many control characters")
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    text = _EDGE_SPACE_RE.sub("", text)
    if not text:
        raise InputError("empty feedback text")
    n = len(text.encode("utf-8"))
    if n > max_bytes:
        raise InputError(f"feedback text is {n} bytes, over the {max_bytes}-byte limit")
    return text


# ------------------------------------------------------------------------- noise_signals
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# CJK scripts have no spaces, so each ideograph counts as a word.
_WORD_RE = re.compile(r"[" + _CJK + r"]|[^\W_" + _CJK + r"]+")
_REPEAT_RE = re.compile(r"([^\s\d\-=_*#~.])\1{5,}")
_MASH_RE = re.compile(
    r"(?i)asdf|qwer|zxcv|jkl;|sdfgh|dfghj|fghjk|ghjkl|werty|ertyu|rtyui|tyuio|yuiop"
    r"|xcvbn|cvbnm|lkjh|poiuy|fdsa|rewq"
)
_NO_VOWEL_WORD_RE = re.compile(r"(?i)\b[b-df-hj-np-tv-xz]{8,}\b")
_LINK_RE = re.compile(r"(?i)\bhttps?://|\bwww\.")
_PROMO_RE = re.compile(
    r"(?i)\b(?:seo|backlinks?|guest[ -]?post(?:s|ing)?|casino|crypto(?:currency)?|bitcoin"
    r"|forex|followers|check out my|subscribe to my|discount code|promo code|coupon code"
    r"|buy now|click here|earn money|make money|work from home|viagra|onlyfans)\b"
)


def noise_signals(text: str) -> list[str]:
    """Cheap lexical signs that an item is not actionable; a model feature, not a verdict."""
    signals: list[str] = []
    if len(_WORD_RE.findall(text)) < 3:
        signals.append("very_short")
    letters = [c for c in text if c.isalpha()]
    if not letters:
        signals.append("no_letters")
    if _REPEAT_RE.search(text):
        signals.append("repeated_chars")
    if _MASH_RE.search(text) or _NO_VOWEL_WORD_RE.search(text):
        signals.append("keyboard_mash")
    if len(_LINK_RE.findall(text)) >= 2:
        signals.append("many_links")
    if _PROMO_RE.search(text):
        signals.append("promo")
    cased = [c for c in letters if c.isupper() or c.islower()]
    if len(cased) > 10 and sum(c.isupper() for c in cased) >= 0.8 * len(cased):
        signals.append("all_caps")
    return signals
