"""Pure translations between Discord and core models: no I/O here.

`card_embed` renders a triage as an embed (colour by severity); `custom_id` puts the item
id in every component so a card's buttons work after a restart; `reaction_vote` reads a
unicode reaction with the taxonomy's emoji, meaning exactly what it means on Slack.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import discord

from core.models import (
    CardView,
    FeedbackItem,
    Label,
    Triage,
    Validation,
    ValidationKind,
    item_facts,
)
from core.service import Stats, stats_lines
from core.taxonomy import CategorySpec, SeveritySpec, Taxonomy
from core.votes import ReactionVote
from core.votes import reaction_vote as core_reaction_vote

PREFIX = "triage"
MINIMAL_TEXT_CHARS = 300  # the fallback card's excerpt: far inside every limit
BUTTON_ACTIONS = ("confirm", "correct", "noise")
SELECT_ACTIONS = ("category", "severity")
MODAL_ACTION = "modal"
CUSTOM_ID_LIMIT = 100  # Discord rejects longer custom ids
FOOTER = re.compile(r"^item (?P<item_id>\S+)")

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


# -- component ids -----------------------------------------------------------------------------
def custom_id(action: str, item_id: str) -> str:
    """`triage:<action>:<item_id>`: the item id rides in the component, not in memory."""
    value = f"{PREFIX}:{action}:{item_id}"
    if len(value) > CUSTOM_ID_LIMIT:
        raise ValueError(f"item id {item_id!r} is too long for a Discord custom_id")
    return value


def id_template(actions: Sequence[str]) -> str:
    """The regex a DynamicItem matches; groups `action` and `item_id`."""
    return rf"^{PREFIX}:(?P<action>{'|'.join(actions)}):(?P<item_id>.+)$"


def card_item_id(message: discord.Message) -> str | None:
    """The item id a posted card carries in its embed footer (for reconciling after a crash)."""
    for embed in message.embeds:
        match = FOOTER.match(embed.footer.text or "") if embed.footer else None
        if match:
            return match["item_id"]
    return None


def message_link(guild_id: int | None, channel_id: int, message_id: int | str) -> str:
    """A link Discord clients open; needs no API call."""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


# -- the card --------------------------------------------------------------------------------
def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote(text: str, limit: int = 3500) -> str:
    return "\n".join("> " + line for line in _clip(text, limit).splitlines() or [""])


def severity_colour(taxonomy: Taxonomy, severity: str) -> discord.Colour:
    if severity in taxonomy.severity_names:
        return discord.Colour(int(taxonomy.severity(severity).color.lstrip("#"), 16))
    return discord.Colour.light_grey()


def who(reviewer: str) -> str:
    """A mention for a Discord user id; other platforms' reviewers by name."""
    return f"<@{reviewer}>" if reviewer.isdigit() else reviewer


def tally_text(votes: list[Validation], label: Label | None) -> str:
    lines = []
    for vote in votes:
        if vote.kind == ValidationKind.CONFIRM:
            lines.append(f"{emoji('white_check_mark')} {who(vote.reviewer)} confirmed")
        elif vote.kind == ValidationKind.NOISE:
            lines.append(f"{emoji('wastebasket')} {who(vote.reviewer)} marked noise")
        elif vote.kind == ValidationKind.REJECT:
            lines.append(f"{emoji('x')} {who(vote.reviewer)} says it is wrong")
        elif vote.kind == ValidationKind.CORRECT:
            line = f"{emoji('pencil2')} {who(vote.reviewer)} → {vote.category} / {vote.severity}"
            if vote.action:
                line += f": {_clip(vote.action, 120)}"
            lines.append(line)
    if not lines:
        return "No votes yet."
    summary = f"{len(votes)} vote(s)"
    if label is not None:
        summary += f"; label **{label.category} / {label.severity}**"
        if label.disagreement:
            summary += f" (agreement {label.agreement:.0%})"
    return _clip("\n".join(lines), 900) + f"\n{summary}"


def card_embed(
    item: FeedbackItem,
    triage: Triage,
    taxonomy: Taxonomy,
    *,
    votes: list[Validation] | None = None,
    label: Label | None = None,
    similar: list[tuple[FeedbackItem, Label, float]] | None = None,
    source_link: str | None = None,
) -> discord.Embed:
    """The card: severity colour and title first, the text, then fields and the tally."""
    sev = taxonomy.severity(triage.severity) if triage.severity in taxonomy.severity_names else None
    cat = taxonomy.category(triage.category) if triage.category in taxonomy.category_names else None
    title = (
        f"{emoji(sev.emoji) if sev else ''} {triage.severity.upper()} · "
        f"{emoji(cat.emoji) if cat else ''} {triage.category}"
    )
    embed = discord.Embed(
        title=_clip(title.strip(), 256),
        description=_quote(item.redacted_text),
        colour=severity_colour(taxonomy, triage.severity),
        timestamp=item.received_at,
    )
    embed.add_field(name="Category", value=triage.category, inline=True)
    embed.add_field(name="Severity", value=triage.severity, inline=True)
    confidence = f"{triage.confidence.category:.0%} / {triage.confidence.severity:.0%}"
    if triage.needs_human:
        confidence += f"\n{emoji('raising_hand')} **needs a human**"
    embed.add_field(name="Confidence", value=confidence, inline=True)
    embed.add_field(name="Suggested action", value=_clip(triage.action, 1024), inline=False)
    if similar:
        lines = [
            f"• “{_clip(other.redacted_text.replace(chr(10), ' '), 100)}” → "
            f"**{lab.category} / {lab.severity}** ({score:.0%} similar)"
            for other, lab, score in similar
        ]
        embed.add_field(
            name="Similar, already validated", value=_clip("\n".join(lines), 1024), inline=False
        )
    context = [f"from {item.source}"]
    if source_link:
        context.append(f"[source message]({source_link})")
    context += item_facts(item)
    embed.add_field(name="Source", value=_clip(" · ".join(context), 1024), inline=False)
    embed.add_field(name="Votes", value=tally_text(votes or [], label), inline=False)
    fallback = f" · LLM fallback: {triage.fallback_reason}" if triage.fallback_reason else ""
    embed.set_footer(text=_clip(f"item {item.id} · model {triage.model_version}{fallback}", 2048))
    return embed


