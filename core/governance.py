"""Input governance: the gate every inbound text passes, and PII redaction.

Feedback arrives from chat platforms where people paste logs, configs and contact
details. Nothing a user typed may be shown, stored for training or sent to a model
until `redact` has run, and nothing reaches `redact` until `clean_text` has accepted it.
Everything here is regex-based (checksums by python-stdnum) so it is cheap enough to run
on every message; the patterns are precompiled and anchored so 1 MB redacts in well under
a second.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import NamedTuple

from stdnum import iban as _iban
from stdnum import luhn as _luhn

__all__ = [
    "PII_KINDS",
    "InputError",
    "PiiSpan",
    "Redaction",
    "clean_text",
    "noise_signals",
    "redact",
]

# Every kind `redact` reports; each is also its placeholder's name (`[email]`).
PII_KINDS = ("card", "email", "iban", "ip", "phone", "secret", "ssn")


class InputError(ValueError):
    """Inbound text was refused; the message is one line, safe to show the user."""


class PiiSpan(NamedTuple):
    """Where a placeholder came from: `text[start:end]` of the input was `kind`."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class Redaction:
    """Redacted text plus which PII kinds were found (sorted, unique) for auditing.

    `spans` say which characters of the input each placeholder replaced, so redaction
    can be measured against a labelled corpus (`triage-bot bench redaction`); they are
    worked out from `edits` only when asked for, so redacting costs nothing extra.
    """

    text: str
    kinds: list[str]
    # What each stage that changed something replaced, in that stage's own input.
    edits: tuple[tuple[_Edit, ...], ...] = field(default=(), repr=False, compare=False)

    @cached_property
    def spans(self) -> tuple[PiiSpan, ...]:
        tracked: list[_Tracked] = []
        for stage_edits in self.edits:
            tracked = _track(tracked, stage_edits)
        return tuple(PiiSpan(start, end, kind) for _, _, start, end, kind in tracked)


# Performance idiom used below: every pattern starts with a plain character class (e.g.
# `[0-9]`) and only then asserts its left context with a lookbehind that includes that
# character. CPython's `re` can then skip quickly to candidate characters instead of
# trying the whole pattern at every position; this is what keeps 1 MB well under 1 s.

# --------------------------------------------------------------------------- secrets
# A PEM private key, whole. The body stops at the next BEGIN/END line so many headers
# without an END cannot make the scan quadratic; a key pasted without its END line loses
# its base64 lines (runs of 16+ base64 characters), not the prose after it.
_PEM_LABEL = r"[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
_PEM_RE = re.compile(
    r"-(?<!--)----BEGIN" + _PEM_LABEL + r"(?:"
    r"(?:[^-]++|-(?!----(?:END|BEGIN)[ ]))*+-----END"
    + _PEM_LABEL
    + r"|(?:\s*+[A-Za-z0-9+/=]{16,}+)*+)"
)

# Incoming-webhook URLs are credentials by themselves: keep the host, drop the path.
_WEBHOOK_RE = re.compile(
    r"[hd](?<![\w.-].)(?:(?<=h)ooks\.slack\.com/(?:services|workflows|triggers)/"
    r"|(?<=d)iscord(?:app)?\.com/api/(?:v[0-9]+/)?webhooks/)"
    r"([A-Za-z0-9_/-]{8,})"
)

# `scheme://user:password@host`: the whole userinfo goes, the scheme and host stay. The
# password may contain '@' (backtracking finds the last one before the host).
_URL_CREDENTIALS_RE = re.compile(r":(?<=[A-Za-z0-9]:)//([^\s/?#\[\]:]*:[^\s/?\[\]]*)@")

# `curl -u user:password` and `--user user:password`.
_CLI_USER_RE = re.compile(
    r"-(?<![^\s]-)(?:-user|u)(?:[ \t]*+=|[ \t])[ \t]*+([\"']?)([^\s:\"'@]++):([^\s\"']+)\1(?=\s|$)"
)

