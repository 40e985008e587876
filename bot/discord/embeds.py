"""Pure translations between Discord and core models: no I/O here.

`card_embed` renders a triage as an embed (colour by severity); `custom_id` puts the item
id in every component so a card's buttons work after a restart; `reaction_vote` reads a
unicode reaction with the taxonomy's emoji, meaning exactly what it means on Slack.

Everything a person wrote is shown as literal text: every Markdown character, the
brackets and parentheses of masked links, the colon of a bare URL's `://` (Discord links
`https://…` on its own) and the angle brackets of mentions, channels and timestamps are
escaped with a backslash, and `@everyone`/`@here` are broken (the client's
`AllowedMentions.none()` stops pings besides). Links come only from `web_url`. Every text
is clipped to Discord's limits after formatting, never between a backslash and what it
escapes, and the whole embed stays within 6,000 characters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime

import discord

from bot.chat_text import clip, join_within, one_line, printable, web_url, width
from core.actions import learned_from
from core.digest import Digest, digest_lines
from core.issues import IssueLink
from core.issues import issue_reply as core_issue_reply
from core.models import (
    CardView,
    FeedbackItem,
    Label,
    Triage,
    Validation,
    ValidationKind,
    item_facts,
    submitter_on,
)
from core.owners import OwnerChoice
from core.replies import dispute_text as core_dispute_text
from core.runtime import OwnerSpec
from core.service import Stats, stats_lines
from core.taxonomy import CategorySpec, SeveritySpec, Taxonomy
from core.themes import Themes, themes_text_lines
from core.votes import ReactionVote
from core.votes import reaction_vote as core_reaction_vote

PREFIX = "triage"
BUTTON_ACTIONS = ("confirm", "correct", "noise", "issue", "split")
SELECT_ACTIONS = ("category", "severity", "owner", "duplicate")
MODAL_ACTION = "modal"
FOOTER = re.compile(r"^item (?P<item_id>\S+)")
DIGEST_MARK = "#"

# Discord's limits (characters; measured here in UTF-16 units, never more lenient): those a
# text built from input can reach. Field names and button labels are fixed, far inside;
# the footer keeps to FOOTER_CHARS, under Discord's 2,048.
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_VALUE_LIMIT = 1024
EMBED_LIMIT = 6000  # title, description, field names and values, footer, author together
CONTENT_LIMIT = 2000
CUSTOM_ID_LIMIT = 100
OPTION_LIMIT = 100  # a select option's label, value and description
OPTIONS_LIMIT = 25

MINIMAL_TEXT_CHARS = 300  # the fallback card's excerpt: far inside every limit
NOTIFICATION_CHARS = 200  # the message content next to the embed, formatted
REPLY_CHARS = 1900  # an ephemeral answer (queue, stats), formatted
# What each part of a card may take, so that the description keeps at least ~1,400 of
# the embed's 6,000 whatever the rest holds.
NAME_CHARS = 100  # category, severity
ACTION_CHARS = FIELD_VALUE_LIMIT
SIMILAR_CHARS = 600
SIMILAR_TEXT_CHARS = 100
SOURCE_CHARS = 600
FACT_CHARS = 200
VOTES_CHARS = FIELD_VALUE_LIMIT
FOOTER_CHARS = 700
FALLBACK_CHARS = 300
QUEUE_TITLE_CHARS = 90
# The room an item id has in a custom id after the longest prefix (`triage:duplicate:`).
ITEM_KEY_ROOM = CUSTOM_ID_LIMIT - len(PREFIX) - 2 - max(map(len, BUTTON_ACTIONS + SELECT_ACTIONS))
_PLAIN_ID = re.compile(r"[!-~]+")  # printable ASCII, no spaces: rides in a custom id as is
_SNOWFLAKE = re.compile(r"[0-9]{15,21}")
_USER_ID = re.compile(r"[0-9]{1,21}")

# Discord sends and expects unicode emoji; the taxonomy names them by their short names
# (as Slack does). One table for both directions; extend it when a team adds an emoji.
UNICODE_EMOJI: dict[str, str] = {
    "bug": "\U0001f41b",
    "gear": "\u2699\ufe0f",
    "memo": "\U0001f4dd",
    "bulb": "\U0001f4a1",
    "raised_hands": "\U0001f64c",
    "wastebasket": "\U0001f5d1\ufe0f",
    "fire": "\U0001f525",
    "rotating_light": "\U0001f6a8",
    "warning": "\u26a0\ufe0f",
    "seedling": "\U0001f331",
    "white_check_mark": "\u2705",
    "x": "\u274c",
    "pencil2": "\u270f\ufe0f",
    "raising_hand": "\U0001f64b",
    "repeat": "\U0001f501",
    "link": "\U0001f517",
}
_SKIN_TONES = re.compile("[\U0001f3fb-\U0001f3ff]")


def _bare(emoji: str) -> str:
    """An emoji without variation selector or skin tone: clients send either form."""
    return _SKIN_TONES.sub("", emoji.replace("\ufe0f", ""))


SHORT_NAMES: dict[str, str] = {_bare(u): name for name, u in UNICODE_EMOJI.items()}


def emoji(name: str) -> str:
    """The unicode form of a taxonomy emoji name (the name itself when unknown)."""
    return UNICODE_EMOJI.get(name, f":{name}:")


def reaction_name(reaction: str) -> str:
    """The taxonomy's short name of a reaction: a unicode emoji by the table above, or the
    name of a custom guild emoji as it is (a team may upload its own :bug:)."""
    return SHORT_NAMES.get(_bare(reaction), reaction)


def reaction_vote(reaction: str, taxonomy: Taxonomy) -> ReactionVote | None:
    """What a reaction on a card means; None when it means nothing."""
    return core_reaction_vote(reaction_name(reaction), taxonomy)


# -- text ------------------------------------------------------------------------------------
# Anywhere: what formats, links or mentions; a masked link needs "](", so an escaped "("
# ends it (and "[email]", redaction's mark, reads as it is); a bare URL needs "://" right
# after its scheme, so an escaped ":" (`https\://`, shown as `https://`) links nothing. At
# a line's start: headings, subtext and lists (a "#", "-" or "1." elsewhere means nothing,
# so it stays as it is).
_SPECIAL = re.compile(r"[\\*_~|`()<>]|:(?=//)|^[ \t]*(?:[#\-+]|\d+\.)", re.MULTILINE)
_LINKISH = re.compile(r"[\\\[\]()<>]")


def _escape_match(match: re.Match[str]) -> str:
    """A backslash before the match's last character (a line's indentation and a list
    number stay as they are)."""
    found = match.group()
    return f"{found[:-1]}\\{found[-1]}"


def escape(text: object) -> str:
    """Any value as literal Discord Markdown.

    `discord.utils.escape_markdown` is not enough here: it escapes only the first of two
    masked links on a line (`[a](x) [b](y)` keeps the second live) and leaves Markdown
    inside URLs alone. Discord reads a backslash before any ASCII punctuation as "this
    character as it is", so every character that can start formatting, a masked link's
    target, a bare URL (the `:` of `://`), a mention (`<@`, `<#`, `<@&`, `<t:`) or a
    quote is escaped; then `escape_mentions` breaks `@everyone`, `@here` and raw id
    mentions."""
    escaped = _SPECIAL.sub(_escape_match, printable(str(text)))
    return discord.utils.escape_mentions(escaped)


def _backslash_boundary(text: str, end: int) -> int:
    """Back out of an escape (`\\x`) the cut at `end` would split: an odd run of
    backslashes before it means the last one escapes the character cut off."""
    run = 0
    while run < end and text[end - run - 1] == "\\":
        run += 1
    return end - 1 if run % 2 else end


def _clip(text: str, limit: int) -> str:
    """Formatted Markdown within `limit`, cut between escapes."""
    return clip(text, limit, _backslash_boundary)


def _text(value: object, limit: int) -> str:
    """A user value as literal Markdown within `limit`."""
    return _clip(escape(value), limit)


def _plain(value: object, limit: int) -> str:
    """Text Discord shows as written (footers, option labels): printable, clipped."""
    return clip(printable(str(value)), limit)


def _code(value: object, limit: int) -> str:
    """A user value as inline code, which Discord shows as it is (no Markdown, links or
    mentions inside): one line, its backticks (which would end the span) as a look-alike."""
    inner = _plain(one_line(str(value)), limit - 2).replace("`", "ˋ")
    return f"`{inner or ' '}`"


def _quote(text: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """The item's text as a block quote, each line marked, clipped after the marks."""
    lines = printable(text).split("\n")
    return _clip("\n".join("> " + escape(line) for line in lines), limit)


