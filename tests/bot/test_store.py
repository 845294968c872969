"""The store on SQLite and PostgreSQL: migrations from empty, corpora that add only what is new."""

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from bot.corpus import (add_documents, delete_corpus, export_corpus, get_corpus, list_corpora, load_texts,
                        sample_documents)
from bot.errors import BotError, NotFoundError
from bot.store import open_store
from bot.store.schema import Base, StoredDocument
from scrapers.documents import Document

WHEN = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def docs(*texts: str, source: str = "file") -> list[Document]:
    return [Document(source=source, external_id=f"id-{t}", text=t) for t in texts]


def test_migrations_from_empty_build_exactly_the_mapped_schema(store) -> None:  # type: ignore[no-untyped-def]
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert MigrationContext.configure(conn).get_current_revision() == "0002"
    assert set(inspect(store.engine).get_table_names()) == {
        "alembic_version", "corpora", "documents", "candidates", "bot_states", "job_runs", "service_lease",
        "apscheduler_jobs"}


def test_opening_again_is_a_no_op(database_url: str) -> None:
    open_store(database_url).close()
    second = open_store(database_url)
    with second.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0002"
    second.close()


def test_adding_twice_adds_only_what_is_new(store) -> None:  # type: ignore[no-untyped-def]
    with store.session() as s:
        first = add_documents(s, "c", docs("a", "b", "c"))
    with store.session() as s:
        second = add_documents(s, "c", docs("b", "c", "d", "d"))
    assert (first.seen, first.added, first.already_present) == (3, 3, 0)
    assert (second.seen, second.added, second.already_present) == (4, 1, 3)
    with store.session() as s:
        assert load_texts(s, "c") == ["a", "b", "c", "d"]


def test_the_same_id_may_live_in_two_corpora_and_two_sources(store) -> None:  # type: ignore[no-untyped-def]
    with store.session() as s:
        add_documents(s, "one", docs("a"))
        add_documents(s, "two", docs("a"))
        result = add_documents(s, "one", docs("a", source="reddit"))
    assert result.added == 1
    with store.session() as s:
        assert [(c.name, c.documents, c.sources) for c in list_corpora(s)] == [
            ("one", 2, {"file": 1, "reddit": 1}), ("two", 1, {"file": 1})]


def test_every_field_is_kept_and_times_come_back_in_utc(store) -> None:  # type: ignore[no-untyped-def]
    doc = Document(source="reddit", external_id="t3_abc", text="Hello &amp; world", author="someone",
                   created_at=WHEN, score=42, url="https://reddit.com/r/x/comments/abc")
    with store.session() as s:
        add_documents(s, "c", [doc])
    with store.session() as s:
        (row,) = sample_documents(s, "c", limit=5)
        assert (row.source, row.external_id, row.text, row.author, row.created_at, row.score, row.url) == (
            "reddit", "t3_abc", "Hello &amp; world", "someone", WHEN, 42, "https://reddit.com/r/x/comments/abc")
        assert row.added_at.tzinfo is not None
        summary = list_corpora(s)[0]
        assert (summary.documents, summary.words, summary.last_added == row.added_at) == (1, 3, True)


def test_a_failed_import_changes_nothing(store) -> None:  # type: ignore[no-untyped-def]
    def broken():  # type: ignore[no-untyped-def]
        yield from docs("a", "b")
        raise BotError("the file broke halfway")

    with pytest.raises(BotError), store.session() as s:
        add_documents(s, "c", broken())
    with store.session() as s:
        with pytest.raises(NotFoundError):
            get_corpus(s, "c")


def test_delete_removes_the_documents_too(store) -> None:  # type: ignore[no-untyped-def]
    with store.session() as s:
        add_documents(s, "c", docs("a", "b"))
        add_documents(s, "keep", docs("a"))
    with store.session() as s:
        assert delete_corpus(s, "c") == 2
    with store.session() as s:
        assert s.scalars(select(StoredDocument.text)).all() == ["a"]
        with pytest.raises(NotFoundError) as error:
            delete_corpus(s, "c")
    assert str(error.value) == "There is no corpus named 'c'; `bot corpus list` shows the corpora."


def test_export_in_three_formats(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [Document(source="x", external_id="1", text="first, with a comma", created_at=WHEN, score=3),
            Document(source="x", external_id="2", text="second\nline")]
    with store.session() as s:
        add_documents(s, "c", rows)
        assert export_corpus(s, "c", tmp_path / "out.txt") == 2
        assert export_corpus(s, "c", tmp_path / "out.jsonl") == 2
        assert export_corpus(s, "c", tmp_path / "out.csv") == 2
        with pytest.raises(BotError) as error:
            export_corpus(s, "c", tmp_path / "out.xml")
    assert str(error.value) == "Cannot export to out.xml: name the file .txt, .jsonl or .csv."
    assert (tmp_path / "out.txt").read_text() == "first, with a comma\nsecond line\n"
    first = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert first == {"id": "1", "text": "first, with a comma", "source": "x", "external_id": "1", "author": None,
                     "created_at": "2024-05-01T12:30:00+00:00", "score": 3, "url": None}
    table = list(csv.reader((tmp_path / "out.csv").open()))
    assert table[0] == ["text", "source", "external_id", "author", "created_at", "score", "url"]
    assert table[2][0] == "second\nline"
