"""The Agent Lightning tests run only in the Python 3.12 `rl` venv (`bash scripts/rl-venv`,
then `.venv-rl/bin/python -m pytest tests/rl`): agentlightning 1.0.2 does not install on the
core venv's Python 3.11, so there these files are not even collected."""

from __future__ import annotations

import importlib.util
import sys

if sys.version_info < (3, 12) or importlib.util.find_spec("agentlightning") is None:
    collect_ignore_glob = ["test_*.py"]
