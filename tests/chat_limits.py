"""What Slack and Discord accept, and what must never reach them, as checks on payloads.

Written from the platforms' documentation, independently of the renderers (they count
characters in UTF-16 units: never more lenient than the platforms). Each check returns the
problems it found, so a failing test names every one; an empty list is a payload the
platform takes. Used by tests/unit/test_render_limits.py on arbitrary input and by the e2e
tests on what the bots actually posted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

import discord

# -- shared ------------------------------------------------------------------------------------
BAD_CHARACTER = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def units(text: str) -> int:
    """UTF-16 code units (what a JavaScript `length` counts)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{path}[{i}]")]
    return []


def _characters(payload: Any) -> list[str]:
    """No control character (but tab and newline) and no lone surrogate anywhere."""
    return [
        f"{path}: bad character {m.group()!r}"
        for path, text in _strings(payload)
        for m in [BAD_CHARACTER.search(text)]
        if m
    ]


def _within(
    problems: list[str], path: str, text: Any, limit: int, *, empty_ok: bool = False
) -> None:
    if not isinstance(text, str):
        problems.append(f"{path}: not a string ({type(text).__name__})")
    elif not text and not empty_ok:
        problems.append(f"{path}: empty")
    elif units(text) > limit:
        problems.append(f"{path}: {units(text)} > {limit}")


# -- links ---------------------------------------------------------------------------------------
LINK_CHARS = 1000  # docs/security.md: a longer page is shown as text, never linked
LINK_START = re.compile(r"(?P<scheme>[^:/?#]*)://(?P<authority>[^/?#]*)")
LINK_REFUSED = re.compile(r"[^!-~]|[<>|\"`\\]")  # anything but printable ASCII; markup
NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)


def _ip_literal(host: str) -> bool:
    """IPv6 in brackets, dotted IPv4, or a last label a browser reads as a number (decimal,
    octal or hex: `2130706433`, `0x7f.1` and `127.1` are all 127.0.0.1)."""
    bare = host.rstrip(".")
    if bare.startswith("["):
        return True
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        return bool(NUMERIC_LABEL.fullmatch(bare.rsplit(".", 1)[-1]))
    return True


def link_problems(url: Any) -> list[str]:
    """A URL the product links to, checked on its own terms (not by asking `web_url`):
    http(s), printable ASCII without the characters chat markup reads, no user info, a
    host that is a name and not an IP address in any spelling, at most 1,000 characters."""
    if not isinstance(url, str):
        return [f"link: not a string ({type(url).__name__})"]
    problems = []
    if len(url) > LINK_CHARS:
        problems.append(f"link over {LINK_CHARS} characters: {len(url)}")
    refused = LINK_REFUSED.search(url)
    if refused:
        problems.append(f"link holds {refused.group()!r}: {url[:80]!r}")
    start = LINK_START.match(url)
    if start is None or start["scheme"].lower() not in ("http", "https"):
        return [*problems, f"link is not http(s): {url[:80]!r}"]
    authority = start["authority"]
    if "@" in authority:
        problems.append(f"link with user info: {url[:80]!r}")
    host = authority.rsplit("@", 1)[-1]
    host, _, port = host.rpartition(":") if re.search(r":\d*$", host) else (host, "", "")
    if not host or _ip_literal(host):
        problems.append(f"link to an IP address or no host: {url[:80]!r}")
    if port and not 0 < int(port) < 65536:
        problems.append(f"link with a bad port: {url[:80]!r}")
    return problems


# -- Slack Block Kit ---------------------------------------------------------------------------
SLACK_TEXT = 4000
SLACK_BLOCKS = 50
SLACK_MODAL_BLOCKS = 100


def _text_object(problems: list[str], path: str, obj: Any, limit: int) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        problems.append(f"{path}: not a text object: {obj!r:.80}")
        return
    _within(problems, f"{path}.text", obj.get("text"), limit)
    if obj["type"] == "plain_text" and obj.get("text", "").strip() == "":
        problems.append(f"{path}: blank plain_text")


def _option(problems: list[str], path: str, option: Any) -> None:
    if not isinstance(option, dict):
        problems.append(f"{path}: not an option")
        return
    _text_object(problems, f"{path}.text", option.get("text"), 75)
    _within(problems, f"{path}.value", option.get("value"), 150)


