"""Harnesses that drive the real bot from outside (`triage-bot bench load`); not in the wheel."""