# `Authorization: <scheme> <credentials>` (and Proxy-Authorization): the scheme stays.
_AUTH_HEADER_RE = re.compile(
    r"[Aa](?<![A-Za-z0-9_].)(?i:uthorization)[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"((?i:basic|bearer|token|digest|bot|apikey|api-key|key|sso-key|negotiate|ntlm)[ \t]+)?"
    r"([A-Za-z0-9._~+/=:-]{6,})"
)

# High-precision token prefixes, dispatched on their first character.
_TOKEN_RE = re.compile(
    r"[xgsrwnAeS](?<![A-Za-z_-].)(?:"
    r"(?<=x)(?:ox[abceprs]|app)-[A-Za-z0-9-]{10,}"  # Slack xoxb-/xoxp-/xoxe-/..., xapp-
    r"|(?<=g)(?:h[pousr]_[A-Za-z0-9]{20,}|ithub_pat_[A-Za-z0-9_]{20,}"  # GitHub
    r"|lpat-[A-Za-z0-9_-]{20,})"  # GitLab
    r"|(?<=s)k-[A-Za-z0-9_-]{20,}"  # OpenAI-style sk-...
    r"|(?<=[sr])k_(?:live|test)_[A-Za-z0-9]{10,}"  # Stripe secret and restricted keys
    r"|(?<=w)hsec_[A-Za-z0-9]{20,}"  # Stripe webhook signing secret
    r"|(?<=n)pm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"  # npm
    r"|(?<=S)G\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{20,64}"  # SendGrid
    r"|(?<=A)(?:(?:KIA|SIA)[0-9A-Z]{16}(?![A-Za-z0-9])"  # AWS access key id
    r"|Iza[0-9A-Za-z_-]{35})"  # Google API key
    r"|(?<=e)yJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"  # JWT
    r")"
)

_BEARER_RE = re.compile(r"([Bb](?<![A-Za-z_].)(?i:earer)[ \t]+)[A-Za-z0-9._~+/=-]{8,}")
# `Basic dXNlcjpwYXNz` outside a header: only when it decodes to `user:password`.
_BASIC_RE = re.compile(
    r"([Bb](?<![A-Za-z_].)(?i:asic)[ \t]+)([A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])"
)

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
_QUERY_KEY_START_RE = re.compile(r"[A-Za-z0-9_.-]*$")
# A reference to a secret, not the secret: `$DB_PASSWORD`, `${TOKEN}`, `{{ api_key }}`.
_REFERENCE_RE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\{\{.*\}\}|%\([A-Za-z_]+\)s")

# Passwords in prose: `my password is hunter2`, `pw: s3cret!`, `pwd=...`, `PIN: 4821`.
_PASSWORD_PROSE_RE = re.compile(
    r"(?P<word>[Pp](?<![A-Za-z0-9_].)(?i:(?<=p)(?:ass(?:w(?:or)?d|wort|code|phrase)?|wd?|in)))"
    r"(?P<sep>[ \t]*[:=][ \t]*"
    r"|[ \t]+(?i:(?:(?:is|was|got|been|has[ \t]+been)[ \t]+)?(?:set|changed|reset)[ \t]+to"
    r"|is[ \t]+now|is[ \t]+still|is|was)(?:[ \t]*:)?[ \t]+"
    r"|[ \t]+)"
    r"(?P<quote>[\"'`\u201c\u2018]?)(?P<value>[^\s\"'`\u201c\u201d\u2018\u2019]{4,64})"
)
_PROSE_HINT_RE = re.compile(r"[0-9!@#$%^&*+=~?]|[a-z][A-Z]")
_CLOSING_QUOTES = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019"}

# ---------------------------------------------------------------------------- emails
# A match may start only at the beginning of a local-part run (keeps scanning linear), so
# emails glued together (`a@b.cc0@d.ee`) are taken as one chain; otherwise the second
# would hide behind the first and survive. `%40` is an '@' percent-encoded (query strings).
_DOMAIN = r"(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9._%+-](?<![A-Za-z0-9._%+-].)[A-Za-z0-9._%+-]*"
    + _DOMAIN
    + r"(?:[A-Za-z0-9._%+-]*+"
    + _DOMAIN
    + r")*"
)

