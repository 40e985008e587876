"""`triage-bot export --format agentlightning` and `train --algo grpo` in the core venv.

The export runs here (Python 3.11, the store and the encoder); the agent and the services
run in the Python 3.12 `rl` venv (tests/rl). What this venv must do for `train --algo grpo`
is stop at once and say where to go instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from core.taxonomy import load_taxonomy
from training.agentlightning.rollouts import TRAIN_FILE, VALIDATION_FILE, RolloutInput, read_rows
from training.train import held_out


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRIAGE_STORE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("TRIAGE_REVIEWERS", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the core venv is Python 3.11")
def test_train_grpo_in_the_core_venv_stops_and_points_to_the_rl_venv(run, tmp_path) -> None:
    result = run("train", "--algo", "grpo", "--rl-data", str(tmp_path))
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert "\n" not in message and message.startswith("error: agentlightning is missing")
    assert "Python >= 3.12" in message and "`rl` venv" in message
    assert "bash scripts/rl-venv" in message and "pip install -e '.[rl]'" in message


def test_train_rejects_an_unknown_algorithm(run) -> None:
    result = run("train", "--algo", "ppo-magic")
    assert result.exit_code == 2 and "--algo must be heads or grpo" in result.stderr


def test_export_agentlightning_writes_the_split_rollout_inputs(run, tmp_path: Path) -> None:
    feedback = tmp_path / "items.jsonl"
    texts = [
        "The checkout page returns a 500 error when I pay",
        "Please add a dark mode to the documentation site",
        "Login fails with a blank page on Safari, write to jane.doe@example.com",
        "The caching guide is missing",
        "Great product, the new search is really fast",
        "The API reference has no page for webhooks",
    ]
    feedback.write_text("".join(json.dumps({"text": t, "page": "/x"}) + "\n" for t in texts))
    items = lines(run("triage", "--file", str(feedback)).stdout)
    assert len(items) == len(texts)
    for item in items[:4]:
        assert run("validate", item["id"]).exit_code == 0
    assert (
        run("validate", items[4]["id"], "--category", "positive", "--severity", "low").exit_code
        == 0
    )
    # items[5] is never validated: it is no rollout input.

    out = tmp_path / "agl"
    args = ("export", "--format", "agentlightning", "--out", str(out), "--validation-share", "0.4")
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    (summary,) = lines(result.stdout)
    train, validation = read_rows(out / TRAIN_FILE), read_rows(out / VALIDATION_FILE)
    assert (summary["train"], summary["validation"]) == (len(train), len(validation))
    assert train and validation and len(train) + len(validation) == 5
    assert summary["taxonomy"] == load_taxonomy().fingerprint()

    labels = {r["id"]: r for r in lines(run("export", "labels").stdout)}
    assert {r["data_id"] for r in train + validation} == set(labels)
    assert items[5]["id"] not in labels
    for part, name in ((train, "train"), (validation, "validation")):
        assert [r["extra_info"] for r in part] == [
            {"index": i, "split": name} for i in range(len(part))
        ]
        for row in part:
            task = RolloutInput.model_validate(row)
            label, record = task.human_label(), labels[task.item.id]
            assert (label.category, label.severity) == (record["category"], record["severity"])
            assert task.item.text == record["text"] and "jane.doe" not in json.dumps(row)
    # The split is `train`'s holdout by item id (one row moves over only if a side is empty).
    held = {r["data_id"] for r in validation}
    by_hash = {i for i in labels if held_out(i, 0.4)}
    assert held == by_hash or (not by_hash and len(held) == 1)

    # Deterministic: the same store exports the same bytes.
    before = (out / TRAIN_FILE).read_bytes(), (out / VALIDATION_FILE).read_bytes()
    assert run(*args).exit_code == 0
    assert ((out / TRAIN_FILE).read_bytes(), (out / VALIDATION_FILE).read_bytes()) == before

    # `--format labels` is `export labels`; bad values are one line.
    assert lines(run("export", "--format", "labels").stdout) == list(labels.values())
    bad = run("export", "--format", "agentlightning", "--validation-share", "1")
    assert bad.exit_code == 2 and "--validation-share must be in [0, 1)" in bad.stderr
    unknown = run("export", "--format", "parquet")
    assert unknown.exit_code == 2 and "--format must be labels or agentlightning" in unknown.stderr
