"""Pure translations between Slack payloads and core models: no I/O here.

`card_payload` renders a core `CardView` as a Block Kit card (or the minimal fallback
card); `reaction_vote`, `is_feedback_message` and `view_value` read Slack payloads. Tested
on real payload shapes in tests/unit/test_slack_cards.py and, for every input,
tests/unit/test_render_limits.py.

Everything a person wrote (feedback, page, form type, reviewers' names, the suggested
action that quotes the feedback, an LLM's error) is shown as literal text: `&`, `<` and `>`
become entities, so no mention, link or command can be spelled with it, and each mrkdwn
object is `verbatim` (Slack links and mentions nothing on its own). The card's own links
and mentions are built from values checked here. Every text is clipped to Block Kit's
limit after formatting, never inside an entity.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from bot.chat_text import clip, join_within, one_line, printable, web_url, width
from core.actions import learned_from
from core.digest import Digest, digest_lines
from core.issues import IssueDraft, IssueLink, offers_issue
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
from core.service import Stats, stats_lines
from core.taxonomy import Taxonomy
from core.themes import Themes, themes_text_lines
from core.votes import ReactionVote
from core.votes import reaction_vote as core_reaction_vote

CARD_EVENT_TYPE = "triage_card"
CONFIRM_ACTION = "triage_confirm"
CORRECT_ACTION = "triage_correct"
NOISE_ACTION = "triage_noise"
CORRECT_VIEW = "triage_correct_view"
ISSUE_ACTION = "triage_issue"
ASSIGN_ACTION = "triage_assign"
DUPLICATE_ACTION = "triage_duplicate_of"  # the "Duplicate of..." menu on a card
SPLIT_ACTION = "triage_not_duplicate"  # "Not a duplicate" on a grouped item's reply
ISSUE_VIEW = "triage_issue_view"
SUBMIT_VIEW = "triage_submit_view"

# Block Kit's limits (characters; measured here in UTF-16 units, never more lenient).
# Only those a text or value built from input can reach; the fixed labels are far inside.
SECTION_LIMIT = 3000
CONTEXT_LIMIT = 2000
BUTTON_VALUE_LIMIT = 2000
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
OPTIONS_LIMIT = 100
INPUT_LIMIT = 3000  # a plain_text_input's max_length, and so its initial value
PRIVATE_METADATA_LIMIT = 3000

NOTIFICATION_CHARS = 300  # the notification text, formatted
MINIMAL_TEXT_CHARS = 300  # the fallback card's excerpt: far inside every limit
SIMILAR_TEXT_CHARS = 120  # one similar item's excerpt, formatted
FACT_CHARS = 200  # the source, page and form type as the card shows them, formatted
LINK_CHARS = 1500  # a longer link back (escaped) is left out
FALLBACK_CHARS = 300  # an LLM fallback reason, formatted
QUEUE_TITLE_CHARS = 90

SLACK_USER = re.compile(r"[UW][A-Z0-9]{1,20}")
SLACK_CHANNEL = re.compile(r"[CDG][A-Z0-9]{2,20}")
SLACK_TS = re.compile(r"\d{1,12}\.\d{1,9}")
DIGEST_MARK = "#"

HELP_TEXT = (
    "*triage-bot* turns feedback into triage cards and learns from your corrections.\n"
    "• `/triage <text>`: triage a piece of feedback now (its card goes to the triage channel)\n"
    "• `/triage`: open a form to submit feedback\n"
    "• `/triage queue`: what needs a human next (least confident, most severe, disputed); "
    "`/triage queue mine`: only the items you own\n"
    "• `/triage stats`: validations and accuracy over 7 and 30 days\n"
    "• `/triage digest [7d]`: post the period's digest, with its chart, to the triage channel\n"
    "• `/triage themes [7d]`: what the period's feedback is about; "
    "`/triage themes rename KEY NAME`, `/triage themes merge KEY KEY [NAME]`: name them "
    "(add `since:30d` for a key listed over another period)\n"
    "• `/triage help`: this message\n"
    "On a card: *Confirm*, *Correct* or *Noise*, or react: {reactions}. "
    "Removing your reaction withdraws your vote."
)


# -- text ------------------------------------------------------------------------------------
def escape(text: object) -> str:
    """Any value as literal mrkdwn: printable, and `&`, `<`, `>` as Slack's entities."""
    return printable(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _entity_boundary(text: str, end: int) -> int:
    """Back out of an entity (`&amp;`, `&lt;`, `&gt;`) the cut at `end` would split: in
    escaped text every `&` starts one."""
    amp = text.rfind("&", max(0, end - 4), end)
    return amp if amp != -1 and ";" not in text[amp:end] else end


def _clip(text: str, limit: int) -> str:
    """Formatted mrkdwn within `limit`, cut between entities."""
    return clip(text, limit, _entity_boundary)


def _text(value: object, limit: int) -> str:
    """A user value as literal mrkdwn within `limit`."""
    return _clip(escape(value), limit)


def _plain(text: object, limit: int) -> str:
    """A plain_text value within `limit` (Slack shows it as written: no escaping)."""
    return clip(printable(str(text)), limit) or " "


def _code(value: object, limit: int) -> str:
    """A user value as inline code: escaped, its backticks (which would end the span)
    shown as a look-alike, clipped inside the span."""
    return f"`{_clip(escape(value).replace('`', 'ˋ'), limit - 2)}`"


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object Slack does not preprocess: no automatic links or mentions."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def emoji(name: str) -> str:
    return f":{name}:"


def _quote(text: str, limit: int = SECTION_LIMIT) -> str:
    """The item's text as a block quote, each line marked, clipped after the marks."""
    lines = printable(text).split("\n")
    return _clip("\n".join("> " + escape(line) for line in lines), limit)


def _join_within(parts: list[str], limit: int, sep: str, head: str | None = None) -> str:
    """Whole entries within `limit`, cut (if at all) between entities."""
    return join_within(parts, limit, sep, head, _entity_boundary)


# -- ids ---------------------------------------------------------------------------------------
def item_value(item_id: str, limit: int = BUTTON_VALUE_LIMIT) -> str:
    """The item id as a button or modal carries it: as it is when it fits and is printable,
    else its digest. Intake's ids are short (`fb_` and 20 hex digits); only an id from
    elsewhere can need the digest, which `item_id_for` maps back through the card."""
    plain = printable(item_id) == item_id and not item_id.startswith(DIGEST_MARK)
    if item_id and plain and width(item_id) <= limit:
        return item_id
    return digest(item_id)


def digest(item_id: str) -> str:
    """A stable stand-in for an id that cannot ride as it is: `#` and 32 hex digits."""
    return DIGEST_MARK + hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def item_id_for(value: str, card_item: str | None) -> str:
    """The item a button or modal names: the value itself, or for a digest the item of the
    card it came from (`card_item`, looked up by the message) when the digest is its own."""
    if value.startswith(DIGEST_MARK) and card_item is not None and digest(card_item) == value:
        return card_item
    return value


ESCALATION_EVENT_TYPE = "triage_escalation"
DISPUTE_EVENT_TYPE = "triage_dispute"


def reply_metadata(event_type: str, item_id: str) -> dict[str, Any]:
    """A thread reply's metadata: what it is, and of which item (found again by it)."""
    return {"event_type": event_type, "event_payload": {"item_id": item_id}}


def dispute_reply(view: CardView) -> str:
    """The one reply a disputed card gets in its thread."""
    text = core_dispute_text(view.votes, view.label, who, "*")
    return _clip(":speech_balloon: " + text, SECTION_LIMIT)


def escalation_text(view: CardView, minutes: float, ping: str | None) -> str:
    """The one reply a card nobody took gets; `ping` a user (U…) or user group (S…) id."""
    mention = ""
    if ping and SLACK_USER.fullmatch(ping):
        mention = f"<@{ping}> "
    elif ping and re.fullmatch(r"S[A-Z0-9]{2,}", ping):
        mention = f"<!subteam^{ping}> "
    category, severity = view.current
    return (
        f":rotating_light: {mention}this *{_text(severity, 100)}* {_text(category, 100)} item "
        f"has had no vote and no issue for {minutes:g} minutes: please take a look."
    )


DIGEST_CHARS = 3000


def themes_text(themes: Themes) -> str:
    """`/triage themes`: names and examples are what people typed, shown literally."""
    lines = themes_text_lines(themes, "*", lambda text: f"“{_text(one_line(text), 120)}”")
    return _join_within(lines, SECTION_LIMIT, "\n")


def digest_text(digest: Digest) -> str:
    """The digest's message (the chart goes with it as a file)."""
    lines = digest_lines(digest, "*", lambda text: f"“{_text(one_line(text), 200)}”")
    return _join_within(lines, DIGEST_CHARS, "\n")


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


# -- links and mentions: only from values checked here ----------------------------------------
def archive_link(channel: str, ts: str) -> str:
    """A message link Slack clients open; needs no API call."""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def source_link(item: FeedbackItem) -> str | None:
    """Where the card links back to: the intake message (a real channel id and ts), else
    an http(s) page that `web_url` accepts; never the stored text as it is."""
    source = item.metadata.get("slack")
    if isinstance(source, dict):
        channel, ts = str(source.get("channel", "")), str(source.get("ts", ""))
        if SLACK_CHANNEL.fullmatch(channel) and SLACK_TS.fullmatch(ts):
            return archive_link(channel, ts)
    return web_url(item.page)


def _link(url: str | None, text: str) -> str | None:
    """A Slack link `<url|text>` for a URL `web_url` accepts (escaped: `&` as `&amp;`)."""
    checked = web_url(url)
    # A "|" in the text would read as a second separator: shown as a look-alike.
    return f"<{escape(checked)}|{text.replace('|', '｜')}>" if checked else None


def who(reviewer: str) -> str:
    """A mention for a Slack user id; any other reviewer (CLI, Discord) by name."""
    return f"<@{reviewer}>" if SLACK_USER.fullmatch(reviewer) else escape(reviewer)


# -- the card --------------------------------------------------------------------------------
def tally_line(votes: list[Validation], label: Label | None) -> str:
    parts = []
    for vote in votes:
        name = who(vote.reviewer)
        if vote.kind == ValidationKind.CONFIRM:
            parts.append(f":white_check_mark: {name} confirmed")
        elif vote.kind == ValidationKind.NOISE:
            parts.append(f":wastebasket: {name} marked noise")
        elif vote.kind == ValidationKind.REJECT:
            parts.append(f":x: {name} says it is wrong")
        elif vote.kind == ValidationKind.CORRECT:
            parts.append(
                f":pencil2: {name} → {_text(vote.category, 80)} / {_text(vote.severity, 80)}"
            )
    if not parts:
        return "No votes yet."
    summary = f"{len(votes)} vote(s)"
    if label is not None:
        summary += f"; label *{_text(label.category, 80)} / {_text(label.severity, 80)}*"
        if label.disagreement:
            summary += f" (agreement {label.agreement:.0%})"
    return _join_within(parts, CONTEXT_LIMIT - width(summary) - 1, " · ") + f"\n{summary}"


def assign_menu(owners: list[str], current: str | None) -> dict[str, Any]:
    """The Assign menu: every owner in the config; the card's ts names the item."""
    options = [
        {"text": {"type": "plain_text", "text": clip(name, 75)}, "value": name[:150]}
        for name in owners[:100]
    ]
    menu: dict[str, Any] = {
        "type": "static_select",
        "action_id": ASSIGN_ACTION,
        "placeholder": {"type": "plain_text", "text": "Assign…"},
        "options": options,
    }
    chosen = [o for o in options if o["value"] == current]
    if chosen:
        menu["initial_option"] = chosen[0]
    return menu


def duplicate_menu(candidates: list[tuple[FeedbackItem, float]]) -> dict[str, Any]:
    """ "Duplicate of...": the most similar open cards; the card's ts names the item."""
    options = [
        {
            "text": {
                "type": "plain_text",
                "text": clip(f"{score:.0%} · {one_line(other.redacted_text)}", OPTION_TEXT_LIMIT),
            },
            "value": item_value(other.id, OPTION_VALUE_LIMIT),
        }
        for other, score in candidates[:OPTIONS_LIMIT]
        if item_value(other.id, OPTION_VALUE_LIMIT) == other.id  # one the menu can name back
    ]
    return {
        "type": "static_select",
        "action_id": DUPLICATE_ACTION,
        "placeholder": {"type": "plain_text", "text": "Duplicate of…"},
        "options": options,
    }


def group_line(view: CardView) -> str | None:
    """A group's card: how many reports it stands for, and the latest one's page and time."""
    if not view.group:
        return None
    latest = view.group[-1]
    when = int(latest.received_at.timestamp())
    page = f" on {_code(latest.page, FACT_CHARS)}" if latest.page else ""
    return _clip(
        f":repeat: *{1 + len(view.group)} reports* of this · latest from "
        f"{reporter(latest, mention=view.edit)}{page} "
        f"<!date^{when}^{{date_short_pretty}} {{time}}|{latest.received_at:%Y-%m-%d %H:%M} UTC>"
        " · each in the thread",
        CONTEXT_LIMIT,
    )


def reporter(item: FeedbackItem, *, mention: bool) -> str:
    """Who sent an item: a Slack user as a mention in an edit (which notifies nobody),
    else where it came from (a first post would ping them)."""
    who = submitter_on(item, "slack")
    if mention and who is not None and SLACK_USER.fullmatch(who):
        return f"<@{who}>"
    return _text(item.source, FACT_CHARS)


def duplicate_blocks(view: CardView) -> list[dict[str, Any]]:
    """A grouped item: a reply in its group card's thread (or, when it had a card before it
    was merged, that card collapsed), with "Not a duplicate" to split it off."""
    item, canonical = view.item, view.duplicate_of
    assert canonical is not None
    score = f" ({view.duplicate_score:.0%} similar)" if view.duplicate_score is not None else ""
    if view.thread_ref is not None:
        head = f":repeat: *Another report of this*{score}"
    else:
        head = (
            f":repeat: *Duplicate of* “{_text(one_line(canonical.redacted_text), 120)}” "
            f"{_code(canonical.id, 100)}{score}: votes go to that card"
        )
    return [
        {"type": "section", "text": mrkdwn(f"{head}\n{_quote(item.redacted_text, 1200)}")},
        {"type": "context", "elements": [mrkdwn(_facts(item, source_link(item)))]},
        {
            "type": "actions",
            "block_id": "triage_duplicate",
            "elements": [
                {
                    "type": "button",
                    "action_id": SPLIT_ACTION,
                    "text": {"type": "plain_text", "text": "Not a duplicate"},
                    "value": item_value(item.id),
                }
            ],
        },
        {"type": "context", "elements": [mrkdwn(_code(item.id, 300))]},
    ]


def split_blocks(view: CardView) -> list[dict[str, Any]]:
    """The old reply of an item a reviewer split off its group."""
    excerpt = _text(one_line(view.item.redacted_text), MINIMAL_TEXT_CHARS)
    return [
        {
            "type": "section",
            "text": mrkdwn(
                f":arrow_heading_up: *Not a duplicate*: this report has a card of its own "
                f"now.\n> {excerpt}"
            ),
        },
        {"type": "context", "elements": [mrkdwn(_code(view.item.id, 300))]},
    ]


def owner_line(choice: OwnerChoice) -> str:
    """Who owns the item; the mention pings them when the card is first posted (Slack
    notifies nobody of a mention added by an edit)."""
    owner = choice.owner
    mention = ""
    if owner.slack and owner.slack.startswith("S"):
        mention = f"<!subteam^{owner.slack}> "
    elif owner.slack:
        mention = f"<@{owner.slack}> "
    why = choice.why if choice.source != "assigned" else f"assigned by {who(choice.by or '')}"
    return f":bust_in_silhouette: Owner: {mention}*{_text(owner.name, 100)}* ({why})"


def action_buttons(
    item_id: str,
    issue_button: bool = False,
    owners: list[str] | None = None,
    owner: str | None = None,
    candidates: list[tuple[FeedbackItem, float]] | None = None,
) -> dict[str, Any]:
    """Confirm, Correct and Noise (and Create issue); each carries the item id, so no
    state is needed."""
    value = item_value(item_id)
    issue = [
        {
            "type": "button",
            "action_id": ISSUE_ACTION,
            "text": {"type": "plain_text", "text": "Create issue"},
            "value": value,
        }
    ]
    return {
        "type": "actions",
        "block_id": "triage_actions",
        "elements": [
            {
                "type": "button",
                "action_id": CONFIRM_ACTION,
                "text": {"type": "plain_text", "text": "Confirm"},
                "style": "primary",
                "value": value,
            },
            {
                "type": "button",
                "action_id": CORRECT_ACTION,
                "text": {"type": "plain_text", "text": "Correct"},
                "value": value,
            },
            {
                "type": "button",
                "action_id": NOISE_ACTION,
                "text": {"type": "plain_text", "text": "Noise"},
                "style": "danger",
                "value": value,
            },
            *(issue if issue_button else []),
            *([assign_menu(owners, owner)] if owners else []),
            *([menu] if candidates and (menu := duplicate_menu(candidates))["options"] else []),
        ],
    }


def issue_line(links: list[IssueLink]) -> str | None:
    """Where the item's GitHub issue stands: linked once it exists."""
    parts = []
    for link in links:
        linked = _link(link.url, _text(link.name, 200)) if link.url else None
        name = linked or _code(link.name, 200)
        icon = ":warning:" if link.status in ("failed", "retrying") else ":link:"
        parts.append(f"{icon} GitHub {name} · {_text(link.state_text, 300)}")
    return _join_within(parts, CONTEXT_LIMIT, "\n") if parts else None


def _prediction(triage: Triage, taxonomy: Taxonomy) -> str:
    sev = taxonomy.severity(triage.severity) if triage.severity in taxonomy.severity_names else None
    cat = taxonomy.category(triage.category) if triage.category in taxonomy.category_names else None
    return (
        f"{emoji(sev.emoji) if sev else ''} *{_text(triage.severity.upper(), 200)}* · "
        f"{emoji(cat.emoji) if cat else ''} *{_text(triage.category, 200)}*"
    )


def _facts(item: FeedbackItem, link: str | None) -> str:
    """The context line: the source, the link back, where the item came from."""
    context = [f"from {_text(item.source, FACT_CHARS)}"]
    linked = _link(link, "source message")
    if linked and width(linked) <= LINK_CHARS:
        context.append(linked)
    context += item_facts(item, literal=lambda value: _code(value, FACT_CHARS))
    return _clip(" · ".join(context), CONTEXT_LIMIT)


def card_blocks(
    item: FeedbackItem,
    triage: Triage,
    taxonomy: Taxonomy,
    *,
    votes: list[Validation] | None = None,
    label: Label | None = None,
    similar: list[tuple[FeedbackItem, Label, float]] | None = None,
    source_link: str | None = None,
    issues: list[IssueLink] | None = None,
    issue_button: bool = False,
    owner: OwnerChoice | None = None,
    owners: list[str] | None = None,
    group: str | None = None,
    candidates: list[tuple[FeedbackItem, float]] | None = None,
) -> list[dict[str, Any]]:
    """The card: severity first, then category, confidence, text, action, similar, buttons."""
    source = learned_from(triage.evidence)
    learned = f"\n_{_text(source, 300)}_" if source else ""
    headline = (
        f"{_prediction(triage, taxonomy)} · confidence "
        f"{triage.confidence.category:.0%} / {triage.confidence.severity:.0%}"
    )
    if triage.needs_human:
        headline += " · :raising_hand: *needs a human*"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": mrkdwn(_clip(headline, SECTION_LIMIT))},
        {"type": "section", "text": mrkdwn(_quote(item.redacted_text))},
        {"type": "context", "elements": [mrkdwn(_facts(item, source_link))]},
        *(
            [{"type": "context", "block_id": "triage_group", "elements": [mrkdwn(group)]}]
            if group
            else []
        ),
        {
            "type": "section",
            "text": mrkdwn(
                _clip(f"*Suggested action:* {escape(triage.action)}{learned}", SECTION_LIMIT)
            ),
        },
    ]
    if similar:
        lines = [
            f"• “{_text(one_line(other.redacted_text), SIMILAR_TEXT_CHARS)}” → "
            f"*{_text(lab.category, 80)} / {_text(lab.severity, 80)}*"
            f" ({score:.0%} similar)"
            for other, lab, score in similar
        ]
        text = _join_within(lines, CONTEXT_LIMIT, "\n", "*Similar, already validated:*")
        blocks.append({"type": "context", "elements": [mrkdwn(text)]})
    if owner is not None:
        blocks.append(
            {"type": "context", "block_id": "triage_owner", "elements": [mrkdwn(owner_line(owner))]}
        )
    blocks.append(
        action_buttons(
            item.id, issue_button, owners, owner.owner.name if owner else None, candidates
        )
    )
    issue_text = issue_line(issues or [])
    if issue_text:
        blocks.append(
            {"type": "context", "block_id": "triage_issue_link", "elements": [mrkdwn(issue_text)]}
        )
    blocks.append(
        {
            "type": "context",
            "block_id": "triage_tally",
            "elements": [mrkdwn(tally_line(votes or [], label))],
        }
    )
    footer = f"{_code(item.id, 300)} · model {_code(triage.model_version, 200)}"
    if triage.fallback_reason:
        footer += f" · :warning: LLM fallback: {_text(triage.fallback_reason, FALLBACK_CHARS)}"
    blocks.append({"type": "context", "elements": [mrkdwn(_clip(footer, CONTEXT_LIMIT))]})
    return blocks


