"""Reading environment variables: one place, so every bad value is a `SettingsError` that
names its variable, and blank counts as unset everywhere.

Each helper takes the mapping to read (`os.environ` in a process, a dict in tests).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping


class SettingsError(ValueError):
    """A missing or malformed environment variable; the message names it.

    Defined here, where variables are read; `core.settings.SettingsError` is the same class.
    """


def env_str(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    """The value without surrounding spaces; `default` when unset or blank."""
    value = env.get(name, "").strip()
    return value or default


def env_required(env: Mapping[str, str], name: str, what: str) -> str:
    """The value, or a `SettingsError` saying it is not set and what it is for."""
    value = env_str(env, name)
    if value is None:
        raise SettingsError(f"{name} is not set ({what})")
    return value


def env_number(
    env: Mapping[str, str],
    name: str,
    default: float,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    above: float | None = None,
    unit: str = "",
) -> float:
    """A number in [low, high] (and over `above`, when given); `default` when unset.

    NaN is refused by every bound; `unit` goes into the message ("a number of seconds").
    """
    raw = env_str(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        of_unit = f" of {unit}" if unit else ""
        raise SettingsError(f"{name} must be a number{of_unit}, got {raw!r}") from None
    if above is not None and not value > above:
        raise SettingsError(f"{name} must be above {above:g}, got {raw!r}")
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
    return value


def env_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices` (case-insensitive, returned lower-case); `default` when unset."""
    value = (env_str(env, name) or default).lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list, each entry stripped, blanks dropped; empty when unset."""
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def check_id(name: str, value: str, pattern: re.Pattern[str], what: str) -> str:
    """`value` if it matches `pattern`; else a `SettingsError` saying it is not `what`
    (a platform's id format, with a hint), so a name or typo fails at start-up."""
    if not pattern.match(value):
        raise SettingsError(f"{name}: {value!r} is not {what}")
    return value


def env_ids(
    env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str
) -> frozenset[str]:
    """A comma-separated list of ids, each checked as `check_id` does; empty when unset."""
    return frozenset(check_id(name, value, pattern, what) for value in env_list(env, name))
