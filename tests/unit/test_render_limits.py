"""Every card, on both platforms, for any input: within every limit, and nothing a person
wrote pings, links or formats as the bot's own markup.

Hypothesis builds card views from arbitrary text (Markdown and mrkdwn metacharacters,
mentions, masked links, control characters, lone surrogates, astral characters) and from
the oversized inputs that once stopped the outbox (1,450 short lines, a 10,000-character
form type, ids over 100 characters); tests/chat_limits.py holds the platforms' rules.
"""

from __future__ import annotations

import json
import re
from typing import Any

import discord
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.chat_text import clip, printable, web_url, width
from bot.discord import embeds
from bot.discord.edge import components
from bot.slack import cards
from core.models import (
    CardView,
    FeedbackItem,
    FieldConfidence,
    Label,
    Triage,
    Validation,
    ValidationKind,
    stable_id,
)
from core.service import Stats
from core.taxonomy import load_taxonomy
from tests.chat_limits import (
    components_problems,
    content_problems,
    discord_markup_problems,
    discord_texts,
    embed_problems,
    link_problems,
    mrkdwn_texts,
    slack_markup_problems,
    slack_message_problems,
    slack_modal_problems,
    unverbatim_mrkdwn,
)

TAXONOMY = load_taxonomy()
PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HOSTILE = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U0ADMIN>",
    "<!subteam^S123>",
    "<#C0GENERAL>",
    "<https://evil.example/login|your SSO session expired>",
    "<http://evil.example>",
    "[text](https://evil.example)",
    "[a](https://x.example) [b](https://evil.example)",
    "https://evil.example/login",
    "HTTP://evil.example",
    "steam://run/1",
    "@everyone",
    "@here",
    "<@123456789012345678>",
    "<@&123456789012345678>",
    "<#123456789012345678>",
    "<t:1700000000:R>",
    "&amp;",
    "&lt;!channel&gt;",
    "&",
    "\\",
    "\\\\",
    "`",
    "```",
    "*",
    "**",
    "_",
    "~~",
    "||",
    "> ",
    ">>> ",
    "# ",
    "-# ",
    "- ",
    "1. ",
    "\n",
    "\r\n",
    "\r",
    "\u2028",
    "\x85",
    "\x00",
    "\x1b[31m",
    "\x7f",
    "\ud83d",
    "\udc00",
    "\U0001f600",
    "\u200b",
    "\u202e",
    "|",
    "ˋ",
    "…",
]
ANY_CHAR = st.characters(blacklist_categories=())  # surrogates and controls included
FRAGMENT = st.sampled_from(HOSTILE) | st.text(ANY_CHAR, max_size=12)
HUGE = st.sampled_from(
    [
        "\n".join(f"line {i}" for i in range(1450)),
        "x" * 10_000,
        "&" * 5_000,
        "<" * 4_000,
        "\\" * 3_000,
        "`" * 3_000,
        "[a](https://evil.example) " * 400,
        "\U0001f600" * 3_000,
        "\ud83d" * 2_000,
        "<!channel> " * 1_000,
        "a\n" * 3_000,
        "*_~" * 2_000,
    ]
)
TEXT = st.lists(FRAGMENT, max_size=24).map("".join) | HUGE
SHORT = st.lists(FRAGMENT, max_size=6).map("".join)
PAGE = (
    st.none()
    | TEXT
    | st.sampled_from(
        [
            "https://shop.example/x|ok> <!everyone> <https://evil.example",
            "https://shop.example/checkout?step=2&x=1",
            "https://user:pw@shop.example/",
            "javascript:alert(1)",
            "https://shop.example/a)[b](https://evil.example)",
            "https://shop.example/ünïcode path",
            "https://bücher.example/über?q=ä#frag",
            "/checkout",
            "https://" + "a" * 2000 + ".example/",
            "https://shop.example/" + "&" * 900,
        ]
    )
)
NAME = st.sampled_from(TAXONOMY.category_names + TAXONOMY.severity_names) | SHORT
SLACK_ID = st.from_regex(r"U[A-Z0-9]{8,10}", fullmatch=True)
SNOWFLAKE = st.integers(10**16, 10**19).map(str)
REVIEWER = SLACK_ID | SNOWFLAKE | SHORT.filter(bool)
ITEM_ID = (
    st.builds(lambda text: stable_id("fb", "file", text), st.text(max_size=20))
    | st.text(ANY_CHAR, min_size=1, max_size=300)
    | st.sampled_from(["x" * 101, "#digest-looking", "id with spaces", "a" * 5000, "e\u0301"])
    # JSON escapes these (up to 12 characters each) in a modal's private_metadata.
    | st.text(st.characters(min_codepoint=0x80), min_size=250, max_size=2000)
    | st.sampled_from(["é" * 1500, '"' * 1500, "\\" * 1999, "\U0001f600" * 999, "\x01" * 500])
)
SCORE = st.floats(0, 1)
METADATA = st.fixed_dictionaries(
    {},
    optional={
        "slack": st.fixed_dictionaries(
            {"channel": st.sampled_from(["CINTAKE", "x|evil> <!channel"]) | SHORT, "ts": SHORT}
        ),
        "discord": st.fixed_dictionaries(
            {
                "guild": st.none() | SNOWFLAKE | SHORT,
                "channel": SNOWFLAKE | SHORT,
                "message": SNOWFLAKE | SHORT,
            }
        ),
    },
)