def card_payload(view: CardView, taxonomy: Taxonomy, *, minimal: bool = False) -> dict[str, Any]:
    """`chat.postMessage` / `chat.update` arguments for a card (without channel and ts)."""
    item, triage = view.item, view.triage
    if view.duplicate_of is not None:
        text = _text(f"Another report: {one_line(item.redacted_text)}", NOTIFICATION_CHARS)
        return {"text": text, "blocks": duplicate_blocks(view)}
    if view.thread_ref is not None:  # in a thread, in no group: split off
        return {"text": "Not a duplicate: a card of its own now", "blocks": split_blocks(view)}
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
            issues=view.issues,
            issue_button=offers_issue(view),
            owner=view.owner,
            owners=view.owners,
            group=group_line(view),
            candidates=view.candidates,
        )
    return {"text": card_text(item, triage), "blocks": blocks}


def minimal_blocks(view: CardView, taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """The fallback card after Slack refused the full one: prediction, a short excerpt,
    the buttons and the item id; nothing that can grow with the item."""
    item, triage = view.item, view.triage
    excerpt = _text(one_line(item.redacted_text), MINIMAL_TEXT_CHARS)
    head = (
        f"*{_text(triage.severity.upper(), 100)}* · *{_text(triage.category, 100)}* "
        f"({triage.confidence.category:.0%})"
    )
    return [
        {"type": "section", "text": mrkdwn(f"{head}\n> {excerpt}")},
        action_buttons(item.id, offers_issue(view)),
        {
            "type": "context",
            "elements": [mrkdwn(f"{_code(item.id, 300)} · the full card could not be posted")],
        },
    ]


def card_text(item: FeedbackItem, triage: Triage) -> str:
    """Notification fallback text for the card: one escaped line, clipped after escaping."""
    line = f"[{triage.severity}] {triage.category}: {one_line(item.redacted_text)}"
    return _text(line, NOTIFICATION_CHARS)


# -- modals ----------------------------------------------------------------------------------
def _options(names: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "text": {"type": "plain_text", "text": _plain(n, OPTION_TEXT_LIMIT)},
            "value": clip(n, OPTION_VALUE_LIMIT),
        }
        for n in names[:OPTIONS_LIMIT]
    ]


