"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.names import NAME_RULE, is_valid_name

JSON = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]


def corpus_name(value: str) -> str:
    """A corpus, model or bot name must be safe as a directory name."""
    if value is not None and not is_valid_name(value):
        raise typer.BadParameter(f"use {NAME_RULE}")
    return value
