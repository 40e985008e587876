"""The Slack Web API and Socket Mode fakes, for tests.

The fakes themselves are in `tests/fakes/slack_api.py`, next to the other test doubles and
out of the installed package; `benchmarks/load.py` (`triage-bot bench load`, run from a
checkout) drives the real bot against the same fake. This module is the tests' import path.
"""

from __future__ import annotations

from tests.fakes.slack_api import BOT_ID, BOT_USER_ID, TEAM_ID, Call, FakeSlack, FakeSocketMode

__all__ = ["BOT_ID", "BOT_USER_ID", "TEAM_ID", "Call", "FakeSlack", "FakeSocketMode"]