def _join_within(parts: list[str], limit: int, sep: str, head: str | None = None) -> str:
    """Whole entries within `limit`, cut (if at all) between escapes."""
    return join_within(parts, limit, sep, head, _backslash_boundary)


def _value(text: str) -> str:
    """A field value: Discord refuses an empty one."""
    return text if text.strip() else "—"


def embed_width(embed: discord.Embed) -> int:
    """What counts towards the embed's 6,000: title, description, fields, footer, author."""
    parts = [embed.title, embed.description, embed.footer.text, embed.author.name]
    parts += [f"{f.name or ''}{f.value or ''}" for f in embed.fields]
    return sum(width(p or "") for p in parts)


# -- component ids ---------------------------------------------------------------------------
def item_key(item_id: str) -> str:
    """The item id as a component carries it: as it is when it fits every custom id and is
    plain ASCII, else a stable digest (`#` and 32 hex digits) that `item_id_for` maps back.
    Intake's ids are short (`fb_` and 20 hex digits); only an id from elsewhere needs it."""
    if (
        len(item_id) <= ITEM_KEY_ROOM
        and _PLAIN_ID.fullmatch(item_id)
        and not item_id.startswith(DIGEST_MARK)
    ):
        return item_id
    digest = hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return DIGEST_MARK + digest


