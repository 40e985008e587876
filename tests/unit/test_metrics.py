import pytest

from training.metrics import accuracy, confusion, macro_f1, mcc, per_class


def test_metrics_match_hand_computed_values() -> None:
    gold = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    scores = per_class(gold, pred, ["a", "b", "c"])
    assert scores["a"] == {"precision": 1.0, "recall": 0.6667, "f1": 0.8, "support": 3}
    assert scores["b"]["precision"] == 0.5 and scores["b"]["recall"] == 0.5
    assert scores["c"]["f1"] == pytest.approx(0.6667, abs=1e-4)
    assert macro_f1(gold, pred) == pytest.approx((0.8 + 0.5 + 0.6667) / 3, abs=1e-4)
    assert accuracy(gold, pred) == pytest.approx(4 / 6)
    assert confusion(gold, pred, ["a", "b", "c"]) == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert mcc(["s", "s", "h", "h"], ["s", "s", "h", "h"], "s") == 1.0
    assert mcc(["s", "s", "h", "h"], ["h", "h", "s", "s"], "s") == -1.0
