"""Corpora in the store: add documents (only what is new), list, show, export, delete."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.errors import BotError, NotFoundError
from bot.store.schema import Corpus, StoredDocument, utcnow
from scrapers.documents import Document

INSERT_BATCH = 1000  # documents per INSERT statement
EXPORT_FORMATS = ("txt", "jsonl", "csv")


@dataclass(frozen=True)
class AddResult:
    seen: int  # documents offered
    added: int  # new to the corpus

    @property
    def already_present(self) -> int:
        return self.seen - self.added


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


def _insert_ignoring_duplicates(session: Session):  # type: ignore[no-untyped-def]
    """INSERT … ON CONFLICT DO NOTHING on the unique (corpus, source, external id)."""
    dialect = session.get_bind().dialect.name
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect)
    if insert is None:
        raise BotError(f"The {dialect} database is not supported; use SQLite or PostgreSQL.")
    return insert(StoredDocument).on_conflict_do_nothing(index_elements=["corpus_id", "source", "external_id"])


def add_documents(session: Session, corpus_name: str, documents: Iterable[Document], *,
                  progress: Callable[[int], None] | None = None) -> AddResult:
    """Add what is new; the caller's transaction decides whether any of it stays (all or nothing)."""
    corpus = ensure_corpus(session, corpus_name)
    before = count_documents(session, corpus.id)
    statement = _insert_ignoring_duplicates(session)
    seen = 0
    iterator = iter(documents)
    while batch := list(islice(iterator, INSERT_BATCH)):
        now = utcnow()
        session.execute(statement, [_row(corpus.id, doc, now) for doc in batch])
        seen += len(batch)
        if progress:
            progress(seen)
    return AddResult(seen=seen, added=count_documents(session, corpus.id) - before)


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


def export_corpus(session: Session, corpus_name: str, path: Path) -> int:
    """Write the documents to PATH as .txt (one per line), .jsonl or .csv, by its extension."""
    kind = path.suffix.lower().lstrip(".")
    if kind not in EXPORT_FORMATS:
        raise BotError(f"Cannot export to {path.name}: name the file .txt, .jsonl or .csv.")
    corpus = get_corpus(session, corpus_name)
    query = select(StoredDocument).where(StoredDocument.corpus_id == corpus.id).order_by(StoredDocument.id)
    rows = session.scalars(query.execution_options(yield_per=INSERT_BATCH))
    fields = ("text", "source", "external_id", "author", "created_at", "score", "url")
    count = 0
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out) if kind == "csv" else None
        if writer:
            writer.writerow(fields)
        for doc in rows:
            record = {f: getattr(doc, f) for f in fields}
            record["created_at"] = doc.created_at.isoformat() if doc.created_at else None
            if kind == "txt":
                out.write(" ".join(doc.text.split()) + "\n")  # one document per line, as `bot import` reads it
            elif kind == "jsonl":
                out.write(json.dumps({"id": doc.external_id, **record}, ensure_ascii=False) + "\n")
            else:
                writer.writerow([record[f] for f in fields])  # type: ignore[union-attr]
            count += 1
    tmp.replace(path)
    return count
