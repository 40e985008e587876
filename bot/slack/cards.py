"""Pure translations between Slack payloads and core models: no I/O here.

`card_payload` renders a core `CardView` as a Block Kit card (or the minimal fallback
card); `reaction_vote`, `is_feedback_message` and `view_value` read Slack payloads. Tested
on real payload shapes in tests/unit/test_slack_cards.py.
"""

from __future__ import annotations

import json
from typing import Any

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
from core.taxonomy import Taxonomy
from core.votes import ReactionVote
from core.votes import reaction_vote as core_reaction_vote

CARD_EVENT_TYPE = "triage_card"
CONFIRM_ACTION = "triage_confirm"
CORRECT_ACTION = "triage_correct"
NOISE_ACTION = "triage_noise"
CORRECT_VIEW = "triage_correct_view"
SUBMIT_VIEW = "triage_submit_view"
SECTION_LIMIT = 2900  # Slack rejects section text over 3000 characters
MINIMAL_TEXT_CHARS = 300  # the fallback card's excerpt: far inside every limit

HELP_TEXT = (
    "*triage-bot* turns feedback into triage cards and learns from your corrections.\n"
    "• `/triage <text>`: triage a piece of feedback now (its card goes to the triage channel)\n"
    "• `/triage`: open a form to submit feedback\n"
    "• `/triage queue`: what needs a human next (least confident, most severe, disputed)\n"
    "• `/triage stats`: validations and accuracy over 7 and 30 days\n"
    "• `/triage help`: this message\n"
    "On a card: *Confirm*, *Correct* or *Noise*, or react: {reactions}. "
    "Removing your reaction withdraws your vote."
)


def emoji(name: str) -> str:
    return f":{name}:"


def card_metadata(item_id: str) -> dict[str, Any]:
    return {"event_type": CARD_EVENT_TYPE, "event_payload": {"item_id": item_id}}


def card_item_id(message: dict[str, Any]) -> str | None:
    """The item id a posted card carries in its metadata (for reconciling after a crash)."""
    meta = message.get("metadata")
    if not isinstance(meta, dict) or meta.get("event_type") != CARD_EVENT_TYPE:
        return None
    payload = meta.get("event_payload")
    item_id = payload.get("item_id") if isinstance(payload, dict) else None
    return item_id if isinstance(item_id, str) and item_id else None


def archive_link(channel: str, ts: str) -> str:
    """A message link Slack clients open; needs no API call."""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def _clip(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in _clip(text).splitlines() or [""])


def tally_line(votes: list[Validation], label: Label | None) -> str:
    parts = []
    for vote in votes:
        who = f"<@{vote.reviewer}>"
        if vote.kind == ValidationKind.CONFIRM:
            parts.append(f":white_check_mark: {who} confirmed")
        elif vote.kind == ValidationKind.NOISE:
            parts.append(f":wastebasket: {who} marked noise")
        elif vote.kind == ValidationKind.REJECT:
            parts.append(f":x: {who} says it is wrong")
        elif vote.kind == ValidationKind.CORRECT:
            parts.append(f":pencil2: {who} → {vote.category} / {vote.severity}")
    if not parts:
        return "No votes yet."
    summary = f"{len(votes)} vote(s)"
    if label is not None:
        summary += f"; label *{label.category} / {label.severity}*"
        if label.disagreement:
            summary += f" (agreement {label.agreement:.0%})"
    return " · ".join(parts) + f"\n{summary}"


def action_buttons(item_id: str) -> dict[str, Any]:
    """Confirm, Correct and Noise; each carries the item id, so no state is needed."""
    return {
        "type": "actions",
        "block_id": "triage_actions",
        "elements": [
            {
                "type": "button",
                "action_id": CONFIRM_ACTION,
                "text": {"type": "plain_text", "text": "Confirm"},
                "style": "primary",
                "value": item_id,
            },
            {
                "type": "button",
                "action_id": CORRECT_ACTION,
                "text": {"type": "plain_text", "text": "Correct"},
                "value": item_id,
            },
            {
                "type": "button",
                "action_id": NOISE_ACTION,
                "text": {"type": "plain_text", "text": "Noise"},
                "style": "danger",
                "value": item_id,
            },
        ],
    }


