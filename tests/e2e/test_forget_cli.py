"""`triage-bot forget` and `triage-bot prune` as an operator runs them, on a store the
bot's intake filled (Slack messages and commands, a file import, old items)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from bot.app import default_encoder
from bot.cli import app
from core.intake import Intake, Submission
from core.models import utcnow
from core.service import TriageService
from core.store.sqlite import SQLiteStore
from core.taxonomy import load_taxonomy
from core.triage import TriageEngine

REPO = Path(__file__).resolve().parents[2]
CARD_CHANNEL = "slack:C0CARDS"

Run = Callable[..., Result]


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture
def run(db: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Invoke the CLI in-process (the encoder is loaded once per test session)."""
    monkeypatch.setenv("TRIAGE_STORE_URL", f"sqlite:///{db}")
    monkeypatch.delenv("TRIAGE_REVIEWERS", raising=False)
    monkeypatch.delenv("TRIAGE_CONFIG", raising=False)
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=stdin, catch_exceptions=False)

    return invoke


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    """The same store file, as the running bot would hold it."""
    opened = SQLiteStore(db)
    yield opened
    opened.close()


def triaged(store: SQLiteStore, item_id: str) -> str:
    """Triaged as the outbox worker does before it posts the card."""
    taxonomy = load_taxonomy()
    service = TriageService(store, TriageEngine(taxonomy, default_encoder()), taxonomy)
    item = store.get_item(item_id)
    assert item is not None
    service.triage_items([item])
    return item_id


def slack_message(
    store: SQLiteStore, text: str, user: str, ts: str, received_at: datetime | None = None
) -> str:
    """An intake-channel message as the Slack edge stores it, with its card posted."""
    accepted = Intake(store).accept(
        Submission(
            text=text,
            source="slack",
            ref=f"C0INTAKE:{ts}",
            submitter=f"slack:{user}",
            received_at=received_at,
            origin={"slack": {"channel": "C0INTAKE", "ts": ts, "user": user}},
        ),
        post_to=[CARD_CHANNEL],
    )
    claimed = store.claim_post(CARD_CHANNEL, "worker", 60)
    assert claimed is not None and claimed.item_id == accepted.item_id
    assert store.mark_posted(accepted.item_id, CARD_CHANNEL, f"17000{ts}", "worker")
    return triaged(store, accepted.item_id)


def slack_command(store: SQLiteStore, text: str, user: str) -> str:
    """`/triage <text>`: only `submitted_by` and the submitter name the user."""
    accepted = Intake(store).accept(
        Submission(
            text=text,
            source="slack-command",
            submitter=f"slack:{user}",
            origin={"submitted_by": user},
        )
    )
    return triaged(store, accepted.item_id)