def is_digest(key: str) -> bool:
    return key.startswith(DIGEST_MARK)


def item_id_for(key: str, card_item: str | None) -> str:
    """The item a component's key names: the key itself, or for a digest the item of the
    card the component is on (`card_item`, looked up by the message) when it matches."""
    if is_digest(key) and card_item is not None and item_key(card_item) == key:
        return card_item
    return key


def custom_id(action: str, item_id: str) -> str:
    """`triage:<action>:<item key>`: the item rides in the component, not in memory, and
    the whole id always fits Discord's 100 characters."""
    return f"{PREFIX}:{action}:{item_key(item_id)}"


def id_template(actions: Sequence[str]) -> str:
    """The regex a DynamicItem matches; groups `action` and `item_id` (an item key)."""
    return rf"^{PREFIX}:(?P<action>{'|'.join(actions)}):(?P<item_id>.+)$"


def card_item_id(message: discord.Message) -> str | None:
    """The item id a posted card carries in its embed footer (for reconciling after a crash)."""
    for embed in message.embeds:
        match = FOOTER.match(embed.footer.text or "") if embed.footer else None
        if match:
            return match["item_id"]
    return None


# -- links and mentions: only from values checked here ----------------------------------------
def message_link(guild_id: int | None, channel_id: int, message_id: int | str) -> str:
    """A link Discord clients open; needs no API call."""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def source_link(item: FeedbackItem) -> str | None:
    """Where the card links back to: the intake message (real snowflakes), else an http(s)
    page that `web_url` accepts; never the stored text as it is."""
    source = item.metadata.get("discord")
    if isinstance(source, dict):
        guild, channel, message = (source.get(k) for k in ("guild", "channel", "message"))
        ids = [str(v) for v in (channel, message)]
        if all(_SNOWFLAKE.fullmatch(v) for v in ids) and (
            guild is None or _SNOWFLAKE.fullmatch(str(guild))
        ):
            return message_link(int(guild) if guild is not None else None, int(ids[0]), ids[1])
    return web_url(item.page)


