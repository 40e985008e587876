"""`triage-bot eval` on small labelled files: the figures are consistent with the predictions."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest
from typer.testing import CliRunner

from bot.cli import app
from training.evaluate import folds

EXAMPLES = [
    json.loads(line)
    for line in (Path(__file__).parents[2] / "examples" / "feedback.jsonl").read_text().splitlines()
    if line.strip()
]


def test_folds_are_stratified_disjoint_and_cover_every_row() -> None:
    labels = ["a"] * 10 + ["b"] * 5
    parts = folds(labels, 5, seed=3)
    assert sorted(i for part in parts for i in part) == list(range(15))
    assert all(sum(labels[i] == "b" for i in part) == 1 for part in parts)
    assert parts == folds(labels, 5, seed=3)  # deterministic
    with pytest.raises(ValueError):
        folds(labels, 1, seed=0)


def run_eval(args: list[str]) -> dict:
    result = CliRunner().invoke(app, ["eval", *args, "--steps", "40", "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_cross_validation_reports_consistent_figures_per_group(tmp_path: Path) -> None:
    rows = [
        {"text": r["text"], "label": r["category"], "half": "first" if i < 27 else "second"}
        for i, r in enumerate(EXAMPLES)
    ]
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    png = tmp_path / "eval.png"
    out = run_eval(
        ["--train", str(data), "--cv", "3", "--label-field", "label"]
        + ["--group-by", "half", "--plot", str(png)]
    )
    assert out["n"] == len(rows) and out["cv"] == 3 and len(out["fold_macro_f1"]) == 3
    assert sum(map(sum, out["confusion"])) == len(rows)  # every row predicted exactly once
    per_class = out["per_class"]
    assert out["macro_f1"] == pytest.approx(
        sum(c["f1"] for c in per_class.values()) / len(per_class), abs=1e-3
    )
    hits = sum(out["confusion"][i][i] for i in range(len(out["labels"])))
    assert out["accuracy"] == pytest.approx(hits / len(rows), abs=1e-3)
    assert out["macro_f1"] > 0.4  # learnt something: six classes, chance is about 0.17
    assert {g: v["n"] for g, v in out["groups"].items()} == {"first": 27, "second": 27}
    assert out["train_seconds"] > 0 and out["peak_rss_mb"] > 100
    assert out["finetune"] is None  # 36 labels per fold: below finetune_min_examples
    assert out["plot"] == str(png)
    image = matplotlib.image.imread(png)  # a real PNG: three panels side by side
    assert image.shape[1] > 2.5 * image.shape[0] and image.std() > 0.05


@pytest.mark.slow
def test_spam_against_the_rest_reports_mcc(tmp_path: Path) -> None:
    spam = [r["text"] for r in EXAMPLES if r["category"] == "noise"]
    ham = [r["text"] for r in EXAMPLES if r["category"] != "noise"][: len(spam) * 2]
    rows = [{"text": t, "label": "noise"} for t in spam] + [
        {"text": t, "label": "other"} for t in ham
    ]
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows[::2] + rows[1::4]))
    test.write_text("\n".join(json.dumps(r) for r in rows[3::4]))
    out = run_eval(["--train", str(train), "--test", str(test), "--label-field", "label"])
    assert -1.0 <= out["mcc"] <= 1.0 and out["labels"] == ["noise", "other"]
    assert out["n_test"] == len(rows[3::4])


def test_needs_a_test_file_or_folds(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"text": "broken", "label": "bug"}))
    result = CliRunner().invoke(app, ["eval", "--train", str(data)])
    assert result.exit_code == 2 and "--test FILE, --cv K or --holdout" in result.stderr
    both = CliRunner().invoke(app, ["eval", "--train", str(data), "--cv", "3", "--holdout", "0.2"])
    assert both.exit_code == 2 and "one of" in both.stderr
    wide = CliRunner().invoke(app, ["eval", "--train", str(data), "--holdout", "0.9"])
    assert wide.exit_code == 2 and "(0, 0.5]" in wide.stderr


def test_holdout_scores_a_stratified_share_of_the_file(tmp_path: Path) -> None:
    rows = [{"text": r["text"], "label": r["category"]} for r in EXAMPLES]
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    out = run_eval(["--train", str(data), "--holdout", "0.25", "--label-field", "label"])
    assert out["holdout"] == 0.25 and out["n_train"] + out["n_test"] == len(rows)
    assert abs(out["n_test"] - len(rows) / 4) <= len(out["labels"])  # about a quarter
    assert sum(map(sum, out["confusion"])) == out["n_test"]
    again = run_eval(["--train", str(data), "--holdout", "0.25", "--label-field", "label"])
    assert again["n_test"] == out["n_test"] and again["macro_f1"] == out["macro_f1"]