def test_forget_by_submitter_item_and_date_then_export_stats_and_train_lack_it(
    run: Run, store: SQLiteStore, tmp_path: Path
) -> None:
    jane_message = slack_message(
        store, "Jane here: the invoice PDF has my old address", "U0JANE", "1.1"
    )
    jane_command = slack_command(store, "Jane again: the invoice total is wrong", "U0JANE")
    bob = slack_message(store, "Bob: the dashboard chart never loads", "U0BOB", "2.2")
    old = slack_message(
        store, "Ancient: the login page was slow", "U0OLD", "3.3", datetime(2026, 1, 5, tzinfo=UTC)
    )
    rows = tmp_path / "history.jsonl"
    rows.write_text(
        '{"id": "1", "text": "Please add a dark mode to the editor"}\n'
        '{"id": "2", "text": "The pricing page does not list the team plan"}\n'
    )
    imported = run("triage", "--file", str(rows))
    assert imported.exit_code == 0, imported.stderr
    dark, pricing = (r["id"] for r in lines(imported.stdout))
    for item_id in (jane_message, jane_command, bob, old, dark, pricing):
        voted = run("validate", item_id, "--action", "reply to the customer")
        assert voted.exit_code == 0, voted.stderr
    assert lines(run("stats", "--json").stdout)[0]["validated"] == 6

    # A dry run shows what would go, and deletes nothing.
    dry = run("forget", "--submitter", "slack:U0JANE", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    *plan, summary = lines(dry.stdout)
    assert summary == {"dry_run": True, "items": 2, "missing": []}
    assert {row["id"] for row in plan} == {jane_message, jane_command}
    by_id = {row["id"]: row for row in plan}
    assert by_id[jane_message]["cards"] == [f"{CARD_CHANNEL} 170001.1"]
    assert by_id[jane_message]["origin"] == "C0INTAKE:1.1"
    assert by_id[jane_command]["submitters"] == ["slack:U0JANE"]
    assert all(row["votes"] == 1 and row["labelled"] for row in plan)
    assert "invoice" not in dry.stdout  # ids and counts, never the text
    assert lines(run("stats", "--json").stdout)[0]["items"] == 6

    # Without --yes it asks; "no" keeps everything.
    refused = run("forget", "--submitter", "slack:U0JANE", stdin="n\n")
    assert refused.exit_code == 1 and "Delete them for good?" in refused.stderr
    assert store.get_item(jane_message) is not None

    by_submitter = run(
        "forget", "--submitter", "slack:U0JANE", "--reason", "erasure request", stdin="y\n"
    )
    assert by_submitter.exit_code == 0, by_submitter.stderr
    (done,) = lines(by_submitter.stdout)
    assert done["forgotten"] == 2 and done["missing"] == []
    assert done["counts"] == {
        "triages": 2,
        "votes": 2,
        "labels": 2,
        "rewards": 2,
        "assignments": 0,
        "duplicates": 0,
        "duplicate_votes": 0,
        "posts": 1,
        "items": 2,
    }
    assert done["cards"] == [f"{CARD_CHANNEL} 170001.1"]
    assert f"card left in its channel: {CARD_CHANNEL} 170001.1" in by_submitter.stderr
    assert "original message: C0INTAKE:1.1" in by_submitter.stderr

    by_item = run("forget", "--item", dark, "--item", "fb_never_stored", "--yes")
    assert by_item.exit_code == 0, by_item.stderr
    assert lines(by_item.stdout)[0]["forgotten"] == 1
    assert lines(by_item.stdout)[0]["missing"] == ["fb_never_stored"]
    assert "no item fb_never_stored in the store" in by_item.stderr

    by_date = run("forget", "--before", "2026-02-01", "--yes")
    assert by_date.exit_code == 0, by_date.stderr
    assert lines(by_date.stdout)[0]["forgotten"] == 1
    assert run("forget", "--before", "2026-02-01", "--yes").stdout.count('"forgotten": 0') == 1

    # Gone from every read path; the next training run trains without them.
    gone = {jane_message, jane_command, dark, old}
    exported = lines(run("export", "labels").stdout)
    assert {row["id"] for row in exported} == {bob, pricing}
    stats = lines(run("stats", "--json").stdout)[0]
    assert (stats["items"], stats["validated"], stats["votes"]) == (2, 2, 2)
    trained = run("train", "--json", "--no-finetune", "--steps", "20")
    assert trained.exit_code == 0, trained.stderr
    result = lines(trained.stdout)[0]
    assert result["train_count"] + result["eval_count"] == 2

    # The audit trail: what, when, why, how much; not the text.
    events = store.audit_events()
    assert [e.action for e in events] == ["forget"] * 3  # the run that found nothing: none
    assert events[0].selector == {"submitter": "slack:U0JANE"}
    assert events[0].reason == "erasure request" and events[0].by.startswith("cli")
    assert set(events[0].item_ids) == {jane_message, jane_command}
    assert events[1].selector == {"item": [dark, "fb_never_stored"]}
    assert events[2].selector == {"before": "2026-02-01T00:00:00+00:00"}
    assert events[2].item_ids == [old]
    assert {i for e in events for i in e.item_ids} == gone
    trail = " ".join(e.model_dump_json() for e in events)
    for word in ("invoice", "Jane here", "dark mode", "Ancient", "reply to the customer"):
        assert word not in trail
    for item_id in gone:
        assert store.get_item(item_id) is None and store.events(item_id) == []


def test_forget_refuses_bad_selectors_and_deletes_nothing(run: Run, store: SQLiteStore) -> None:
    kept = slack_command(store, "The export button is greyed out", "U0ANN")
    for args, message in [
        ([], "say what to forget"),
        (["--submitter", "U0ANN"], "use slack:USER_ID or discord:USER_ID"),
        (["--submitter", "slack:"], "use slack:USER_ID or discord:USER_ID"),
        (["--before", "last tuesday"], "is not a date"),
    ]:
        result = run("forget", *args, "--yes")
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr
        assert "Traceback" not in result.stderr
    nothing = run("forget", "--submitter", "discord:123", "--yes")
    assert nothing.exit_code == 0 and "nothing to forget" in nothing.stderr
    assert store.get_item(kept) is not None and store.audit_events() == []


def test_prune_applies_the_retention_setting(
    run: Run, store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "team.toml"
    base = (REPO / "config" / "default.toml").read_text()
    assert "items_days = 0\n" in base
    team = base.replace("items_days = 0\n", "items_days = 30\n")
    config.write_text(team.replace("finished_outbox_days = 0\n", "finished_outbox_days = 30\n"))
    monkeypatch.setenv("TRIAGE_CONFIG", str(config))
    long_ago = utcnow() - timedelta(days=45)
    old = slack_message(store, "An old complaint about the login page", "U0OLD", "4.4", long_ago)
    new = slack_message(store, "A new complaint about the login page", "U0NEW", "5.5")
    assert store.mark_event_seen("slack:Ev0001")

    dry = run("prune", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    (counted,) = lines(dry.stdout)
    assert (counted["dry_run"], counted["items"], counted["seen_events"]) == (True, 1, 0)
    assert counted["retention"] == {
        "items_days": 30,
        "seen_events_days": 7,
        "finished_outbox_days": 30,
    }
    assert store.get_item(old) is not None

    pruned = run("prune")
    assert pruned.exit_code == 0, pruned.stderr
    (report,) = lines(pruned.stdout)
    assert report["items"] == 1 and report["counts"]["items"] == 1
    assert report["cards"] == [f"{CARD_CHANNEL} 170004.4"]
    assert "prune: deleted: 1 item(s)" in pruned.stderr
    assert store.get_item(old) is None and store.get_item(new) is not None
    (event,) = store.audit_events()
    assert (event.action, event.item_ids) == ("prune", [old])
    assert event.selector["items_days"] == 30 and "before" in event.selector

    again = run("prune")
    assert again.exit_code == 0 and "nothing to delete" in again.stderr
    assert len(store.audit_events()) == 1  # a run that deletes nothing leaves no event