# ----------------------------------------------------------------------------- IBANs
# Shape only (country, check digits, 11-30 alphanumerics, optionally in groups of four);
# python-stdnum checks mod 97 and the country's length and format (not its bank
# directories, which go stale: a well-formed IBAN of an unknown bank is still an IBAN).
_IBAN_RE = re.compile(
    r"[A-Za-z](?<![A-Za-z0-9_].)[A-Za-z][0-9]{2}(?:[ ]?[A-Za-z0-9]{4}){2,7}"
    r"(?:[ ]?[A-Za-z0-9]{1,3})?(?![A-Za-z0-9_])"
)

# ------------------------------------------------------------------------------ SSNs
# AAA-GG-SSSS on its own; AAA GG SSSS and a bare nine-digit run only after words such as
# "SSN" or "social security". Area/group/serial rules are checked in _sub_ssn.
_SSN_RE = re.compile(
    r"[0-9](?<![\w.+/-][0-9])(?<![0-9][ -][0-9])"
    r"(?:[0-9]{2}(?P<sep>[- ])[0-9]{2}(?P=sep)[0-9]{4}|(?P<bare>[0-9]{8}))"
    r"(?![\w]|[.,/-][0-9]|[ -][0-9])"
)
_SSN_CONTEXT_RE = re.compile(
    r"(?i)(?:\bssns?|\bss\#|\bsocial[ \t]+security|\bsoc\.?[ \t]+sec\.?)(?![A-Za-z])[^\n]{0,24}$"
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

# A four-part number is a version, not an address, after a word such as "version", "v",
# "release" or "build" (`upgraded from version 1.2.3.4 to 1.2.3.5`), after a pin such as
# `==`, before a word such as "installer", or with a pre-release suffix (`10.0.0.1-beta`).
_VERSION_WORDS = frozenset(
    (
        *("version", "versions", "ver", "v", "release", "releases", "released", "rel"),
        *("build", "builds", "firmware", "fw", "rev", "revision", "patch", "patched", "sdk"),
        *("update", "updated", "updates", "updating", "upgrade", "upgraded", "upgrades"),
        *("upgrading", "downgrade", "downgraded", "downgrading", "bump", "bumped"),
    )
)
_VERSION_BETWEEN_RE = re.compile(
    r"(?i)(?:from|to|and|or|vs\.?|->|=>|→|/|,|v?[0-9]+(?:\.[0-9A-Za-z-]+)*,?)"
)
# Anything in the window that could start a version context (a superset, checked next).
_VERSION_HINT_RE = re.compile(
    r"[VvRrBbFfPpSsUuDd=~!<>](?:(?<![A-Za-z0-9_].)(?i:(?<=v)(?:er|[0-9]|\b)|(?<=r)e[lv]"
    r"|(?<=b)(?:uild|ump)|(?<=f)(?:irmware|w\b)|(?<=p)atch|(?<=s)dk|(?<=u)p(?:dat|grad)"
    r"|(?<=d)owngrad)|(?<=[=~!<>])=)"
)
# ... or right before one: "the 2.4.1.0 installer", "10.0.0.1 release notes".
_VERSION_AFTER_RE = re.compile(
    r"[ \t]+(?i:installer|release|build|update|upgrade|version|package|changelog|beta|alpha"
    r"|patch|hotfix|firmware|sdk|binary|msi|apk|dmg|exe)\b"
)
_WORD_OR_NEWLINE_RE = re.compile(r"\n|[^\s]+")
_V_VERSION_RE = re.compile(r"v[0-9]+(?:\.[0-9]+)*,?")
_VERSION_PIN_RE = re.compile(r"(?:==|>=|<=|~=|!=)[ \t]*$")
_PRERELEASE_RE = re.compile(
    r"(?i)[-+.](?:alpha|beta|rc|dev|pre|preview|snapshot|nightly|canary|final|build)"
)

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
    r"|text[ \t]+me)\b\.?(?:[ \t]*(?:number|no\.?|\#))?[ \t]*[:=]?[ \t]*(?:(?:at|on|is)[ \t]+)?$"
)
# Digits right after "build", "order #", "ticket" and the like are that id, not a phone
# or a social security number (_after_id_word).
_ID_WORDS = frozenset(
    (
        *("build", "version", "ver", "release", "order", "invoice", "ticket", "case", "ref"),
        *("reference", "tracking", "sku", "part", "serial", "model", "issue", "job", "run"),
        *("batch", "lot", "commit", "txn", "transaction", "confirmation", "booking"),
        *("reservation", "policy", "claim", "shipment", "parcel", "rma", "po"),
    )
)
_ID_QUALIFIERS = ("no.", "no", "number", "num", "id")
_DATE_RE = re.compile(
    r"(?:19|20)[0-9]{2}[-/.][0-9]{1,2}[-/.][0-9]{1,2}"
    r"|[0-9]{1,2}[-/.][0-9]{1,2}[-/.](?:19|20)[0-9]{2}(?![0-9])"
)

