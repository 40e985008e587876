"""What an issue the bot opens says: pure functions from a card to GitHub's title and body.

Everything a person wrote (the feedback, its page, a reviewer's action, names) is shown
literally: in a fenced or inline code span longer than any run of backticks inside, where
GitHub renders no markdown, no HTML, no @mention (nobody is pinged) and no #123 or URL
autolink (no other issue is cross-referenced). The only links are the ones built here: the
card in chat. A marker comment names the item, so a crash between creating the issue and
storing its URL ends with the issue found, not opened twice.
"""

from __future__ import annotations

import re

from bot.chat_text import printable
from core.models import CardView, ValidationKind

MAX_TITLE = 256  # GitHub refuses longer titles
MAX_BODY = 65536  # GitHub refuses longer bodies (characters)
MINIMAL_TEXT = 1000  # the excerpt of a minimal body (after GitHub refused the full one)
_BACKTICKS = re.compile(r"`+")


def marker(item_id: str) -> str:
    """The line that finds an item's issue (`GitHubPoster.find`), invisible on GitHub."""
    return f"<!-- triage-bot:item={item_id} -->"


def title(text: str) -> str:
    """A title is plain text on GitHub (no markdown, no mentions): one line, clipped."""
    line = " ".join(printable(text).split())
    return line if len(line) <= MAX_TITLE else line[: MAX_TITLE - 1] + "…"


def _fence(text: str, char: str = "`") -> str:
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    return char * max(3, longest + 1)


def literal_block(text: str) -> str:
    """A fenced block GitHub shows as it is, whatever the text holds."""
    fence = _fence(text)
    return f"{fence}text\n{text}\n{fence}"


def literal_inline(text: str) -> str:
    """An inline code span of one line, padded so a leading or trailing backtick holds."""
    line = " ".join(printable(text).split())
    longest = max((len(run) for run in _BACKTICKS.findall(line)), default=0)
    ticks = "`" * (longest + 1)
    return f"{ticks} {line} {ticks}"


def _votes(card: CardView) -> list[str]:
    lines = []
    for vote in card.votes:
        if vote.kind == ValidationKind.RETRACT:
            continue
        what = {
            ValidationKind.CONFIRM: "confirmed",
            ValidationKind.NOISE: "marked it noise",
            ValidationKind.REJECT: "said the prediction is wrong",
        }.get(vote.kind, f"corrected it to {vote.category} / {vote.severity}")
        lines.append(f"- {literal_inline(vote.reviewer)} ({vote.platform}) {what}")
    return lines


def body(card: CardView, card_url: str | None, *, minimal: bool = False) -> str:
    """The issue's body: the redacted text, what the card says, and where it came from."""
    item, triage = card.item, card.triage
    category, severity = card.current
    head = [f"**{category}** / **{severity}**, suggested by triage-bot ({triage.model_version})"]
    if card_url:
        head.append(f"[The card in chat]({card_url})")
    tail = ["", marker(item.id)]
    if minimal:
        excerpt = printable(item.redacted_text)[:MINIMAL_TEXT]
        return "\n\n".join([*head, literal_block(excerpt)]) + "\n".join(tail)
    facts = [
        f"- Category: {category} (predicted {triage.category}, {triage.confidence.category:.0%})",
        f"- Severity: {severity} (predicted {triage.severity}, {triage.confidence.severity:.0%})",
    ]
    if item.page:
        facts.append(f"- Page: {literal_inline(item.page[:500])}")
    if item.form_type:
        facts.append(f"- Form: {literal_inline(item.form_type[:100])}")
    if item.rating is not None:
        facts.append(f"- Rating: {item.rating:g}")
    facts.append(f"- Received: {item.received_at:%Y-%m-%d %H:%M} UTC via {item.source}")
    if item.pii_kinds:
        facts.append("- Redacted before storing: " + ", ".join(item.pii_kinds))
    action = (card.label.action if card.label and card.label.action else None) or triage.action
    sections = [
        "\n".join(head),
        "### Feedback",
        "",  # the text: filled in below, clipped to what the body can still hold
        "### Suggested action\n" + literal_block(printable(action)),
        "### Triage\n" + "\n".join(facts),
    ]
    votes = _votes(card)
    if votes:
        sections.append("### Validations\n" + "\n".join(votes))
    text = printable(item.redacted_text)
    keep = len(text)
    while True:  # the fence grows with the backticks inside, so measure the whole body
        shown = text if keep >= len(text) else text[:keep] + "\n… (clipped)"
        sections[2] = literal_block(shown)
        out = "\n\n".join(sections) + "\n".join(tail)
        if len(out) <= MAX_BODY or keep == 0:
            return out
        keep = max(0, keep - (len(out) - MAX_BODY) - 32)
