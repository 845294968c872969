"""The `bot` command line: parses, calls library functions, prints. Heavy imports happen inside commands."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="bot",
    help="nnbot: learn how a subreddit or an account writes, then post new text in that style.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


class _State:
    debug = False
    config: Path | None = None


state = _State()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
    config: Annotated[Optional[Path], typer.Option(
        "--config", help="bots.toml (default: $BOT_CONFIG, else BOT_HOME/bots.toml if it exists).")] = None,
) -> None:
    state.debug = debug or bool(os.environ.get("BOT_DEBUG"))
    state.config = config
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _register() -> None:
    from bot.cli import corpus, demo, model, queue, scrape, serve, service, setup, worker  # noqa: F401  (each module adds its commands to `app`)


_register()


INTERRUPTED = "Interrupted; what was stored before the interruption is kept."


def _interrupted(error: BaseException) -> bool:
    """Typer turns Ctrl-C into SystemExit(130); the KeyboardInterrupt is further down the exception chain."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def config_first(argv: list[str]) -> list[str]:
    """`bot check --config F` as `bot --config F check`: --config is an option of `bot` itself, and people put it
    after the command as often as before."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if i and arg.startswith("--config="):
            return [arg, *argv[:i], *argv[i + 1:]]
        if i and arg == "--config" and i + 1 < len(argv):
            return [arg, argv[i + 1], *argv[:i], *argv[i + 2:]]
    return argv


def main() -> None:
    from bot.cli.output import fail

    sys.argv[1:] = config_first(sys.argv[1:])
    try:
        app()
    except (KeyboardInterrupt, SystemExit) as exit_:
        if _interrupted(exit_):
            fail(INTERRUPTED, code=130)
        raise
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into sentences
        from bot.errors import USER_ERRORS

        if state.debug or not isinstance(exc, USER_ERRORS):
            raise
        fail(str(exc))