def action_input(preset: str) -> dict[str, Any]:
    """A modal's action field, preset to the suggested action."""
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": True,
        "max_length": INPUT_LIMIT,
    }
    text = clip(printable(preset), INPUT_LIMIT)
    if text:  # an empty initial_value is no value: Slack wants none then
        element["initial_value"] = text
    return element


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
        values = [o["value"] for o in options]
        if current in values:
            element["initial_option"] = options[values.index(current)]
        return {
            "type": "input",
            "block_id": block_id,
            "label": {"type": "plain_text", "text": label},
            "element": element,
        }

    action = action_input(triage.action)
    return {
        "type": "modal",
        "callback_id": CORRECT_VIEW,
        "private_metadata": modal_metadata(item_id, channel, ts),
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
                "element": action,
            },
        ],
    }


def modal_metadata(item_id: str, channel: str, ts: str) -> str:
    """The Correct modal's `private_metadata`: the item and the card it was opened from.
    JSON escapes quotes, backslashes and every non-ASCII character (up to 12 characters
    for one), so the id is measured as dumped: one that would take the whole over 3,000
    rides as its digest, which the card (channel and ts) maps back."""
    where = {"channel": channel[:100], "ts": ts[:100]}
    meta = json.dumps({"item_id": item_value(item_id), **where})
    if len(meta) <= PRIVATE_METADATA_LIMIT:
        return meta
    return json.dumps({"item_id": digest(item_id), **where})