_PLACEHOLDER_RE = re.compile(r"\[(?:" + "|".join(PII_KINDS) + r")\]")


def _context_before(m: re.Match[str], pattern: re.Pattern[str], width: int = 40) -> bool:
    return pattern.search(m.string, max(0, m.start() - width), m.start()) is not None


def _after_id_word(m: re.Match[str]) -> bool:
    """Right after "order", "build #", "ticket no.:" and the like (see _ID_WORDS); string
    operations, not a regex search, as this runs for every phone-shaped number."""
    before = m.string[max(0, m.start() - 40) : m.start()].rstrip(" \t:#=").lower()
    for qualifier in _ID_QUALIFIERS:
        if (
            before.endswith(qualifier)
            and not before[-len(qualifier) - 1 : -len(qualifier)].isalpha()
        ):
            before = before[: -len(qualifier)].rstrip(" \t:#=")
            break
    words = before.rsplit(None, 1)
    return bool(words) and words[-1].lstrip("(\"'") in _ID_WORDS


def _sub_group(group: int) -> Callable[[re.Match[str]], str]:
    """Replace only `group` of the match with `[secret]`, keep the rest."""

    def sub(m: re.Match[str]) -> str:
        whole, start = m.group(0), m.start()
        return whole[: m.start(group) - start] + "[secret]" + whole[m.end(group) - start :]

    return sub


def _sub_auth_header(m: re.Match[str]) -> str:
    value = m.group(2)
    # "Authorization: header missing" is prose; credentials have digits or symbols.
    if len(value) < 16 and not _CREDENTIAL_HINT_RE.search(value.rstrip(".:")):
        return m.group(0)
    return m.group(0)[: m.start(2) - m.start()] + "[secret]"


def _sub_cli_user(m: re.Match[str]) -> str:
    if m.group(2).isdigit() and m.group(3).isdigit():
        return m.group(0)  # `docker run -u 1000:1000` is a uid:gid
    whole, start = m.group(0), m.start()
    return whole[: m.start(2) - start] + "[secret]" + whole[m.end(3) - start :]


def _sub_basic(m: re.Match[str]) -> str:
    value = m.group(2)
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        plain = decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return m.group(0)
    if ":" not in plain or not plain.isprintable():
        return m.group(0)
    return m.group(1) + "[secret]"


def _sub_assign(m: re.Match[str]) -> str:
    sep, quote, value = m.group(2), m.group(3), m.group(4)
    if quote:
        return m.group(1) + "[secret]"
    # In prose (`password: hunter2.`) trailing punctuation is not part of the value.
    bare = value.rstrip(".!?:") if sep == ":" else value
    key_start = _QUERY_KEY_START_RE.search(m.string, max(0, m.start() - 40), m.start())
    in_query = (
        sep == "="
        and m.group(1).endswith("=")
        and key_start is not None
        and key_start.start() > 0
        and m.string[key_start.start() - 1] in "?&;"
    )
    if not in_query and (len(bare) < 6 or not _CREDENTIAL_HINT_RE.search(bare)):
        return m.group(0)
    if _REFERENCE_RE.fullmatch(bare):
        return m.group(0)
    return m.group(1) + "[secret]" + value[len(bare) :]