def _element(problems: list[str], path: str, element: Any) -> None:
    if not isinstance(element, dict):
        problems.append(f"{path}: not an element")
        return
    if "action_id" in element:
        _within(problems, f"{path}.action_id", element["action_id"], 255)
    kind = element.get("type")
    if kind == "button":
        _text_object(problems, f"{path}.text", element.get("text"), 75)
        if "value" in element:
            _within(problems, f"{path}.value", element["value"], 2000)
        if "url" in element:
            _within(problems, f"{path}.url", element["url"], 3000)
    elif kind == "static_select":
        options = element.get("options") or []
        if not 1 <= len(options) <= 100:
            problems.append(f"{path}.options: {len(options)} options")
        for i, option in enumerate(options):
            _option(problems, f"{path}.options[{i}]", option)
        if "initial_option" in element and element["initial_option"] not in options:
            problems.append(f"{path}.initial_option: not one of the options")
        if "placeholder" in element:
            _text_object(problems, f"{path}.placeholder", element["placeholder"], 150)
    elif kind == "plain_text_input":
        most = element.get("max_length", 3000)
        if not isinstance(most, int) or not 1 <= most <= 3000:
            problems.append(f"{path}.max_length: {most!r}")
            most = 3000
        if "initial_value" in element:
            _within(problems, f"{path}.initial_value", element["initial_value"], most)


def block_problems(blocks: Any, most: int = SLACK_BLOCKS) -> list[str]:
    """Block Kit's limits for a message's (or a modal's) blocks."""
    problems: list[str] = []
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= most:
        return [f"blocks: {len(blocks) if isinstance(blocks, list) else blocks!r} blocks"]
    for i, block in enumerate(blocks):
        path = f"blocks[{i}]"
        if not isinstance(block, dict):
            problems.append(f"{path}: not a block")
            continue
        if "block_id" in block:
            _within(problems, f"{path}.block_id", block["block_id"], 255)
        kind = block.get("type")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{path}: neither text nor fields")
            if "text" in block:
                _text_object(problems, f"{path}.text", block["text"], 3000)
            fields = block.get("fields", [])
            if len(fields) > 10:
                problems.append(f"{path}.fields: {len(fields)} > 10")
            for j, field in enumerate(fields):
                _text_object(problems, f"{path}.fields[{j}]", field, 2000)
            if "accessory" in block:
                _element(problems, f"{path}.accessory", block["accessory"])
        elif kind == "header":
            _text_object(problems, f"{path}.text", block.get("text"), 150)
        elif kind == "context":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 10:
                problems.append(f"{path}.elements: {len(elements)} elements")
            for j, element in enumerate(elements):
                _text_object(problems, f"{path}.elements[{j}]", element, 2000)
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 25:
                problems.append(f"{path}.elements: {len(elements)} elements")
            for j, element in enumerate(elements):
                _element(problems, f"{path}.elements[{j}]", element)
        elif kind == "input":
            _text_object(problems, f"{path}.label", block.get("label"), 2000)
            _element(problems, f"{path}.element", block.get("element"))
        elif kind != "divider":
            problems.append(f"{path}: unknown block type {kind!r}")
    return problems + _characters(blocks)


def slack_message_problems(payload: dict[str, Any]) -> list[str]:
    """A `chat.postMessage`/`chat.update` payload: its text and blocks."""
    problems: list[str] = []
    _within(problems, "text", payload.get("text"), SLACK_TEXT)
    return problems + block_problems(payload.get("blocks")) + _characters(payload.get("text"))


def slack_modal_problems(view: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for key in ("title", "submit", "close"):
        if key in view:
            _text_object(problems, key, view[key], 24)
    if "private_metadata" in view:
        _within(problems, "private_metadata", view["private_metadata"], 3000, empty_ok=True)
    if "callback_id" in view:
        _within(problems, "callback_id", view["callback_id"], 255)
    return problems + block_problems(view.get("blocks"), SLACK_MODAL_BLOCKS)


def mrkdwn_texts(payload: dict[str, Any]) -> list[str]:
    """Every text Slack parses as mrkdwn: the notification text and mrkdwn objects."""
    found = [payload["text"]] if isinstance(payload.get("text"), str) else []
    return found + [
        value["text"]
        for value in objects(payload.get("blocks"))
        if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str)
    ]


def objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside `value`, depth first."""
    if isinstance(value, dict):
        yield value
        for inner in value.values():
            yield from objects(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from objects(inner)


SLACK_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")
SLACK_LINK = re.compile(r"<(https?://[^|<>\s]+)\|[^<>|]*>")
SLACK_ENTITY = re.compile(r"&(?:amp|lt|gt);")
SLACK_QUOTE = re.compile(r"^> ", re.MULTILINE)  # the product's block quote marks


def slack_markup_problems(text: str, reviewers: frozenset[str] = frozenset()) -> list[str]:
    """The product's own markup only: mentions of `reviewers`, links to URLs `link_problems`
    passes, block quote marks. After those, no `<` may be left (so no `<!channel>`, `<@U…>`,
    `<#C…>` or `<http…>` spelled by a user), and every `&` starts an entity."""
    problems = []
    for match in SLACK_LINK.finditer(text):
        problems += link_problems(match.group(1).replace("&amp;", "&"))
    for match in SLACK_MENTION.finditer(text):
        if match.group(1) not in reviewers:
            problems.append(f"a mention of someone who did not vote: {match.group()!r}")
    rest = SLACK_QUOTE.sub("", SLACK_LINK.sub("", SLACK_MENTION.sub("", text)))
    if "<" in rest or ">" in rest:
        at = rest.find("<") if "<" in rest else rest.find(">")
        problems.append(f"raw angle bracket: {rest[max(0, at - 30) : at + 50]!r}")
    if "&" in SLACK_ENTITY.sub("", rest):
        problems.append("an & that starts no entity")
    return problems


def unverbatim_mrkdwn(payload: dict[str, Any]) -> list[str]:
    """mrkdwn objects Slack would preprocess (auto-links, `@here` parsing)."""
    return [
        str(value.get("text"))[:60]
        for value in objects(payload.get("blocks"))
        if value.get("type") == "mrkdwn" and value.get("verbatim") is not True
    ]


# -- Discord ------------------------------------------------------------------------------------
DISCORD_CONTENT = 2000
DISCORD_EMBED_TOTAL = 6000


def embed_problems(embed: discord.Embed) -> list[str]:
    """An embed's limits, on `to_dict()` as sent, and its total as discord.py counts it."""
    data: dict[str, Any] = dict(embed.to_dict())
    problems: list[str] = []
    total = 0
    for key, limit in (("title", 256), ("description", 4096)):
        if key in data:
            _within(problems, key, data[key], limit)
            total += units(data[key])
    fields = data.get("fields", [])
    if len(fields) > 25:
        problems.append(f"fields: {len(fields)} > 25")
    for i, field in enumerate(fields):
        _within(problems, f"fields[{i}].name", field.get("name"), 256)
        _within(problems, f"fields[{i}].value", field.get("value"), 1024)
        total += units(field.get("name", "")) + units(field.get("value", ""))
    for key, sub, limit in (("footer", "text", 2048), ("author", "name", 256)):
        if key in data and sub in data[key]:
            _within(problems, f"{key}.{sub}", data[key][sub], limit)
            total += units(data[key][sub])
    if total > DISCORD_EMBED_TOTAL or len(embed) > DISCORD_EMBED_TOTAL:
        problems.append(f"embed total: {total} units, len(embed) {len(embed)} > 6000")
    if "url" in data:
        problems += link_problems(data["url"])
    return problems + _characters(data)


