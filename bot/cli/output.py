"""Everything the CLI prints: tables, JSON documents, progress, errors. Only the CLI prints."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from scrapers.text import printable

console = Console(highlight=False, soft_wrap=True)  # long lines stay whole in pipes and logs
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, *, code: int = 1) -> NoReturn:
    errors.print(f"Error: {message}", markup=False)
    raise SystemExit(code)


JSON_UNESCAPED_CONTROLS = re.compile(r"[\x7f-\x9f]")  # json.dumps escapes C0 itself; DEL and C1 are left raw


def print_json(data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    text = JSON_UNESCAPED_CONTROLS.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)  # only inside strings
    sys.stdout.write(text + "\n")


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None) -> None:
    t = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        t.add_column(column, overflow="fold")
    for row in rows:  # Text, not str: a cell holding "[bold]" is shown as typed, not as rich markup
        t.add_row(*(Text("" if v is None else printable(str(v))) for v in row))
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
