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
BackendOption = Annotated[
    str | None,
    typer.Option("--backend", help="embedded or llm (default: $TRIAGE_BACKEND, else embedded)."),
]
WatchOption = Annotated[
    str | None,
    typer.Option(
        "--watch",
        help="Also triage every new document of this MongoDB collection: "
        "mongodb://host:port/database.collection (fields: [intake.mongo] in the config).",
    ),
]


def check_watch(watch: str | None) -> None:
    """A malformed --watch URL is one line before the model loads, not a thread's log."""
    if watch is not None:
        from bot.intake import parse_watch_url

        try:
            parse_watch_url(watch)
        except ValueError as exc:
            raise fail(str(exc)) from None


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
def components(store: str | None, warm_start: bool = True, backend: str | None = None) -> Any:
    """Build the process's components; turn expected failures into one-line errors."""
    from bot.app import build

    try:
        with err.status("loading model…", spinner="dots"):
            built = build(store_url=store, warm_start=warm_start, backend=backend)
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
    backend: BackendOption = None,
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


@app.command("import")
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

    from bot.intake import import_file, post_targets

    if not file.is_file():
        raise fail(f"{file}: no such file")
    try:
        targets = post_targets() if post else []
    except SettingsError as exc:
        raise fail(str(exc)) from None
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
            on_bad=lambda line, reason: bar.console.print(
                f"{file}:{line}: skipped: {reason}", highlight=False, soft_wrap=True
            ),
        )
    if not as_json:
        queued = f", {summary.queued} card(s) queued for {', '.join(targets)}" if post else ""
        err.print(
            f"{file}: {summary.imported} imported, {summary.duplicates} duplicate(s), "
            f"{summary.bad} bad{queued}",
            highlight=False,
        )
    emit(summary.as_dict())
    if summary.bad:
        raise typer.Exit(1)


@export_app.command("labels")
def export_labels(store: StoreOption = None) -> None:
    """Validated items as JSON lines: redacted text, final labels, reward, reviewers."""
    with components(store, warm_start=False) as c:
        for record in c.service.export_labels():
            emit(record)


@export_app.callback(invoke_without_command=True)
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
        raise fail("--format must be labels or agentlightning (or use `export labels`)")
    if not 0.0 <= validation_share < 1.0:
        raise fail("--validation-share must be in [0, 1)")
    from training.agentlightning.rollouts import write_rollouts

    with components(store, warm_start=False) as c:
        summary = write_rollouts(
            c.service.export_labels(), c.taxonomy.fingerprint(), out, validation_share
        )
    emit(summary)


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
    watch: WatchOption = None,
    backend: BackendOption = None,
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
    check_watch(watch)
    from bot.slack.server import serve

    with components(store, backend=backend) as c:
        serve(c.service, slack_settings, host, port, watch=watch)


@serve_app.command("discord")
def serve_discord(
    store: StoreOption = None, watch: WatchOption = None, backend: BackendOption = None
) -> None:
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
    check_watch(watch)
    from bot.discord.edge import serve

    with components(store, backend=backend) as c:
        serve(c.service, discord_settings, watch=watch)


# Fine-tuning the encoder (`training.finetune`), shared by `train` and `eval`.
FinetuneOption = Annotated[
    bool | None,
    typer.Option(
        "--finetune/--no-finetune",
        help="Fine-tune the sentence encoder end to end before fitting the heads (default: "
        "when there are [learning] finetune_min_examples labelled items to train on, or "
        "always with --device cuda).",
    ),
]
DeviceOption = Annotated[
    str | None, typer.Option("--device", help="cpu or cuda: where fine-tuning runs (default cpu).")
]
EpochsOption = Annotated[int, typer.Option("--epochs", help="Fine-tuning epochs.")]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", help="Fine-tuning batch size.")]
MaxLengthOption = Annotated[
    int, typer.Option("--max-length", help="Fine-tuning: tokens kept per text.")
]
LrOption = Annotated[float, typer.Option("--lr", help="Fine-tuning: the encoder's learning rate.")]
HeadLrOption = Annotated[
    float, typer.Option("--head-lr", help="Fine-tuning: the classification heads' learning rate.")
]
PrecisionOption = Annotated[
    str,
    typer.Option(
        "--precision", help="Fine-tuning: auto (bf16/fp16 on CUDA, fp32 on CPU), fp32, bf16, fp16."
    ),
]
TimeBudgetOption = Annotated[
    float | None,
    typer.Option(
        "--time-budget",
        help="Fine-tuning: minutes it may take; fewer epochs when the data needs more "
        "(default: [learning] finetune_minutes; 0 = no limit).",
    ),
]


