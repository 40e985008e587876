"""`triage-bot digest`: its figures against a store whose contents the test wrote, the
empty period, a period that makes no sense, and the PNG."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from core.digest import build_digest, parse_period
from core.escalation import escalation_target
from core.models import FieldConfidence, Label, Triage, utcnow
from core.service import make_item
from core.store.sqlite import SQLiteStore
from core.taxonomy import load_taxonomy

CARDS = "slack:C1"


def triage(item_id: str, category: str, severity: str, needs_human: bool = False) -> Triage:
    return Triage(
        item_id=item_id,
        category=category,
        severity=severity,
        action="Do it.",
        confidence=FieldConfidence(category=0.9, severity=0.9),
        model_version="v1",
        needs_human=needs_human,
    )


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    """Two weeks of items: this week's 3, last week's 1, and one older than both."""
    made = SQLiteStore(tmp_path / "digest.db")
    now = utcnow()
    rows = [
        ("a", now - timedelta(days=1), "website-bug", "critical", True),
        ("b", now - timedelta(days=2), "website-bug", "low", False),
        ("c", now - timedelta(days=3), "feature-request", "critical", False),
        ("d", now - timedelta(days=9), "website-bug", "high", False),
        ("e", now - timedelta(days=20), "noise", "low", False),
    ]
    for item_id, at, category, severity, unsure in rows:
        made.add_item(make_item(f"text {item_id}", item_id=item_id, received_at=at))
        made.save_triage(triage(item_id, category, severity, unsure))
    # b validated as predicted; c corrected to content-gap (the model was wrong).
    for item_id, category, severity, agreement in [
        ("b", "website-bug", "low", 1.0),
        ("c", "content-gap", "critical", 0.5),
    ]:
        made.put_label(
            Label(
                item_id=item_id,
                category=category,
                severity=severity,
                reviewers=["U1", "U2"],
                agreement=agreement,
                updated_at=now - timedelta(days=2),
            )
        )
    made.enqueue_post("a", escalation_target(CARDS))
    made.enqueue_post("a", "github:acme/web")
    made.mark_posted("a", "github:acme/web", "https://github.test/acme/web/issues/1")
    return made


def test_the_figures_match_what_the_store_holds(store: SQLiteStore) -> None:
    digest = build_digest(store, load_taxonomy(), timedelta(days=7))
    assert (digest.items.now, digest.items.before, digest.items.delta) == (3, 1, 2)
    assert digest.by_category["website-bug"].now == 2  # a (predicted), b (label)
    assert digest.by_category["website-bug"].before == 1
    assert digest.by_category["content-gap"].now == 1  # c, as its label says
    assert digest.by_severity["critical"].now == 2
    assert digest.awaiting_review == 1  # a: the only unlabelled item this week
    assert digest.oldest_critical is not None and digest.oldest_critical["id"] == "a"
    assert digest.escalations == 1 and digest.issues_opened == 1
    assert digest.validated == 2 and digest.accuracy == 0.5 and digest.agreement == 0.75
    assert digest.needs_human_share == pytest.approx(1 / 3)
    # Predicted this week: 2 website-bug, 1 feature-request; the week before: 1 website-bug.
    assert digest.drift == pytest.approx(1 / 3)
    store.close()


def test_the_command_prints_json_draws_a_png_and_says_when_a_period_is_empty(
    store: SQLiteStore, tmp_path: Path
) -> None:
    url = f"sqlite:///{store.path}"
    store.close()
    runner = CliRunner()
    png = tmp_path / "digest.png"
    result = runner.invoke(
        app, ["digest", "--since", "7d", "--store", url, "--json", "--png", str(png)]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["items"] == {"now": 3, "before": 1, "delta": 2}
    assert figures["model"]["accuracy"] == 0.5 and figures["png"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = runner.invoke(app, ["digest", "--since", "12h", "--store", url, "--json"])
    assert empty.exit_code == 0
    said = json.loads(empty.stdout)
    assert said["empty"] and "Nothing arrived" in said["notes"][0]
    bad = runner.invoke(app, ["digest", "--since", "soon", "--store", url])
    assert bad.exit_code == 2 and "expected a number and h, d or w" in bad.output


def test_periods() -> None:
    assert parse_period("1d") == timedelta(days=1)
    assert parse_period("2w") == timedelta(days=14)
    assert parse_period(" 12H ") == timedelta(hours=12)
    for bad in ("0d", "7", "d", "7y", "9999w"):
        with pytest.raises(ValueError):
            parse_period(bad)


def test_the_schedule_picks_the_latest_slot_in_the_team_time_zone_and_posts_it_once(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from core.digest import DigestSchedule, claim_due
    from core.runtime import DigestSettings

    daily = DigestSchedule(DigestSettings(every="daily", at="09:00", timezone="Europe/Paris"))
    # 09:00 in Paris is 08:00 UTC in winter.
    now = datetime(2026, 12, 2, 8, 30, tzinfo=UTC)
    assert daily.latest_slot(now) == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    assert daily.latest_slot(datetime(2026, 12, 2, 7, 0, tzinfo=UTC)) == datetime(
        2026, 12, 1, 8, 0, tzinfo=UTC
    )
    assert daily.due(datetime(2026, 12, 2, 11, 0, tzinfo=UTC)) is None  # missed by 3 h
    weekly = DigestSchedule(DigestSettings(every="weekly", at="09:00", weekday="monday"))
    # 2026-12-02 is a Wednesday: the last slot was Monday 2026-11-30 09:00 UTC.
    assert weekly.latest_slot(now) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert weekly.period == "7d" and daily.period == "1d"
    assert DigestSchedule(DigestSettings()).due(now) is None  # off by default
    store = SQLiteStore(tmp_path / "schedule.db")
    assert claim_due(store, daily, "slack:C1", now) == "1d"
    assert claim_due(store, daily, "slack:C1", now) is None  # posted once
    assert claim_due(store, daily, "discord:1", now) == "1d"  # each channel its own
    store.close()


def test_a_schedule_that_makes_no_sense_is_refused_at_start_naming_the_key(
    tmp_path: Path,
) -> None:
    from core.runtime import load_runtime_settings
    from core.taxonomy import DEFAULT_CONFIG, ConfigError

    for bad, key in (
        ('timezone = "Mars/Olympus"', "digest.timezone"),
        ('at = "25:00"', "digest.at"),
        ('every = "hourly"', "digest.every"),
    ):
        text = DEFAULT_CONFIG.read_text().replace('timezone = "UTC"', bad, 1)
        if not bad.startswith("timezone"):
            text = DEFAULT_CONFIG.read_text().replace(
                'at = "09:00"' if bad.startswith("at") else 'every = "off"', bad, 1
            )
        path = tmp_path / "team.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_runtime_settings(path)


def test_themes_command_lists_renames_and_merges_by_key(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "themes.db")
    now = utcnow()
    texts = [
        "Checkout fails, my card is declined though it works elsewhere",
        "Card declined at checkout every time",
        "Checkout payment declined, card is fine",
        "Please add a dark mode to the dashboard",
        "A dark theme for the dashboard, please",
    ]
    for i, text in enumerate(texts):
        store.add_item(make_item(text, received_at=now - timedelta(hours=1 + i)))
    url = f"sqlite:///{store.path}"
    store.close()
    runner = CliRunner()
    listed = runner.invoke(app, ["themes", "--since", "7d", "--store", url, "--json"])
    assert listed.exit_code == 0, listed.output
    themes = json.loads(listed.stdout)["themes"]
    assert [t["count"] for t in themes] == [3, 2] and all(t["trend"] == "new" for t in themes)
    renamed = runner.invoke(
        app, ["themes", "rename", themes[0]["key"], "Card payments", "--store", url]
    )
    assert renamed.exit_code == 0, renamed.output
    again = json.loads(runner.invoke(app, ["themes", "--store", url, "--json"]).stdout)["themes"]
    assert again[0]["name"] == "Card payments" and again[0]["named_by"]
    merged = runner.invoke(
        app,
        ["themes", "merge", "Card payments", themes[1]["key"], "--name", "Shop", "--store", url],
    )
    assert merged.exit_code == 0, merged.output
    (one,) = json.loads(runner.invoke(app, ["themes", "--store", url, "--json"]).stdout)["themes"]
    assert (one["name"], one["count"]) == ("Shop", 5)
    unknown = runner.invoke(app, ["themes", "rename", "t000000", "x", "--store", url])
    assert unknown.exit_code != 0 and "no theme" in unknown.output
    bad = runner.invoke(app, ["themes", "--since", "soon", "--store", url])
    assert bad.exit_code == 2 and "expected a number" in bad.output


def test_digest_post_sends_one_message_with_its_chart_to_slack(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.slack_api import FakeSlack

    url = f"sqlite:///{store.path}"
    store.close()
    with FakeSlack() as fake:
        for name, value in {
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": "s",
            "TRIAGE_SLACK_CHANNEL": "CTRIAGE",
            "SLACK_API_URL": fake.base_url,
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("DISCORD_TOKEN", raising=False)
        result = CliRunner().invoke(app, ["digest", "--store", url, "--json", "--post"])
        assert result.exit_code == 0, result.output
        assert "posted to slack:CTRIAGE" in result.stderr
        (done,) = fake.calls("files.completeUploadExternal")
        assert done.params["channel_id"] == "CTRIAGE"
        (posted,) = [m for m in fake.messages("CTRIAGE") if m.get("files")]
        assert "*3* items" in posted["text"]
        assert fake.upload(posted["files"][0]["id"])[:8] == b"\x89PNG\r\n\x1a\n"
        monkeypatch.setenv("DISCORD_TOKEN", "t")
        both = CliRunner().invoke(app, ["digest", "--store", url, "--post"])
        assert both.exit_code == 2 and "both are configured" in both.output


def test_digest_post_sends_one_message_with_its_chart_to_discord(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import threading

    from tests.fakes.discord import FakeDiscord

    url = f"sqlite:///{store.path}"
    store.close()
    fake = FakeDiscord(channels={833333333333333333: "triage"})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    try:
        fake.patch(monkeypatch)
        monkeypatch.setenv("DISCORD_TOKEN", "test-token")
        monkeypatch.setenv("TRIAGE_DISCORD_CHANNEL", "833333333333333333")
        monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
        result = CliRunner().invoke(app, ["digest", "--store", url, "--json", "--post"])
        assert result.exit_code == 0, result.output
        assert "posted to discord:833333333333333333" in result.stderr
        (sent,) = [c for c in fake.calls if c.method == "POST" and c.path.endswith("/messages")]
        assert "**3** items" in sent.body["content"]
        assert sent.body["allowed_mentions"]["parse"] == []
        ((name, png),) = sent.files
        assert name == "triage-digest.png" and png[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
