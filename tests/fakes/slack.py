"""The Slack Web API and Socket Mode fakes, for tests.

They live in `training/fake_slack.py` because `triage-bot bench load` drives the real bot
against the same fake outside the test suite; this module keeps the tests' import path.
"""

from __future__ import annotations

from training.fake_slack import BOT_ID, BOT_USER_ID, TEAM_ID, Call, FakeSlack, FakeSocketMode

__all__ = ["BOT_ID", "BOT_USER_ID", "TEAM_ID", "Call", "FakeSlack", "FakeSocketMode"]
