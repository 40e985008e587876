"""`triage-bot digest`: the period at a glance, in the terminal, as JSON, or as a PNG."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.charts import digest_png
from bot.cli.errors import FAILED, CliError, reported_errors
from bot.cli.shared import StoreOption, components, emit, err
from core.digest import Digest, build_digest, parse_period
from core.ports import PostRefused
from core.themes import theme_lines


def _signed(delta: int) -> str:
    return f"+{delta}" if delta > 0 else str(delta)


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0%}"


def show(digest: Digest, console: Console) -> None:
    from rich.table import Table

    if digest.empty:
        console.print(digest.notes[0])
        return
    table = Table(
        title=f"triage-bot digest · {digest.since:%Y-%m-%d %H:%M} to "
        f"{digest.until:%Y-%m-%d %H:%M} UTC"
    )
    table.add_column("what")
    table.add_column("this period", justify="right")
    table.add_column("change", justify="right")
    table.add_row("items", str(digest.items.now), _signed(digest.items.delta))
    for name, change in digest.by_category.items():
        table.add_row(f"  {name}", str(change.now), _signed(change.delta))
    for name, change in digest.by_severity.items():
        table.add_row(f"  {name}", str(change.now), _signed(change.delta))
    table.add_row("awaiting review", str(digest.awaiting_review), "")
    table.add_row("escalations", str(digest.escalations), "")
    table.add_row("GitHub issues opened", str(digest.issues_opened), "")
    table.add_row("validated", str(digest.validated), "")
    table.add_row("model accuracy on them", _share(digest.accuracy), "")
    table.add_row("reviewers' agreement", _share(digest.agreement), "")
    table.add_row("needs a human", _share(digest.needs_human_share), "")
    table.add_row("drift from the period before", _share(digest.drift), "")
    console.print(table)
    if digest.oldest_critical:
        oldest = digest.oldest_critical
        console.print(
            f"Oldest critical item waiting: {oldest['id']} since {oldest['received_at']}: "
            f"{oldest['text']}",
            markup=False,
        )
    moving = theme_lines(digest.themes, lambda name: name) if digest.themes else []
    if moving:
        console.print("New and growing themes: " + " · ".join(moving), markup=False)


def post_to(platform: str | None, made: Digest, since: str) -> str:
    """Post the digest to the card channel of the platform the environment sets up, as the
    running bot would (same settings, same message); returns where it went."""
    import os

    if platform is None:
        configured = [p for p, var in PLATFORMS.items() if os.environ.get(var)]
        if len(configured) != 1:
            raise CliError(
                "--post: set --to slack or --to discord "
                + ("(both are configured)" if configured else "(neither token is set)")
            )
        platform = configured[0]
    if platform == "slack":
        from slack_sdk.errors import SlackApiError

        from bot.slack.edge import make_client, post_digest
        from bot.slack.settings import SlackSettings

        slack = SlackSettings.from_env()
        try:
            ref = post_digest(make_client(slack), slack.channel, made, since)
        except SlackApiError as exc:
            raise CliError(
                f"Slack refused the digest: {exc.response.get('error')}", FAILED
            ) from None
        return f"slack:{slack.channel} ({ref})"
    if platform == "discord":
        import asyncio

        import discord as discord_py

        from bot.discord.edge import post_digest_once
        from bot.discord.settings import DiscordSettings

        discord = DiscordSettings.from_env()
        try:
            ref = asyncio.run(post_digest_once(discord, made))
        except (discord_py.DiscordException, PostRefused) as exc:
            raise CliError(f"Discord refused the digest: {exc}", FAILED) from None
        return f"discord:{discord.channel} ({ref})"
    raise CliError(f"--to must be slack or discord, got {platform!r}")


PLATFORMS = {"slack": "SLACK_BOT_TOKEN", "discord": "DISCORD_TOKEN"}


@reported_errors()
def digest(
    since: Annotated[
        str, typer.Option("--since", help="The period: 1d, 7d, 12h, 2w (against the one before).")
    ] = "7d",
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    png: Annotated[
        Path | None, typer.Option("--png", help="Also draw the counts as a PNG chart here.")
    ] = None,
    post: Annotated[
        bool,
        typer.Option(
            "--post", help="Also post it, with its chart, to the card channel (as the bot does)."
        ),
    ] = False,
    to: Annotated[
        str | None,
        typer.Option("--to", help="slack or discord (default: the one whose token is set)."),
    ] = None,
) -> None:
    """The period at a glance: counts and their change, what waits, the model's health."""
    from core.taxonomy import load_taxonomy

    try:
        period = parse_period(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from exc
    from core.settings import Settings

    taxonomy = load_taxonomy(Settings.from_env().config_path)
    with components(store, warm_start=False) as built:  # the themes need the encoder
        built.service.refresh_model()
        made = build_digest(built.store, taxonomy, period, embed=built.engine.embed)
    if png is not None and not made.empty:
        png.write_bytes(digest_png(made))
    if post:
        posted = post_to(to, made, since)
        err.print(f"posted to {posted}", highlight=False)
    if as_json or not sys.stdout.isatty():
        emit(made.as_dict() | ({"png": str(png)} if png is not None and not made.empty else {}))
        return
    show(made, Console())
