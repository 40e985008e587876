"""Running the loop: the bot on Slack or Discord (`serve`), or in the terminal (`demo`).

Registered on the root app and its `serve` group by `bot.cli`.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.cli.errors import reported_errors
from bot.cli.shared import BackendOption, StoreOption, components, emit

WatchOption = Annotated[
    str | None,
    typer.Option(
        "--watch",
        help="Also triage every new document of this MongoDB collection: "
        "mongodb://host:port/database.collection (fields: [intake.mongo] in the config).",
    ),
]


log = logging.getLogger("triage_bot.serve")


def _start_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _check_reviewers(role_variable: str | None = None) -> None:
    """No reviewer rule is one line before the model loads, naming the variables; an
    explicit `TRIAGE_REVIEWERS=*` starts, with a warning in the log. Called only where no
    platform role is set (a role is a rule by itself)."""
    from core.settings import Settings

    settings = Settings.from_env()
    settings.require_reviewer_rule(role_variable)
    if settings.reviewers is None:  # declared, so TRIAGE_REVIEWERS=*
        log.warning("TRIAGE_REVIEWERS=*: anyone who can see the triage channel may vote")


def _check_watch(watch: str | None) -> None:
    """A malformed --watch URL is one line before the model loads, not a thread's log."""
    if watch is not None:
        from bot.intake import parse_watch_url

        parse_watch_url(watch)  # ValueError: reported as bad input


@reported_errors()
def serve_slack(
    host: Annotated[
        str,
        typer.Option(
            help="HTTP mode: address to listen on (0.0.0.0: every interface, as in a container)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP mode: port.")] = 3000,
    store: StoreOption = None,
    watch: WatchOption = None,
    backend: BackendOption = None,
) -> None:
    """Slack: Socket Mode when SLACK_APP_TOKEN is set, else HTTP (POST /slack/events, /feedback)."""
    from bot.github.settings import GitHubSettings
    from bot.slack.settings import SlackSettings

    _start_logging()
    slack_settings = SlackSettings.from_env()
    github = GitHubSettings.from_env()
    _check_reviewers()
    _check_watch(watch)
    from bot.slack.server import serve

    with components(store, backend=backend) as c:
        serve(c.service, slack_settings, host, port, watch=watch, github=github)


@reported_errors()
def serve_discord(
    store: StoreOption = None, watch: WatchOption = None, backend: BackendOption = None
) -> None:
    """Discord: cards in TRIAGE_DISCORD_CHANNEL, /triage commands, intake channels."""
    from bot.discord.settings import DiscordSettings
    from bot.github.settings import GitHubSettings

    _start_logging()
    discord_settings = DiscordSettings.from_env()
    github = GitHubSettings.from_env()
    if discord_settings.reviewer_role is None:
        _check_reviewers("TRIAGE_DISCORD_REVIEWER_ROLE")
    _check_watch(watch)
    from bot.discord.edge import serve

    with components(store, backend=backend) as c:
        serve(c.service, discord_settings, watch=watch, github=github)


@reported_errors()
def demo(
    auto: Annotated[
        bool, typer.Option("--auto", help="A simulated reviewer answers from the gold labels.")
    ] = False,
    items: Annotated[
        Path | None, typer.Option(help="JSONL with text, category, severity per line.")
    ] = None,
    store: Annotated[
        str | None, typer.Option("--store", help="Store URL (default: a fresh temporary file).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Also print the summary as JSON.")
    ] = False,
) -> None:
    """The whole loop in the terminal on bundled feedback: triage, review, learn, measure."""
    from bot.console import DEMO_ITEMS, run_demo

    interactive = not auto and sys.stdin.isatty() and sys.stdout.isatty()
    with tempfile.TemporaryDirectory(prefix="triage-demo-") as scratch:
        url = store or f"sqlite:///{Path(scratch) / 'demo.db'}"
        with components(url) as c:
            summary = run_demo(
                c.service, Console(), items_path=items or DEMO_ITEMS, auto=not interactive
            )
    if as_json:
        emit(summary)
