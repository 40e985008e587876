"""core.env: every bad environment value is a SettingsError naming its variable."""

from __future__ import annotations

import re

import pytest

from core.env import (
    SettingsError,
    check_id,
    env_choice,
    env_ids,
    env_list,
    env_number,
    env_required,
    env_str,
)


def test_blank_is_unset() -> None:
    env = {"A": "  x  ", "B": "   "}
    assert env_str(env, "A") == "x"
    assert env_str(env, "B") is None and env_str(env, "C", "d") == "d"
    assert env_required(env, "A", "why") == "x"
    with pytest.raises(SettingsError, match=r"^B is not set \(what it is for\)$"):
        env_required(env, "B", "what it is for")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("soon", "N must be a number of seconds, got 'soon'"),
        ("0", "N must be above 0, got '0'"),
        ("nan", "N must be above 0, got 'nan'"),
        ("700", "N must be between 0 and 600, got '700'"),
    ],
)
def test_numbers_name_the_variable_and_the_bound(raw: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        env_number({"N": raw}, "N", 1.0, 0, 600, above=0, unit="seconds")
    assert str(caught.value) == message


def test_numbers_default_and_parse() -> None:
    assert env_number({}, "N", 2.5) == 2.5
    assert env_number({"N": " 3 "}, "N", 2.5, 0, 10) == 3.0
    with pytest.raises(SettingsError, match="N must be a number, got 'x'"):
        env_number({"N": "x"}, "N", 1.0)


def test_choices_lists_and_ids() -> None:
    assert env_choice({"B": " LLM "}, "B", ("embedded", "llm"), "embedded") == "llm"
    assert env_choice({}, "B", ("embedded", "llm"), "embedded") == "embedded"
    with pytest.raises(SettingsError, match="B must be one of embedded, llm, got 'gpt'"):
        env_choice({"B": "gpt"}, "B", ("embedded", "llm"), "embedded")
    assert env_list({"L": " a, ,b ,"}, "L") == ("a", "b") and env_list({}, "L") == ()
    digits = re.compile(r"^[0-9]+$")
    assert env_ids({"I": "1, 22"}, "I", digits, "a number") == frozenset({"1", "22"})
    with pytest.raises(SettingsError, match="I: 'x' is not a number"):
        env_ids({"I": "1,x"}, "I", digits, "a number")
    assert check_id("I", "7", digits, "a number") == "7"


def test_settings_error_is_the_one_core_settings_exports() -> None:
    import core.settings

    assert core.settings.SettingsError is SettingsError
