"""Benchmarks: `bench latency` (the model), `bench load` (the bot under a burst), `bench
github` (Create issue under load), `bench redaction` (PII redaction on a labelled corpus)
and `bench duplicates` (duplicate detection: quality on labelled pairs, cost per item),
figures as JSON on stdout.

Registered on the root app's `bench` group by `bot.cli`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli.errors import FAILED, CliError, reported_errors
from bot.cli.shared import BackendOption, emit, err


@contextmanager
def phase_bars() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per phase of a benchmark that runs the bot in processes of its own;
    SIGTERM unwinds like Ctrl-C, so those processes are stopped."""
    import signal

    from rich.progress import Progress

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with Progress(console=err, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield progress


if TYPE_CHECKING:
    from collections.abc import Callable

NOT_A_CHECKOUT = "bench {command} runs from a source checkout (benchmarks/ is not installed)"


@reported_errors()
def bench_latency(
    n: Annotated[
        int | None, typer.Option(help="Single-item predictions to time (200; llm: 20).")
    ] = None,
    batch: Annotated[
        int | None, typer.Option(help="Items in the batched run (512; llm: 32).")
    ] = None,
    backend: BackendOption = None,
) -> None:
    """Model load time, p50/p99 single-item latency, batched items/s, peak RSS (JSON)."""
    from core.settings import Settings
    from training.bench import latency, llm_latency

    # No encoder passed: the bench builds the bot's own (MiniLM on the CPU) inside its
    # timer, so the load time includes loading the model.
    settings = Settings.from_env().with_backend(backend)
    if settings.backend == "llm":
        emit(llm_latency(settings.llm, n_single=n or 20, n_batch=32 if batch is None else batch))
    else:
        emit(latency(n_single=n or 200, n_batch=512 if batch is None else batch))


def _from_checkout(module: str, command: str) -> ModuleType:
    """A module of `benchmarks/`, which lives in the checkout, not the wheel.

    `python -m bot.cli` in the checkout finds it on the path; the `triage-bot` script of an
    editable install does not (its path starts at the venv's bin/), so the checkout this
    package sits in is tried next. An installed wheel has none: one line, exit 2.
    """
    parts = module.split(".")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}:
            raise  # the harness is there but something it imports is not: show it
        checkout = Path(__file__).resolve().parents[2]
        if not checkout.joinpath(*parts[:-1], parts[-1] + ".py").is_file():
            raise CliError(NOT_A_CHECKOUT.format(command=command)) from None
        sys.path.insert(0, str(checkout))
        return importlib.import_module(module)


def _load_harness() -> Callable[..., dict[str, Any]]:
    """`benchmarks.load.run_load` (see _from_checkout)."""
    run_load: Callable[..., dict[str, Any]] = _from_checkout("benchmarks.load", "load").run_load
    return run_load


