"""`python -m bot.cli`: the `bot` command, for environments without the entry point on PATH."""

from bot.cli import main

main()
