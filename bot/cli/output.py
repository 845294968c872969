"""Everything the CLI prints: tables, JSON documents, progress, errors. Only the CLI prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(highlight=False, soft_wrap=True)  # long lines stay whole in pipes and logs
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, *, code: int = 1) -> NoReturn:
    errors.print(f"Error: {message}", markup=False)
    raise SystemExit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None) -> None:
    t = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        t.add_column(column, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console.print(t)


@contextmanager
def counter(description: str, total: int | None = None) -> Iterator[Any]:
    """A progress bar (or spinner without a total) on stderr; yields `update(done)`."""
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    columns += [BarColumn(), MofNCompleteColumn()] if total else [TextColumn("{task.completed:,}")]
    with Progress(*columns, TimeElapsedColumn(), console=errors, transient=True,
                  disable=not errors.is_terminal) as progress:  # no bar in logs and pipes
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)