def card_blocks(
    item: FeedbackItem,
    triage: Triage,
    taxonomy: Taxonomy,
    *,
    votes: list[Validation] | None = None,
    label: Label | None = None,
    similar: list[tuple[FeedbackItem, Label, float]] | None = None,
    source_link: str | None = None,
) -> list[dict[str, Any]]:
    """The card: severity first, then category, confidence, text, action, similar, buttons."""
    sev = taxonomy.severity(triage.severity) if triage.severity in taxonomy.severity_names else None
    cat = taxonomy.category(triage.category) if triage.category in taxonomy.category_names else None
    headline = (
        f"{emoji(sev.emoji) if sev else ''} *{triage.severity.upper()}* · "
        f"{emoji(cat.emoji) if cat else ''} *{triage.category}* · confidence "
        f"{triage.confidence.category:.0%} / {triage.confidence.severity:.0%}"
    )
    if triage.needs_human:
        headline += " · :raising_hand: *needs a human*"
    context = [f"from {item.source}"]
    if source_link:
        context.append(f"<{source_link}|source message>")
    context += item_facts(item)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _quote(item.redacted_text)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _clip(f"*Suggested action:* {triage.action}")},
        },
    ]
    if similar:
        lines = [
            f"• “{_clip(other.redacted_text, 120)}” → *{lab.category} / {lab.severity}*"
            f" ({score:.0%} similar)"
            for other, lab, score in similar
        ]
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "*Similar, already validated:*\n" + "\n".join(lines)}
                ],
            }
        )
    blocks.append(action_buttons(item.id))
    blocks.append(
        {
            "type": "context",
            "block_id": "triage_tally",
            "elements": [{"type": "mrkdwn", "text": tally_line(votes or [], label)}],
        }
    )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"`{item.id}` · model `{triage.model_version}`"
                    + (
                        f" · :warning: LLM fallback: {_clip(triage.fallback_reason, 300)}"
                        if triage.fallback_reason
                        else ""
                    ),
                }
            ],
        }
    )
    return blocks


def source_link(item: FeedbackItem) -> str | None:
    """Where the card links back to: the intake message, else an http(s) page."""
    source = item.metadata.get("slack")
    if isinstance(source, dict) and "channel" in source and "ts" in source:
        return archive_link(str(source["channel"]), str(source["ts"]))
    if item.page and item.page.startswith(("http://", "https://")):
        return item.page
    return None


def card_payload(view: CardView, taxonomy: Taxonomy, *, minimal: bool = False) -> dict[str, Any]:
    """`chat.postMessage` / `chat.update` arguments for a card (without channel and ts)."""
    item, triage = view.item, view.triage
    if minimal:
        blocks = minimal_blocks(view, taxonomy)
    else:
        blocks = card_blocks(
            item,
            triage,
            taxonomy,
            votes=view.votes,
            label=view.label,
            similar=view.similar,
            source_link=source_link(item),
        )
    return {"text": card_text(item, triage), "blocks": blocks}


def minimal_blocks(view: CardView, taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """The fallback card after Slack refused the full one: prediction, a short excerpt,
    the buttons and the item id; nothing that can grow with the item."""
    item, triage = view.item, view.triage
    excerpt = _clip(item.redacted_text.replace("\n", " "), MINIMAL_TEXT_CHARS)
    return [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*{triage.severity.upper()}* · *{triage.category}* "
                f"({triage.confidence.category:.0%})\n> {excerpt}",
            },
        },
        action_buttons(item.id),
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"`{item.id}` · the full card could not be posted"}
            ],
        },
    ]


def card_text(item: FeedbackItem, triage: Triage) -> str:
    """Notification fallback text for the card."""
    return _clip(f"[{triage.severity}] {triage.category}: {item.redacted_text}", 300).replace(
        "\n", " "
    )


def _options(names: list[str]) -> list[dict[str, Any]]:
    return [{"text": {"type": "plain_text", "text": n}, "value": n} for n in names]