def issue_modal(
    item_id: str, draft: IssueDraft, repo: str, channel: str, ts: str
) -> dict[str, Any]:
    """The Create issue button's modal: title and labels, preset to the defaults."""
    title: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": 256}
    preset = clip(printable(draft.title), 256)
    if preset:
        title["initial_value"] = preset
    labels: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": 500}
    if draft.labels:
        labels["initial_value"] = clip(", ".join(draft.labels), 500)
    action = action_input(draft.action)
    return {
        "type": "modal",
        "callback_id": ISSUE_VIEW,
        "private_metadata": modal_metadata(item_id, channel, ts),
        "title": {"type": "plain_text", "text": "Create GitHub issue"},
        "submit": {"type": "plain_text", "text": "Create"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "context",
                "elements": [
                    mrkdwn(
                        f"In {_code(repo, 200)}; the feedback, the card's triage "
                        "and its votes go in the body."
                    )
                ],
            },
            {
                "type": "input",
                "block_id": "title",
                "label": {"type": "plain_text", "text": "Title"},
                "element": title,
            },
            {
                "type": "input",
                "block_id": "labels",
                "optional": True,
                "label": {"type": "plain_text", "text": "Labels (comma-separated)"},
                "element": labels,
            },
            {
                "type": "input",
                "block_id": "action",
                "optional": True,
                "label": {"type": "plain_text", "text": "Suggested action"},
                "element": action,
            },
        ],
    }


