"""The command line's one error path: a failure the user can act on is one line on stderr
and an exit code, never a traceback.

Every command is decorated with `@reported_errors()`; commands raise `CliError` for what
they check themselves, and the project's own exceptions are mapped here, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.markup import escape

from bot.cli.shared import err
from core.governance import InputError
from core.service import NotAllowedError, UnknownItemError
from core.settings import SettingsError
from core.store import STORE_UNAVAILABLE, StoreURLError
from core.taxonomy import ConfigError

USAGE = 2  # bad input, arguments, settings or config: fix it and run again
FAILED = 1  # the command ran but not all of it worked (rows skipped, checks failed, store down)

# Exit USAGE: what the user can fix. ValueError and OSError cover bad values and files.
USER_ERRORS: tuple[type[Exception], ...] = (
    InputError,
    ConfigError,
    SettingsError,
    StoreURLError,
    UnknownItemError,
    NotAllowedError,
    ValueError,
    OSError,
)


class CliError(Exception):
    """A failure a command finds itself: `message` on stderr, then exit `code`."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


def _exit(message: str, code: int) -> typer.Exit:
    # Escaped: messages quote config sections ("[learning]") and pip extras ("'.[rl]'").
    err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def reported_errors(*also: type[Exception]) -> Iterator[None]:
    """Turn known failures into one stderr line and their exit code; use as a decorator,
    `@reported_errors()`. `also`: exception types that mean bad input to this command only."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise  # typer.Exit and Ctrl-C's Abort are RuntimeErrors; `also` may name that
    except CliError as exc:
        raise _exit(str(exc), exc.code) from None
    except STORE_UNAVAILABLE as exc:
        raise _exit(f"store unavailable: {exc}", FAILED) from None
    except (*USER_ERRORS, *also) as exc:
        raise _exit(str(exc), USAGE) from None