def _sub_password_prose(m: re.Match[str]) -> str:
    whole, word, sep = m.group(0), m.group("word").lower(), m.group("sep")
    quote, value = m.group("quote"), m.group("value")
    explicit = ":" in sep or "=" in sep
    bare_space = not explicit and not sep.strip()
    if (word == "pass" and not explicit) or (word == "pin" and bare_space):
        return whole  # "pass it on", "pin 3 of the header": only `pass: ...`, `PIN is ...`
    if quote:
        close = _CLOSING_QUOTES[quote]
        end = m.end()
        if end >= len(m.string) or m.string[end] != close:
            return whole
        return whole[: len(whole) - len(value)] + "[secret]"
    # Sentence punctuation after the value is not part of it; '!' and '?' may be, so they
    # are kept (and count as a hint) only after an explicit `:` or `=`.
    bare = value.rstrip(".,;:)")
    strict = bare if explicit else bare.rstrip("!?")
    if len(strict) < 4 or _PLACEHOLDER_RE.search(bare):
        return whole
    if _REFERENCE_RE.fullmatch(bare) or bare[0] in "{<(/\\[" or "()" in bare:
        return whole  # a reference (`$DB_PASS`, `{{pw}}`), a placeholder or code
    if bare.startswith(("http", "www.")):
        return whole  # a link
    if word == "pin" and not bare.isdigit():
        return whole
    if bare_space:
        # `password hunter2`: only a letters-and-digits mix, not "password reset" or "v2.0".
        if (
            len(bare) < 6
            or "." in bare
            or not (any(c.isdigit() for c in bare) and any(c.isalpha() for c in bare))
        ):
            return whole
    elif not (_PROSE_HINT_RE.search(strict) or word == "pin"):
        return whole
    return whole[: len(whole) - len(value)] + "[secret]" + value[len(bare) :]


def _sub_email(m: re.Match[str]) -> str:
    end = m.end()
    if m.group(0).startswith("git@") and m.string[end : end + 1] == ":":
        return m.group(0)  # `git@github.com:org/repo.git` is an SSH remote, not a mailbox
    return "[email]"


@lru_cache(maxsize=4096)
def _iban_ok(compact: str) -> bool:
    return bool(_iban.is_valid(compact, check_country=False))


def _sub_iban(m: re.Match[str]) -> str:
    whole = m.group(0)
    candidate = whole
    # A trailing group or two may be a neighbouring number ("DE89 ... 00 12 days"): shorten.
    for _ in range(3):
        if len(candidate.replace(" ", "")) < 15:
            break
        if _iban_ok(candidate.replace(" ", "").upper()):
            return "[iban]" + whole[len(candidate) :]
        cut = candidate.rfind(" ")
        if cut < 0:
            break
        candidate = candidate[:cut]
    return whole


def _sub_ssn(m: re.Match[str]) -> str:
    whole = m.group(0)
    digits = whole.replace("-", "").replace(" ", "")
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return whole
    if len(set(digits)) == 1:
        return whole
    dashed = m.group("sep") == "-"
    if not _context_before(m, _SSN_CONTEXT_RE) and (not dashed or _after_id_word(m)):
        return whole
    return "[ssn]"


def _sub_ipv6(m: re.Match[str]) -> str:
    cand = m.group(0)
    if not any(c.isdigit() for c in cand):  # `abc::def` is code, not an address
        return cand
    try:
        ipaddress.IPv6Address(cand)
    except ValueError:
        return cand
    return "[ip]"


def _version_context(text: str, start: int, end: int) -> bool:
    """The four-part number at text[start:end] is a version (see _VERSION_WORDS)."""
    if _PRERELEASE_RE.match(text, end) or _VERSION_AFTER_RE.match(text, end):
        return True
    before = text[max(0, start - 60) : start]
    if not _VERSION_HINT_RE.search(before):
        return False  # the common case, decided by one scan
    if _VERSION_PIN_RE.search(before):
        return True
    for skipped, word in enumerate(reversed(_WORD_OR_NEWLINE_RE.findall(before))):
        if word == "\n":
            return False
        token = word.strip(":#=()[]").lower()
        if token.rstrip(".") in _VERSION_WORDS or _V_VERSION_RE.fullmatch(token):
            return True
        if skipped >= 4 or not _VERSION_BETWEEN_RE.fullmatch(token):
            return False
    return False


