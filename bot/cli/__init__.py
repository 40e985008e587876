"""`triage-bot`: the command line, one module per command group.

This module is the root app: it creates the groups and registers every command, in the
order `--help` lists them. A known failure is one line on stderr and a non-zero exit
(`bot.cli.errors`).
"""

from __future__ import annotations

import typer

from bot.cli import bench, digest, items, model, privacy, serve, themes

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Triage user feedback and learn from the team's corrections.",
)
app.command()(items.triage)
app.command()(items.validate)
app.command("import")(items.import_items)
app.command()(items.stats)
app.command()(digest.digest)
themes_app = typer.Typer(help="What the period's feedback is about, and names for it.")
themes_app.callback(invoke_without_command=True)(themes.themes)
themes_app.command("rename")(themes.rename_theme)
themes_app.command("merge")(themes.merge_themes)
app.add_typer(themes_app, name="themes")
app.command()(privacy.forget)
app.command()(privacy.prune)
app.command()(serve.demo)
app.command()(model.train)
app.command()(model.models)
app.command("eval")(model.evaluate)
app.command()(model.simulate)

serve_app = typer.Typer(no_args_is_help=True, help="Run the bot on a chat platform.")
serve_app.command("slack")(serve.serve_slack)
serve_app.command("discord")(serve.serve_discord)
app.add_typer(serve_app, name="serve")

export_app = typer.Typer(no_args_is_help=True, help="Export what the team has validated.")
export_app.callback(invoke_without_command=True)(items.export_format)
export_app.command("labels")(items.export_labels)
app.add_typer(export_app, name="export")

bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (figures as JSON).")
bench_app.command("latency")(bench.bench_latency)
bench_app.command("load")(bench.bench_load)
bench_app.command("github")(bench.bench_github)
bench_app.command("redaction")(bench.bench_redaction)
bench_app.command("duplicates")(bench.bench_duplicates)
app.add_typer(bench_app, name="bench")


def main() -> None:
    """The `triage-bot` console script."""
    app()
