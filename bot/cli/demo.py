"""`bot demo`: the whole job on the bundled corpus, with a summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli import app, state
from bot.cli.options import JSON

if TYPE_CHECKING:
    from bot.demo import DemoResult

SHOW_ACCEPTED = 15  # accepted titles the demo prints
# --minutes's default is bot.demo.DEMO_MAX_MINUTES (not imported here: `bot --help` imports nothing heavy)


@app.command(short_help="Run the whole job offline on bundled Hacker News titles.")
def demo(
    minutes: Annotated[float, typer.Option("--minutes", min=0.1, max=60, help="Training time, at most (default "
                                           "3: the demo ends within 5 minutes on a 2-core machine).")] = 3.0,
    json_: JSON = False,
) -> None:
    """Run the whole job offline on a bundled corpus of Hacker News titles, leaving candidates to review."""
    from bot.cli import context, output
    from bot.cli.progress import TrainingDisplay
    from bot.demo import run_demo

    started = time.monotonic()

    def stage(text: str) -> None:
        output.errors.print(f"» {text}", markup=False)

    settings = context.settings()
    bots_path = context.config_path() or settings.bot_home / "bots.toml"
    with TrainingDisplay() as display:
        result = run_demo(context.store(), settings, bots_path, reporter=display, on_stage=stage, max_minutes=minutes)
    seconds = time.monotonic() - started
    t = result.training
    if json_:
        output.print_json({
            "documents": result.documents, "words": result.words, "training_seconds": round(t.seconds, 1),
            "valid_perplexity": t.best.valid_perplexity, "best_epoch": t.best_epoch, "sampled": result.sampled,
            "rejections": result.rejections, "accepted": result.accepted, "pending": result.pending,
            "bots_file": str(result.bots_file.path) if result.bots_file else None,
            "bots_file_action": result.bots_file.action if result.bots_file else None,
            "bots_file_problem": result.bots_file_problem, "next": _next_commands(bots_path),
            "seconds": round(seconds, 1)})
        return
    rejected = ", ".join(f"{name} {count}" for name, count in result.rejections.items())
    lines = [
        "",
        f"Corpus:     {result.documents:,} titles, {result.words:,} words (corpus 'demo')",
        f"Training:   {t.seconds:.0f}s, {len(t.epochs)} epoch{'s' if len(t.epochs) != 1 else ''}, held-out "
        f"perplexity {t.best.valid_perplexity:.1f} "
        f"(epoch {t.best_epoch}; {t.vocab_size:,}-word vocabulary)",
        f"Sampled:    {result.sampled} candidates; {len(result.accepted)} accepted",
        f"Rejected:   {rejected}",
        f"Queue:      {result.pending} pending for bot 'demo', best first "
        "(`bot queue list --bot demo --status pending`)",
        f"Bot:        {_bot_line(result)}",
        f"Total time: {seconds:.0f}s",
        "",
        "Accepted titles:",
    ]
    lines += [f"  {text}" for text in result.accepted[:SHOW_ACCEPTED]]
    if len(result.accepted) > SHOW_ACCEPTED:
        lines.append(f"  … and {len(result.accepted) - SHOW_ACCEPTED} more")
    if result.bots_file is not None:
        width = max(len(command) for command, _ in _next_commands(bots_path)) + 2
        lines += ["", "Next:"] + [f"  {command.ljust(width)}# {why}" for command, why in _next_commands(bots_path)]
    output.console.print("\n".join(lines), markup=False)


def _bot_line(result: DemoResult) -> str:
    written = result.bots_file
    if written is None:
        return f"not described in bots.toml: {result.bots_file_problem}"
    where = {"created": "described in a new", "added": "added to", "present": "already described in"}[written.action]
    return f"'demo' {where} {written.path} (review mode; approved posts go to BOT_HOME/demo-posts.jsonl)"


def _next_commands(bots_path: Path) -> list[tuple[str, str]]:
    """What to run after the demo; `--config` where the file is not one the commands find by themselves."""
    from bot.cli import context
    from bot.demo import DEMO_DAILY_CAP, DEMO_POST_EVERY

    found = context.config_path()
    config = "" if found is not None and found == bots_path and state.config is None else f"--config {bots_path} "
    return [(f"bot {config}serve", "review the candidates in a browser; approve the ones worth posting"),
            (f"bot {config}run", f"post the approved ones on the bot's schedule (every {DEMO_POST_EVERY}, "
                                 f"{DEMO_DAILY_CAP} a day at most)"),
            (f"bot {config}post --bot demo", "or post the next approved one now")]