def source_link(item: FeedbackItem) -> str | None:
    """Where the card links back to: the intake message, else an http(s) page."""
    source = item.metadata.get("discord")
    if isinstance(source, dict) and "channel" in source and "message" in source:
        return message_link(source.get("guild"), source["channel"], source["message"])
    if item.page and item.page.startswith(("http://", "https://")):
        return item.page
    return None


def card_payload(
    view: CardView, taxonomy: Taxonomy, *, minimal: bool = False
) -> tuple[str, discord.Embed]:
    """The message content and embed of a card (or of the minimal fallback card)."""
    item, triage = view.item, view.triage
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
    )
    return card_text(item, triage), embed


def minimal_embed(view: CardView, taxonomy: Taxonomy) -> discord.Embed:
    """The fallback card after Discord refused the full one: nothing that grows with the item."""
    item, triage = view.item, view.triage
    excerpt = _clip(item.redacted_text.replace("\n", " "), MINIMAL_TEXT_CHARS)
    embed = discord.Embed(
        title=_clip(f"{triage.severity.upper()} · {triage.category}", 256),
        description=discord.utils.escape_markdown(excerpt),
        colour=severity_colour(taxonomy, triage.severity),
    )
    embed.set_footer(text=f"item {item.id} · the full card could not be posted")
    return embed


def card_text(item: FeedbackItem, triage: Triage) -> str:
    """Notification text next to the embed (what a push notification shows)."""
    return _clip(f"[{triage.severity}] {triage.category}: {item.redacted_text}", 200).replace(
        "\n", " "
    )


# -- selects and help --------------------------------------------------------------------------
def _options(
    specs: Sequence[CategorySpec] | Sequence[SeveritySpec], current: str
) -> list[discord.SelectOption]:
    return [
        discord.SelectOption(
            label=spec.name,
            value=spec.name,
            emoji=UNICODE_EMOJI.get(spec.emoji),
            description=_clip(spec.description, 100),
            default=spec.name == current,
        )
        for spec in specs[:25]  # Discord's limit per select
    ]


def category_options(taxonomy: Taxonomy, current: str) -> list[discord.SelectOption]:
    return _options(taxonomy.categories, current)


def severity_options(taxonomy: Taxonomy, current: str) -> list[discord.SelectOption]:
    return _options(taxonomy.severities, current)


def reactions_help(taxonomy: Taxonomy) -> str:
    parts = [f"{emoji(taxonomy.emoji.confirm)} confirm", f"{emoji(taxonomy.emoji.reject)} wrong"]
    parts += [f"{emoji(c.emoji)} {c.name}" for c in taxonomy.categories]
    parts += [f"{emoji(s.emoji)} {s.name}" for s in taxonomy.severities]
    return ", ".join(parts)


def help_text(taxonomy: Taxonomy, channel_id: int) -> str:
    return (
        "**triage-bot** turns feedback into triage cards and learns from your corrections.\n"
        f"• `/triage submit text:…`: triage a piece of feedback now (its card goes to "
        f"<#{channel_id}>)\n"
        "• `/triage queue`: what needs a human next (disputed, least confident, most severe)\n"
        "• `/triage stats`: validations and accuracy over 7 and 30 days\n"
        "• `/triage help`: this message\n"
        "On a card: **Confirm**, **Correct** (edit the action), **Noise**, or pick the category "
        f"and severity in the menus; or react: {reactions_help(taxonomy)}. "
        "Removing your reaction withdraws your vote."
    )


def queue_text(rows: list[tuple[FeedbackItem, Triage, str, str | None]]) -> str:
    if not rows:
        return "Nothing waits for a human."
    lines = ["**Review queue**"]
    for item, triage, reason, link in rows:
        title = _clip(item.redacted_text.replace("\n", " "), 90)
        ref = f"[{title}]({link})" if link else title
        lines.append(f"• **{triage.severity}** · {triage.category} · {reason}: {ref}")
    return _clip("\n".join(lines), 1900)


def stats_text(overall: Stats, windows: list[tuple[int, Stats]], target: str | None = None) -> str:
    """`/triage stats`: counts, the outbox's state, and accuracy over recent windows."""
    return _clip("\n".join(stats_lines(overall, windows, target, "**")), 1900)


def vote_receipt(kind: ValidationKind, category: str | None, severity: str | None) -> str:
    """The ephemeral line a reviewer sees after voting."""
    if kind == ValidationKind.RETRACT:
        return "Your vote was withdrawn."
    if kind == ValidationKind.NOISE:
        return "Recorded: noise."
    if kind == ValidationKind.CONFIRM:
        return f"Recorded: you confirmed {category} / {severity}."
    return f"Recorded: {category} / {severity}."


def snowflake_time(snowflake: int) -> datetime:
    return discord.utils.snowflake_time(snowflake)