def _link(url: str | None, text: str) -> str | None:
    """A masked link `[text](url)` for a URL `web_url` accepts (it has no `(`, `)` or
    spaces to end the link early); `text` is already escaped."""
    checked = web_url(url)
    inner = text.replace("[", "\\[").replace("]", "\\]")  # the text's own brackets, inert
    return f"[{inner}]({checked})" if checked else None


def who(reviewer: str) -> str:
    """A mention for a Discord user id; other platforms' reviewers by name."""
    return f"<@{reviewer}>" if _USER_ID.fullmatch(reviewer) else escape(reviewer)


# -- the card --------------------------------------------------------------------------------
def severity_colour(taxonomy: Taxonomy, severity: str) -> discord.Colour:
    if severity in taxonomy.severity_names:
        return discord.Colour(int(taxonomy.severity(severity).color.lstrip("#"), 16))
    return discord.Colour.light_grey()


def tally_text(votes: list[Validation], label: Label | None) -> str:
    lines = []
    for vote in votes:
        name = who(vote.reviewer)
        if vote.kind == ValidationKind.CONFIRM:
            lines.append(f"{emoji('white_check_mark')} {name} confirmed")
        elif vote.kind == ValidationKind.NOISE:
            lines.append(f"{emoji('wastebasket')} {name} marked noise")
        elif vote.kind == ValidationKind.REJECT:
            lines.append(f"{emoji('x')} {name} says it is wrong")
        elif vote.kind == ValidationKind.CORRECT:
            line = (
                f"{emoji('pencil2')} {name} → {_text(vote.category, NAME_CHARS)}"
                f" / {_text(vote.severity, NAME_CHARS)}"
            )
            if vote.action:
                line += f": {_text(one_line(vote.action), 120)}"
            lines.append(line)
    if not lines:
        return "No votes yet."
    summary = f"{len(votes)} vote(s)"
    if label is not None:
        summary += (
            f"; label **{_text(label.category, NAME_CHARS)} / {_text(label.severity, NAME_CHARS)}**"
        )
        if label.disagreement:
            summary += f" (agreement {label.agreement:.0%})"
    return _join_within(lines, VOTES_CHARS - width(summary) - 1, "\n") + f"\n{summary}"


def _title(triage: Triage, taxonomy: Taxonomy) -> str:
    sev = taxonomy.severity(triage.severity) if triage.severity in taxonomy.severity_names else None
    cat = taxonomy.category(triage.category) if triage.category in taxonomy.category_names else None
    title = (
        f"{emoji(sev.emoji) if sev else ''} {_text(triage.severity.upper(), NAME_CHARS)} · "
        f"{emoji(cat.emoji) if cat else ''} {_text(triage.category, NAME_CHARS)}"
    )
    return _clip(title.strip(), TITLE_LIMIT)


def _source(item: FeedbackItem, link: str | None) -> str:
    context = [f"from {_text(item.source, FACT_CHARS)}"]
    linked = _link(link, "source message")
    if linked and width(linked) <= SOURCE_CHARS // 2:
        context.append(linked)
    context += item_facts(item, literal=lambda value: _code(value, FACT_CHARS))
    return _clip(" · ".join(context), SOURCE_CHARS)