def finetune_config(
    finetune: bool | None,
    device: str | None,
    epochs: int,
    batch_size: int,
    max_length: int,
    lr: float,
    head_lr: float,
    precision: str,
    time_budget: float | None,
) -> Any:
    """The fine-tuning config the options ask for, or None for heads-only training.

    Left to itself (no --finetune/--no-finetune), fine-tuning is on with CUDA, and on a CPU
    once there are enough labels for it to pay (the config's `min_examples`). Bad values
    and a missing GPU are one line, before any work."""
    from core.taxonomy import load_taxonomy
    from training.finetune import FinetuneConfig, check_device

    learning = load_taxonomy(Settings.from_env().config_path).learning
    cuda = device is not None and device.startswith("cuda")
    if time_budget is None:
        time_budget = learning.finetune_minutes
    try:
        if device is not None:
            check_device(device)
        if finetune is False:
            return None
        return FinetuneConfig(
            device=device or "cpu",
            epochs=epochs,
            batch_size=batch_size,
            max_length=max_length,
            lr=lr,
            head_lr=head_lr,
            precision=precision,
            min_examples=0 if finetune or cuda else learning.finetune_min_examples,
            time_budget=time_budget * 60 if time_budget else None,  # 0: no limit
        )
    except ValueError as exc:
        raise fail(str(exc)) from None


