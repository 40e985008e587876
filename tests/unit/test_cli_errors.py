"""bot.cli.errors: the command line's one error path, exception by exception."""

from __future__ import annotations

import sqlite3

import pytest
import typer
from typer.testing import CliRunner

from bot.cli.errors import FAILED, USAGE, CliError, reported_errors
from core.governance import InputError
from core.service import NotAllowedError, UnknownItemError
from core.settings import SettingsError
from core.store import StoreURLError
from core.taxonomy import ConfigError


def run(exc: BaseException, *also: type[Exception]) -> tuple[int, str]:
    app = typer.Typer()

    @app.command()
    @reported_errors(*also)
    def fails() -> None:
        raise exc

    result = CliRunner().invoke(app, [])
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    "exc",
    [
        InputError("empty feedback text"),
        ConfigError("bad [learning] section"),
        SettingsError("TRIAGE_X is not set"),
        StoreURLError("TRIAGE_STORE_URL=... is not supported"),
        UnknownItemError("unknown item id 'fb_1'"),
        NotAllowedError("not a reviewer"),
        ValueError("--noise must be in [0, 1)"),
        FileNotFoundError("x.jsonl: no such file"),
    ],
)
def test_known_errors_are_one_line_and_exit_2(exc: Exception) -> None:
    code, stderr = run(exc)
    assert code == USAGE == 2
    assert stderr == f"error: {exc}\n"


def test_markup_in_a_message_is_printed_as_written() -> None:
    assert run(ConfigError("see [learning] and '.[rl]'"))[1] == (
        "error: see [learning] and '.[rl]'\n"
    )


def test_cli_error_keeps_its_code() -> None:
    assert run(CliError("2 item(s) skipped; 2 triaged", FAILED)) == (
        1,
        "error: 2 item(s) skipped; 2 triaged\n",
    )


def test_store_unavailable_is_one_line_and_exit_1() -> None:
    assert run(sqlite3.OperationalError("database is locked")) == (
        1,
        "error: store unavailable: database is locked\n",
    )


def test_also_widens_bad_input_but_lets_exit_through() -> None:
    assert run(RuntimeError("the bot did not start"), RuntimeError) == (
        2,
        "error: the bot did not start\n",
    )
    assert run(typer.Exit(1), RuntimeError) == (1, "")  # typer.Exit is a RuntimeError


def test_a_bug_keeps_its_traceback() -> None:
    app = typer.Typer()

    @app.command()
    @reported_errors()
    def bug() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        CliRunner().invoke(app, [], catch_exceptions=False)