def components_problems(rows: list[dict[str, Any]]) -> list[str]:
    """Action rows as sent (`View.to_components()`): ids, labels, options."""
    problems: list[str] = []
    if len(rows) > 5:
        problems.append(f"{len(rows)} action rows > 5")
    for r, row in enumerate(rows):
        children = row.get("components", [])
        if not 1 <= len(children) <= 5:
            problems.append(f"row {r}: {len(children)} components")
        for c, component in enumerate(children):
            path = f"rows[{r}][{c}]"
            if "custom_id" in component:
                _within(problems, f"{path}.custom_id", component["custom_id"], 100)
            if "label" in component:
                _within(problems, f"{path}.label", component["label"], 80)
            if "placeholder" in component:
                _within(problems, f"{path}.placeholder", component["placeholder"], 150)
            options = component.get("options")
            if options is not None:
                if not 1 <= len(options) <= 25:
                    problems.append(f"{path}.options: {len(options)} options")
                for o, option in enumerate(options):
                    for key in ("label", "value"):
                        _within(problems, f"{path}.options[{o}].{key}", option.get(key), 100)
                    if "description" in option:
                        _within(
                            problems, f"{path}.options[{o}].description", option["description"], 100
                        )
    return problems + _characters(rows)


def content_problems(content: str) -> list[str]:
    problems: list[str] = []
    _within(problems, "content", content, DISCORD_CONTENT, empty_ok=True)
    return problems + _characters(content)


def _escaped(text: str, index: int) -> bool:
    """Whether the character at `index` follows an odd run of backslashes."""
    run = 0
    while index - run - 1 >= 0 and text[index - run - 1] == "\\":
        run += 1
    return run % 2 == 1


def _without_code_spans(text: str) -> str:
    """The text outside inline code (Discord shows a span's content as it is). A span
    opens at an unescaped backtick and closes at the next backtick; an unclosed one is
    a literal backtick."""
    out, index, start = [], 0, 0
    while index < len(text):
        if text[index] == "`" and not _escaped(text, index):
            close = text.find("`", index + 1)
            if close == -1:
                break
            out.append(text[start:index])
            index = start = close + 1
            continue
        index += 1
    out.append(text[start:])
    return "".join(out)


DISCORD_MENTION = re.compile(r"<(?:@|#)(\d{1,21})>")
DISCORD_LINK = re.compile(r"\[((?:\\.|[^\\\[\]])*)\]\((https?://[^\s()<>]+)\)")
DISCORD_EVERYONE = re.compile(r"@(?:everyone|here)")


def discord_markup_problems(text: str, mentioned: frozenset[str] = frozenset()) -> list[str]:
    """The product's own markup only: mentions of the ids in `mentioned` (reviewers, the
    card channel), masked links to URLs `link_problems` passes whose text is escaped.
    After those (and outside inline code) no `](` with an unescaped `(`, no unescaped `<`
    and no `://` with an unescaped `:` (Discord links a bare URL) may be left, and no live
    `@everyone`/`@here`."""
    problems = []
    rest = _without_code_spans(text)
    kept: list[str] = []
    last = 0
    for match in DISCORD_LINK.finditer(rest):
        if _escaped(rest, match.start()):
            continue
        problems += link_problems(match.group(2))
        kept.append(rest[last : match.start()])
        kept.append(match.group(1))  # the link text must be escaped like the rest
        last = match.end()
    kept.append(rest[last:])
    rest = "".join(kept)

    def mention(match: re.Match[str]) -> str:
        if _escaped(rest, match.start()):
            return match.group()
        if match.group(1) not in mentioned:
            problems.append(f"a mention the product did not make: {match.group()!r}")
        return ""

    rest = DISCORD_MENTION.sub(mention, rest)
    for index, ch in enumerate(rest):
        live_link = ch == "(" and rest[index - 1 : index] == "]"  # a masked link's "]("
        bare_url = ch == ":" and rest[index + 1 : index + 3] == "//"  # `https://…` links
        if (ch == "<" or live_link or bare_url) and not _escaped(rest, index):
            problems.append(f"unescaped {ch!r}: {rest[max(0, index - 30) : index + 50]!r}")
            break
    if DISCORD_EVERYONE.search(rest):
        problems.append("a live @everyone/@here")
    return problems


def discord_texts(content: str, embed: discord.Embed) -> list[str]:
    """Every text Discord renders as Markdown (the footer is shown as it is)."""
    data: dict[str, Any] = dict(embed.to_dict())
    texts = [content, data.get("title", ""), data.get("description", "")]
    for field in data.get("fields", []):
        texts += [field.get("name", ""), field.get("value", "")]
    return texts
