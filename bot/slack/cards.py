"""Pure translations between Slack payloads and core models: no I/O here.

`card_blocks` renders a triage as a Block Kit card; `reaction_vote` and `message_feedback`
read Slack payloads. Tested on real payload shapes in tests/unit/test_slack_cards.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.models import FeedbackItem, Label, Triage, Validation, ValidationKind
from core.taxonomy import Taxonomy

CARD_EVENT_TYPE = "triage_card"
CONFIRM_ACTION = "triage_confirm"
CORRECT_ACTION = "triage_correct"
NOISE_ACTION = "triage_noise"
CORRECT_VIEW = "triage_correct_view"
SUBMIT_VIEW = "triage_submit_view"
SECTION_LIMIT = 2900  # Slack rejects section text over 3000 characters

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


def item_facts(item: FeedbackItem) -> list[str]:
    """Where an item came from, as short phrases (both platforms' cards show them)."""
    facts = []
    if item.page:
        facts.append(f"page `{item.page[:200]}`")
    if item.form_type:
        facts.append(f"form `{item.form_type}`")
    if item.rating is not None:
        facts.append(f"rating {item.rating:g}")
    if item.pii_kinds:
        facts.append("redacted: " + ", ".join(item.pii_kinds))
    return facts


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
    blocks.append(
        {
            "type": "actions",
            "block_id": "triage_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": CONFIRM_ACTION,
                    "text": {"type": "plain_text", "text": "Confirm"},
                    "style": "primary",
                    "value": item.id,
                },
                {
                    "type": "button",
                    "action_id": CORRECT_ACTION,
                    "text": {"type": "plain_text", "text": "Correct"},
                    "value": item.id,
                },
                {
                    "type": "button",
                    "action_id": NOISE_ACTION,
                    "text": {"type": "plain_text", "text": "Noise"},
                    "style": "danger",
                    "value": item.id,
                },
            ],
        }
    )
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


@dataclass(frozen=True)
class ReactionVote:
    kind: ValidationKind
    category: str | None = None
    severity: str | None = None

    def supports(self, vote: Validation | None) -> bool:
        """Whether a reviewer's current vote rests on this reaction, so removing the
        reaction retracts it (removing an unrelated emoji changes nothing)."""
        if vote is None or vote.kind != self.kind:
            return False
        if self.category and vote.category != self.category:
            return False
        return not (self.severity and vote.severity != self.severity)


def reaction_vote(reaction: str, taxonomy: Taxonomy) -> ReactionVote | None:
    """What an emoji reaction on a card means, per the taxonomy's emoji; None if nothing."""
    name = reaction.split("::", 1)[0]  # drop skin tones: "+1::skin-tone-2"
    if name == taxonomy.emoji.confirm:
        return ReactionVote(ValidationKind.CONFIRM)
    if name == taxonomy.emoji.reject:
        return ReactionVote(ValidationKind.REJECT)
    for spec in taxonomy.categories:
        if spec.emoji == name:
            if spec.name == taxonomy.noise_category:
                return ReactionVote(ValidationKind.NOISE)
            return ReactionVote(ValidationKind.CORRECT, category=spec.name)
    for sev in taxonomy.severities:
        if sev.emoji == name:
            return ReactionVote(ValidationKind.CORRECT, severity=sev.name)
    return None


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
