"""Options shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.names import MAX_ID, check_name

JSON = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]
CANDIDATE_IDS = Annotated[list[int], typer.Argument(help="Candidate ids.", min=1, max=MAX_ID)]
CANDIDATE_ID = Annotated[int, typer.Argument(help="Candidate id.", min=1, max=MAX_ID)]


def corpus_name(value: str) -> str:
    """A corpus, model or bot name must be safe as a directory name."""
    if value is None:
        return value
    try:
        return check_name(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a name nnbot can use; {exc}.") from None
