"""Property-based fuzzing of every parser that reads what the outside world sends.

Each must either return something well-formed or refuse with its own clear error; nothing
else may escape (an escaped exception is a 500 on the webhook, a dead listener on Slack or
Discord). The HTTP-level counterparts are in tests/e2e/test_bad_input.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import discord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.discord import embeds
from bot.slack import cards
from bot.webhook import FIELDS, MAX_BODY_BYTES, WebhookError, parse, sign, verify
from core.governance import InputError, clean_text
from core.models import ValidationKind
from core.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()
SECRET = "fuzz-secret"
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any JSON value (NaN and infinities included: Python's json accepts them).
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
# A form submission: the known fields with values of any type, sometimes an unknown field.
FORM = st.fixed_dictionaries(
    {},
    optional={
        "type": JSON | st.sampled_from(["bug", "feature", "BUG ", ""]),
        "rating": JSON | st.integers(-5, 15) | st.floats(-1, 11),
        "comment": JSON | st.text(min_size=1, max_size=200),
        "page": JSON | st.text(max_size=40),
        "metadata": JSON,
    },
) | st.dictionaries(st.text(max_size=10), JSON, max_size=6)


# -- the website webhook -----------------------------------------------------------------------
@FUZZ
@given(FORM)
def test_any_json_form_parses_to_a_valid_form_or_a_400(form: dict[str, Any]) -> None:
    body = json.dumps(form, allow_nan=True).encode()
    try:
        parsed = parse(body, "application/json")
    except WebhookError as exc:
        assert exc.status in (400, 413) and exc.reason
        return
    assert set(form) <= FIELDS
    assert isinstance(parsed.comment, str) and parsed.comment.strip()
    assert parsed.rating is None or 0 <= parsed.rating <= 10
    assert parsed.form_type is None or isinstance(parsed.form_type, str)
    assert parsed.page is None or isinstance(parsed.page, str)
    assert isinstance(parsed.metadata, dict)
    json.dumps(parsed.metadata).encode("utf-8")  # storable as it is
    assert len(parsed.body_sha256) == 64


@FUZZ
@given(st.binary(max_size=300), st.text(max_size=60) | st.none())
def test_any_bytes_with_any_content_type_is_refused_cleanly(
    body: bytes, content_type: str | None
) -> None:
    try:
        parse(body, content_type)
    except WebhookError as exc:
        assert exc.status in (400, 413, 415) and exc.reason


@FUZZ
@given(st.text(max_size=200))
def test_any_signature_header_is_a_401_unless_it_is_the_right_one(header: str) -> None:
    body = b'{"comment": "hi"}'
    try:
        verify(body, header, SECRET)
    except WebhookError as exc:
        assert exc.status == 401
    else:
        assert header.strip() == sign(body, SECRET)


@FUZZ
@given(st.binary(max_size=200))
def test_a_signature_covers_every_byte_of_the_body(body: bytes) -> None:
    verify(body, sign(body, SECRET), SECRET)
    tampered = body + b" " if body else b"x"
    try:
        verify(tampered, sign(body, SECRET), SECRET)
    except WebhookError as exc:
        assert exc.status == 401
    else:
        raise AssertionError("a tampered body passed the HMAC check")


def test_json_traps_get_a_400() -> None:
    traps = [
        b"[" * 30_000 + b"]" * 30_000,  # nesting past the parser's recursion limit
        b'{"comment": "\\ud800 lone surrogate"}',
        b'{"comment": "x", "metadata": {"k\\u0000": 1}}',  # BSON refuses NUL in keys
        b'{"comment": "x", "metadata": ' + b'{"a": ' * 12 + b"1" + b"}" * 12 + b"}",
        b'{"comment": "x", "rating": NaN}',
        b'{"comment": "x", "rating": Infinity}',
    ]
    for body in traps:
        try:
            parse(body, "application/json")
        except WebhookError as exc:
            assert exc.status == 400, (body[:40], exc.reason)
        else:
            raise AssertionError(f"accepted {body[:60]!r}")
    assert MAX_BODY_BYTES >= 30_000 * 2


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_inbound_text_is_clean_text_or_an_input_error(raw: str | bytes) -> None:
    try:
        text = clean_text(raw, 2000)
    except InputError as exc:
        assert str(exc)
        return
    assert text and text == text.strip() and "\x00" not in text
    text.encode("utf-8")


# -- Slack payloads ------------------------------------------------------------------------------
@FUZZ
@given(st.text(max_size=40))
def test_any_reaction_name_is_a_vote_the_taxonomy_knows_or_nothing(name: str) -> None:
    vote = cards.reaction_vote(name, TAXONOMY)
    if vote is None:
        return
    assert vote.kind in ValidationKind
    assert vote.category is None or vote.category in TAXONOMY.category_names
    assert vote.severity is None or vote.severity in TAXONOMY.severity_names


def test_every_taxonomy_emoji_with_a_skin_tone_still_votes() -> None:
    for spec in TAXONOMY.categories:
        assert cards.reaction_vote(f"{spec.emoji}::skin-tone-3", TAXONOMY) is not None


SLACK_EVENT = st.dictionaries(
    st.sampled_from(["type", "channel", "user", "text", "ts", "subtype", "bot_id", "item"]),
    JSON | st.sampled_from(["message", "CINTAKE", "U1", "1700000000.000100"]),
    max_size=8,
)


@FUZZ
@given(SLACK_EVENT)
def test_any_event_shape_is_feedback_or_not_never_an_error(event: dict[str, Any]) -> None:
    if cards.is_feedback_message(event, frozenset({"CINTAKE"})):
        assert isinstance(event["text"], str) and isinstance(event["ts"], str)
        assert event["channel"] == "CINTAKE" and isinstance(event["user"], str)


@FUZZ
@given(st.dictionaries(st.sampled_from(["metadata", "ts", "text"]), JSON, max_size=3))
def test_any_message_shape_yields_an_item_id_or_none(message: dict[str, Any]) -> None:
    found = cards.card_item_id(message)
    assert found is None or (isinstance(found, str) and found)


@FUZZ
@given(st.text(min_size=1, max_size=60))
def test_card_metadata_round_trips_every_item_id(item_id: str) -> None:
    assert cards.card_item_id({"metadata": cards.card_metadata(item_id)}) == item_id


@FUZZ
@given(JSON, st.sampled_from(["category", "severity", "action", "text"]))
def test_any_view_shape_gives_a_value_or_none(view: Any, block: str) -> None:
    wrapped = view if isinstance(view, dict) else {"state": {"values": {block: {"value": view}}}}
    value = cards.view_value(wrapped, block)
    assert value is None or (isinstance(value, str) and value == value.strip() and value)


# -- Discord payloads -----------------------------------------------------------------------------
BUTTON_ID = re.compile(embeds.id_template(embeds.BUTTON_ACTIONS))
SELECT_ID = re.compile(embeds.id_template(embeds.SELECT_ACTIONS))
ITEM_ID = st.from_regex(r"[A-Za-z0-9_:.\-]{1,90}", fullmatch=True)


@FUZZ
@given(
    st.sampled_from(embeds.BUTTON_ACTIONS + embeds.SELECT_ACTIONS),
    ITEM_ID | st.text(min_size=1, max_size=300),
)
def test_custom_ids_always_fit_and_name_their_item(action: str, item_id: str) -> None:
    """A short plain id rides as it is; any other becomes a digest that maps back to the
    item of the card it is on (and to no other item)."""
    custom_id = embeds.custom_id(action, item_id)
    assert len(custom_id) <= embeds.CUSTOM_ID_LIMIT
    template = BUTTON_ID if action in embeds.BUTTON_ACTIONS else SELECT_ID
    match = template.match(custom_id)
    assert match is not None and match["action"] == action
    key = match["item_id"]
    assert embeds.item_id_for(key, item_id) == item_id
    if len(item_id) <= embeds.ITEM_KEY_ROOM and re.fullmatch(r"[!-~]+", item_id):
        assert key == item_id or item_id.startswith("#")
    else:
        assert embeds.is_digest(key) and embeds.item_id_for(key, item_id + "x") == key


@FUZZ
@given(st.text(max_size=120))
def test_any_custom_id_matches_with_a_known_action_and_an_item_id_or_not_at_all(
    custom_id: str,
) -> None:
    for template, actions in (
        (BUTTON_ID, embeds.BUTTON_ACTIONS),
        (SELECT_ID, embeds.SELECT_ACTIONS),
    ):
        match = template.match(custom_id)
        if match is not None:
            assert match["action"] in actions and match["item_id"]


@FUZZ
@given(st.text(max_size=12))
def test_any_discord_reaction_is_a_vote_or_nothing(emoji: str) -> None:
    vote = embeds.reaction_vote(emoji, TAXONOMY)
    assert vote is None or vote.kind in ValidationKind


def test_unicode_taxonomy_emoji_vote_with_or_without_variation_selector_or_skin_tone() -> None:
    for name, char in embeds.UNICODE_EMOJI.items():
        expected = cards.reaction_vote(name, TAXONOMY)
        assert embeds.reaction_vote(char, TAXONOMY) == expected
        assert embeds.reaction_vote(char.replace("\ufe0f", ""), TAXONOMY) == expected
        assert embeds.reaction_vote(char + "\U0001f3fd", TAXONOMY) == expected


@FUZZ
@given(st.text(max_size=80))
def test_any_embed_footer_yields_an_item_id_or_none(footer: str) -> None:
    embed = discord.Embed(title="card").set_footer(text=footer)

    class Message:  # only what card_item_id reads of a discord.Message
        embeds = [embed]

    found = embeds.card_item_id(Message())  # type: ignore[arg-type]
    assert found is None or (found and not any(c.isspace() for c in found))


@FUZZ
@given(ITEM_ID)
def test_card_footer_round_trips_item_ids(item_id: str) -> None:
    embed = discord.Embed(title="card").set_footer(text=f"item {item_id}")

    class Message:
        embeds = [embed]

    assert embeds.card_item_id(Message()) == item_id  # type: ignore[arg-type]