def _looks_like_version(m: re.Match[str]) -> bool:
    """A version by its own context, or by a sibling's: in "build 1.0.0.12 crashes,
    1.0.0.11 was fine" the second shares the first three parts of a version before it."""
    text, start = m.string, m.start()
    if _version_context(text, start, m.end()):
        return True
    floor = max(0, start - 200)
    suffix_near = text.find("-", floor, start) >= 0 or text.find("+", floor, start) >= 0
    if not (suffix_near or _VERSION_HINT_RE.search(text, max(0, floor - 60), start)):
        return False  # no version word or suffix anywhere near: no sibling can be a version
    head = m.group(0).rsplit(".", 1)[0] + "."
    pos = text.rfind(head, floor, start)
    for _ in range(3):  # the nearest few: bounded work per address
        if pos < 0:
            break
        sibling = _IPV4_CANDIDATE_RE.match(text, pos)
        if sibling is not None and _version_context(text, pos, sibling.end()):
            return True
        pos = text.rfind(head, floor, pos)
    return False


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
    if _looks_like_version(m):
        return cand
    return "[ip]"


def _sub_card(m: re.Match[str]) -> str:
    digits = m.group(0).replace(" ", "").replace("-", "")
    return "[card]" if _luhn.is_valid(digits) else m.group(0)  # real cards, not long ids


def _sub_phone(m: re.Match[str]) -> str:
    whole = m.group(0)
    bare = m.group("bare") is not None
    if bare and not _context_before(m, _PHONE_CONTEXT_RE):
        return whole
    if whole.startswith("+") and m.end() < len(m.string) and m.string[m.end()].isdigit():
        return whole  # the +CC run continues past what the shape allows: not a phone
    if whole.startswith("000"):
        return whole  # no numbering plan starts with 000 ("000-12-3456" is a bad SSN)
    n = sum(c.isdigit() for c in whole)
    low = 8 if whole.startswith("+") else 9
    if not low <= n <= 15 or _DATE_RE.search(whole):
        return whole
    if not bare and not whole.startswith("+") and _after_id_word(m):
        return whole  # "build 555-010-2024" is the build's number
    return "[phone]"


def _placeholder(kind: str) -> Callable[[re.Match[str]], str]:
    text = f"[{kind}]"
    return lambda m: text


_Repl = Callable[[re.Match[str]], str]


@dataclass(frozen=True)
class _Stage:
    kind: str
    pattern: re.Pattern[str]
    repl: _Repl
    # Cheap skip: the stage runs only if one of these occurs in the lower-cased text.
    needles: tuple[str, ...] = ()


