"""`triage-bot themes`: what the period's feedback is about, and a reviewer's names for it."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

from bot.cli.errors import CliError, reported_errors
from bot.cli.shared import StoreOption, components, emit
from core.digest import parse_period
from core.service import TriageService
from core.themes import Themes, build_themes, merge, rename

SinceOption = Annotated[
    str, typer.Option("--since", help="The period: 1d, 7d, 12h, 2w (against the one before).")
]


@contextmanager
def _themes(since: str, store: str | None) -> Iterator[tuple[TriageService, Themes]]:
    """The period's themes, on the encoder the bot serves with (the promoted model's)."""
    try:
        period = parse_period(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from exc
    with components(store, warm_start=False) as built:
        built.service.refresh_model()
        yield built.service, build_themes(built.store, built.engine.embed, period)


def show(themes: Themes, console: Console) -> None:
    from rich.table import Table

    if not themes.themes:
        console.print(
            f"No themes from {themes.since:%Y-%m-%d %H:%M} to {themes.until:%Y-%m-%d %H:%M} "
            f"UTC: {themes.other} report(s), too few alike.",
            markup=False,
        )
        return
    table = Table(
        title=f"triage-bot themes · {themes.since:%Y-%m-%d %H:%M} to "
        f"{themes.until:%Y-%m-%d %H:%M} UTC"
    )
    for column in ("key", "theme", "reports", "before", "trend", "for example"):
        table.add_column(column, justify="right" if column in ("reports", "before") else "left")
    for theme in themes.themes:
        example = " ".join(theme.examples[0].redacted_text.split())[:90] if theme.examples else ""
        name = theme.name + (" (named)" if theme.named_by else "")
        table.add_row(theme.key, name, str(theme.count), str(theme.previous), theme.trend, example)
    table.caption = f"{themes.other} report(s) in no theme · rename or merge by key"
    # Names and examples are what people typed: never read as rich markup.
    for column in table.columns:
        column.highlight = False
    console.print(table, markup=False)


@reported_errors()
def themes(
    ctx: typer.Context,
    since: SinceOption = "7d",
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """The period's themes: clusters of alike reports, named by their words (or by a
    reviewer), with counts, the trend against the period before, and examples."""
    if ctx.invoked_subcommand is not None:
        return
    with _themes(since, store) as (_, made):
        if as_json or not sys.stdout.isatty():
            emit(made.as_dict())
            return
        show(made, Console())


@reported_errors()
def rename_theme(
    key: Annotated[str, typer.Argument(help="The theme's key (or its name), as listed.")],
    name: Annotated[str, typer.Argument(help="Its name from now on.")],
    since: SinceOption = "7d",
    store: StoreOption = None,
) -> None:
    """Name a theme; later periods' themes on the same subject keep the name."""
    with _themes(since, store) as (service, made):
        try:
            theme = made.find(key)
            kept = rename(service.store, theme, name, by=getpass.getuser())
        except (KeyError, ValueError) as exc:
            raise CliError(str(exc).strip("'\"")) from None
    emit({"key": theme.key, "name": kept.name, "id": kept.id})


@reported_errors()
def merge_themes(
    keys: Annotated[list[str], typer.Argument(help="Two theme keys (or names) or more.")],
    name: Annotated[
        str | None, typer.Option("--name", help="The merged theme's name (default: the first's).")
    ] = None,
    since: SinceOption = "7d",
    store: StoreOption = None,
) -> None:
    """Two themes or more that are one: shown as one, under one name, from now on."""
    with _themes(since, store) as (service, made):
        try:
            chosen = merge(service.store, [made.find(k) for k in keys], getpass.getuser(), name)
        except (KeyError, ValueError) as exc:
            raise CliError(str(exc).strip("'\"")) from None
    emit({"merged": keys, "name": chosen})