def card_embed(
    item: FeedbackItem,
    triage: Triage,
    taxonomy: Taxonomy,
    *,
    votes: list[Validation] | None = None,
    label: Label | None = None,
    similar: list[tuple[FeedbackItem, Label, float]] | None = None,
    source_link: str | None = None,
    issues: list[IssueLink] | None = None,
    owner: OwnerChoice | None = None,
    group: str | None = None,
) -> discord.Embed:
    """The card: severity colour and title first, the text, then fields and the tally.
    The description (the item's text) gets what the rest leaves of the 6,000."""
    source = learned_from(triage.evidence)
    learned = f"*{_text(source, 300)}*" if source else ""
    embed = discord.Embed(
        title=_title(triage, taxonomy),
        colour=severity_colour(taxonomy, triage.severity),
        timestamp=item.received_at,
    )
    embed.add_field(name="Category", value=_value(_text(triage.category, NAME_CHARS)), inline=True)
    embed.add_field(name="Severity", value=_value(_text(triage.severity, NAME_CHARS)), inline=True)
    confidence = f"{triage.confidence.category:.0%} / {triage.confidence.severity:.0%}"
    if triage.needs_human:
        confidence += f"\n{emoji('raising_hand')} **needs a human**"
    embed.add_field(name="Confidence", value=confidence, inline=True)
    embed.add_field(
        name="Suggested action",
        value=_value(
            _join_within(
                [p for p in (_text(triage.action, ACTION_CHARS), learned) if p],
                ACTION_CHARS,
                "\n",
            )
        ),
        inline=False,
    )
    if similar:
        lines = [
            f"• “{_text(one_line(other.redacted_text), SIMILAR_TEXT_CHARS)}” → "
            f"**{_text(lab.category, NAME_CHARS)} / {_text(lab.severity, NAME_CHARS)}**"
            f" ({score:.0%} similar)"
            for other, lab, score in similar
        ]
        embed.add_field(
            name="Similar, already validated",
            value=_value(_join_within(lines, SIMILAR_CHARS, "\n")),
            inline=False,
        )
    embed.add_field(name="Source", value=_value(_source(item, source_link)), inline=False)
    if group:
        embed.add_field(name="Reports", value=_value(group), inline=False)
    embed.add_field(name="Votes", value=_value(tally_text(votes or [], label)), inline=False)
    if owner is not None:
        embed.add_field(name="Owner", value=_value(owner_field(owner)), inline=False)
    issue_text = issue_field(issues or [])
    if issue_text:
        embed.add_field(name="GitHub issue", value=_value(issue_text), inline=False)
    fallback = ""
    if triage.fallback_reason:
        fallback = f" · LLM fallback: {_plain(one_line(triage.fallback_reason), FALLBACK_CHARS)}"
    model = _plain(triage.model_version, 100)
    embed.set_footer(text=_plain(f"item {item.id} · model {model}{fallback}", FOOTER_CHARS))
    room = min(DESCRIPTION_LIMIT, EMBED_LIMIT - embed_width(embed))
    embed.description = _quote(item.redacted_text, room)
    return embed


def card_payload(
    view: CardView, taxonomy: Taxonomy, *, minimal: bool = False
) -> tuple[str, discord.Embed]:
    """The message content and embed of a card (or of the minimal fallback card)."""
    item, triage = view.item, view.triage
    if view.duplicate_of is not None:
        return _text(f"Another report: {one_line(item.redacted_text)}", 300), duplicate_embed(view)
    if view.thread_ref is not None:  # in a thread, in no group: split off
        return "Not a duplicate: a card of its own now", split_embed(view)
    if minimal:
        return card_text(item, triage), minimal_embed(view, taxonomy)
    embed = card_embed(
        item,
        triage,
        taxonomy,
        votes=view.votes,
        label=view.label,
        similar=view.similar,
        source_link=source_link(item),
        issues=view.issues,
        owner=view.owner,
        group=group_field(view),
    )
    mention = owner_mention(view.owner.owner) if view.owner is not None else None
    text = card_text(item, triage)
    return (f"{mention} {text}" if mention else text), embed


