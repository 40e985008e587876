"""`triage-bot`: the command line. Errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from core.governance import InputError
from core.models import ValidationKind
from core.service import NotAllowedError, UnknownItemError
from core.settings import Settings, SettingsError
from core.store import StoreURLError
from core.taxonomy import ConfigError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Triage user feedback and learn from the team's corrections.",
)
export_app = typer.Typer(no_args_is_help=True, help="Export what the team has validated.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (figures as JSON).")
serve_app = typer.Typer(no_args_is_help=True, help="Run the bot on a chat platform.")
app.add_typer(serve_app, name="serve")
app.add_typer(export_app, name="export")
app.add_typer(bench_app, name="bench")

err = Console(stderr=True, soft_wrap=True)
StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Store URL (default: $TRIAGE_STORE_URL or a SQLite file)."),
]
EXPECTED_ERRORS = (
    InputError,
    ConfigError,
    SettingsError,
    StoreURLError,
    UnknownItemError,
    NotAllowedError,
    ValueError,
    OSError,
)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def components(store: str | None, warm_start: bool = True) -> Any:
    """Build the process's components; turn expected failures into one-line errors."""
    from bot.app import build

    try:
        with err.status("loading model…", spinner="dots"):
            built = build(store_url=store, warm_start=warm_start)
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
    try:
        yield built
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
    finally:
        built.close()


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@app.command()
def triage(
    text: Annotated[str | None, typer.Argument(help="Feedback text ('-' reads stdin).")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A .jsonl or .csv file of items.")
    ] = None,
    form_type: Annotated[str | None, typer.Option(help="Website form type of TEXT.")] = None,
    page: Annotated[str | None, typer.Option(help="Page or URL TEXT was sent from.")] = None,
    store: StoreOption = None,
) -> None:
    """Triage TEXT or every item of --file; prints one JSON object per item."""
    from bot.console import triage_table
    from bot.files import BadRow, read_rows

    if (text is None) == (file is None):
        raise fail("give either TEXT or --file PATH")
    if file is not None and not file.is_file():
        raise fail(f"{file}: no such file")
    raw: str | bytes | None = None
    if text == "-":
        raw = sys.stdin.buffer.read()
    elif text is not None:
        raw = text
    shown = []
    bad = 0
    with components(store) as c:
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
                    err.print(f"{file}:{row.line}: skipped: {row.reason}", highlight=False)
                    continue
                try:
                    entries.append(
                        service.make_item(
                            row.text,
                            source="file",
                            item_id=row.id,
                            external_ref=f"{file.name}:{row.id}" if row.id else None,
                            form_type=row.form_type,
                            page=row.page,
                            rating=row.rating,
                        )
                    )
                except InputError as exc:
                    bad += 1
                    err.print(f"{file}:{row.line}: skipped: {exc}", highlight=False)
        for start in range(0, len(entries), 64):
            chunk = entries[start : start + 64]
            for item, (result, _) in zip(chunk, service.submit_many(chunk), strict=True):
                emit(result.public())
                shown.append((item, result))
    if sys.stdout.isatty() and shown:
        Console().print(triage_table(shown))
    if bad:
        raise fail(f"{bad} item(s) skipped; {len(shown)} triaged", code=1)


@app.command()
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


@export_app.command("labels")
def export_labels(store: StoreOption = None) -> None:
    """Validated items as JSON lines: redacted text, final labels, reward, reviewers."""
    with components(store, warm_start=False) as c:
        for record in c.service.export_labels():
            emit(record)


@app.command()
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
    Console().print(table)


@app.command()
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