def issue_reply(link: IssueLink, *, created: bool) -> str:
    """What the clicker alone sees after Create issue."""
    linked = (_link(link.url, _text(link.name, 200)) if link.url else None) or _code(link.name, 200)
    return core_issue_reply(link, created=created, name=linked, text=lambda t: _text(t, 300))


def labels_from(value: str | None) -> list[str]:
    """The labels a reviewer typed: comma-separated, blanks and repeats dropped."""
    return list(dict.fromkeys(x.strip()[:50] for x in (value or "").split(",") if x.strip()))


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
                    "max_length": INPUT_LIMIT,
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


# -- reactions and intake --------------------------------------------------------------------
def reaction_vote(reaction: str, taxonomy: Taxonomy) -> ReactionVote | None:
    """What a Slack reaction on a card means; None if nothing. Slack names skin tones
    after the emoji ("+1::skin-tone-2"): the emoji alone counts."""
    return core_reaction_vote(reaction.split("::", 1)[0], taxonomy)


def reactions_help(taxonomy: Taxonomy) -> str:
    parts = [f"{emoji(taxonomy.emoji.confirm)} confirm", f"{emoji(taxonomy.emoji.reject)} wrong"]
    parts += [f"{emoji(c.emoji)} {escape(c.name)}" for c in taxonomy.categories]
    parts += [f"{emoji(s.emoji)} {escape(s.name)}" for s in taxonomy.severities]
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


# -- /triage queue and stats -----------------------------------------------------------------
def queue_blocks(
    rows: list[tuple[FeedbackItem, Triage, str, str | None]],
) -> list[dict[str, Any]]:
    if not rows:
        return [{"type": "section", "text": mrkdwn("Nothing waits for a human.")}]
    lines = []
    for item, triage, reason, link in rows:
        title = _text(one_line(item.redacted_text), QUEUE_TITLE_CHARS)
        ref = _link(link, title) or title
        lines.append(
            f"• *{_text(triage.severity, 80)}* · {_text(triage.category, 80)}"
            f" · {_text(reason, 200)}: {ref}"
        )
    text = _join_within(lines, SECTION_LIMIT, "\n", "*Review queue*")
    return [{"type": "section", "text": mrkdwn(text)}]


def stats_text(overall: Stats, windows: list[tuple[int, Stats]], target: str | None = None) -> str:
    """`/triage stats`: counts, the outbox's state, and accuracy over recent windows
    (escaped: a dead letter's error can quote what a platform or a person wrote)."""
    return _clip(escape("\n".join(stats_lines(overall, windows, target, "*"))), SECTION_LIMIT)