def group_field(view: CardView) -> str | None:
    """A group's card: how many reports it stands for, the latest one's page and time."""
    if not view.group:
        return None
    latest = view.group[-1]
    page = f" on {_code(latest.page, FACT_CHARS)}" if latest.page else ""
    return _clip(
        f"{emoji('repeat')} **{1 + len(view.group)} reports** of this · latest from "
        f"{reporter(latest)}{page} <t:{int(latest.received_at.timestamp())}:R>"
        " · each in the thread",
        FIELD_VALUE_LIMIT,
    )


def reporter(item: FeedbackItem) -> str:
    """Who sent an item: a Discord member as a mention (shown, never pinged: no edit or
    send of a card allows it), else where it came from."""
    who = submitter_on(item, "discord")
    if who is not None and _USER_ID.fullmatch(who):
        return f"<@{who}>"
    return _text(item.source, FACT_CHARS)


def duplicate_embed(view: CardView) -> discord.Embed:
    """A grouped item: a message in its group card's thread (or, when it had a card before
    it was merged, that card collapsed), with "Not a duplicate" to split it off."""
    item, canonical = view.item, view.duplicate_of
    assert canonical is not None
    score = f" ({view.duplicate_score:.0%} similar)" if view.duplicate_score is not None else ""
    if view.thread_ref is not None:
        title = f"Another report of this{score}"
    else:
        title = f"Duplicate of {canonical.id}{score}: votes go to that card"
    embed = discord.Embed(title=_plain(title, TITLE_LIMIT), timestamp=item.received_at)
    embed.description = _quote(item.redacted_text, 1200)
    embed.add_field(name="Source", value=_value(_source(item, source_link(item))), inline=False)
    if view.thread_ref is None:
        excerpt = _text(one_line(canonical.redacted_text), SIMILAR_TEXT_CHARS)
        embed.add_field(name="Grouped under", value=_value(f"“{excerpt}”"), inline=False)
    embed.set_footer(text=_plain(f"item {item.id} · duplicate", FOOTER_CHARS))
    return embed


def split_embed(view: CardView) -> discord.Embed:
    """The old message of an item a reviewer split off its group."""
    embed = discord.Embed(title="Not a duplicate: this report has a card of its own now")
    embed.description = _quote(one_line(view.item.redacted_text), 300)
    embed.set_footer(text=_plain(f"item {view.item.id} · split off", FOOTER_CHARS))
    return embed


def duplicate_options(candidates: list[tuple[FeedbackItem, float]]) -> list[discord.SelectOption]:
    """ "Duplicate of...": the most similar open cards (those whose id rides as it is)."""
    return [
        discord.SelectOption(
            label=_plain(f"{score:.0%} · {one_line(other.redacted_text)}", OPTION_LIMIT),
            value=other.id,
        )
        for other, score in candidates[:OPTIONS_LIMIT]
        if item_key(other.id) == other.id
    ]


def owner_mention(owner: OwnerSpec) -> str | None:
    """`<@&role>` or `<@user>` for an owner's Discord id: in a card's content it pings them
    when the card is sent (the send allows that one mention; an edit pings nobody)."""
    if not owner.discord:
        return None
    kind, _, snowflake = owner.discord.partition(":")
    return f"<@&{snowflake}>" if kind == "role" else f"<@{snowflake}>"


def owner_field(choice: OwnerChoice) -> str:
    mention = owner_mention(choice.owner)
    why = choice.why if choice.source != "assigned" else f"assigned by {who(choice.by or '')}"
    name = f"**{_text(choice.owner.name, NAME_CHARS)}**"
    return f"{mention} {name} ({why})" if mention else f"{name} ({why})"


def owner_options(owners: list[str], current: str | None) -> list[discord.SelectOption]:
    return [
        discord.SelectOption(
            label=_plain(name, OPTION_LIMIT), value=name[:OPTION_LIMIT], default=name == current
        )
        for name in owners[:OPTIONS_LIMIT]
    ]


ISSUE_CHARS = 500


