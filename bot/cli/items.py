"""Commands on feedback items: triage, validate, import, stats and export.

Registered on the root app (and its `export` group) by `bot.cli`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.cli.errors import FAILED, CliError, reported_errors
from bot.cli.shared import BackendOption, StoreOption, components, emit, err
from bot.discord.settings import SNOWFLAKE
from bot.slack.settings import CHANNEL_ID
from core.governance import InputError
from core.models import ValidationKind
from core.settings import SettingsError


def report_skipped(file: Path, line: int, reason: str) -> None:
    """One stderr line per bad row, `FILE:LINE: skipped: REASON`, whatever the reason holds:
    no markup is read from it and no line break or wrap splits it."""
    reason = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in " ".join(reason.split()))
    err.print(f"{file}:{line}: skipped: {reason}", markup=False, highlight=False, soft_wrap=True)


def post_targets(env: Mapping[str, str] | None = None) -> list[str]:
    """Outbox targets of the channels configured in the environment (`--post`)."""
    env = os.environ if env is None else env
    targets = []
    slack = env.get("TRIAGE_SLACK_CHANNEL", "").strip()
    if slack:
        if not CHANNEL_ID.match(slack):
            raise SettingsError(
                f"TRIAGE_SLACK_CHANNEL: {slack!r} is not a Slack channel id (like C0123ABCD)"
            )
        targets.append(f"slack:{slack}")
    discord = env.get("TRIAGE_DISCORD_CHANNEL", "").strip()
    if discord:
        if not SNOWFLAKE.match(discord):
            raise SettingsError(f"TRIAGE_DISCORD_CHANNEL: {discord!r} is not a Discord id")
        targets.append(f"discord:{discord}")
    if not targets:
        raise SettingsError(
            "--post needs TRIAGE_SLACK_CHANNEL or TRIAGE_DISCORD_CHANNEL (where cards go)"
        )
    return targets


@reported_errors()
def triage(
    text: Annotated[str | None, typer.Argument(help="Feedback text ('-' reads stdin).")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A .jsonl or .csv file of items.")
    ] = None,
    form_type: Annotated[str | None, typer.Option(help="Website form type of TEXT.")] = None,
    page: Annotated[str | None, typer.Option(help="Page or URL TEXT was sent from.")] = None,
    store: StoreOption = None,
    backend: BackendOption = None,
) -> None:
    """Triage TEXT or every item of --file; prints one JSON object per item."""
    from bot.console import triage_table
    from bot.files import BadRow, read_rows
    from bot.intake import submission_from_row
    from core.intake import to_item

    if (text is None) == (file is None):
        raise CliError("give either TEXT or --file PATH")
    if file is not None and not file.is_file():
        raise CliError(f"{file}: no such file")
    raw: str | bytes | None = None
    if text == "-":
        raw = sys.stdin.buffer.read()
    elif text is not None:
        raw = text
    shown = []
    bad = 0
    with components(store, backend=backend) as c:
        service = c.service
        if raw is not None:
            item = service.make_item(raw, source="cli", form_type=form_type, page=page)
            entries = [item]
        else:
            assert file is not None
            entries = []
            for row in read_rows(file):
                if isinstance(row, BadRow):
                    bad += 1
                    report_skipped(file, row.line, row.reason)
                    continue
                try:  # the same identity as `import` gives the row: no duplicates either way
                    entries.append(
                        to_item(
                            submission_from_row(file, row),
                            service.runtime.triage.max_text_bytes,
                        )
                    )
                except InputError as exc:
                    bad += 1
                    report_skipped(file, row.line, str(exc))
        for start in range(0, len(entries), 64):
            chunk = entries[start : start + 64]
            for item, (result, _) in zip(chunk, service.submit_many(chunk), strict=True):
                emit(result.public())
                shown.append((item, result))
    if sys.stdout.isatty() and shown:
        Console().print(triage_table(shown))
    if bad:
        raise CliError(f"{bad} item(s) skipped; {len(shown)} triaged", FAILED)


@reported_errors()
def validate(
    item_id: Annotated[str, typer.Argument(help="Item id, as printed by `triage`.")],
    kind: Annotated[
        ValidationKind, typer.Option("--kind", "-k", help="confirm, correct, noise or retract.")
    ] = ValidationKind.CONFIRM,
    category: Annotated[str | None, typer.Option(help="Corrected category.")] = None,
    severity: Annotated[str | None, typer.Option(help="Corrected severity.")] = None,
    action: Annotated[str | None, typer.Option(help="Corrected action text.")] = None,
    reviewer: Annotated[str, typer.Option(help="Who is voting.")] = "cli-user",
    store: StoreOption = None,
) -> None:
    """Confirm, correct, mark as noise or retract a vote on an item; the model learns at once."""
    if (category or severity or action) and kind == ValidationKind.CONFIRM:
        kind = ValidationKind.CORRECT
    with components(store) as c:
        outcome = c.service.vote(
            item_id, reviewer, kind, category=category, severity=severity, action=action
        )
        emit(
            {
                "stored": outcome.stored,
                "label": outcome.label.model_dump(mode="json") if outcome.label else None,
                "reward": outcome.reward.as_reward_data().model_dump() if outcome.reward else None,
                "model_version": c.engine.model_version,
            }
        )


@reported_errors()
def import_items(
    file: Annotated[Path, typer.Argument(help="A .jsonl or .csv file of past feedback.")],
    post: Annotated[
        bool,
        typer.Option(
            "--post",
            help="Queue a card per new item for TRIAGE_SLACK_CHANNEL / TRIAGE_DISCORD_CHANNEL; "
            "the running bot posts them at the platform's pace.",
        ),
    ] = False,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Only the JSON summary.")] = False,
) -> None:
    """Bulk-import history: store and triage every good row, once (re-running duplicates
    nothing); bad rows are reported with their line and skipped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from bot.intake import import_file

    if not file.is_file():
        raise CliError(f"{file}: no such file")
    targets = post_targets() if post else []
    with (
        components(store) as c,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task(f"importing {file.name}", total=None)
        summary = import_file(
            c.service,
            file,
            targets=targets,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            on_bad=lambda line, reason: report_skipped(file, line, reason),
        )
    if not as_json:
        queued = f", {summary.queued} card(s) queued for {', '.join(targets)}" if post else ""
        err.print(
            f"{file}: {summary.imported} imported, {summary.duplicates} duplicate(s), "
            f"{summary.bad} bad{queued}",
            markup=False,
            highlight=False,
        )
    emit(summary.as_dict())
    if summary.bad:
        raise typer.Exit(FAILED)


@reported_errors()
def stats(
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Counts, and the model's accuracy against the team's validations."""
    with components(store) as c:
        figures = c.service.stats().as_dict()
    if as_json or not sys.stdout.isatty():
        emit(figures)
        return
    from rich.table import Table

    table = Table(title=f"triage-bot stats · model {figures['model_version']}")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key in ("items", "triaged", "validated", "votes", "disagreements"):
        table.add_row(key, str(figures[key]))
    for key in ("category_accuracy", "severity_accuracy"):
        value = figures[key]
        table.add_row(key.replace("_", " "), "-" if value is None else f"{value:.1%}")
    for name, row in figures["per_category"].items():
        table.add_row(f"  {name} (n={row['n']})", f"{row['accuracy']:.1%}")
    for target, counts in sorted(figures["outbox"].items()):
        # dead: refused by the platform even as a minimal card; the JSON has the counts
        shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        table.add_row(f"outbox {target}", shown)
    for dead in figures["dead_letters"]:
        table.add_row(f"  dead: {dead['item_id']} ({dead['target']})", str(dead["error"]))
    Console().print(table)


@reported_errors()
def export_labels(store: StoreOption = None) -> None:
    """Validated items as JSON lines: redacted text, final labels, reward, reviewers."""
    with components(store, warm_start=False) as c:
        for record in c.service.export_labels():
            emit(record)


@reported_errors()
def export_format(
    ctx: typer.Context,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="labels (JSON lines, as `export labels`) or agentlightning (rollout inputs "
            "for `train --algo grpo`: train.jsonl and validation.jsonl in --out).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="agentlightning: folder to write to.")] = Path(
        "out/agentlightning"
    ),
    validation_share: Annotated[
        float,
        typer.Option("--validation-share", help="agentlightning: share held out, by item id."),
    ] = 0.2,
    store: StoreOption = None,
) -> None:
    """Export what the team has validated: `export labels`, or `export --format FORMAT`."""
    if ctx.invoked_subcommand is not None:
        return
    if fmt == "labels":
        export_labels(store)
        return
    if fmt != "agentlightning":
        raise CliError("--format must be labels or agentlightning (or use `export labels`)")
    if not 0.0 <= validation_share < 1.0:
        raise CliError("--validation-share must be in [0, 1)")
    from training.agentlightning.rollouts import write_rollouts

    with components(store, warm_start=False) as c:
        summary = write_rollouts(
            c.service.export_labels(), c.taxonomy.fingerprint(), out, validation_share
        )
    emit(summary)