@reported_errors(RuntimeError)  # the harness's "the bot did not start" and the like
def bench_load(
    items: Annotated[int, typer.Option(help="Webhook submissions in the burst.")] = 2000,
    votes: Annotated[int, typer.Option(help="Reaction events in the burst.")] = 2000,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="sqlite:///path, mongodb://host (a scratch database, dropped after) or "
            "mongoeco (a local MongoDB-compatible server); default: a scratch SQLite file.",
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once.")] = 16,
    fault: Annotated[
        str | None, typer.Option(help="Inject a fault mid-burst: kill, outage or ratelimit.")
    ] = None,
    outage: Annotated[float, typer.Option(help="Seconds the store is down (outage).")] = 30.0,
    storm: Annotated[float, typer.Option(help="Seconds of Slack 429s (ratelimit).")] = 10.0,
    config: Annotated[
        Path | None,
        typer.Option(help="The bot's config (TRIAGE_CONFIG), e.g. with [duplicates] off."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Only the JSON, no table.")] = False,
) -> None:
    """The bot (HTTP mode, its own process) under a burst against a fake Slack: accepted/s,
    ack latency, and checks that every item is stored and posted once, every vote recorded."""

    run_load = _load_harness()
    if concurrency < 1:
        raise CliError("--concurrency must be at least 1")
    with phase_bars() as progress:
        figures = run_load(
            items,
            votes,
            store=store,
            concurrency=concurrency,
            fault=fault,
            outage_seconds=outage,
            storm_seconds=storm,
            progress=progress,
            config=config,
        )
    if not as_json and sys.stderr.isatty():
        from rich.table import Table

        table = Table(title=f"bench load · {figures['store']} · fault {figures['fault']}")
        for column in ("burst", "accepted", "accepted/s", "ack p50 ms", "ack p99 ms"):
            table.add_column(column)
        for name in ("submissions", "reactions"):
            row = figures[name]
            table.add_row(
                name,
                f"{row['accepted']}/{row['sent']}",
                str(row["accepted_per_s"]),
                str(row["ack_ms"]["p50"]),
                str(row["ack_ms"]["p99"]),
            )
        table.caption = "checks: " + ("all passed" if figures["ok"] else "FAILED")
        err.print(table)
    emit(figures)
    if not figures["ok"]:
        raise typer.Exit(FAILED)


@reported_errors(RuntimeError)  # the harness's "the bot did not start" and the like
def bench_github(
    clicks: Annotated[int, typer.Option(help="Cards whose Create issue modal is submitted.")] = 200,
    concurrency: Annotated[int, typer.Option(help="Submissions in flight at once.")] = 4,
    fault: Annotated[
        str | None,
        typer.Option(help="ratelimit: GitHub answers some creates 403 + retry-after 1."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Only the JSON, no table.")] = False,
) -> None:
    """The bot (HTTP mode, its own process) against fake Slack and GitHub: per Create issue,
    the submission's ack and the time until the card links the issue; checks exactly one
    issue per card and every card linked."""

    run_github: Callable[..., dict[str, Any]] = _from_checkout(
        "benchmarks.github", "github"
    ).run_github
    if clicks < 1:
        raise CliError("--clicks must be at least 1")
    if concurrency < 1:
        raise CliError("--concurrency must be at least 1")
    if fault not in (None, "ratelimit"):
        raise CliError("--fault must be ratelimit")
    with phase_bars() as progress:
        figures = run_github(clicks, concurrency=concurrency, fault=fault, progress=progress)
    if not as_json and sys.stderr.isatty():
        from rich.table import Table

        table = Table(title=f"bench github · {figures['clicks']} clicks · fault {figures['fault']}")
        for column in ("per click", "p50 ms", "p99 ms", "max ms"):
            table.add_column(column)
        for name, row in (
            ("submission ack", figures["submissions"]["ack_ms"]),
            ("until the card links it", figures["card_link_ms"]),
        ):
            table.add_row(name, str(row["p50"]), str(row["p99"]), str(row["max"]))
        table.caption = f"{figures['issues_per_s']} issues linked/s · checks: " + (
            "all passed" if figures["ok"] else "FAILED"
        )
        err.print(table)
    emit(figures)
    if not figures["ok"]:
        raise typer.Exit(FAILED)


@reported_errors()
def bench_redaction(
    corpus: Annotated[
        Path | None,
        typer.Option(
            help="Labelled JSONL corpus (rows of text and expected PII spans); default: "
            "benchmarks/pii/corpus.jsonl of the checkout.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Only the JSON, no table.")] = False,
) -> None:
    """PII redaction on a labelled corpus: recall and precision per kind, recall per case,
    false positives per 1,000 clean items (JSON)."""
    scorer = _from_checkout("benchmarks.pii.score", "redaction")
    try:
        figures: dict[str, Any] = scorer.score(corpus or scorer.DEFAULT_CORPUS)
    except scorer.CorpusError as exc:
        raise CliError(str(exc)) from None
    if not as_json and sys.stderr.isatty():
        from rich.table import Table

        table = Table(title=f"bench redaction · {figures['corpus']} · {figures['rows']} rows")
        for column in ("kind", "expected", "recall", "precision"):
            table.add_column(column)
        for kind, row in figures["kinds"].items():
            table.add_row(kind, str(row["expected"]), str(row["recall"]), str(row["precision"]))
        clean = figures["clean"]
        table.caption = (
            f"{figures['clean_rows']} clean rows: {clean['false_positives_per_1000']} false "
            "positives per 1,000"
        )
        err.print(table)
    emit(figures)


@reported_errors()
def bench_duplicates(
    mozilla: Annotated[
        Path | None,
        typer.Option(
            help="A clone of github.com/SigmaJahan/Towards-Understanding-the-Impacts-of-"
            "Textual-Dissimilarity-on-Duplicate-Bug-Report-Detection: adds its Firefox and "
            "Firefox-for-mobile duplicate pairs."
        ),
    ] = None,
    open_cards: Annotated[
        int, typer.Option(help="Open cards in the window for the cost figures (0: skip).")
    ] = 10_000,
    checks: Annotated[int, typer.Option(help="New items checked for the cost figures.")] = 500,
    png: Annotated[
        Path | None, typer.Option("--png", help="Draw precision and recall against votes here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Only the JSON, no table.")] = False,
) -> None:
    """Duplicate detection: precision and recall on labelled duplicate pairs at the default
    threshold and after N merge/split votes, and the cost of one check with N open cards."""
    from bot.app import default_encoder

    bench = _from_checkout("benchmarks.duplicates", "duplicates")
    sets = []
    if bench.NLBSE.exists():
        sets.append(bench.load_nlbse())
    if mozilla is not None:
        try:
            sets.append(bench.load_mozilla(mozilla))
        except FileNotFoundError as exc:
            raise CliError(str(exc)) from None
    if not sets and open_cards <= 0:
        raise CliError(f"no pair set: {bench.NLBSE} is absent and --mozilla was not given")
    if open_cards < 0 or checks < 1:
        raise CliError("--open-cards must be 0 or more and --checks at least 1")
    encoder = default_encoder()
    figures: dict[str, Any] = {}
    with _status() as say:
        if sets:
            figures["quality"] = bench.quality(sets, encoder, progress=say)
        if open_cards:
            figures["cost"] = bench.cost(encoder, open_cards, checks, progress=say)
    if png is not None and "quality" in figures:
        from bot.charts import duplicates_png

        png.write_bytes(duplicates_png(figures["quality"]))
        figures["png"] = str(png)
    if not as_json and sys.stderr.isatty():
        from rich.table import Table

        for one in figures.get("quality", {}).get("sets", []):
            table = Table(title=f"bench duplicates · {one['name']} · {one['reports']} reports")
            for column in ("", "threshold", "precision", "recall", "F1"):
                table.add_column(column)
            at = one["at_default"]
            table.add_row("default", str(figures["quality"]["threshold"]), *map(str, _prf(at)))
            for row in one["after_votes"][1:]:
                table.add_row(
                    f"after {row['votes']} votes", str(row["threshold"]), *map(str, _prf(row))
                )
            err.print(table)
        if "cost" in figures:
            cost = figures["cost"]
            err.print(
                f"one check with {cost['open_cards']} open cards: p50 {cost['p50_ms']} ms, "
                f"p99 {cost['p99_ms']} ms ({cost['checks']} checks, {cost['grouped']} grouped)"
            )
    emit(figures)


def _prf(row: dict[str, Any]) -> tuple[Any, Any, Any]:
    return row["precision"], row["recall"], row["f1"]


@contextmanager
def _status() -> Iterator[Callable[[str], None]]:
    """A spinner naming the phase, on stderr."""
    with err.status("starting") as status:
        yield lambda phase: status.update(phase)