@st.composite
def items(draw: st.DrawFn, item_id: str | None = None) -> FeedbackItem:
    text = draw(TEXT)
    return FeedbackItem(
        id=item_id if item_id is not None else draw(ITEM_ID),
        text=text,
        redacted_text=text,
        pii_kinds=draw(st.lists(st.sampled_from(["email", "card", "phone", "ip"]), max_size=3)),
        source=draw(st.sampled_from(["webhook", "slack", "discord", "file"]) | SHORT),
        page=draw(PAGE),
        form_type=draw(st.none() | TEXT),
        rating=draw(st.none() | st.floats(allow_nan=True)),
        metadata=draw(METADATA),
    )


@st.composite
def views(draw: st.DrawFn) -> CardView:
    item = draw(items())
    triage = Triage(
        item_id=item.id,
        category=draw(NAME.filter(bool)),
        severity=draw(NAME.filter(bool)),
        action=draw(TEXT),
        confidence=FieldConfidence(category=draw(SCORE), severity=draw(SCORE)),
        model_version=draw(st.sampled_from(["enc-2026-12-02"]) | SHORT),
        needs_human=draw(st.booleans()),
        fallback_reason=draw(st.none() | TEXT),
    )
    votes = draw(
        st.lists(
            st.builds(
                Validation,
                item_id=st.just(item.id),
                reviewer=REVIEWER,
                kind=st.sampled_from(list(ValidationKind)),
                category=st.none() | NAME,
                severity=st.none() | NAME,
                action=st.none() | TEXT,
            ),
            max_size=40,
        )
    )
    label = draw(
        st.none()
        | st.builds(
            Label,
            item_id=st.just(item.id),
            category=NAME,
            severity=NAME,
            reviewers=st.lists(REVIEWER, max_size=3),
            agreement=SCORE,
            disagreement=st.booleans(),
        )
    )
    similar = draw(
        st.lists(
            st.tuples(
                items(),
                st.builds(
                    Label,
                    item_id=st.just("x"),
                    category=NAME,
                    severity=NAME,
                    reviewers=st.just([]),
                    agreement=SCORE,
                ),
                SCORE,
            ),
            max_size=12,
        )
    )
    return CardView(item, triage, votes, label, similar)


