"""Corpora in the store: add documents (only what is new), list, show, export, delete.

`add_documents` is the one door every source comes in by (files, Reddit, X, archives), so it removes control
characters from every field (`scrapers.text.strip_controls`): nothing stored can drive a terminal, and SQLite
and PostgreSQL (which refuses NUL) store the same thing. A document with no text left is skipped. A field
longer than its column, or a score outside PostgreSQL's INTEGER, is refused with one sentence on both
databases (SQLite would keep it, PostgreSQL would not), and the caller's transaction stores none of the batch.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TextIO

from sqlalchemy import String, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.errors import BotError, NotFoundError
from bot.store.schema import Corpus, StoredDocument, utcnow
from scrapers.documents import Document
from scrapers.text import strip_controls

INSERT_BATCH = 1000  # documents per INSERT statement
EXPORT_FORMATS = ("txt", "jsonl", "csv")
SCORE_RANGE = (-(2**31), 2**31 - 1)  # PostgreSQL's INTEGER; SQLite would keep more, so both refuse more
LIMITED_FIELDS = {"source": "a source", "external_id": "an id", "author": "an author"}  # String(n) column -> words
EXPORT_FIELDS = ("text", "source", "external_id", "author", "created_at", "score", "url")  # csv: in this order


@dataclass(frozen=True)
class AddResult:
    seen: int  # documents offered
    added: int  # new to the corpus
    empty: int = 0  # skipped: no text left once control characters were removed

    @property
    def already_present(self) -> int:
        return self.seen - self.added - self.empty


@dataclass(frozen=True)
class CorpusSummary:
    name: str
    documents: int
    words: int
    sources: dict[str, int]
    created_at: datetime
    last_added: datetime | None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["last_added"] = self.last_added.isoformat() if self.last_added else None
        return data


def get_corpus(session: Session, name: str) -> Corpus:
    corpus = session.scalar(select(Corpus).where(Corpus.name == name))
    if corpus is None:
        raise NotFoundError(f"There is no corpus named {name!r}; `bot corpus list` shows the corpora.")
    return corpus


def ensure_corpus(session: Session, name: str) -> Corpus:
    corpus = session.scalar(select(Corpus).where(Corpus.name == name))
    if corpus is None:
        corpus = Corpus(name=name, created_at=utcnow())
        session.add(corpus)
        session.flush()
    return corpus


def count_documents(session: Session, corpus_id: int) -> int:
    return session.scalar(select(func.count()).where(StoredDocument.corpus_id == corpus_id)) or 0


def corpus_size(session: Session, name: str) -> int:
    """Documents in the corpus `name`; 0 where there is no such corpus yet."""
    corpus = session.scalar(select(Corpus).where(Corpus.name == name))
    return 0 if corpus is None else count_documents(session, corpus.id)


def _insert_ignoring_duplicates(session: Session):  # type: ignore[no-untyped-def]
    """INSERT … ON CONFLICT DO NOTHING on the unique (corpus, source, external id)."""
    dialect = session.get_bind().dialect.name
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect)
    if insert is None:
        raise BotError(f"The {dialect} database is not supported; use SQLite or PostgreSQL.")
    return insert(StoredDocument).on_conflict_do_nothing(index_elements=["corpus_id", "source", "external_id"])


def add_documents(session: Session, corpus_name: str, documents: Iterable[Document], *,
                  progress: Callable[[int], None] | None = None) -> AddResult:
    """Add what is new, without control characters; the caller's transaction decides whether any of it stays."""
    corpus = ensure_corpus(session, corpus_name)
    before = count_documents(session, corpus.id)
    statement = _insert_ignoring_duplicates(session)
    seen = empty = 0
    iterator = iter(documents)
    while batch := list(islice(iterator, INSERT_BATCH)):
        now = utcnow()
        rows = [_row(corpus.id, _require_fits(doc), now) for doc in map(_without_controls, batch) if doc.text.strip()]
        if rows:
            session.execute(statement, rows)
        seen += len(batch)
        empty += len(batch) - len(rows)
        if progress:
            progress(seen)
    return AddResult(seen=seen, added=count_documents(session, corpus.id) - before, empty=empty)


def _without_controls(doc: Document) -> Document:
    def clean(value: str | None) -> str | None:
        return None if value is None else strip_controls(value)

    return replace(doc, source=strip_controls(doc.source), external_id=strip_controls(doc.external_id),
                   text=strip_controls(doc.text), author=clean(doc.author), url=clean(doc.url))


def _require_fits(doc: Document) -> Document:
    """`doc`, if every field fits its column on PostgreSQL; else `BotError`, so SQLite refuses it too."""
    for field, word in LIMITED_FIELDS.items():
        value, limit = getattr(doc, field), _column_length(field)
        if value is not None and len(value) > limit:
            raise BotError(f"{_describe(doc)} has {word} of {len(value):,} characters, more than the {limit} the "
                           "store keeps; shorten it and try again.")
    low, high = SCORE_RANGE
    if doc.score is not None and not low <= doc.score <= high:
        raise BotError(f"{_describe(doc)} has score {doc.score:,}, outside the {low:,} to {high:,} the store keeps; "
                       "fix it or leave it blank.")
    return doc


