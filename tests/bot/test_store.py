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
from scrapers.errors import ImportFormatError
from scrapers.files import read_documents

WHEN = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def docs(*texts: str, source: str = "file") -> list[Document]:
    return [Document(source=source, external_id=f"id-{t}", text=t) for t in texts]


def test_migrations_from_empty_build_exactly_the_mapped_schema(store) -> None:  # type: ignore[no-untyped-def]
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert MigrationContext.configure(conn).get_current_revision() == "0007"
    assert set(inspect(store.engine).get_table_names()) == {
        "alembic_version", "corpora", "documents", "candidates", "bot_states", "job_runs", "service_lease",
        "apscheduler_jobs", "workers", "model_versions", "serving_models"}


def test_opening_again_is_a_no_op(database_url: str) -> None:
    open_store(database_url).close()
    second = open_store(database_url)
    with second.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0007"
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


# --- every bad input gets one sentence and stores nothing; what is accepted is stored the same on both databases


def stored(store) -> list[tuple[str, str, str, str | None, str | None]]:  # type: ignore[no-untyped-def]
    with store.session() as s:
        return [(d.source, d.external_id, d.text, d.author, d.url)
                for d in s.scalars(select(StoredDocument).order_by(StoredDocument.id))]


def test_control_characters_are_removed_from_every_field(store) -> None:  # type: ignore[no-untyped-def]
    offered = [Document(source="red\x00dit", external_id="t3_\x00a", text="evil \x1b[2J\x1b[31mRED title\x00 here",
                        author="some\x9bone", url="https://e.com/\x07"),
               Document(source="x", external_id="2", text="\x00\x1b[2J \x07"),  # nothing left: skipped
               Document(source="x", external_id="3", text="tabs\tand\nnewlines stay\r")]
    with store.session() as s:
        result = add_documents(s, "c", offered)
    assert (result.seen, result.added, result.empty, result.already_present) == (3, 2, 1, 0)
    assert stored(store) == [("reddit", "t3_a", "evil RED title here", "someone", "https://e.com/"),
                             ("x", "3", "tabs\tand\nnewlines stay", None, None)]


@pytest.mark.parametrize("line", [b'{"text": "nul \\u0000 here"}', b'{"text": "nul here", "id": "\\u0000"}',
                                  b'{"text": "nul here", "author": "a\\u0000"}'])
def test_a_nul_escape_in_jsonl_is_stored_alike_on_both_databases(store, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                 line: bytes) -> None:
    path = tmp_path / "n.jsonl"
    path.write_bytes(line + b"\n")
    with store.session() as s:
        assert add_documents(s, "n", read_documents(path)).added == 1
    ((source, _, text, author, _),) = stored(store)
    assert (source, "\x00" in text, author in (None, "a")) == ("file", False, True)


@pytest.mark.parametrize(("content", "sentence"), [
    (b"hello\n\x00\x01\x02 binary\n", ("{path} is not text: it holds NUL bytes and no UTF-16 or UTF-32 byte order "
                                       "mark; pass a text file saved as UTF-8.")),
    (b"\xff\xfeh\x00i\x00\x00\xd8", ("{path} starts with a UTF-16 byte order mark but is not UTF-16 (the byte at "
                                    "offset 6 is not); save it again as UTF-8.")),
    (b"fine\ncaf\x81\n",
     "{path} is neither UTF-8 (the byte at offset 8 is not) nor Windows-1252 text; save it as UTF-8 and try again."),
])
def test_a_file_that_is_not_text_stores_nothing(store, tmp_path: Path, content: bytes,  # type: ignore[no-untyped-def]
                                                sentence: str) -> None:
    path = tmp_path / "posts.txt"
    path.write_bytes(content)
    with pytest.raises(ImportFormatError) as error, store.session() as s:
        add_documents(s, "c", read_documents(path, format="txt"))
    assert str(error.value) == sentence.format(path=path)
    with store.session() as s:
        assert list_corpora(s) == []


