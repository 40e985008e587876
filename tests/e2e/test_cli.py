"""The `triage-bot` command line as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Invoke the CLI in-process (the encoder is loaded once per test session)."""
    monkeypatch.setenv("TRIAGE_STORE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("TRIAGE_REVIEWERS", raising=False)
    runner = CliRunner()

    def invoke(*args: str, stdin: bytes | str | None = None):
        return runner.invoke(app, list(args), input=stdin, catch_exceptions=False)

    return invoke


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_triage_text_prints_the_documented_json(run) -> None:
    result = run("triage", "The signup form returns a 500 error", "--page", "/signup")
    assert result.exit_code == 0, result.stderr
    (record,) = lines(result.stdout)
    assert set(record) >= {"id", "category", "severity", "action", "confidence", "model_version"}
    assert set(record["confidence"]) == {"category", "severity"}
    assert record["category"] == "website-bug" and "/signup" in record["action"]


def test_triage_file_keeps_good_lines_and_reports_bad_ones(run, tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(
        '{"id": "1", "text": "Please add dark mode", "type": "feature"}\n'
        "{broken\n"
        '{"id": "3", "text": ""}\n'
        '{"id": "4", "text": "Docs for caching are missing"}\n'
    )
    result = run("triage", "--file", str(path))
    assert result.exit_code == 1
    assert [r["category"] for r in lines(result.stdout)] == ["feature-request", "content-gap"]
    assert f"{path}:2: skipped: invalid JSON" in result.stderr
    assert f"{path}:3: skipped: empty feedback text" in result.stderr
    assert "2 item(s) skipped; 2 triaged" in result.stderr
    # Re-running the same file neither duplicates items nor re-triages them.
    again = run("triage", "--file", str(path))
    assert [r["id"] for r in lines(again.stdout)] == [r["id"] for r in lines(result.stdout)]
    stats = run("stats", "--json")
    assert lines(stats.stdout)[0]["items"] == 2


def test_csv_file(run) -> None:
    result = run("triage", "--file", str(REPO / "examples" / "feedback.csv"))
    assert result.exit_code == 0, result.stderr
    assert len(lines(result.stdout)) == 5


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["triage", ""], None, "empty feedback text"),
        (["triage", "-"], b"\x00\x01\xff\xfe binary", "binary content"),
        (["triage", "-"], "a" * 1_000_000, "over the 65536-byte limit"),
        (["triage"], None, "give either TEXT or --file"),
        (["triage", "--file", "/nonexistent.jsonl"], None, "no such file"),
        (["validate", "fb_unknown"], None, "unknown item id 'fb_unknown'"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(run, args, stdin, message) -> None:
    result = run(*args, stdin=stdin)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_validate_export_and_stats(run) -> None:
    (item,) = lines(run("triage", "Checkout is down for everyone").stdout)
    bad = run("validate", item["id"], "--category", "bugz")
    assert bad.exit_code == 2 and "unknown category 'bugz'" in bad.stderr
    assert lines(run("export", "labels").stdout) == []

    ok = run("validate", item["id"], "--category", "website-bug", "--severity", "critical")
    assert ok.exit_code == 0, ok.stderr
    vote = lines(ok.stdout)[0]
    assert vote["stored"] and vote["label"]["category"] == "website-bug"
    (exported,) = lines(run("export", "labels").stdout)
    assert exported["id"] == item["id"] and exported["text"] == "Checkout is down for everyone"
    assert (exported["category"], exported["severity"]) == ("website-bug", "critical")
    assert set(exported["reward"]) == {"value", "source", "reason"}
    assert exported["reviewers"] == ["cli-user"]
    stats = lines(run("stats", "--json").stdout)[0]
    assert stats["validated"] == 1 and stats["votes"] == 1


def test_bad_store_url_is_one_line(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_STORE_URL", "postgres://x")
    result = run("stats")
    assert result.exit_code == 2 and "TRIAGE_STORE_URL" in result.stderr


def test_demo_auto_runs_the_whole_loop_in_a_real_process(tmp_path: Path) -> None:
    env = {**os.environ, "TRIAGE_STORE_URL": f"sqlite:///{tmp_path / 'unused.db'}"}
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--auto", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["reviewed"] == 36 and summary["held_out"] == 18
    # The model learned what it was taught, and improved on what it has not seen.
    assert summary["reviewed_after"][0] > summary["reviewed_before"][0]
    assert summary["held_out_after"][0] >= summary["held_out_before"][0]
    assert "Accuracy (category / severity)" in proc.stdout
    assert not (tmp_path / "unused.db").exists()  # the demo never touches the real store


# -- serve: no reviewer rule, no start ------------------------------------------------------
SERVE_ENV = {
    "slack": {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",  # never reached: it stops before
        "TRIAGE_SLACK_CHANNEL": "C0TRIAGE",
    },
    "discord": {"DISCORD_TOKEN": "test-token", "TRIAGE_DISCORD_CHANNEL": "123456789012345678"},
}


@pytest.mark.parametrize("platform", ["slack", "discord"])
def test_serve_refuses_to_start_without_a_reviewer_rule(
    run, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    for name, value in SERVE_ENV[platform].items():
        monkeypatch.setenv(name, value)
    for name in ("SLACK_APP_TOKEN", "TRIAGE_DISCORD_REVIEWER_ROLE"):
        monkeypatch.delenv(name, raising=False)

    refused = run("serve", platform)
    assert refused.exit_code == 2 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "no reviewer rule" in refused.stderr and "TRIAGE_REVIEWERS=*" in refused.stderr
    assert ("TRIAGE_DISCORD_REVIEWER_ROLE" in refused.stderr) == (platform == "discord")

    monkeypatch.setenv("TRIAGE_REVIEWERS", ",")  # set, but lists no one: not "anyone"
    empty = run("serve", platform)
    assert empty.exit_code == 2 and "lists no one" in empty.stderr

    # An explicit rule passes the gate: what stops these runs is the next check, --watch.
    passes = [{"TRIAGE_REVIEWERS": "*"}, {"TRIAGE_REVIEWERS": "U0ANN,U0BOB"}]
    if platform == "discord":
        passes.append({"TRIAGE_DISCORD_REVIEWER_ROLE": "223456789012345678"})
    for rule in passes:
        monkeypatch.delenv("TRIAGE_REVIEWERS", raising=False)
        for name, value in rule.items():
            monkeypatch.setenv(name, value)
        stopped = run("serve", platform, "--watch", "mongodb://localhost/website")
        assert stopped.exit_code == 2 and "database.collection" in stopped.stderr, rule
        assert "reviewer rule" not in stopped.stderr


def test_serve_without_reviewers_stops_at_once_in_a_real_process() -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_"))},
        **SERVE_ENV["slack"],
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", "slack"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: no reviewer rule: set TRIAGE_REVIEWERS")
    assert "TRIAGE_REVIEWERS=*" in line
