"""Commands that delete stored data: `forget` (on request) and `prune` (by age).

Registered on the root app by `bot.cli`. Both go through `core.lifecycle`: items leave the
store with everything derived from them, an audit event without the content stays, and
running bots learn of it within half a minute. They need the store only, not the model.
"""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer

from bot.cli.errors import reported_errors
from bot.cli.shared import StoreOption, emit, err, opened_store
from core.models import AuditEvent, FeedbackItem
from core.ports import Store


def _operator() -> str:
    """Who ran the command, for the audit event: the login name, when there is one."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError, ImportError):  # no login name in some containers
        return "cli"


def _plan_row(store: Store, item: FeedbackItem) -> dict[str, Any]:
    """What forgetting one item deletes (shown by --dry-run and before the prompt); ids,
    counts and dates only, never the text."""
    from core.lifecycle import submitters_of

    posts = store.posts(item_id=item.id)
    return {
        "id": item.id,
        "source": item.source,
        "received_at": item.received_at.isoformat(),
        "origin": item.external_ref,
        "submitters": sorted(submitters_of(item)),
        "votes": len(store.events(item.id)),
        "labelled": store.get_label(item.id) is not None,
        "cards": [f"{p.target} {p.ref}" for p in posts if p.ref is not None],
        "posting": any(p.status == "claimed" and p.ref is None for p in posts),
    }


def _print_cards(cards: list[str], origins: list[str]) -> None:
    """The chat messages forgetting cannot delete: the bot's cards and the messages the
    items came from, for a person to delete in the channel."""
    for card in cards:
        err.print(f"  card left in its channel: {card}", markup=False, highlight=False)
    for origin in origins:
        err.print(f"  original message: {origin}", markup=False, highlight=False)


@reported_errors()
def forget(
    item: Annotated[
        list[str] | None, typer.Option("--item", help="An item id (repeat for several).")
    ] = None,
    submitter: Annotated[
        str | None,
        typer.Option(
            "--submitter",
            help="Every item this reporter sent: slack:USER_ID or discord:USER_ID.",
        ),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option("--before", help="Items received before this date (YYYY-MM-DD, UTC)."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why, for the audit event (no personal data).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be deleted.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    store: StoreOption = None,
) -> None:
    """Delete items and everything derived from them (predictions, votes, label, rewards,
    outbox rows); an audit event without the content is kept. Several selectors: the
    items matching all of them. Running bots drop the items within half a minute."""
    from core.lifecycle import Selection, parse_before, select
    from core.lifecycle import forget as forget_items

    selection = Selection(
        item_ids=tuple(item or ()),
        submitter=submitter,
        before=parse_before(before) if before is not None else None,
    )
    with opened_store(store) as opened:
        items, missing = select(opened, selection)
        for item_id in missing:
            err.print(
                f"warning: no item {item_id} in the store (never stored, or forgotten already)",
                markup=False,
                highlight=False,
            )
        plan = [_plan_row(opened, found) for found in items]
        if dry_run:
            for row in plan:
                emit(row)
            emit({"dry_run": True, "items": len(plan), "missing": missing})
            return
        if not plan:
            err.print("nothing to forget", markup=False, highlight=False)
            emit({"forgotten": 0, "counts": {}, "cards": [], "audit": [], "missing": missing})
            return
        if not yes:
            err.print(f"{len(plan)} item(s) will be deleted with their votes and labels:")
            for row in plan[:20]:
                err.print(f"  {row['id']} ({row['source']}, {row['received_at']})", markup=False)
            if len(plan) > 20:
                err.print(f"  … and {len(plan) - 20} more (--dry-run lists them)")
            typer.confirm("Delete them for good?", abort=True, err=True)
        events = forget_items(
            opened,
            [row["id"] for row in plan],
            action="forget",
            selector=selection.describe(),
            by=_operator(),
            reason=reason,
        )
    summary = _summary(events)
    origins = [row["origin"] for row in plan if row["origin"]]
    audit = ", ".join(str(seq) for seq in summary["audit"])
    err.print(
        f"{summary['forgotten']} item(s) forgotten (audit event {audit})",
        markup=False,
        highlight=False,
    )
    if any(row["posting"] for row in plan):
        err.print(
            "warning: a card was being posted as its item was forgotten: check the channel",
            markup=False,
            highlight=False,
        )
    _print_cards(summary["cards"], origins)
    emit({**summary, "missing": missing})


def _summary(events: list[AuditEvent]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for event in events:
        for kind, n in event.counts.items():
            counts[kind] = counts.get(kind, 0) + n
    return {
        "forgotten": counts.get("items", 0),
        "counts": counts,
        "cards": [card for event in events for card in event.cards],
        "audit": [event.seq for event in events],
    }


@reported_errors()
def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    store: StoreOption = None,
) -> None:
    """Apply the retention setting ([retention] in the config): delete items, seen-event
    ids and finished outbox rows older than it keeps; one audit event per run. Running
    bots do this at start and once a day."""
    from core.lifecycle import prune as prune_store
    from core.runtime import load_runtime_settings
    from core.settings import Settings

    retention = load_runtime_settings(Settings.from_env().config_path).retention
    with opened_store(store) as opened:
        report = prune_store(opened, retention, by=_operator(), dry_run=dry_run)
    result = report.as_dict()
    if not dry_run:
        verb = "deleted" if report.deleted_anything else "nothing to delete"
        err.print(
            f"prune: {verb}: {result['items']} item(s), {result['seen_events']} seen event "
            f"id(s), {result['finished_posts']} finished outbox row(s)",
            markup=False,
            highlight=False,
        )
        _print_cards(result["cards"], [])
    emit({**result, "retention": retention.model_dump()})