@serve_app.command("slack")
def serve_slack(
    host: Annotated[str, typer.Option(help="HTTP mode: address to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="HTTP mode: port.")] = 3000,
    store: StoreOption = None,
) -> None:
    """Slack: Socket Mode when SLACK_APP_TOKEN is set, else HTTP (POST /slack/events, /feedback)."""
    import logging

    from bot.slack.settings import SlackSettings

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        slack_settings = SlackSettings.from_env()
    except SettingsError as exc:
        raise fail(str(exc)) from None
    from bot.slack.server import serve

    with components(store) as c:
        serve(c.service, slack_settings, host, port)


@serve_app.command("discord")
def serve_discord(store: StoreOption = None) -> None:
    """Discord: cards in TRIAGE_DISCORD_CHANNEL, /triage commands, intake channels."""
    import logging

    from bot.discord.settings import DiscordSettings

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        discord_settings = DiscordSettings.from_env()
    except SettingsError as exc:
        raise fail(str(exc)) from None
    from bot.discord.edge import serve

    with components(store) as c:
        serve(c.service, discord_settings)


@app.command()
def train(
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = 300,
    holdout: Annotated[float, typer.Option(help="Share of validated items held out.")] = 0.2,
    force: Annotated[bool, typer.Option("--force", help="Promote even if worse.")] = False,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Retrain from every label; promote the candidate only if it is not worse."""
    from rich.progress import Progress

    from training.train import train as run_training

    if not 0.0 <= holdout < 1.0:
        raise fail("--holdout must be in [0, 1)")
    with components(store, warm_start=False) as c, Progress(console=err, transient=True) as bar:
        task = bar.add_task("training", total=steps)
        result = run_training(
            c.store,
            c.taxonomy,
            c.engine.encoder,
            steps=steps,
            holdout=holdout,
            force=force,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    if as_json or not sys.stdout.isatty():
        emit(result.as_dict())
        return
    verdict = "[green]promoted[/]" if result.promoted else "[yellow]not promoted[/]"
    Console().print(
        f"{result.version}: {verdict} ({result.reason}); trained on {result.train_count}, "
        f"evaluated on {result.eval_count}; candidate {result.candidate} vs "
        f"{result.current_version} {result.current}; {result.seconds} s"
    )


@app.command()
def models(
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Model versions with their metrics and training data counts; * marks the promoted one."""
    with components(store, warm_start=False) as c:
        records = c.store.list_models()
        current = c.store.promoted_model()
    if as_json or not sys.stdout.isatty():
        for record in records:
            emit(
                record.model_dump(mode="json", exclude={"config"})
                | {"promoted": current is not None and record.version == current.version}
            )
        return
    from rich.table import Table

    table = Table(title="models")
    for column in ("", "version", "created", "train", "eval", "macro-F1", "vs current"):
        table.add_column(column)
    for record in records:
        cand = record.metrics.get("candidate", {})
        cur = record.metrics.get("current", {})
        table.add_row(
            "*" if current is not None and record.version == current.version else "",
            record.version,
            record.created_at.strftime("%Y-%m-%d %H:%M"),
            str(record.train_count),
            str(record.eval_count),
            str(cand.get("category_macro_f1")),
            f"{cur.get('category_macro_f1')} ({record.metrics.get('current_version', '')})",
        )
    Console().print(table)


@app.command()
def simulate(
    stream: Annotated[Path, typer.Option("--stream", help="JSONL: items that arrive, in order.")],
    test: Annotated[Path, typer.Option("--test", help="JSONL: items to measure macro-F1 on.")],
    budget: Annotated[int, typer.Option(help="Validations the reviewer makes.")] = 200,
    order: Annotated[str, typer.Option(help="random or uncertainty (the review queue).")] = (
        "uncertainty"
    ),
    label_field: Annotated[
        str | None, typer.Option(help="Field with the gold label; its values become the labels.")
    ] = None,
    noise: Annotated[float, typer.Option(help="Probability the reviewer answers wrong.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write the learning curve to this PNG.")] = None,
) -> None:
    """Replay a labelled stream through the production learning loop with a simulated reviewer."""
    from rich.progress import Progress

    from bot.app import default_encoder
    from core.taxonomy import load_taxonomy
    from training.simulate import load_rows, plot_curves, taxonomy_for_labels
    from training.simulate import simulate as run_simulation

    if order not in ("random", "uncertainty"):
        raise fail("--order must be random or uncertainty")
    if not 0.0 <= noise < 1.0:
        raise fail("--noise must be in [0, 1)")
    if budget < 1:
        raise fail("--budget must be at least 1")
    field = label_field or "category"
    try:
        base = load_taxonomy(Settings.from_env().config_path)
        stream_rows, test_rows = load_rows(stream, field), load_rows(test, field)
        labels = sorted({str(r[field]) for r in stream_rows} | {str(r[field]) for r in test_rows})
        taxonomy = taxonomy_for_labels(labels, base) if label_field else base
        for label in labels:
            taxonomy.check_category(label)
        with err.status("loading model…"):
            encoder = default_encoder()
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task(f"simulating ({order})", total=min(budget, len(stream_rows)))
            result = run_simulation(
                stream_rows,
                test_rows,
                taxonomy=taxonomy,
                encoder=encoder,
                budget=budget,
                order=order,
                label_field=field,
                noise=noise,
                seed=seed,
                progress=lambda done, total: bar.update(task, completed=done),
            )
    except (ValueError, OSError, ConfigError, SettingsError) as exc:
        raise fail(str(exc)) from None
    figures = result.as_dict() | {"order": order, "budget": budget, "noise": noise, "seed": seed}
    if plot is not None:
        plot_curves({order: result.curve}, result.full_macro_f1, plot, f"{stream.name}: {order}")
        figures["plot"] = str(plot)
    if as_json:
        emit(figures)
        return
    from rich.table import Table

    table = Table(title=f"simulation · {order} · noise {noise:.0%}")
    table.add_column("validations", justify="right")
    table.add_column("macro-F1 on test", justify="right")
    table.add_row("0 (cold start)", f"{result.cold_macro_f1:.3f}")
    for key, value in result.macro_f1_at.items():
        table.add_row(key, f"{value:.3f}")
    table.add_row("all labels", f"{result.full_macro_f1:.3f}")
    table.caption = (
        f"prequential accuracy {result.prequential_accuracy:.3f}; "
        f"learning {result.learn_ms_p50:.0f} ms per vote (p50)"
    )
    Console().print(table)


@bench_app.command("latency")
def bench_latency(
    n: Annotated[int, typer.Option(help="Single-item predictions to time.")] = 200,
    batch: Annotated[int, typer.Option(help="Items in the batched run.")] = 512,
) -> None:
    """Model load time, p50/p99 single-item latency, batched items/s, peak RSS (JSON)."""
    from training.bench import latency

    emit(latency(n_single=n, n_batch=batch))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