OVERSIZED = CardView(
    FeedbackItem(
        id="fb_" + "0" * 20,
        text="x",
        redacted_text="\n".join(f"short line {i}" for i in range(1450)),
        source="webhook",
        page="https://shop.example/" + "p" * 150,
        form_type="t" * 10_000,
    ),
    Triage(
        item_id="fb_" + "0" * 20,
        category="website-bug",
        severity="high",
        action="Reply about: " + "short line\n" * 1450,
        confidence=FieldConfidence(category=0.5, severity=0.5),
        model_version="m1",
    ),
)
HOSTILE_TEXT = (
    "<!channel> <!here> <@U0ADMIN> <!subteam^S123> "
    "<https://evil.example/login|your SSO session expired> [text](https://evil.example) @everyone"
    " https://evil.example/bare"
)
HOSTILE_VIEW = CardView(
    FeedbackItem(
        id="fb_" + "1" * 20,
        text=HOSTILE_TEXT,
        redacted_text=HOSTILE_TEXT,
        source="webhook",
        page="https://shop.example/x|ok> <!everyone> <https://evil.example",
        form_type="bug <!here>",
    ),
    Triage(
        item_id="fb_" + "1" * 20,
        category="website-bug",
        severity="high",
        action=f"Reply to: {HOSTILE_TEXT}",
        confidence=FieldConfidence(category=0.5, severity=0.5),
        model_version="m1",
        fallback_reason=f"model said {HOSTILE_TEXT}",
    ),
    votes=[
        Validation(
            item_id="fb_" + "1" * 20,
            reviewer="<!channel>",
            kind=ValidationKind.CORRECT,
            category="website-bug",
            severity="high",
            action=HOSTILE_TEXT,
        )
    ],
)


# -- Slack -----------------------------------------------------------------------------------
def check_slack(view: CardView) -> None:
    reviewers = frozenset(v.reviewer for v in view.votes)
    for minimal in (False, True):
        payload = cards.card_payload(view, TAXONOMY, minimal=minimal)
        assert slack_message_problems(payload) == []
        assert unverbatim_mrkdwn(payload) == []
        for text in mrkdwn_texts(payload):
            assert slack_markup_problems(text, reviewers) == [], text[:300]
        values = {
            e["value"] for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]
        }
        assert values == {cards.item_value(view.item.id)}
        if re.fullmatch(r"fb_[0-9a-f]{20}", view.item.id):
            assert values == {view.item.id}  # the edge reads the id from the button as is
        # A digest names this item from its card (the edge maps it back by the card's ts).
        assert {cards.item_id_for(v, view.item.id) for v in values} == {view.item.id}
    check_slack_modal(view.item.id, view.triage)


def check_slack_modal(item_id: str, triage: Triage) -> None:
    modal = cards.correct_modal(item_id, triage, TAXONOMY, "C1", "1.2")
    assert slack_modal_problems(modal) == []
    assert len(modal["private_metadata"]) <= 3000
    meta = json.loads(modal["private_metadata"])
    assert cards.item_id_for(meta["item_id"], item_id) == item_id
    assert (meta["channel"], meta["ts"]) == ("C1", "1.2")


@PROPERTY
@given(views())
@example(OVERSIZED)
@example(HOSTILE_VIEW)
def test_any_slack_card_fits_block_kit_and_spells_no_markup(view: CardView) -> None:
    check_slack(view)


def queue_of(rows: list[tuple[FeedbackItem, str, str, str, Any]]) -> list[Any]:
    """Review-queue rows (item, its triage, why it waits, a link) from generated parts."""
    return [
        (
            item,
            Triage(
                item_id=item.id,
                category=cat or "x",
                severity=sev or "x",
                action="a",
                confidence=FieldConfidence(category=0.1, severity=0.1),
                model_version="m",
            ),
            reason,
            link,
        )
        for item, cat, sev, reason, link in rows
    ]


@PROPERTY
@given(st.lists(st.tuples(items(), NAME, NAME, SHORT, PAGE), max_size=15))
def test_any_slack_queue_and_modal_fit(rows: list[tuple[FeedbackItem, str, str, str, Any]]) -> None:
    queue = queue_of(rows)
    blocks = cards.queue_blocks(queue)
    payload = {"text": "Review queue", "blocks": blocks}
    assert slack_message_problems(payload) == []
    for text in mrkdwn_texts(payload):
        assert slack_markup_problems(text) == []
    for item, triage, _, _ in queue:
        check_slack_modal(item.id, triage)
    assert slack_modal_problems(cards.submit_modal(TAXONOMY)) == []


