"""The terminal edge: triage cards in rich, keystroke votes, and the guided demo."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from core.models import FeedbackItem, Triage, ValidationKind
from core.service import TriageService
from core.taxonomy import Taxonomy

SEVERITY_STYLE = {"critical": "bold red", "high": "dark_orange", "medium": "yellow", "low": "green"}
DEMO_ITEMS = Path(__file__).resolve().parent.parent / "examples" / "feedback.jsonl"


def render_card(item: FeedbackItem, triage: Triage, taxonomy: Taxonomy) -> Panel:
    """One compact card: severity first, then category, action and confidence."""
    sev_style = SEVERITY_STYLE.get(triage.severity, "bold")
    head = Text.assemble(
        (f"{triage.severity.upper()}", sev_style),
        "  ",
        (triage.category, "bold cyan"),
        f"   confidence {triage.confidence.category:.0%} / {triage.confidence.severity:.0%}",
    )
    if triage.needs_human:
        head.append("   needs a human", style="bold magenta")
    body = Text(
        item.redacted_text if len(item.redacted_text) < 600 else item.redacted_text[:600] + "…"
    )
    meta = ", ".join(
        part
        for part in (
            f"form: {item.form_type}" if item.form_type else "",
            f"page: {item.page}" if item.page else "",
            f"rating: {item.rating:g}" if item.rating is not None else "",
            f"redacted: {', '.join(item.pii_kinds)}" if item.pii_kinds else "",
        )
        if part
    )
    parts: list[Any] = [head, body]
    if meta:
        parts.append(Text(meta, style="dim"))
    parts.append(Text.assemble(("Action: ", "bold"), triage.action))
    if triage.fallback_reason:
        parts.append(Text(f"LLM fallback: {triage.fallback_reason}", style="yellow"))
    return Panel(
        Group(*parts), title=item.id, subtitle=triage.model_version, border_style=sev_style
    )


def triage_table(rows: list[tuple[FeedbackItem, Triage]]) -> Table:
    table = Table(show_lines=False)
    for column in ("id", "severity", "category", "conf", "action"):
        table.add_column(column, overflow="fold")
    for item, triage in rows:
        conf = f"{triage.confidence.category:.0%}" + (" ?" if triage.needs_human else "")
        table.add_row(
            item.id,
            Text(triage.severity, style=SEVERITY_STYLE.get(triage.severity, "")),
            triage.category,
            conf,
            triage.action,
        )
    return table


@dataclass
class Answer:
    kind: ValidationKind | None  # None: skip
    category: str | None = None
    severity: str | None = None
    quit: bool = False


def ask_keystroke(console: Console, taxonomy: Taxonomy, triage: Triage) -> Answer:
    """Enter/y confirm, c correct, n noise, s skip, q quit; one key each."""
    console.print(
        "[bold]y[/]/Enter confirm  [bold]c[/] correct  [bold]n[/] noise  [bold]s[/] skip  "
        "[bold]q[/] quit"
    )
    while True:
        key = click.getchar().lower()
        if key in ("y", "\r", "\n"):
            return Answer(ValidationKind.CONFIRM)
        if key == "n":
            return Answer(ValidationKind.NOISE)
        if key == "s":
            return Answer(None)
        if key == "q":
            return Answer(None, quit=True)
        if key == "c":
            category = _pick(console, "category", taxonomy.category_names, triage.category)
            severity = _pick(console, "severity", taxonomy.severity_names, triage.severity)
            return Answer(ValidationKind.CORRECT, category, severity)


def _pick(console: Console, field: str, names: list[str], current: str) -> str:
    choices = "  ".join(f"[bold]{i}[/] {name}" for i, name in enumerate(names, start=1))
    console.print(f"{field}: {choices}  (Enter keeps {current})")
    while True:
        key = click.getchar()
        if key in ("\r", "\n"):
            return current
        if key.isdigit() and 1 <= int(key) <= len(names):
            console.print(f"  -> {names[int(key) - 1]}")
            return names[int(key) - 1]


def simulated_reviewer(gold: dict[str, str], triage: Triage, taxonomy: Taxonomy) -> Answer:
    """Answers from the gold labels, as a careful reviewer would."""
    if triage.category == gold["category"] and triage.severity == gold["severity"]:
        return Answer(ValidationKind.CONFIRM)
    if gold["category"] == taxonomy.noise_category and gold["severity"] == taxonomy.lowest_severity:
        return Answer(ValidationKind.NOISE)
    return Answer(ValidationKind.CORRECT, gold["category"], gold["severity"])


def _accuracy(pairs: list[tuple[Triage, dict[str, str]]]) -> tuple[float, float]:
    if not pairs:
        return math.nan, math.nan
    cat = sum(t.category == g["category"] for t, g in pairs) / len(pairs)
    sev = sum(t.severity == g["severity"] for t, g in pairs) / len(pairs)
    return cat, sev


def load_demo_items(path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()
    ]


def run_demo(
    service: TriageService,
    console: Console,
    *,
    items_path: Path = DEMO_ITEMS,
    auto: bool,
    holdout_share: float = 1 / 3,
    seed: int = 0,
    answer: Callable[[Console, Taxonomy, Triage], Answer] = ask_keystroke,
) -> dict[str, Any]:
    """The whole loop on bundled feedback: triage, card, vote, store, learn, measure.

    A third of the items is held out and never reviewed; the model is scored on it before
    and after learning, so the improvement shown is on feedback it has not seen.
    """
    taxonomy = service.taxonomy
    rows = load_demo_items(items_path)
    random.Random(seed).shuffle(rows)
    n_holdout = max(1, int(len(rows) * holdout_share))
    stream, holdout = rows[n_holdout:], rows[:n_holdout]

    def to_item(row: dict[str, Any]) -> FeedbackItem:
        return service.make_item(
            row["text"],
            source="demo",
            item_id=f"demo-{row['id']}",
            form_type=row.get("form_type"),
            page=row.get("page"),
            rating=row.get("rating"),
        )

    holdout_items = [to_item(r) for r in holdout]
    before_holdout = list(zip(service.engine.triage_many(holdout_items), holdout, strict=True))
    console.rule(
        f"[bold]triage-bot demo[/] · {len(stream)} items to review, {len(holdout)} held out"
    )
    mode = "simulated reviewer answers from the gold labels" if auto else "you review each card"
    console.print(f"Model {service.engine.model_version}; {mode}.\n")

    seen: list[tuple[Triage, dict[str, str]]] = []
    reviewed: list[tuple[FeedbackItem, dict[str, str]]] = []
    learn_ms: list[float] = []
    for index, row in enumerate(stream, start=1):
        item = to_item(row)
        triage, _ = service.submit(item)
        seen.append((triage, row))
        console.print(render_card(item, triage, taxonomy))
        if auto:
            reply = simulated_reviewer(row, triage, taxonomy)
        else:
            console.print(f"[dim]gold: {row['category']} / {row['severity']}[/]")
            reply = answer(console, taxonomy, triage)
        if reply.quit:
            break
        if reply.kind is None:
            continue
        started = time.perf_counter()
        outcome = service.vote(
            item.id,
            "demo-reviewer" if auto else "you",
            reply.kind,
            category=reply.category,
            severity=reply.severity,
            platform="console",
        )
        learn_ms.append((time.perf_counter() - started) * 1000)
        reviewed.append((item, row))
        verdict = reply.kind.value
        if reply.kind == ValidationKind.CORRECT:
            verdict += f" -> {reply.category} / {reply.severity}"
        reward = f"reward {outcome.reward.value:+.2f}" if outcome.reward else "no reward"
        console.print(
            f"[green]stored[/] {verdict}; {reward}; learned from "
            f"{outcome.learned.labels if outcome.learned else 0} labels in {learn_ms[-1]:.0f} ms "
            f"[{index}/{len(stream)}]\n"
        )

    after_holdout = list(zip(service.engine.triage_many(holdout_items), holdout, strict=True))
    reviewed_after = list(
        zip(
            service.engine.triage_many([i for i, _ in reviewed]),
            [r for _, r in reviewed],
            strict=True,
        )
    )
    reviewed_before = [(t, r) for t, r in seen if any(r is rr for _, rr in reviewed)]
    half = len(seen) // 2
    summary = {
        "reviewed": len(reviewed),
        "held_out": len(holdout),
        "model_version": service.engine.model_version,
        "held_out_before": _accuracy(before_holdout),
        "held_out_after": _accuracy(after_holdout),
        "reviewed_before": _accuracy(reviewed_before),
        "reviewed_after": _accuracy(reviewed_after),
        "prequential_first_half": _accuracy(seen[:half]),
        "prequential_second_half": _accuracy(seen[half:]),
        "learn_ms_p50": sorted(learn_ms)[len(learn_ms) // 2] if learn_ms else math.nan,
    }
    console.print(summary_table(summary))
    return summary


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Accuracy (category / severity)")
    table.add_column("items")
    table.add_column("before learning", justify="right")
    table.add_column("after learning", justify="right")

    def fmt(pair: tuple[float, float]) -> str:
        return " / ".join("-" if math.isnan(x) else f"{x:.0%}" for x in pair)

    table.add_row(
        f"held out, never reviewed ({summary['held_out']})",
        fmt(summary["held_out_before"]),
        fmt(summary["held_out_after"]),
    )
    table.add_row(
        f"reviewed by you ({summary['reviewed']})",
        fmt(summary["reviewed_before"]),
        fmt(summary["reviewed_after"]),
    )
    table.add_row(
        "as they arrived: first half -> second half",
        fmt(summary["prequential_first_half"]),
        fmt(summary["prequential_second_half"]),
    )
    table.caption = (
        f"model {summary['model_version']}; "
        f"learning took {summary['learn_ms_p50']:.0f} ms per vote (p50)"
    )
    return table
