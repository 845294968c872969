"""`bot init` and `bot check`: a first bots.toml, and what each bot still needs before `bot run` keeps it going."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bot.cli import app
from bot.cli.options import JSON
from bot.platforms import NAMES as PLATFORMS  # light: `bot --help` imports it

MARKS = {"ok": "ok  ", "note": "note", "missing": "MISSING"}


def _platform(value: str) -> str:
    if value not in PLATFORMS:
        raise typer.BadParameter(f"use one of {', '.join(PLATFORMS)}")
    return value


@app.command(short_help="Write a commented bots.toml for a first bot.")
def init(
    path: Annotated[Optional[Path], typer.Argument(
        help="Where to write it (default: --config, else BOT_HOME/bots.toml).")] = None,
    platform: Annotated[str, typer.Option("--platform", help="|".join(PLATFORMS) + ": where the bot posts.",
                                          callback=_platform)] = "file",
    name: Annotated[str, typer.Option("--name", help="The bot's name (and its corpus's and model's).")] = "mybot",
) -> None:
    """Write a commented bots.toml with one review-mode bot for the platform asked for; never over an existing file."""
    from bot import bots_toml
    from bot.cli import context, output, state
    from bot.names import check_name

    try:
        check_name(name)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--name") from None
    target = path or state.config or context.settings().bot_home / "bots.toml"
    bots_toml.write_new(target, bots_toml.starting_file(platform, name))
    config = "" if target == (context.config_path() or context.settings().bot_home / "bots.toml") else \
        f"--config {target} "
    output.console.print(f"Wrote {target}: bot {name!r}, review mode, posting to {platform}. Edit it, then run "
                         f"`bot {config}check` to see what the bot still needs.", markup=False)


@app.command(short_help="Say what each bot still needs; posts nothing.")
def check(json_: JSON = False) -> None:
    """Say, per bot in bots.toml, what is missing (keys, model, corpus, database) and what to run next; posts
    nothing."""
    from bot.checkup import check as run_check
    from bot.cli import context, output
    from bot.errors import ConfigError
    from bot.store import open_store

    path = context.config_path()
    bots = context.bots()  # a bad file is an error naming its line, before anything else
    if path is None or not bots.bot:
        raise ConfigError("No bots are configured: write a bots.toml with `bot init` (or run `bot demo`), or pass "
                          "one with --config.")
    settings = context.settings()
    result = run_check(settings, bots, str(path), lambda: open_store(settings.database_url))
    if json_:
        output.print_json(result.to_json())
    else:
        lines = [f"bots.toml:  {path} ({len(bots.bot)} bot{'s' if len(bots.bot) != 1 else ''})",
                 f"database:   {result.database.detail}"]
        broker = result.broker
        if broker is not None:
            lines.append(f"broker:     {broker.detail}"
                         + (f"\n            → {broker.next}" if broker.next and broker.level != "ok" else ""))
        for b in result.bots:
            lines += ["", f"{b.name}  {b.mode}  {b.target}"]
            lines += [f"  {MARKS[f.level]:7} {f.what:8} {f.detail}" + (f"\n  {'':7} {'':8} → {f.next}" if f.next and
                                                                        f.level != "ok" else "")
                      for f in b.findings]
        ready = [b.name for b in result.bots if b.ready]
        lines += ["", f"Ready for `bot run`: {', '.join(ready) or 'none'}." if result.ready or ready else
                  "No bot is ready for `bot run` yet; the MISSING lines say what to do."]
        if broker is not None and broker.level == "missing":
            lines.append("The broker must answer first: `bot run` sends every refill and training to it.")
        output.console.print("\n".join(lines), markup=False)
    if not result.ready:
        raise SystemExit(1)
