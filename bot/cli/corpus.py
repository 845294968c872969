"""`bot import` and `bot corpus list|show|export|delete`.

Text from the store is printed through `scrapers.text.printable`, so a control character stored before the
store removed them shows as an escape (\\x1b) and cannot drive the terminal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from bot.cli import app
from bot.cli.options import JSON, corpus_name
from scrapers.text import printable

corpus_app = typer.Typer(help="List, show, export and delete corpora.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")

SHOW_DOCUMENTS = 10  # documents `bot corpus show` prints


@app.command("import", short_help="Import a file (txt, csv, jsonl, X archive) into a corpus.")
def import_(
    path: Annotated[Path, typer.Argument(help="A .txt, .csv, .jsonl file, or an X archive (tweets.js, folder, .zip).")],
    corpus: Annotated[str, typer.Option("--corpus", help="Corpus to add the documents to.", callback=corpus_name)],
    format: Annotated[str, typer.Option("--format", help="auto|txt|csv|jsonl|x-archive")] = "auto",
    column: Annotated[Optional[str], typer.Option("--column", help="CSV column or JSON key holding the text.")] = None,
    include_retweets: Annotated[bool, typer.Option("--include-retweets", help="X archive: keep retweets.")] = False,
    json_: JSON = False,
) -> None:
    """Import documents from a file; importing the same file again adds nothing."""
    from bot.cli import context, output
    from bot.corpus import add_documents
    from scrapers.files import read_documents

    documents = read_documents(path, format=format, column=column, include_retweets=include_retweets)
    with output.counter(f"Importing {path.name}") as update, context.store().session() as session:
        result = add_documents(session, corpus, documents, progress=update)
    summary = {"corpus": corpus, "path": str(path), "read": result.seen, "added": result.added,
               "already_present": result.already_present, "empty": result.empty}
    if json_:
        output.print_json(summary)
        return
    empty = f", {result.empty:,} empty once control characters were removed" if result.empty else ""
    output.console.print(f"Imported {path.name} into corpus {corpus!r}: {result.seen:,} read, "
                         f"{result.added:,} new, {result.already_present:,} already present{empty}.", markup=False)


@corpus_app.command("list")
def list_(json_: JSON = False) -> None:
    """The corpora, with their sizes."""
    from bot.cli import context, output
    from bot.corpus import list_corpora

    with context.store().session() as session:
        corpora = list_corpora(session)
    if json_:
        output.print_json([c.to_json() for c in corpora])
        return
    if not corpora:
        output.console.print("No corpora yet; add one with `bot import PATH --corpus NAME` or `bot scrape`.",
                             markup=False)
        return
    output.table(["corpus", "documents", "words", "sources", "last added"],
                 [(printable(c.name), f"{c.documents:,}", f"{c.words:,}", _sources(c.sources),
                   c.last_added.strftime("%Y-%m-%d %H:%M") if c.last_added else "") for c in corpora])


def _sources(sources: dict[str, int]) -> str:
    return ", ".join(f"{printable(s)} {n:,}" for s, n in sources.items())


@corpus_app.command("show")
def show(name: Annotated[str, typer.Argument(help="Corpus name.")], json_: JSON = False) -> None:
    """A corpus's size, sources and first documents."""
    from bot.cli import context, output
    from bot.corpus import get_corpus, sample_documents, summarize

    with context.store().session() as session:
        summary = summarize(session, get_corpus(session, name))
        documents = sample_documents(session, name, limit=SHOW_DOCUMENTS)
    if json_:
        output.print_json({**summary.to_json(), "first_documents": [d.text for d in documents]})
        return
    output.console.print(f"Corpus {name!r}: {summary.documents:,} documents, {summary.words:,} words "
                         f"({_sources(summary.sources)}).", markup=False)
    for doc in documents:
        output.console.print(f"  {printable(doc.text)}", markup=False)


@corpus_app.command("export")
def export(name: Annotated[str, typer.Argument(help="Corpus name.")],
           path: Annotated[Path, typer.Argument(help="Output file: .txt, .jsonl or .csv.")],
           force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False) -> None:
    """Write a corpus's documents to a file."""
    from bot.cli import context, output
    from bot.corpus import export_corpus

    with context.store().session() as session:
        count = export_corpus(session, name, path, force=force)
    output.console.print(f"Exported {count:,} documents of {name!r} to {path}.", markup=False)


@corpus_app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="Corpus name.")],
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False) -> None:
    """Delete a corpus and its documents (models trained on it are kept)."""
    from bot.cli import context, output
    from bot.corpus import delete_corpus, get_corpus

    if not yes:
        with context.store().session() as session:
            get_corpus(session, name)  # a missing corpus is an error before any question
        typer.confirm(f"Delete corpus {name!r} and all its documents?", abort=True)
    with context.store().session() as session:
        count = delete_corpus(session, name)
    output.console.print(f"Deleted corpus {name!r} ({count:,} documents).", markup=False)