def _column_length(field: str) -> int:
    column_type = StoredDocument.__table__.c[field].type
    assert isinstance(column_type, String) and column_type.length, field  # LIMITED_FIELDS names String(n) columns
    return column_type.length


def _describe(doc: Document) -> str:
    shown = 40  # characters of an id or source quoted in a message
    return f"The {doc.source[:shown]!r} document {doc.external_id[:shown]!r}"


def _row(corpus_id: int, doc: Document, now: datetime) -> dict[str, object]:
    return {"corpus_id": corpus_id, "source": doc.source, "external_id": doc.external_id, "text": doc.text,
            "author": doc.author, "created_at": doc.created_at, "score": doc.score, "url": doc.url, "added_at": now}


def iter_texts(session: Session, corpus_name: str) -> Iterator[str]:
    corpus = get_corpus(session, corpus_name)
    query = select(StoredDocument.text).where(StoredDocument.corpus_id == corpus.id).order_by(StoredDocument.id)
    yield from session.scalars(query.execution_options(yield_per=INSERT_BATCH))


def load_texts(session: Session, corpus_name: str) -> list[str]:
    return list(iter_texts(session, corpus_name))


def count_words(texts: Iterable[str]) -> int:
    """Whitespace-separated words: the corpus size `bot corpus list` shows and `--preset auto` goes by."""
    return sum(len(text.split()) for text in texts)


def summarize(session: Session, corpus: Corpus) -> CorpusSummary:
    by_source = session.execute(
        select(StoredDocument.source, func.count()).where(StoredDocument.corpus_id == corpus.id)
        .group_by(StoredDocument.source).order_by(StoredDocument.source)
    ).all()
    last_added = session.scalar(select(func.max(StoredDocument.added_at)).where(StoredDocument.corpus_id == corpus.id))
    if isinstance(last_added, str):  # SQLite returns max() of a datetime column as text
        last_added = datetime.fromisoformat(last_added)
    words = count_words(iter_texts(session, corpus.name))
    return CorpusSummary(name=corpus.name, documents=sum(n for _, n in by_source), words=words,
                         sources={source: n for source, n in by_source}, created_at=corpus.created_at,
                         last_added=Corpus.created_at.type.process_result_value(last_added, None) if last_added else None)


def list_corpora(session: Session) -> list[CorpusSummary]:
    return [summarize(session, c) for c in session.scalars(select(Corpus).order_by(Corpus.name))]


def sample_documents(session: Session, corpus_name: str, *, limit: int) -> list[StoredDocument]:
    corpus = get_corpus(session, corpus_name)
    query = select(StoredDocument).where(StoredDocument.corpus_id == corpus.id).order_by(StoredDocument.id).limit(limit)
    return list(session.scalars(query))


def delete_corpus(session: Session, corpus_name: str) -> int:
    """Delete the corpus and its documents; returns how many documents went."""
    corpus = get_corpus(session, corpus_name)
    count = count_documents(session, corpus.id)
    session.execute(delete(StoredDocument).where(StoredDocument.corpus_id == corpus.id))
    session.delete(corpus)
    return count


def export_corpus(session: Session, corpus_name: str, path: Path, *, force: bool = False) -> int:
    """Write the documents to PATH as .txt (one per line), .jsonl or .csv, by its extension.

    The file appears whole or not at all (written beside it, then moved into place); an existing file is
    replaced only with `force`.
    """
    kind = path.suffix.lower().lstrip(".")
    if kind not in EXPORT_FORMATS:
        raise BotError(f"Cannot export to {path.name}: name the file .txt, .jsonl or .csv.")
    corpus = get_corpus(session, corpus_name)
    _check_destination(path, force=force)
    query = select(StoredDocument).where(StoredDocument.corpus_id == corpus.id).order_by(StoredDocument.id)
    rows = session.scalars(query.execution_options(yield_per=INSERT_BATCH))
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as out:
            count = _write_documents(out, rows, kind=kind)
        tmp.replace(path)
    except OSError as error:
        raise BotError(
            f"Cannot write {path} ({error.strerror or error}); choose a file in a folder you may write to."
        ) from error
    finally:
        tmp.unlink(missing_ok=True)
    return count


def _check_destination(path: Path, *, force: bool) -> None:
    if not path.parent.is_dir():
        raise BotError(f"Cannot export to {path}: the folder {path.parent} does not exist; create it first.")
    if path.is_dir():
        raise BotError(f"Cannot export to {path}: it is a folder; name a file inside it.")
    if path.exists() and not force:
        raise BotError(f"{path} already exists; pass --force to replace it.")


def _write_documents(out: TextIO, rows: Iterable[StoredDocument], *, kind: str) -> int:
    writer = csv.writer(out) if kind == "csv" else None
    if writer:
        writer.writerow(EXPORT_FIELDS)
    count = 0
    for doc in rows:
        record = {f: getattr(doc, f) for f in EXPORT_FIELDS}
        record["created_at"] = doc.created_at.isoformat() if doc.created_at else None
        if kind == "txt":
            out.write(" ".join(doc.text.split()) + "\n")  # one document per line, as `bot import` reads it
        elif kind == "jsonl":
            out.write(json.dumps({"id": doc.external_id, **record}, ensure_ascii=False) + "\n")
        else:
            writer.writerow([record[f] for f in EXPORT_FIELDS])  # type: ignore[union-attr]
        count += 1
    return count
