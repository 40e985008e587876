import json

from bot.slack import cards
from bot.slack.settings import SlackSettings
from core.models import (
    CardView,
    FeedbackItem,
    FieldConfidence,
    Triage,
    Validation,
    ValidationKind,
)
from core.settings import SettingsError
from core.taxonomy import load_taxonomy

TAX = load_taxonomy()


def make() -> tuple[FeedbackItem, Triage]:
    item = FeedbackItem(
        id="fb_1",
        text="x",
        redacted_text="Login fails, mail [email]",
        pii_kinds=["email"],
        source="slack",
        page="/login",
        form_type="bug",
        rating=1,
    )
    triage = Triage(
        item_id="fb_1",
        category="website-bug",
        severity="critical",
        action="Fix login on /login",
        confidence=FieldConfidence(category=0.4, severity=0.8),
        model_version="m1",
        needs_human=True,
    )
    return item, triage


def test_card_has_severity_first_buttons_and_tally() -> None:
    item, triage = make()
    votes = [
        Validation(
            item_id="fb_1",
            reviewer="U1",
            kind=ValidationKind.CONFIRM,
            category="website-bug",
            severity="critical",
        ),
        Validation(
            item_id="fb_1",
            reviewer="U2",
            kind=ValidationKind.CORRECT,
            category="framework-issue",
            severity="high",
        ),
    ]
    blocks = cards.card_blocks(item, triage, TAX, votes=votes, source_link="https://x/y")
    head = blocks[0]["text"]["text"]
    assert head.index("CRITICAL") < head.index("website-bug") and "needs a human" in head
    assert ":fire:" in head and ":bug:" in head
    text = str(blocks)
    assert "[email]" in text and "<https://x/y|source message>" in text and "Fix login" in text
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [a["action_id"] for a in actions] == [
        cards.CONFIRM_ACTION,
        cards.CORRECT_ACTION,
        cards.NOISE_ACTION,
    ]
    assert {a["value"] for a in actions} == {"fb_1"}
    assert "<@U1> confirmed" in text and "<@U2> → framework-issue / high" in text
    assert cards.card_metadata("fb_1") == {
        "event_type": "triage_card",
        "event_payload": {"item_id": "fb_1"},
    }
    assert cards.card_item_id({"metadata": cards.card_metadata("fb_1")}) == "fb_1"
    assert cards.card_item_id({"metadata": {"event_type": "other"}}) is None


def test_reactions_map_to_votes() -> None:
    assert cards.reaction_vote("white_check_mark", TAX).kind == ValidationKind.CONFIRM
    assert cards.reaction_vote("x", TAX).kind == ValidationKind.REJECT
    assert cards.reaction_vote("memo", TAX) == cards.ReactionVote(
        ValidationKind.CORRECT, category="content-gap"
    )
    assert cards.reaction_vote("fire", TAX) == cards.ReactionVote(
        ValidationKind.CORRECT, severity="critical"
    )
    assert cards.reaction_vote("wastebasket", TAX).kind == ValidationKind.NOISE
    assert cards.reaction_vote("white_check_mark::skin-tone-3", TAX).kind == ValidationKind.CONFIRM
    assert cards.reaction_vote("tada", TAX) is None


def test_intake_filter_takes_only_new_human_messages() -> None:
    intake = frozenset({"C1"})
    base = {"type": "message", "channel": "C1", "user": "U1", "text": "hi", "ts": "1.0"}
    assert cards.is_feedback_message(base, intake)
    assert not cards.is_feedback_message({**base, "channel": "C2"}, intake)
    assert not cards.is_feedback_message({**base, "subtype": "message_changed"}, intake)
    assert not cards.is_feedback_message({**base, "bot_id": "B1"}, intake)


def test_modal_values_and_settings_errors() -> None:
    item, triage = make()
    modal = cards.correct_modal("fb_1", triage, TAX, "C1", "1.2")
    assert modal["blocks"][0]["element"]["initial_option"]["value"] == "website-bug"
    view = {
        "state": {
            "values": {
                "category": {
                    "value": {"type": "static_select", "selected_option": {"value": "noise"}}
                },
                "action": {"value": {"type": "plain_text_input", "value": "  "}},
            }
        }
    }
    assert cards.view_value(view, "category") == "noise"
    assert cards.view_value(view, "action") is None
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "TRIAGE_SLACK_CHANNEL": "C1AB"}
    assert SlackSettings.from_env(env).channel == "C1AB"
    for bad, name in [
        ({**env, "SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN"),
        ({**env, "TRIAGE_SLACK_CHANNEL": "#general"}, "TRIAGE_SLACK_CHANNEL"),
        ({**env, "SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET"),
        ({**env, "SLACK_APP_TOKEN": "bad"}, "SLACK_APP_TOKEN"),
        ({**env, "TRIAGE_SLACK_INTAKE_CHANNELS": "C1AB,nope"}, "TRIAGE_SLACK_INTAKE_CHANNELS"),
    ]:
        try:
            SlackSettings.from_env(bad)
        except SettingsError as exc:
            assert name in str(exc)
        else:
            raise AssertionError(f"{name} accepted")


def test_manifest_asks_for_what_the_app_uses() -> None:
    from pathlib import Path

    import yaml

    manifest = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "config" / "slack-manifest.yml").read_text()
    )
    settings = manifest["settings"]
    assert {"message.channels", "reaction_added", "reaction_removed"} <= set(
        settings["event_subscriptions"]["bot_events"]
    )
    assert settings["interactivity"]["is_enabled"]
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/triage"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"chat:write", "commands", "channels:history", "reactions:read", "files:write"} <= scopes
    urls = {
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        manifest["features"]["slash_commands"][0]["url"],
    }
    assert len(urls) == 1 and urls.pop().endswith("/slack/events")