def issue_field(links: list[IssueLink]) -> str | None:
    """Where the item's GitHub issue stands: linked once it exists."""
    lines = []
    for link in links:
        name = _text(link.name, 200)
        linked = _link(link.url, name) if link.url else None
        lines.append(f"{linked or name} · {_text(link.state_text, 300)}")
    return _join_within(lines, ISSUE_CHARS, "\n") if lines else None


def issue_url(view: CardView) -> str | None:
    """The issue an "Open issue" link button points to (checked like every link)."""
    return next((web_url(link.url) for link in view.issues if link.url), None)


def themes_text(themes: Themes) -> str:
    """`/triage themes`: names and examples are what people typed, shown literally."""
    lines = themes_text_lines(themes, "**", lambda text: f"“{_text(one_line(text), 120)}”")
    return _join_within(lines, CONTENT_LIMIT, "\n")


def digest_text(digest: Digest) -> str:
    """The digest's message (the chart goes with it as an attachment)."""
    lines = digest_lines(digest, "**", lambda text: f"“{_text(one_line(text), 200)}”")
    return _join_within(lines, CONTENT_LIMIT, "\n")


ESCALATION_MARK = "\U0001f6a8"  # 🚨: how the bot tells its replies to a card apart
DISPUTE_MARK = "\U0001f4ac"  # 💬


def dispute_reply(view: CardView) -> str:
    """The one reply a disputed card gets; reviewers shown as mentions that ping nobody."""
    text = core_dispute_text(view.votes, view.label, who, "**")
    return _clip(f"{DISPUTE_MARK} {text}", CONTENT_LIMIT)


def escalation_text(view: CardView, minutes: float, ping: tuple[str, int] | None) -> str:
    """The one reply a card nobody took gets; `ping` ("role"|"user", id) is mentioned."""
    mention = ""
    if ping is not None:
        mention = f"<@&{ping[1]}> " if ping[0] == "role" else f"<@{ping[1]}> "
    category, severity = view.current
    return _clip(
        f"{ESCALATION_MARK} {mention}this **{_text(severity, NAME_CHARS)}** "
        f"{_text(category, NAME_CHARS)} item has had no vote and no issue for {minutes:g} "
        "minutes: please take a look.",
        CONTENT_LIMIT,
    )


def issue_reply(link: IssueLink, *, created: bool) -> str:
    """What the clicker alone sees after Create issue."""
    name = _text(link.name, 200)
    linked = (_link(link.url, name) if link.url else None) or name
    return core_issue_reply(link, created=created, name=linked, text=lambda t: _text(t, 300))


def minimal_embed(view: CardView, taxonomy: Taxonomy) -> discord.Embed:
    """The fallback card after Discord refused the full one: nothing that grows with the item."""
    item, triage = view.item, view.triage
    embed = discord.Embed(
        title=_clip(
            f"{_text(triage.severity.upper(), NAME_CHARS)} · {_text(triage.category, NAME_CHARS)}",
            TITLE_LIMIT,
        ),
        description=_text(one_line(item.redacted_text), MINIMAL_TEXT_CHARS),
        colour=severity_colour(taxonomy, triage.severity),
    )
    embed.set_footer(
        text=_plain(f"item {item.id} · the full card could not be posted", FOOTER_CHARS)
    )
    return embed


def card_text(item: FeedbackItem, triage: Triage) -> str:
    """Notification text next to the embed (what a push notification shows): one line,
    escaped, clipped after escaping."""
    line = f"[{triage.severity}] {triage.category}: {one_line(item.redacted_text)}"
    return _text(line, NOTIFICATION_CHARS)


