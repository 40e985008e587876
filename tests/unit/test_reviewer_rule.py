"""Who may vote, from TRIAGE_REVIEWERS: unset is no rule (the chat bots refuse to start on
it, local commands take it as anyone), `*` says "anyone" explicitly, a list is an allowlist,
and a value that lists no one is an error rather than a silent "anyone"."""

from __future__ import annotations

import pytest

from core.settings import Settings, SettingsError
from core.votes import ReviewerRule


def settings(reviewers: str | None) -> Settings:
    env = {} if reviewers is None else {"TRIAGE_REVIEWERS": reviewers}
    return Settings.from_env(env)


@pytest.mark.parametrize("unset", [None, "", "   "])
def test_unset_is_no_rule_and_serving_on_it_names_the_variables(unset: str | None) -> None:
    got = settings(unset)
    assert (got.reviewers, got.reviewers_declared) == (None, False)
    with pytest.raises(SettingsError) as slack:
        got.require_reviewer_rule()
    message = str(slack.value)
    assert "TRIAGE_REVIEWERS" in message and "TRIAGE_REVIEWERS=*" in message
    assert "\n" not in message and "TRIAGE_DISCORD_REVIEWER_ROLE" not in message
    with pytest.raises(SettingsError, match="TRIAGE_DISCORD_REVIEWER_ROLE .* TRIAGE_REVIEWERS"):
        got.require_reviewer_rule("TRIAGE_DISCORD_REVIEWER_ROLE")


@pytest.mark.parametrize("anyone", ["*", "  *  "])
def test_a_star_says_anyone_explicitly(anyone: str) -> None:
    got = settings(anyone)
    assert (got.reviewers, got.reviewers_declared) == (None, True)
    got.require_reviewer_rule()
    got.require_reviewer_rule("TRIAGE_DISCORD_REVIEWER_ROLE")
    rule = ReviewerRule(ids=got.reviewers)
    assert rule.allows("U0GUEST") and rule.allows("123456789012345678")


def test_a_list_is_an_allowlist() -> None:
    got = settings(" U0ANN, U0BOB ,,")
    assert (got.reviewers, got.reviewers_declared) == (frozenset({"U0ANN", "U0BOB"}), True)
    got.require_reviewer_rule()
    rule = ReviewerRule(ids=got.reviewers)
    assert rule.allows("U0ANN") and not rule.allows("U0GUEST")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (",", r"^TRIAGE_REVIEWERS=',' lists no one: .* or \* to let anyone"),
        (" , ,", "lists no one"),
        ("*,U0ANN", r"either \* \(anyone may vote\) or user ids, not both"),
        ("U0ANN, *", "not both"),
    ],
)
def test_a_value_that_lists_no_one_is_refused_not_read_as_anyone(raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings(raw)