# Order matters: secrets and emails contain digit runs that later stages would misread,
# URL credentials go before emails (`user:pw@mail.example.com` is not an address), IBANs
# and SSNs before cards and phones (their digit groups fit a phone's shape), and
# cards/IPv4 before phones, whose rules are the loosest. IPv6 goes last: no other rule
# uses ':' and its digits-only groups must not hide a phone or card.
_STAGES: tuple[_Stage, ...] = (
    _Stage("secret", _PEM_RE, _placeholder("secret"), ("private key",)),
    _Stage("secret", _WEBHOOK_RE, _sub_group(1), ("hooks.slack.com", "/webhooks/")),
    _Stage("secret", _URL_CREDENTIALS_RE, _sub_group(1), ("://",)),
    _Stage("secret", _CLI_USER_RE, _sub_cli_user, ("-u",)),
    _Stage("secret", _AUTH_HEADER_RE, _sub_auth_header, ("authorization",)),
    _Stage("secret", _TOKEN_RE, _placeholder("secret")),
    _Stage("secret", _BEARER_RE, lambda m: m.group(1) + "[secret]", ("bearer",)),
    _Stage("secret", _BASIC_RE, _sub_basic, ("basic",)),
    _Stage("secret", _ASSIGN_RE, _sub_assign, _ASSIGN_NEEDLES),
    _Stage("secret", _PASSWORD_PROSE_RE, _sub_password_prose, ("pass", "pw", "pin")),
    _Stage("email", _EMAIL_RE, _sub_email, ("@", "%40")),
    _Stage("iban", _IBAN_RE, _sub_iban),
    _Stage("ssn", _SSN_RE, _sub_ssn),
    _Stage("card", _CARD_CANDIDATE_RE, _sub_card),
    _Stage("ip", _IPV4_CANDIDATE_RE, _sub_ipv4, (".",)),
    _Stage("phone", _PHONE_RE, _sub_phone),
    _Stage("ip", _IPV6_CANDIDATE_RE, _sub_ipv6, (":",)),
)
# A placeholder can change the left context of a neighbouring candidate (`5551234567`
# glued to a card, say), so redaction repeats until nothing changes; two passes in
# practice, bounded in case of pathological input.
_MAX_PASSES = 6

# A placeholder in the current text: (start, end) there, (start, end) in the input, kind.
_Tracked = tuple[int, int, int, int, str]
# A replacement made by one stage, in that stage's input: start, end, new length, kind.
_Edit = tuple[int, int, int, str]


def _apply(stage: _Stage, text: str) -> tuple[str, list[_Edit]]:
    """One stage over `text`; each edit narrowed to the characters that really changed.

    `re.sub` does the splicing (in C); the callback only notes what it changed.
    """
    edits: list[_Edit] = []
    repl, kind = stage.repl, stage.kind

    def note(m: re.Match[str]) -> str:
        new = repl(m)
        whole = m.group(0)
        if new == whole:
            return new
        # Placeholders are the only brackets a replacement adds: what lies outside them
        # and is unchanged (a key name, a URL's scheme) is not part of the edit.
        keep_head = keep_tail = 0
        first, last = new.find("["), new.rfind("]")
        if 0 <= first < last:
            head, tail = new[:first], new[last + 1 :]
            fits = len(head) + len(tail) <= len(whole)
            if fits and whole.startswith(head) and whole.endswith(tail):
                keep_head, keep_tail = len(head), len(tail)
        start, end = m.span()
        edits.append((start + keep_head, end - keep_tail, len(new) - keep_head - keep_tail, kind))
        return new

    new_text = stage.pattern.sub(note, text)
    return (new_text if edits else text), edits


def _track(spans: list[_Tracked], edits: Sequence[_Edit]) -> list[_Tracked]:
    """Carry the placeholders' input offsets through one stage's edits (one merge pass)."""
    out: list[_Tracked] = []
    i, n = 0, len(spans)
    shift = 0  # how far text after the edits so far has moved in this stage
    growth = 0  # current minus input length of the placeholders passed so far
    for start, end, new_len, kind in edits:
        while i < n and spans[i][1] <= start:
            cs, ce, os_, oe, k = spans[i]
            out.append((cs + shift, ce + shift, os_, oe, k))
            growth += (ce - cs) - (oe - os_)
            i += 1
        orig_start = start - growth
        orig_end = -1
        while i < n and spans[i][0] < end:  # an edit over a placeholder absorbs it
            cs, ce, os_, oe, _ = spans[i]
            orig_start = min(orig_start, os_)
            growth += (ce - cs) - (oe - os_)
            if ce > end:
                orig_end = oe
            i += 1
        if orig_end < 0:
            orig_end = end - growth
        out.append((start + shift, start + shift + new_len, orig_start, orig_end, kind))
        shift += new_len - (end - start)
    out.extend((cs + shift, ce + shift, os_, oe, k) for cs, ce, os_, oe, k in spans[i:])
    return out


def _redact_once(text: str, history: list[tuple[_Edit, ...]]) -> str:
    lowered = text.lower()
    for stage in _STAGES:
        if stage.needles and not any(w in lowered for w in stage.needles):
            continue
        text, edits = _apply(stage, text)
        if edits:
            history.append(tuple(edits))
    return text