# -- selects and help --------------------------------------------------------------------------
def _options(
    specs: Sequence[CategorySpec] | Sequence[SeveritySpec], current: str
) -> list[discord.SelectOption]:
    return [
        discord.SelectOption(
            label=_plain(spec.name, OPTION_LIMIT),
            value=spec.name[:OPTION_LIMIT],
            emoji=UNICODE_EMOJI.get(spec.emoji),
            description=_plain(spec.description, OPTION_LIMIT) or None,
            default=spec.name == current,
        )
        for spec in specs[:OPTIONS_LIMIT]
    ]


def category_options(taxonomy: Taxonomy, current: str) -> list[discord.SelectOption]:
    return _options(taxonomy.categories, current)


def severity_options(taxonomy: Taxonomy, current: str) -> list[discord.SelectOption]:
    return _options(taxonomy.severities, current)


def reactions_help(taxonomy: Taxonomy) -> str:
    parts = [f"{emoji(taxonomy.emoji.confirm)} confirm", f"{emoji(taxonomy.emoji.reject)} wrong"]
    parts += [f"{emoji(c.emoji)} {escape(c.name)}" for c in taxonomy.categories]
    parts += [f"{emoji(s.emoji)} {escape(s.name)}" for s in taxonomy.severities]
    return ", ".join(parts)


def help_text(taxonomy: Taxonomy, channel_id: int) -> str:
    text = (
        "**triage-bot** turns feedback into triage cards and learns from your corrections.\n"
        f"• `/triage submit text:…`: triage a piece of feedback now (its card goes to "
        f"<#{channel_id}>)\n"
        "• `/triage queue`: what needs a human next (disputed, least confident, most severe); "
        "`mine:True`: only the items you own\n"
        "• `/triage stats`: validations and accuracy over 7 and 30 days\n"
        "• `/triage digest since:7d`: post the period's digest, with its chart\n"
        "• `/triage themes since:7d`: what the period's feedback is about; "
        "`/triage theme-rename`, `/triage theme-merge`: name them\n"
        "• `/triage help`: this message\n"
        "On a card: **Confirm**, **Correct** (edit the action), **Noise**, or pick the category "
        f"and severity in the menus; or react: {reactions_help(taxonomy)}. "
        "Removing your reaction withdraws your vote."
    )
    return _clip(text, CONTENT_LIMIT)


def queue_text(rows: list[tuple[FeedbackItem, Triage, str, str | None]]) -> str:
    if not rows:
        return "Nothing waits for a human."
    lines = []
    for item, triage, reason, link in rows:
        title = _text(one_line(item.redacted_text), QUEUE_TITLE_CHARS)
        ref = _link(link, title) or title
        lines.append(
            f"• **{_text(triage.severity, NAME_CHARS)}** · {_text(triage.category, NAME_CHARS)}"
            f" · {_text(reason, 200)}: {ref}"
        )
    return _join_within(lines, REPLY_CHARS, "\n", "**Review queue**")


def stats_text(overall: Stats, windows: list[tuple[int, Stats]], target: str | None = None) -> str:
    """`/triage stats`: counts, the outbox's state, and accuracy over recent windows. A dead
    letter's error can quote what a platform or a person wrote: its links and mentions are
    escaped (the figures' bold and code stay)."""
    text = printable("\n".join(stats_lines(overall, windows, target, "**")))
    text = discord.utils.escape_mentions(_LINKISH.sub(lambda m: "\\" + m.group(), text))
    return _clip(text, REPLY_CHARS)


def vote_receipt(kind: ValidationKind, category: str | None, severity: str | None) -> str:
    """The ephemeral line a reviewer sees after voting."""
    if kind == ValidationKind.RETRACT:
        return "Your vote was withdrawn."
    if kind == ValidationKind.NOISE:
        return "Recorded: noise."
    cat, sev = _text(category, NAME_CHARS), _text(severity, NAME_CHARS)
    if kind == ValidationKind.CONFIRM:
        return f"Recorded: you confirmed {cat} / {sev}."
    return f"Recorded: {cat} / {sev}."


def snowflake_time(snowflake: int) -> datetime:
    return discord.utils.snowflake_time(snowflake)