def correct_modal(
    item_id: str, triage: Triage, taxonomy: Taxonomy, channel: str, ts: str
) -> dict[str, Any]:
    """The Correct button's modal: category, severity, action; preset to the prediction."""

    def select(block_id: str, names: list[str], current: str, label: str) -> dict[str, Any]:
        options = _options(names)
        element: dict[str, Any] = {
            "type": "static_select",
            "action_id": "value",
            "options": options,
        }
        if current in names:
            element["initial_option"] = options[names.index(current)]
        return {
            "type": "input",
            "block_id": block_id,
            "label": {"type": "plain_text", "text": label},
            "element": element,
        }

    return {
        "type": "modal",
        "callback_id": CORRECT_VIEW,
        "private_metadata": json.dumps({"item_id": item_id, "channel": channel, "ts": ts}),
        "title": {"type": "plain_text", "text": "Correct triage"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            select("category", taxonomy.category_names, triage.category, "Category"),
            select("severity", taxonomy.severity_names, triage.severity, "Severity"),
            {
                "type": "input",
                "block_id": "action",
                "optional": True,
                "label": {"type": "plain_text", "text": "Action"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "initial_value": triage.action[:2900],
                },
            },
        ],
    }


def submit_modal(taxonomy: Taxonomy) -> dict[str, Any]:
    forms = sorted(taxonomy.form_types)
    return {
        "type": "modal",
        "callback_id": SUBMIT_VIEW,
        "title": {"type": "plain_text", "text": "Submit feedback"},
        "submit": {"type": "plain_text", "text": "Triage"},
        "blocks": [
            {
                "type": "input",
                "block_id": "text",
                "label": {"type": "plain_text", "text": "Feedback"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": 3000,
                },
            },
            {
                "type": "input",
                "block_id": "form_type",
                "optional": True,
                "label": {"type": "plain_text", "text": "Form type"},
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": _options(forms),
                },
            },
            {
                "type": "input",
                "block_id": "page",
                "optional": True,
                "label": {"type": "plain_text", "text": "Page or URL"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            },
        ],
    }


def view_value(view: dict[str, Any], block_id: str) -> str | None:
    """A submitted modal's value for one input block (select or text)."""
    state: Any = view
    for key in ("state", "values", block_id, "value"):  # any other shape means no value
        state = state.get(key) if isinstance(state, dict) else None
    if not isinstance(state, dict):
        return None
    if state.get("type") == "static_select":
        option = state.get("selected_option")
        value = option.get("value") if isinstance(option, dict) else None
        return value if isinstance(value, str) and value else None
    value = state.get("value")
    return value.strip() if isinstance(value, str) and value.strip() else None


def reaction_vote(reaction: str, taxonomy: Taxonomy) -> ReactionVote | None:
    """What a Slack reaction on a card means; None if nothing. Slack names skin tones
    after the emoji ("+1::skin-tone-2"): the emoji alone counts."""
    return core_reaction_vote(reaction.split("::", 1)[0], taxonomy)


def reactions_help(taxonomy: Taxonomy) -> str:
    parts = [f"{emoji(taxonomy.emoji.confirm)} confirm", f"{emoji(taxonomy.emoji.reject)} wrong"]
    parts += [f"{emoji(c.emoji)} {c.name}" for c in taxonomy.categories]
    parts += [f"{emoji(s.emoji)} {s.name}" for s in taxonomy.severities]
    return ", ".join(parts)


def is_feedback_message(event: dict[str, Any], intake: frozenset[str]) -> bool:
    """A new human message in an intake channel (not edits, joins, bots or our own cards)."""
    channel = event.get("channel")
    return (
        event.get("type") == "message"
        and isinstance(channel, str)
        and channel in intake
        and event.get("subtype") in (None, "file_share", "thread_broadcast")
        and not event.get("bot_id")
        and isinstance(event.get("user"), str)
        and bool(event.get("user"))
        and isinstance(event.get("ts"), str)
        and isinstance(event.get("text"), str)
    )


def queue_blocks(
    rows: list[tuple[FeedbackItem, Triage, str, str | None]],
) -> list[dict[str, Any]]:
    if not rows:
        return [
            {"type": "section", "text": {"type": "mrkdwn", "text": "Nothing waits for a human."}}
        ]
    lines = []
    for item, triage, reason, link in rows:
        title = _clip(item.redacted_text.replace("\n", " "), 90)
        ref = f"<{link}|{title}>" if link else title
        lines.append(f"• *{triage.severity}* · {triage.category} · {reason}: {ref}")
    return [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Review queue*\n" + "\n".join(lines)},
        }
    ]


def stats_text(overall: Stats, windows: list[tuple[int, Stats]], target: str | None = None) -> str:
    """`/triage stats`: counts, the outbox's state, and accuracy over recent windows."""
    return "\n".join(stats_lines(overall, windows, target, "*"))
