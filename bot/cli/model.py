"""Commands on the model: train, models, eval and simulate.

Registered on the root app by `bot.cli`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from bot.cli.errors import CliError, reported_errors
from bot.cli.shared import StoreOption, components, emit, err
from core.settings import Settings

if TYPE_CHECKING:
    from core.taxonomy import Taxonomy
    from training.finetune import FinetuneConfig

# Fine-tuning the encoder (`training.finetune`): the options `train` and `eval` share.
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
) -> FinetuneConfig | None:
    """The fine-tuning config the options ask for, or None for heads-only training.

    Left to itself (no --finetune/--no-finetune), fine-tuning is on with CUDA, and on a CPU
    once there are enough labels for it to pay (the config's `min_examples`). Bad values
    and a missing GPU are one line, before any work."""
    from core.runtime import load_runtime_settings
    from training.finetune import FinetuneConfig, check_device

    learning = load_runtime_settings(Settings.from_env().config_path).learning
    cuda = device is not None and device.startswith("cuda")
    if time_budget is None:
        time_budget = learning.finetune_minutes
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


@reported_errors()
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
        from training.agentlightning.launch import RLSetupError, train_grpo

        try:
            train_grpo(rl_data, rl_config, rl_set or [])
        except RLSetupError as exc:  # a missing extra or GPU: a setup step, not a bug
            raise CliError(str(exc)) from None
        return
    if algo != "heads":
        raise CliError("--algo must be heads or grpo")
    from rich.progress import Progress

    from training.train import train as run_training

    if not 0.0 <= holdout < 1.0:
        raise CliError("--holdout must be in [0, 1)")
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
            runtime=c.runtime,
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


@reported_errors()
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


def _labelled_rows(
    paths: list[Path], label_field: str | None
) -> tuple[Taxonomy, list[list[dict[str, Any]]]]:
    """Rows of labelled JSONL files and the taxonomy to score them with: the data's own
    labels when --label-field is given, else the configured taxonomy's categories.

    Every good row is used; each bad one (not JSON, wrong types, text intake refuses, a
    label the taxonomy does not know) is one stderr line with its file and line number.
    """
    from bot.cli.items import report_skipped
    from core.taxonomy import load_taxonomy
    from training.simulate import load_rows, taxonomy_for_labels

    field = label_field or "category"
    base = load_taxonomy(Settings.from_env().config_path)
    known = {c.name for c in base.categories}
    loaded = []
    for path in paths:
        skipped = 0

        def skip(line: int, reason: str, path: Path = path) -> None:
            nonlocal skipped
            skipped += 1
            report_skipped(path, line, reason)

        # Scored against the configured categories, a label outside them is a typo.
        rows = load_rows(path, field, on_bad=skip, labels=None if label_field else known)
        if skipped:
            err.print(
                f"{path}: {skipped} row(s) skipped, {len(rows)} used",
                markup=False,
                highlight=False,
            )
        loaded.append(rows)
    labels = sorted({str(r[field]) for rows in loaded for r in rows})
    taxonomy = taxonomy_for_labels(labels, base) if label_field else base
    for label in labels:
        taxonomy.check_category(label)
    return taxonomy, loaded


@reported_errors()
def evaluate(
    train_file: Annotated[Path, typer.Option("--train", help="JSONL: labelled items to train on.")],
    test_file: Annotated[
        Path | None, typer.Option("--test", help="JSONL: labelled items to score on.")
    ] = None,
    cv: Annotated[
        int | None, typer.Option("--cv", help="K-fold cross-validation on --train instead.")
    ] = None,
    holdout: Annotated[
        float | None,
        typer.Option(
            "--holdout",
            help="Or hold out this share of --train (stratified by label, --seed) to score on.",
        ),
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
    from core.runtime import load_runtime_settings
    from training.evaluate import cross_validate, holdout_split, plot_evaluation
    from training.evaluate import evaluate as run_evaluation

    if sum(choice is not None for choice in (test_file, cv, holdout)) != 1:
        raise CliError("give one of --test FILE, --cv K or --holdout FRACTION")
    if holdout is not None and not 0.0 < holdout <= 0.5:
        raise CliError("--holdout must be a fraction in (0, 0.5], e.g. 0.2")
    tuning = finetune_config(
        finetune, device, epochs, batch_size, max_length, lr, head_lr, precision, time_budget
    )
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
            runtime=load_runtime_settings(Settings.from_env().config_path),
        )
        if cv is not None:
            result = cross_validate(loaded[0], cv, **options)
        elif holdout is not None:
            field = label_field or "category"
            train_rows, test_rows = holdout_split(loaded[0], field, holdout, seed)
            result = run_evaluation(train_rows, test_rows, **options) | {"holdout": holdout}
        else:
            result = run_evaluation(loaded[0], loaded[1], **options)
    if plot is not None:
        how = (
            f"{cv}-fold CV"
            if cv is not None
            else f"{holdout:.0%} held out"
            if holdout is not None
            else f"tested on {test_file.name}"
        )
        plot_evaluation(result, plot, f"{train_file.name}, {how}")
        result["plot"] = str(plot)
    if as_json:
        emit(result)
        return
    _print_evaluation(result)


def _print_evaluation(result: dict[str, Any]) -> None:
    """The evaluation as tables for a person: per class, confusion matrix, per group."""
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


@reported_errors()
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
    from core.runtime import load_runtime_settings
    from training.simulate import plot_curves
    from training.simulate import simulate as run_simulation

    if order not in ("random", "uncertainty"):
        raise CliError("--order must be random or uncertainty")
    if not 0.0 <= noise < 1.0:
        raise CliError("--noise must be in [0, 1)")
    if budget < 1:
        raise CliError("--budget must be at least 1")
    taxonomy, (stream_rows, test_rows) = _labelled_rows([stream, test], label_field)
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
            label_field=label_field or "category",
            noise=noise,
            seed=seed,
            progress=lambda done, total: bar.update(task, completed=done),
            runtime=load_runtime_settings(Settings.from_env().config_path),
        )
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