def test_hostile_slack_card_shows_the_escaped_forms() -> None:
    payload = cards.card_payload(HOSTILE_VIEW, TAXONOMY)
    everything = str(payload)
    for raw in ("<!channel>", "<!here>", "<@U0ADMIN>", "<!subteam^S123>", "<https://evil"):
        assert raw not in everything
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U0ADMIN&gt; &lt;!subteam^S123&gt;" in everything
    assert "&lt;https://evil.example/login|your SSO session expired&gt;" in payload["text"]
    assert "source message" not in everything  # the page is no URL: shown, never linked
    assert "&lt;!everyone&gt;" in everything


def test_slack_stats_text_is_escaped() -> None:
    stats = Stats(
        items=1,
        triaged=1,
        validated=0,
        votes=0,
        disagreements=0,
        category_accuracy=float("nan"),
        severity_accuracy=float("nan"),
        model_version="<!channel>",
        dead_letters=[{"item_id": "fb_1", "error": "invalid_blocks <@U0ADMIN>"}],
    )
    text = cards.stats_text(stats, [])
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text


# -- Discord ---------------------------------------------------------------------------------
def check_discord(view: CardView) -> None:
    reviewers = frozenset(v.reviewer for v in view.votes)
    for minimal in (False, True):
        content, embed = embeds.card_payload(view, TAXONOMY, minimal=minimal)
        assert content_problems(content) == []
        assert embed_problems(embed) == []
        for text in discord_texts(content, embed):
            assert discord_markup_problems(text, reviewers) == [], text[:300]
    rows = components(view, TAXONOMY).to_components()
    assert components_problems(rows) == []
    keys = set()
    for row in rows:
        for component in row["components"]:
            custom_id = component["custom_id"]
            template = embeds.BUTTON_ACTIONS if component["type"] == 2 else embeds.SELECT_ACTIONS
            match = re.match(embeds.id_template(template), custom_id)
            assert match is not None, custom_id
            keys.add(match["item_id"])
            # Both directions: the key names this item, from the card it is on.
            assert embeds.item_id_for(match["item_id"], view.item.id) == view.item.id
    assert keys == {embeds.item_key(view.item.id)}
    modal_id = embeds.custom_id(embeds.MODAL_ACTION, view.item.id)
    assert len(modal_id) <= embeds.CUSTOM_ID_LIMIT


@PROPERTY
@given(views())
@example(OVERSIZED)
@example(HOSTILE_VIEW)
def test_any_discord_card_fits_and_spells_no_markup(view: CardView) -> None:
    check_discord(view)


@PROPERTY
@given(st.lists(st.tuples(items(), NAME, NAME, SHORT, PAGE), max_size=15))
def test_any_discord_queue_fits(rows: list[tuple[FeedbackItem, str, str, str, Any]]) -> None:
    queue = queue_of(rows)
    text = embeds.queue_text(queue)
    assert content_problems(text) == [] and discord_markup_problems(text) == []


def test_hostile_discord_card_shows_no_live_markup() -> None:
    content, embed = embeds.card_payload(HOSTILE_VIEW, TAXONOMY)
    data = embed.to_dict()
    assert "url" not in data
    assert "[text]\\(https\\://evil.example\\)" in data["description"]
    assert "https\\://evil.example/bare" in data["description"]  # shown, never linked
    assert "://" not in content.replace("\\://", "")
    assert "@\u200beveryone" in content and "\\<@U0ADMIN\\>" in content
    source = next(f["value"] for f in data["fields"] if f["name"] == "Source")
    assert "](" not in source  # the page is no URL: shown in code, never linked


def test_discord_digest_ids_map_back_only_from_their_card() -> None:
    long_id = "import:" + "x" * 200
    key = embeds.item_key(long_id)
    assert embeds.is_digest(key) and len(embeds.custom_id("category", long_id)) <= 100
    assert embeds.item_id_for(key, long_id) == long_id
    assert embeds.item_id_for(key, "fb_other") == key  # another card's item: no match
    assert embeds.item_key("fb_" + "a" * 20) == "fb_" + "a" * 20  # intake's ids ride as they are