def test_a_utf16_file_is_stored_as_its_text(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "u.txt"
    path.write_text("Hello from a file\nSecond line\n", encoding="utf-16")
    with store.session() as s:
        add_documents(s, "u", read_documents(path))
    with store.session() as s:
        assert load_texts(s, "u") == ["Hello from a file", "Second line"]


def test_export_into_a_missing_folder_is_one_sentence(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with store.session() as s:
        add_documents(s, "c", docs("a"))
        with pytest.raises(BotError) as error:
            export_corpus(s, "c", tmp_path / "nonexistent" / "x.jsonl")
    assert str(error.value) == (
        f"Cannot export to {tmp_path / 'nonexistent' / 'x.jsonl'}: the folder {tmp_path / 'nonexistent'} does not "
        "exist; create it first."
    )
    assert not (tmp_path / "nonexistent").exists()


def test_export_over_a_file_needs_force(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "out" / "out.txt"
    path.parent.mkdir()
    path.write_text("keep me\n")
    with store.session() as s:
        add_documents(s, "c", docs("a", "b"))
        with pytest.raises(BotError) as error:
            export_corpus(s, "c", path)
        assert str(error.value) == f"{path} already exists; pass --force to replace it."
        assert path.read_text() == "keep me\n"
        assert export_corpus(s, "c", path, force=True) == 2
    assert path.read_text() == "a\nb\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.txt"]  # no .tmp left behind
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    with store.session() as s, pytest.raises(BotError) as error:
        export_corpus(s, "c", folder, force=True)
    assert str(error.value) == f"Cannot export to {folder}: it is a folder; name a file inside it."


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_an_export_imported_again_adds_nothing(store, tmp_path: Path,  # type: ignore[no-untyped-def]
                                               suffix: str) -> None:
    path = tmp_path / "plain.txt"
    path.write_text("a line from a file\n")
    rows = [Document(source="reddit", external_id="t3_abc", text="Hello, world", author="someone",
                     created_at=WHEN, score=42, url="https://reddit.com/r/x/comments/abc"),
            Document(source="x", external_id="2", text="two\nlines, \"quoted\"")]
    with store.session() as s:
        add_documents(s, "c", [*rows, *read_documents(path)])
        export_corpus(s, "c", tmp_path / f"out{suffix}")
    before = stored(store)
    with store.session() as s:
        again = add_documents(s, "c", read_documents(tmp_path / f"out{suffix}"))
    assert (again.seen, again.added, again.already_present) == (3, 0, 3)
    assert stored(store) == before
    first = next(read_documents(tmp_path / f"out{suffix}"))
    assert (first.source, first.external_id, first.created_at, first.score) == ("reddit", "t3_abc", WHEN, 42)


KEEPS = "the store keeps; shorten it and try again."


@pytest.mark.parametrize(("doc", "sentence"), [
    (Document(source="file", external_id="x" * 129, text="t"),
     f"The 'file' document {'x' * 40!r} has an id of 129 characters, more than the 128 {KEEPS}"),
    (Document(source="a-very-long-source", external_id="1", text="t"),
     f"The 'a-very-long-source' document '1' has a source of 18 characters, more than the 16 {KEEPS}"),
    (Document(source="file", external_id="1", text="t", author="a" * 200),
     f"The 'file' document '1' has an author of 200 characters, more than the 128 {KEEPS}"),
    (Document(source="file", external_id="1", text="t", score=2**31),
     ("The 'file' document '1' has score 2,147,483,648, outside the -2,147,483,648 to 2,147,483,647 the store "
      "keeps; fix it or leave it blank.")),
])
def test_what_postgresql_cannot_hold_is_refused_on_both(store, doc: Document,  # type: ignore[no-untyped-def]
                                                        sentence: str) -> None:
    with pytest.raises(BotError) as error, store.session() as s:
        add_documents(s, "c", [*docs("fine"), doc])
    assert str(error.value) == sentence
    assert stored(store) == []


def test_a_zip_bomb_stores_nothing(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import zipfile

    path = tmp_path / "twitter.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/tweets.js", b'window.YTD.tweets.part0 = [{"tweet": {"id_str": "1", "full_text": "hi"}}'
                                           + b" " * (8 << 20) + b"]")
        info = archive.getinfo("data/tweets.js")
    with pytest.raises(ImportFormatError) as error, store.session() as s:
        add_documents(s, "c", read_documents(path))
    assert str(error.value) == (
        f"{path}/data/tweets.js unpacks to {info.file_size / info.compress_size:,.0f} times its packed size, more "
        "than the 100 of a real X archive; if you trust the file, unzip it yourself and pass its folder.")
    assert stored(store) == []