@app.command()
def train(
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = 300,
    holdout: Annotated[float, typer.Option(help="Share of validated items held out.")] = 0.2,
    force: Annotated[bool, typer.Option("--force", help="Promote even if worse.")] = False,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    finetune: FinetuneOption = None,
    device: DeviceOption = None,
    epochs: EpochsOption = 3,
    batch_size: BatchSizeOption = 16,
    max_length: MaxLengthOption = 128,
    lr: LrOption = 5e-5,
    head_lr: HeadLrOption = 2e-3,
    precision: PrecisionOption = "auto",
    time_budget: TimeBudgetOption = None,
    algo: Annotated[
        str,
        typer.Option(
            "--algo",
            help="heads (the bot's model) or grpo (RL on the LLM policy with Agent "
            "Lightning: Python 3.12, verl, vLLM and a CUDA GPU).",
        ),
    ] = "heads",
    rl_data: Annotated[
        Path, typer.Option("--rl-data", help="grpo: the `export --format agentlightning` folder.")
    ] = Path("out/agentlightning"),
    rl_config: Annotated[
        Path | None, typer.Option("--rl-config", help="grpo: config (config/agl-grpo.yaml).")
    ] = None,
    rl_set: Annotated[
        list[str] | None, typer.Option("--rl-set", help="grpo: KEY=VALUE config override.")
    ] = None,
) -> None:
    """Retrain from every label; promote the candidate only if it is not worse.

    Once there are enough labels ([learning] finetune_min_examples, or always with --device
    cuda or --finetune) the sentence encoder is fine-tuned too, within --time-budget, and
    the saved model carries its weights. With --algo grpo, the LLM policy is trained with
    Agent Lightning on the exported validations instead (README, "Agent Lightning (RL)")."""
    if algo == "grpo":
        from rich.markup import escape

        from training.agentlightning.launch import RLSetupError, train_grpo

        try:
            train_grpo(rl_data, rl_config, rl_set or [])
        except RLSetupError as exc:  # escaped: pip extras like '.[rl]' are not markup
            raise fail(escape(str(exc))) from None
        return
    if algo != "heads":
        raise fail("--algo must be heads or grpo")
    from rich.progress import Progress

    from training.train import train as run_training

    if not 0.0 <= holdout < 1.0:
        raise fail("--holdout must be in [0, 1)")
    tuning = finetune_config(
        finetune, device, epochs, batch_size, max_length, lr, head_lr, precision, time_budget
    )
    with components(store, warm_start=False) as c, Progress(console=err, transient=True) as bar:
        task = bar.add_task("training", total=steps)

        def heads(done: int, total: int) -> None:
            bar.update(task, description="training heads", completed=done, total=total)

        def phase(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        result = run_training(
            c.store,
            c.taxonomy,
            c.engine.encoder,
            steps=steps,
            holdout=holdout,
            force=force,
            progress=heads,
            finetune=tuning,
            finetune_progress=phase,
        )
    if as_json or not sys.stdout.isatty():
        emit(result.as_dict())
        return
    verdict = "[green]promoted[/]" if result.promoted else "[yellow]not promoted[/]"
    Console().print(
        f"{result.version}: {verdict} ({result.reason}); trained on {result.train_count}, "
        f"evaluated on {result.eval_count}; candidate {result.candidate} vs "
        f"{result.current_version} {result.current}; {result.seconds} s"
        + (
            f"; encoder fine-tuned on {result.finetune['device']} "
            f"({result.finetune['precision']}) in {result.finetune['seconds']} s"
            if result.finetune
            else ""
        )
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


def _labelled_rows(paths: list[Path], label_field: str | None) -> tuple[Any, list[Any]]:
    """Rows of labelled JSONL files and the taxonomy to score them with: the data's own
    labels when --label-field is given, else the configured taxonomy's categories."""
    from core.taxonomy import load_taxonomy
    from training.simulate import load_rows, taxonomy_for_labels

    field = label_field or "category"
    base = load_taxonomy(Settings.from_env().config_path)
    loaded = [load_rows(path, field) for path in paths]
    labels = sorted({str(r[field]) for rows in loaded for r in rows})
    taxonomy = taxonomy_for_labels(labels, base) if label_field else base
    for label in labels:
        taxonomy.check_category(label)
    return taxonomy, loaded


@app.command("eval")
def evaluate(
    train_file: Annotated[Path, typer.Option("--train", help="JSONL: labelled items to train on.")],
    test_file: Annotated[
        Path | None, typer.Option("--test", help="JSONL: labelled items to score on.")
    ] = None,
    cv: Annotated[
        int | None, typer.Option("--cv", help="K-fold cross-validation on --train instead.")
    ] = None,
    label_field: Annotated[
        str | None, typer.Option(help="Field with the gold label; its values become the labels.")
    ] = None,
    group_by: Annotated[
        str | None, typer.Option(help="Also score per value of this field (e.g. repo).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Optimisation steps, as for `train`.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed (folds and initialisation).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    plot: Annotated[
        Path | None,
        typer.Option(help="Also draw the confusion matrix, per-label and per-group F1 (PNG)."),
    ] = None,
    finetune: FinetuneOption = None,
    device: DeviceOption = None,
    epochs: EpochsOption = 3,
    batch_size: BatchSizeOption = 16,
    max_length: MaxLengthOption = 128,
    lr: LrOption = 5e-5,
    head_lr: HeadLrOption = 2e-3,
    precision: PrecisionOption = "auto",
    time_budget: TimeBudgetOption = None,
) -> None:
    """Train the production model on labelled data and score it: macro-F1, per class,
    confusion matrix, per group, training time and peak memory.

    Each fold fine-tunes the encoder when `train` would (enough labels, --finetune or
    --device cuda), with the same time budget."""
    from rich.progress import Progress

    from bot.app import default_encoder
    from training.evaluate import cross_validate, plot_evaluation
    from training.evaluate import evaluate as run_evaluation

    if (test_file is None) == (cv is None):
        raise fail("give either --test FILE or --cv K")
    tuning = finetune_config(
        finetune, device, epochs, batch_size, max_length, lr, head_lr, precision, time_budget
    )
    try:
        paths = [train_file] if test_file is None else [train_file, test_file]
        taxonomy, loaded = _labelled_rows(paths, label_field)
        with err.status("loading model…"):
            if device is None or device == "cpu":
                encoder = default_encoder()
            else:  # embeddings on the GPU too, heads-only or not
                from core.backends.embedded import MiniLMEncoder

                encoder = MiniLMEncoder(device=device)
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("training", total=steps)

            def progress(what: str, done: int, total: int) -> None:
                bar.update(task, description=what, completed=done, total=total)

            options: dict[str, Any] = dict(
                taxonomy=taxonomy,
                encoder=encoder,
                label_field=label_field or "category",
                group_by=group_by,
                steps=steps,
                seed=seed,
                progress=progress,
                finetune=tuning,
            )
            if cv is not None:
                result = cross_validate(loaded[0], cv, **options)
            else:
                result = run_evaluation(loaded[0], loaded[1], **options)
        if plot is not None:
            how = f"{cv}-fold CV" if test_file is None else f"tested on {test_file.name}"
            plot_evaluation(result, plot, f"{train_file.name}, {how}")
            result["plot"] = str(plot)
    except (ValueError, OSError, ConfigError, SettingsError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        emit(result)
        return
    _print_evaluation(result)


def _print_evaluation(result: dict[str, Any]) -> None:
    from rich.table import Table

    console = Console()
    labels = result["labels"]
    table = Table(title=f"macro-F1 {result['macro_f1']:.3f} · accuracy {result['accuracy']:.3f}")
    for column in ("label", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="right" if column != "label" else "left")
    for label in labels:
        s = result["per_class"][label]
        table.add_row(
            label,
            f"{s['precision']:.3f}",
            f"{s['recall']:.3f}",
            f"{s['f1']:.3f}",
            str(s["support"]),
        )
    console.print(table)
    matrix = Table(title="confusion (rows: gold, columns: predicted)")
    matrix.add_column("")
    for label in labels:
        matrix.add_column(label, justify="right")
    for label, row in zip(labels, result["confusion"], strict=True):
        matrix.add_row(label, *map(str, row))
    console.print(matrix)
    if "groups" in result:
        groups = Table(title=f"per group (mean macro-F1 {result['group_mean_macro_f1']:.3f})")
        for column in ("group", "n", "macro-F1", "MCC"):
            groups.add_column(column)
        for name, g in result["groups"].items():
            groups.add_row(name, str(g["n"]), f"{g['macro_f1']:.3f}", str(g.get("mcc", "")))
        console.print(groups)
    extra = f"; MCC {result['mcc']:.3f}" if "mcc" in result else ""
    console.print(
        f"training {result['train_seconds']} s per model; peak memory {result['peak_rss_mb']} MB"
        + extra
    )


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

    try:
        settings = Settings.from_env().with_backend(backend)
    except SettingsError as exc:
        raise fail(str(exc)) from None
    if settings.backend == "llm":
        emit(llm_latency(settings.llm, n_single=n or 20, n_batch=32 if batch is None else batch))
    else:
        emit(latency(n_single=n or 200, n_batch=512 if batch is None else batch))


@bench_app.command("load")
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
    as_json: Annotated[bool, typer.Option("--json", help="Only the JSON, no table.")] = False,
) -> None:
    """The bot (HTTP mode, its own process) under a burst against a fake Slack: accepted/s,
    ack latency, and checks that every item is stored and posted once, every vote recorded."""
    import signal

    from rich.progress import Progress

    from training.load import run_load

    if concurrency < 1:
        raise fail("--concurrency must be at least 1")
    # SIGTERM unwinds like Ctrl-C, so the bot and store processes started here are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with Progress(console=err, transient=True) as bar:
            tasks: dict[str, Any] = {}

            def progress(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done, total=total)

            figures = run_load(
                items,
                votes,
                store=store,
                concurrency=concurrency,
                fault=fault,
                outage_seconds=outage,
                storm_seconds=storm,
                progress=progress,
            )
    except (ValueError, RuntimeError, OSError) as exc:
        raise fail(str(exc)) from None
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
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