# -- the shared pieces -----------------------------------------------------------------------
@PROPERTY
@given(TEXT, st.integers(1, 5000))
def test_clip_fits_and_never_splits_an_escape(text: str, limit: int) -> None:
    slack = cards._clip(cards.escape(text), limit)
    assert width(slack) <= limit
    assert not re.search(r"&(?!amp;|lt;|gt;)", slack)
    disc = embeds._clip(embeds.escape(text), limit)
    assert width(disc) <= limit
    trail = len(disc.rstrip("…")) - len(disc.rstrip("…").rstrip("\\"))
    assert trail % 2 == 0
    assert width(clip(printable(text), limit)) <= limit


@PROPERTY
@given(PAGE)
@example("https://shop.example/x|ok> <!everyone> <https://evil.example")
def test_web_url_gives_a_plain_http_url_or_nothing(value: str | None) -> None:
    url = web_url(value)
    if url is None:
        return
    assert re.fullmatch(r"https?://[a-z0-9.\-]+(:\d+)?[!-~]*", url), url
    assert not set(url) & set("|<>()[] \\`\"'*")
    assert web_url(url) == url  # a checked URL stays as it is


@pytest.mark.parametrize(
    "bad",
    [
        "https://shop.example/x|ok> <!everyone> <https://evil.example",
        "javascript:alert(1)",
        "https://user:pw@shop.example/",
        "https://shop.example/a b",
        "ftp://shop.example/",
        "https://[::1]/",
        "https://shop.example:99999/",
        "https:///path",
        "https://exa mple.com/",
        "https://shop.example/\x00",
        "http://127.0.0.1/admin",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://127.0.0.1./",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://\uff11\uff12\uff17.0.0.1/",  # full-width digits: IDNA makes them 127.0.0.1
        "http://shop.0x1f/",
    ],
)
def test_web_url_refuses(bad: str) -> None:
    assert web_url(bad) is None


@pytest.mark.parametrize(
    "bad",
    [
        "http://127.0.0.1/admin",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://[::1]/",
        "https://user@shop.example/",
        "ftp://shop.example/",
        "https://shop.example/a`b",
        'https://shop.example/a"b',
        "https://shop.example/\u00e9",
        "https://shop.example/" + "p" * 1000,
    ],
)
def test_the_link_checks_refuse_bad_links_whoever_built_them(bad: str) -> None:
    """The checks judge a link on its own, so a fault in `web_url` fails the tests."""
    assert link_problems(bad)
    assert slack_markup_problems(f"<{bad}|page>")
    assert discord_markup_problems(f"[page]({bad})")


@pytest.mark.parametrize(
    "good",
    ["https://shop.example/checkout?step=2&x=1", "http://a1.example:8080/p", "https://1.example/"],
)
def test_the_link_checks_pass_plain_links(good: str) -> None:
    assert link_problems(good) == [] and web_url(good) == good
    assert discord_markup_problems(f"[page]({good})") == []


def test_discord_text_links_no_bare_url() -> None:
    """Discord links `http(s)://…` in content, descriptions and fields on its own: a user's
    URL gets its `:` escaped (shown as typed, links nothing); the check finds a live one."""
    for text in ("https://evil.example/login", "see HTTP://evil.example", "[x](https://e.x)"):
        escaped = embeds.escape(text)
        assert "://" not in escaped.replace("\\://", ""), escaped
        assert discord_markup_problems(escaped) == []
    for bare in ("https://evil.example/login", "see HTTP://evil.example", "a \\\\://b.example"):
        assert discord_markup_problems(bare)
    assert embeds.escape("[x](https://e.x)") == "[x]\\(https\\://e.x\\)"
    assert embeds.escape("https\\://x.example") == "https\\\\\\://x.example"


def test_discord_help_and_options_fit() -> None:
    assert len(embeds.help_text(TAXONOMY, 123456789012345678)) <= 2000
    for option in embeds.category_options(TAXONOMY, "website-bug"):
        assert len(option.label) <= 100 and len(option.value) <= 100
    assert isinstance(embeds.minimal_embed(OVERSIZED, TAXONOMY), discord.Embed)