def test_user_text_is_literal_and_only_checked_values_link_or_mention() -> None:
    item, triage = make()
    item.redacted_text = "a & b <!channel> *x*\n> not a second quote"
    item.page = "https://shop.example/x|ok> <!everyone> <https://evil.example"
    item.metadata = {"slack": {"channel": "C1|<!here>", "ts": "1.2"}}  # forged: no link
    votes = [
        Validation(item_id="fb_1", reviewer="U1", kind=ValidationKind.CONFIRM),
        Validation(item_id="fb_1", reviewer="<!channel> someone", kind=ValidationKind.NOISE),
    ]
    payload = cards.card_payload(CardView(item, triage, votes), TAX)
    blocks = payload["blocks"]
    assert (
        blocks[1]["text"]["text"] == "> a &amp; b &lt;!channel&gt; *x*\n> &gt; not a second quote"
    )
    assert "source message" not in str(blocks) and cards.source_link(item) is None
    tally = next(b for b in blocks if b.get("block_id") == "triage_tally")["elements"][0]["text"]
    assert "<@U1> confirmed" in tally and "&lt;!channel&gt; someone marked noise" in tally
    assert "<!" not in str(payload)
    mrkdwn = [e for b in blocks for e in [b.get("text"), *b.get("elements", [])] if e]
    assert all(t["verbatim"] for t in mrkdwn if t.get("type") == "mrkdwn")
    item.metadata = {"slack": {"channel": "C0INTAKE", "ts": "1700000000.000100"}}
    assert cards.source_link(item) == "https://slack.com/archives/C0INTAKE/p1700000000000100"


def test_a_long_text_is_clipped_after_quoting_and_never_inside_an_entity() -> None:
    item, triage = make()
    item.redacted_text = "\n".join("<&>" for _ in range(1450))
    section = cards.card_blocks(item, triage, TAX)[1]["text"]["text"]
    assert len(section) <= cards.SECTION_LIMIT and section.endswith("…")
    assert section.startswith("> &lt;&amp;&gt;\n> ")
    assert section[:-1].endswith(("&lt;", "&amp;", "&gt;", "\n", "> ", ">"))


def test_modal_metadata_stays_within_slack_limit_for_any_id() -> None:
    """JSON spells `é` as `\\u00e9` (6 characters) and `"` as `\\"`: an id within the button's
    2,000 can dump to three times Slack's 3,000, and `views.open` would then fail after the
    ack. Such an id rides as its digest, which the card it came from maps back."""
    _, triage = make()
    for item_id in ["é" * 1500, '"' * 1999, "\U0001f600" * 999, "fb_1", "#fb_1", "a\x01b"]:
        modal = cards.correct_modal(item_id, triage, TAX, "C1", "1.2")
        meta = modal["private_metadata"]
        assert len(meta) <= cards.PRIVATE_METADATA_LIMIT, (item_id[:10], len(meta))
        value = json.loads(meta)["item_id"]
        assert cards.item_id_for(value, item_id) == item_id
    assert json.loads(cards.modal_metadata("fb_1", "C1", "1.2"))["item_id"] == "fb_1"


def test_digest_values_map_back_only_from_their_card() -> None:
    for item_id in ["#looks-like-a-digest", "x" * 2001, "nul\x00here", "e\u0301" * 10]:
        value = cards.item_value(item_id)
        if item_id != "e\u0301" * 10:  # printable and short: rides as it is
            assert value.startswith(cards.DIGEST_MARK) and len(value) == 33
        assert cards.item_id_for(value, item_id) == item_id
        assert cards.item_id_for(value, "fb_other") == value  # another card: no match
        assert cards.item_id_for(value, None) == value
    assert cards.item_value("fb_" + "a" * 20) == "fb_" + "a" * 20