def redact(text: str) -> Redaction:
    """Replace PII with `[kind]` placeholders so the text is safe to show, store or model.

    Placeholders never match any rule and passes repeat to a fixed point, so redacting
    already-redacted text is a no-op.
    """
    history: list[tuple[_Edit, ...]] = []
    for _ in range(_MAX_PASSES):
        new = _redact_once(text, history)
        if new == text:
            break
        text = new
    kinds = sorted({edit[3] for edits in history for edit in edits})
    return Redaction(text=text, kinds=kinds, edits=tuple(history))


# ---------------------------------------------------------------------------- clean_text
# Terminal colours and titles in pasted logs (`ESC[31m`, `ESC]0;title BEL`): whole.
_ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]{0,200}(?:\x07|\x1b\\)?)")
# Removed from text: C0 controls but tab, LF and CR; DEL and C1; bidirectional embedding,
# override and isolate controls (they reorder what a reviewer sees); interlinear
# annotation; the noncharacters U+FFFE/U+FFFF; Unicode tag characters (invisible text)
# except in a subdivision flag's tag sequence, which the first group keeps.
_DISALLOWED_RE = re.compile(
    "(\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{1,8}\U000e007f)"
    "|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufff9-\ufffb"
    "\ufffe\uffff\U000e0000-\U000e007f]"
)
# Line breaks other than \n (NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR) become \n.
_LINE_BREAKS = str.maketrans({"\x85": "\n", "\u2028": "\n", "\u2029": "\n"})
# More than this share of removed characters and the input is not text but binary.
_MAX_CONTROL_SHARE = 0.3
_EDGE_SPACE_RE = re.compile(r"^[\s\u200b-\u200d\u2060\ufeff]+|[\s\u200b-\u200d\u2060\ufeff]+$")


def _keep_flag(m: re.Match[str]) -> str:
    return m.group(1) or ""


# A data file where more than this share of characters are undecodable bytes or control
# characters (other than tab and line breaks) is not text: an image, an archive, UTF-16.
MAX_NON_TEXT_SHARE = 0.10
_NON_TEXT_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\udc80-\udcff]")


def read_text_file(path: Path) -> str:
    """A data file's text (imports, `eval`, `simulate`), undecodable bytes kept as
    surrogate escapes so the row holding one can be reported; ValueError when the bytes
    are not text at all. One rule for every reader of files."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValueError(f"{path}: the file is UTF-16; save it as UTF-8")
    content = raw.decode("utf-8-sig", "surrogateescape")
    if content:
        share = len(_NON_TEXT_RE.findall(content)) / len(content)
        if share > MAX_NON_TEXT_SHARE:
            raise ValueError(
                f"{path}: not a text file ({share:.0%} of its characters are "
                "control characters or bytes that are not UTF-8)"
            )
    return content


def jsonl_lines(content: str) -> Iterator[tuple[int, str]]:
    """The non-blank lines of JSON-lines text with their 1-based numbers. Lines end at
    "\n" only: U+2028, U+0085 and the other Unicode breaks are text inside a string."""
    for number, line in enumerate(content.split("\n"), start=1):
        if line.strip():
            yield number, line


def clean_text(raw: str | bytes, max_bytes: int) -> str:
    """Decode, vet and normalise inbound text; refuse anything that is not real text.

    Control characters in real text (a NUL in a pasted terminal log, colour codes) are
    removed, not a reason to refuse it; bytes are refused only when they are not text:
    not UTF-8, or mostly control characters. Raises InputError with a one-line reason.
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
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from a JSON "\ud800" escape
        raise InputError("invalid text: unpaired surrogate characters") from None
    if text:
        length = len(text)
        text = _ANSI_RE.sub("", text.translate(_LINE_BREAKS))
        cleaned = _DISALLOWED_RE.sub(_keep_flag, text)
        if (len(text) - len(cleaned)) > _MAX_CONTROL_SHARE * length:
            raise InputError("binary content: mostly control characters, not text")
        text = cleaned
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
